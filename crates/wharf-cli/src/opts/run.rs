//! `run`/`create` flags → the `POST /containers/create` body, as docker's `parse()` builds it.

use super::parse;
use crate::cli::RunArgs;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Map, Value};

/// The create request: its JSON body and the query's name/platform.
pub struct CreatePlan {
    pub body: Value,
    pub image: String,
}

fn list(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `--security-opt`s as the docker CLI sends them: `seccomp=<file>` becomes the file's JSON
/// (compacted), since the daemon cannot read the client's files.
pub fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    opts.iter()
        .map(|o| {
            let Some((_, path)) = o.split_once('=').filter(|(k, _)| *k == "seccomp") else {
                return Ok(o.clone());
            };
            if matches!(path, "unconfined" | "builtin") {
                return Ok(o.clone());
            }
            let data = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("opening seccomp profile ({path}) failed: {e}"))?;
            let v: Value = serde_json::from_slice(&data).map_err(|e| {
                anyhow::anyhow!("compacting json for seccomp profile ({path}) failed: {e}")
            })?;
            Ok(format!("seccomp={v}"))
        })
        .collect()
}

/// Which streams to attach (`-a`), as docker decides them for `run`.
pub fn attach_streams(a: &RunArgs) -> Result<(bool, bool, bool)> {
    if a.detach {
        if !a.attach.is_empty() {
            bail!("conflicting options: cannot specify both --attach and --detach");
        }
        return Ok((false, false, false));
    }
    if a.attach.is_empty() {
        return Ok((a.interactive, true, true));
    }
    let (mut i, mut o, mut e) = (false, false, false);
    for s in &a.attach {
        match s.to_lowercase().as_str() {
            "stdin" => i = true,
            "stdout" => o = true,
            "stderr" => e = true,
            _ => bail!("invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    Ok((i, o, e))
}

/// Builds the create body from the flags.
pub fn create_body(a: &RunArgs) -> Result<CreatePlan> {
    let image = a.image_and_cmd[0].clone();
    let cmd: Vec<String> = a.image_and_cmd[1..].to_vec();

    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse::env_file(f)?);
    }
    env.extend(a.env.iter().filter_map(|e| parse::env_opt(e)));

    let mut labels = Map::new();
    for f in &a.label_file {
        for l in parse::label_file(f)? {
            let (k, v) = parse::key_value(&l);
            labels.insert(k, v.into());
        }
    }
    for l in &a.label {
        let (k, v) = parse::key_value(l);
        labels.insert(k, v.into());
    }

    let (att_in, att_out, att_err) = attach_streams(a)?;

    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for p in &a.publish {
        for m in parse::port_spec(p)
            .with_context(|| format!("invalid argument \"{p}\" for \"-p, --publish\" flag"))?
        {
            exposed.insert(m.port.clone(), json!({}));
            let e = bindings.entry(m.port).or_insert_with(|| json!([]));
            if let Value::Array(v) = e {
                v.push(json!({"HostIp": m.host_ip, "HostPort": m.host_port}));
            }
        }
    }
    for e in &a.expose {
        for p in parse::expose(e)? {
            exposed.insert(p, json!({}));
        }
    }

    let entrypoint = match &a.entrypoint {
        // `--entrypoint ""` resets the image's entrypoint.
        Some(e) if e.is_empty() => json!([""]),
        Some(e) => json!([e]),
        None => Value::Null,
    };

    let (restart_name, restart_max) = parse::restart_policy(&a.restart)?;
    if a.rm && restart_name != "no" {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }

    let memory = a
        .memory
        .as_deref()
        .map(parse::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);
    let memory_swap = a
        .memory_swap
        .as_deref()
        .map(parse::memory_swap)
        .transpose()?
        .unwrap_or(0);
    let memory_reservation = a
        .memory_reservation
        .as_deref()
        .map(parse::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);
    let nano_cpus = a
        .cpus
        .as_deref()
        .map(parse::nano_cpus)
        .transpose()?
        .unwrap_or(0);
    if nano_cpus > 0 && (a.cpu_period.unwrap_or(0) > 0 || a.cpu_quota.unwrap_or(0) > 0) {
        bail!("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
    }
    let shm = a
        .shm_size
        .as_deref()
        .map(parse::ram_in_bytes)
        .transpose()?
        .unwrap_or(0);

    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        let (name, soft, hard) = parse::ulimit(u)?;
        ulimits.push(json!({"Name": name, "Soft": soft, "Hard": hard}));
    }

    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), opts.into());
    }

    let mut log_cfg = Map::new();
    for o in &a.log_opt {
        let (k, v) = parse::key_value(o);
        log_cfg.insert(k, v.into());
    }

    let mut sysctls = Map::new();
    for s in &a.sysctl {
        let (k, v) = parse::key_value(s);
        sysctls.insert(k, v.into());
    }

    let mut devices = Vec::new();
    for d in &a.device {
        let parts: Vec<&str> = d.split(':').collect();
        let (host, cont, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, c] if c.chars().all(|x| "rwm".contains(x)) => (*h, *h, *c),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => bail!("invalid device specification: {d}"),
        };
        devices
            .push(json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms}));
    }

    let mut mounts = Vec::new();
    for m in &a.mount {
        mounts.push(mount_spec(m)?);
    }

    if let Some(sig) = &a.stop_signal {
        if parse::signal_number(sig).is_none() {
            bail!("invalid signal: {sig}");
        }
    }
    let healthcheck = healthcheck(a)?;
    let network = a.network.clone().unwrap_or_else(|| "default".into());
    // --network-alias, --ip, --ip6 and (on a user network, as the docker CLI sends them)
    // --link configure the endpoint on the container's network.
    let user_network = !matches!(network.as_str(), "default" | "bridge" | "host" | "none")
        && !network.starts_with("container:");
    let endpoint_links = user_network && !a.links.is_empty();
    let mut endpoints = serde_json::Map::new();
    if !a.network_alias.is_empty()
        || a.ip.is_some()
        || a.ip6.is_some()
        || a.mac_address.is_some()
        || endpoint_links
    {
        let mut ep = json!({});
        if endpoint_links {
            ep["Links"] = json!(a.links);
        }
        if let Some(mac) = &a.mac_address {
            ep["MacAddress"] = json!(mac);
        }
        if !a.network_alias.is_empty() {
            ep["Aliases"] = json!(a.network_alias);
        }
        let mut ipam = serde_json::Map::new();
        if let Some(ip) = &a.ip {
            ipam.insert("IPv4Address".into(), json!(ip));
        }
        if let Some(ip6) = &a.ip6 {
            ipam.insert("IPv6Address".into(), json!(ip6));
        }
        if !ipam.is_empty() {
            ep["IPAMConfig"] = serde_json::Value::Object(ipam);
        }
        endpoints.insert(network.clone(), ep);
    }
    let stdin_once = att_in && !a.detach;
    let body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Domainname": a.domainname.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": att_in,
        "AttachStdout": att_out,
        "AttachStderr": att_err,
        "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": stdin_once,
        "Env": list(env),
        "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
        "Image": image,
        "Volumes": Value::Null,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "OnBuild": Value::Null,
        "Labels": Value::Object(labels),
        "StopSignal": a.stop_signal.clone(),
        "Healthcheck": healthcheck,
        "StopTimeout": a.stop_timeout,
        "HostConfig": {
            "Binds": list(a.volume.clone()),
            "VolumesFrom": list(a.volumes_from.clone()),
            "ContainerIDFile": a.cidfile.clone().unwrap_or_default(),
            "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_cfg},
            "NetworkMode": network,
            "PortBindings": bindings,
            "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": restart_max},
            "AutoRemove": a.rm,
            "CapAdd": list(caps(&a.cap_add)),
            "CapDrop": list(caps(&a.cap_drop)),
            "CgroupnsMode": a.cgroupns.clone().unwrap_or_default(),
            "Dns": a.dns,
            "DnsOptions": a.dns_option,
            "DnsSearch": a.dns_search,
            "ExtraHosts": list(a.add_host.clone()),
            "Links": list(a.links.clone()),
            "GroupAdd": list(a.group_add.clone()),
            "IpcMode": a.ipc.clone().unwrap_or_default(),
            "OomScoreAdj": a.oom_score_adj.unwrap_or(0),
            "PidMode": a.pid.clone().unwrap_or_default(),
            "Privileged": a.privileged,
            "PublishAllPorts": a.publish_all,
            "ReadonlyRootfs": a.read_only,
            "SecurityOpt": list(security_opts(&a.security_opt)?),
            "Tmpfs": if tmpfs.is_empty() { Value::Null } else { Value::Object(tmpfs) },
            "UTSMode": a.uts.clone().unwrap_or_default(),
            "UsernsMode": a.userns.clone().unwrap_or_default(),
            "ShmSize": shm,
            "Sysctls": if sysctls.is_empty() { Value::Null } else { Value::Object(sysctls) },
            "Runtime": a.runtime.clone(),
            "CpuShares": a.cpu_shares.unwrap_or(0),
            "Memory": memory,
            "NanoCpus": nano_cpus,
            "CpuPeriod": a.cpu_period.unwrap_or(0),
            "CpuQuota": a.cpu_quota.unwrap_or(0),
            "CpusetCpus": a.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": a.cpuset_mems.clone().unwrap_or_default(),
            "Devices": devices,
            "MemoryReservation": memory_reservation,
            "MemorySwap": memory_swap,
            "PidsLimit": a.pids_limit,
            "Ulimits": ulimits,
            "Mounts": if mounts.is_empty() { Value::Null } else { json!(mounts) },
            "Init": if a.init { json!(true) } else { Value::Null },
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    Ok(CreatePlan { body, image })
}

