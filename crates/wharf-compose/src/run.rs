//! `run`: a one-off container of a service, as compose v2 makes it: named
//! `<project>-<service>-run-<12 hex>`, labelled `com.docker.compose.oneoff=True` (so `ps`,
//! `up` and `down` of the service leave it alone), its dependencies brought up first unless
//! `--no-deps`, the service's ports published only with `--service-ports`, and no network
//! alias of the service (only its own name).

use crate::convert::{create_body, extra_networks};
use crate::engine::Engine;
use crate::labels;
use crate::up::{ensure_resources, up, UpError, UpOptions, UpResult};
use crate::Out;
use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub service: String,
    /// Replaces the service's command when not empty.
    pub command: Vec<String>,
    /// Replaces the service's entrypoint (a string split as a shell does).
    pub entrypoint: Option<String>,
    /// `-e K=V` (or `K`, from compose's environment).
    pub env: Vec<String>,
    pub name: Option<String>,
    pub service_ports: bool,
    pub no_deps: bool,
    /// `--rm`: the engine removes it when it stops (`AutoRemove`).
    pub rm: bool,
    pub tty: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// The random part of the name (12 hex digits), given by the caller.
    pub slug: String,
}

/// Creates the one-off container (after the dependencies); its id and name.
pub async fn create<E: Engine>(
    e: &E,
    p: &crate::Project,
    o: &RunOptions,
    environ: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Out,
) -> UpResult<(String, String)> {
    let svc = o.service.as_str();
    let Some(base) = p.services.get(svc) else {
        return Err(UpError::NoSuchService(svc.to_string()));
    };
    crate::up::check_supported(p, &[svc.to_string()])?;
    let deps: Vec<String> = base.depends_on.keys().cloned().collect();
    if !o.no_deps && !deps.is_empty() {
        let uo = UpOptions {
            services: deps,
            ..Default::default()
        };
        up(e, p, &uo, out).await?;
    } else {
        ensure_resources(e, p, out).await?;
    }
    let image_id = crate::build::ensure_image(e, p, svc, false, out).await?;
    let mut s = base.clone();
    if !o.command.is_empty() {
        s.command = Some(o.command.clone());
    }
    if let Some(ep) = &o.entrypoint {
        s.entrypoint = Some(
            crate::parse::shell_words(ep).map_err(|m| UpError::Unsupported {
                service: svc.to_string(),
                key: format!("--entrypoint: {m}"),
            })?,
        );
    }
    for kv in &o.env {
        match kv.split_once('=') {
            Some((k, v)) => {
                s.environment.insert(k.to_string(), Some(v.to_string()));
            }
            None => {
                if let Some(v) = environ(kv) {
                    s.environment.insert(kv.clone(), Some(v));
                }
            }
        }
    }
    if !o.service_ports {
        s.ports.clear();
    }
    if o.rm {
        s.restart = None;
    }
    if o.user.is_some() {
        s.user = o.user.clone();
    }
    if o.workdir.is_some() {
        s.working_dir = o.workdir.clone();
    }
    s.tty = Some(o.tty);
    s.stdin_open = Some(true);
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{svc}-run-{}", p.name, o.slug));
    s.container_name = Some(name.clone());
    let mut body = create_body(p, svc, &s, 1, &image_id);
    body["Labels"][labels::ONEOFF] = json!("True");
    body["Labels"][labels::SLUG] = json!(o.slug);
    body["AttachStdin"] = json!(true);
    // As compose v2 sets it: the stdin that the client attaches is the container's only one.
    // Without it dockerd closes the attach's stdout and stderr when the client's stdin ends
    // (`run -T` with stdin at EOF), and a quick one-off's output is lost.
    body["StdinOnce"] = json!(true);
    body["HostConfig"]["AutoRemove"] = json!(o.rm);
    // No alias of the service: a one-off is not one of its replicas.
    if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object_mut() {
        for ep in eps.values_mut() {
            ep["Aliases"] = json!([name]);
        }
    }
    let sp = crate::secrets::plan(p, svc)?;
    if let Some(h) = body["HostConfig"].as_object_mut() {
        let m = h.entry("Mounts").or_insert_with(|| json!([]));
        if let Some(a) = m.as_array_mut() {
            a.extend(sp.mounts.iter().cloned());
        }
    }
    let id = e.create_container(&name, &body).await?;
    for (net, mut ep) in extra_networks(p, svc, &s, 1) {
        ep["Aliases"] = json!([name]);
        e.connect_network(&net, &id, &ep).await?;
    }
    for i in &sp.injections {
        e.copy_to_container(&id, crate::secrets::tar_of(i), i.copy_uid_gid)
            .await?;
    }
    Ok((id, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;
    use crate::load::{load, Options};

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_one_off_is_labelled_named_and_brings_its_dependencies_up() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("compose.yaml"),
            "name: p\nservices:\n  db: {image: busybox}\n  web:\n    image: busybox\n    command: [serve]\n    depends_on: [db]\n    ports: ['8080:80']\n    restart: always\n    networks: [a, b]\nnetworks: {a: {}, b: {}}\n",
        )
        .unwrap();
        let p = load(&Options {
            cwd: t.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let e = Fake::default();
        let o = RunOptions {
            service: "web".into(),
            command: vec!["echo".into(), "hi".into()],
            env: vec!["A=1".into(), "FROM_ENV".into()],
            rm: true,
            slug: "0123456789ab".into(),
            ..Default::default()
        };
        let env = |k: &str| (k == "FROM_ENV").then(|| "x".to_string());
        let (_, name) = run(create(&e, &p, &o, &env, &mut Vec::new())).unwrap();
        assert_eq!(name, "p-web-run-0123456789ab");
        // db came up (created and started), web's service container did not.
        let names: Vec<String> = e
            .containers
            .borrow()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, ["p-db-1", "p-web-run-0123456789ab"]);
        let c = e.by_name(&name);
        assert_eq!(c.body["Labels"]["com.docker.compose.oneoff"], "True");
        assert_eq!(c.body["Cmd"], json!(["echo", "hi"]));
        assert_eq!(c.body["HostConfig"]["AutoRemove"], true);
        assert_eq!(
            (
                &c.body["AttachStdin"],
                &c.body["OpenStdin"],
                &c.body["StdinOnce"]
            ),
            (&json!(true), &json!(true), &json!(true))
        );
        assert!(c.body["HostConfig"].get("RestartPolicy").is_none());
        assert!(c.body["HostConfig"].get("PortBindings").is_none());
        let env: Vec<&str> = c.body["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(env, ["A=1", "FROM_ENV=x"]);
        assert_eq!(
            c.body["NetworkingConfig"]["EndpointsConfig"]["p_a"]["Aliases"],
            json!([name])
        );
        // --no-deps and --service-ports.
        let e = Fake::default();
        let o = RunOptions {
            service: "web".into(),
            no_deps: true,
            service_ports: true,
            entrypoint: Some("sh -c".into()),
            slug: "a".into(),
            ..Default::default()
        };
        run(create(&e, &p, &o, &|_| None, &mut Vec::new())).unwrap();
        let names: Vec<String> = e
            .containers
            .borrow()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, ["p-web-run-a"]);
        let c = e.by_name("p-web-run-a");
        assert!(c.body["HostConfig"].get("PortBindings").is_some());
        assert_eq!(c.body["Entrypoint"], json!(["sh", "-c"]));
        assert_eq!(c.body["HostConfig"]["RestartPolicy"]["Name"], "always");
    }
}