/// `--mount type=bind,source=/a,target=/b,readonly` → a `Mount` object.
pub fn mount_spec(s: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        let val = || {
            v.clone()
                .ok_or_else(|| anyhow::anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        let boolean = |v: &Option<String>| -> Result<bool> {
            match v.as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(o) => bail!("invalid value for {k}: {o}"),
            }
        };
        match k.as_str() {
            "type" => kind = val()?,
            "source" | "src" => {
                m.insert("Source".into(), val()?.into());
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), val()?.into());
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), boolean(&v)?.into());
            }
            "consistency" => {
                m.insert("Consistency".into(), val()?.into());
            }
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), val()?.into());
            }
            "volume-nocopy" => {
                vol_opts.insert("NoCopy".into(), boolean(&v)?.into());
            }
            "volume-driver" => {
                vol_opts.insert("DriverConfig".into(), json!({"Name": val()?}));
            }
            "tmpfs-size" => {
                tmpfs_opts.insert("SizeBytes".into(), parse::ram_in_bytes(&val()?)?.into());
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&val()?, 8).context("invalid tmpfs-mode")?;
                tmpfs_opts.insert("Mode".into(), mode.into());
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if !m.contains_key("Target") {
        bail!("target is required");
    }
    m.insert("Type".into(), kind.clone().into());
    match kind.as_str() {
        "bind" if !bind_opts.is_empty() => {
            m.insert("BindOptions".into(), Value::Object(bind_opts));
        }
        "volume" if !vol_opts.is_empty() => {
            m.insert("VolumeOptions".into(), Value::Object(vol_opts));
        }
        "tmpfs" if !tmpfs_opts.is_empty() => {
            m.insert("TmpfsOptions".into(), Value::Object(tmpfs_opts));
        }
        "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | "image" => {}
        other => bail!("invalid mount type: {other}"),
    }
    Ok(Value::Object(m))
}

/// Capabilities as docker 28 sends them: upper case with the `CAP_` prefix, `ALL` kept.
fn caps(l: &[String]) -> Vec<String> {
    l.iter()
        .map(|c| {
            let c = c.trim().to_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect()
}

/// `Healthcheck` from the `--health-*` flags, as the docker CLI builds it: null when none is
/// given, `["NONE"]` for `--no-healthcheck`, durations in nanoseconds.
fn healthcheck(a: &RunArgs) -> Result<Value> {
    let durations = [
        ("--health-interval", &a.health_interval),
        ("--health-timeout", &a.health_timeout),
        ("--health-start-period", &a.health_start_period),
        ("--health-start-interval", &a.health_start_interval),
    ];
    let any = a.health_cmd.is_some()
        || a.health_retries.is_some()
        || durations.iter().any(|(_, v)| v.is_some());
    if a.no_healthcheck {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    if !any {
        return Ok(Value::Null);
    }
    let mut nanos = [0i64; 4];
    for (i, (flag, v)) in durations.iter().enumerate() {
        if let Some(v) = v {
            let d = parse::go_duration(v)
                .map_err(|e| anyhow::anyhow!("invalid argument {v:?} for \"{flag}\" flag: {e}"))?;
            nanos[i] = d.as_nanos() as i64;
        }
    }
    let retries = a.health_retries.unwrap_or(0);
    if retries < 0 {
        bail!("--health-retries cannot be negative");
    }
    let test = match &a.health_cmd {
        Some(c) if !c.is_empty() => json!(["CMD-SHELL", c]),
        _ => json!([]),
    };
    Ok(json!({
        "Test": test,
        "Interval": nanos[0],
        "Timeout": nanos[1],
        "StartPeriod": nanos[2],
        "StartInterval": nanos[3],
        "Retries": retries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn seccomp_profiles_are_sent_as_json() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.json");
        std::fs::write(&f, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let opts = vec![
            format!("seccomp={}", f.display()),
            "seccomp=unconfined".to_string(),
            "no-new-privileges".to_string(),
        ];
        assert_eq!(
            security_opts(&opts).unwrap(),
            [
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#,
                "seccomp=unconfined",
                "no-new-privileges"
            ]
        );
        let missing = vec!["seccomp=/nonexistent/p.json".to_string()];
        assert!(security_opts(&missing)
            .unwrap_err()
            .to_string()
            .contains("opening seccomp profile"));
    }

    fn args(argv: &[&str]) -> RunArgs {
        let mut v = vec!["wharf", "run"];
        v.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(v).unwrap().cmd.unwrap() {
            crate::cli::Cmd::Run(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_become_the_create_body() {
        let a = args(&[
            "-d",
            "--rm",
            "-e",
            "A=1",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "-p",
            "8080:80",
            "-l",
            "x=y",
            "--ulimit",
            "nofile=10:20",
            "--tmpfs",
            "/t:size=1m",
            "--init",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
        ]);
        let p = create_body(&a).unwrap();
        let b = &p.body;
        assert_eq!(p.image, "busybox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo -n hi"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"], json!({"x": "y"}));
        assert_eq!(b["AttachStdout"], json!(false));
        assert_eq!(b["HostConfig"]["Memory"], json!(512 << 20));
        assert_eq!(b["HostConfig"]["NanoCpus"], json!(1_500_000_000i64));
        assert_eq!(b["HostConfig"]["AutoRemove"], json!(true));
        assert_eq!(b["HostConfig"]["Init"], json!(true));
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(
            b["HostConfig"]["Ulimits"],
            json!([{"Name": "nofile", "Soft": 10, "Hard": 20}])
        );
        assert_eq!(b["HostConfig"]["Tmpfs"], json!({"/t": "size=1m"}));
    }

    #[test]
    fn flags_after_the_image_belong_to_the_command() {
        let a = args(&["-it", "busybox", "ls", "-l", "--rm"]);
        assert!(a.interactive && a.tty && !a.rm);
        assert_eq!(a.image_and_cmd, vec!["busybox", "ls", "-l", "--rm"]);
        let p = create_body(&a).unwrap();
        assert_eq!(p.body["AttachStdin"], json!(true));
        assert_eq!(p.body["StdinOnce"], json!(true));
    }

    #[test]
    fn conflicts_and_mounts() {
        assert!(create_body(&args(&["--rm", "--restart", "always", "x"])).is_err());
        assert_eq!(
            mount_spec("type=bind,source=/a,target=/b,readonly").unwrap(),
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true})
        );
        assert!(mount_spec("type=bind,source=/a").is_err());
    }
}
