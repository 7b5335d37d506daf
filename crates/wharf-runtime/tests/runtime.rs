//! The runtime binary against runc, feature by feature: each test builds a busybox bundle,
//! runs the same config with `wharf-runtime` and with runc, and checks what the container
//! observed (and that both runtimes observed the same). Failure cases compare the exit code
//! and message with runc's and check that nothing is left behind.
//!
//! Needs root (each test prints a note and passes otherwise), runc in /usr/sbin and busybox.

mod common;

use common::{cgroup_file, poll, Case, Out, Rt, BOTH};
use serde_json::{json, Value};
use std::time::Duration;

/// A case, or return from the test when not root.
macro_rules! case {
    () => {
        match Case::new(module_path!()) {
            Some(c) => c,
            None => return,
        }
    };
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// What the container observes

#[test]
fn pid_1_in_its_own_pid_namespace() {
    let c = case!();
    // The glob is expanded by the shell itself: no other process exists when it runs.
    c.sh("echo $$; readlink /proc/self/ns/pid; echo /proc/[0-9]*");
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let r = c.run_both();
    r.both_ok().each("pid 1, a new pid namespace, no other process", |o| {
        let l = o.lines();
        l.len() == 3 && l[0] == "1" && Some(l[1]) != host_ns.to_str() && l[2] == "/proc/1"
    });
}

#[test]
fn hostname_from_the_config() {
    let c = case!();
    c.edit(|c| c["hostname"] = json!("wrt-box"));
    c.sh("hostname; cat /proc/sys/kernel/hostname");
    c.run_both().both_ok().stdout_is("wrt-box\nwrt-box");
}

#[test]
fn private_network_namespace_has_only_lo() {
    let c = case!();
    c.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; readlink /proc/self/ns/net");
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let r = c.run_both();
    r.both_ok()
        .each("only lo in /proc/net/dev, in a new namespace", |o| {
            let l = o.lines();
            l.len() == 2 && l[0] == "lo" && Some(l[1]) != host_ns.to_str()
        });
}

#[test]
fn exit_status_propagates_through_run() {
    let c = case!();
    c.sh("echo bye; exit 3");
    c.run_both().code_is(3).stdout_is("bye");
}

#[test]
fn memory_limit_is_enforced_by_the_oom_killer() {
    let c = case!();
    let limit = 16 << 20;
    c.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit}));
    // tail keeps the whole (newline-free) 64 MiB line in memory.
    c.sh(
        "head -c 64m /dev/zero | tail; echo status $?; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         grep oom_kill /sys/fs/cgroup/memory/memory.oom_control",
    );
    c.run_both()
        .both_ok()
        .stdout_is(&format!("status 137\n{limit}\noom_kill_disable 0\noom_kill 1"));
}

#[test]
fn pids_limit_makes_fork_fail() {
    let c = case!();
    c.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 5}));
    c.sh("exec 2>&1; cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done");
    c.run_both()
        .stdout_is("5\nsh: can't fork: Resource temporarily unavailable");
}

#[test]
fn cpu_quota_is_in_the_cgroup() {
    let c = case!();
    c.edit(|c| c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000}));
    c.sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us");
    c.run_both().both_ok().stdout_is("50000\n100000");
    // And from the host, in the cgroupsPath of a created container.
    c.create_both().both_ok();
    for rt in BOTH {
        let got = cgroup_file(&c.cgroup(rt), "cpu", "cpu.cfs_quota_us");
        assert_eq!(got.as_deref(), Some("50000"), "{rt}: host cpu.cfs_quota_us");
    }
}

/// CapEff of the spec's default set: CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE.
const DEFAULT_CAPS: u64 = 1 << 5 | 1 << 10 | 1 << 29;

#[test]
fn dropped_capability_is_really_missing() {
    let c = case!();
    c.tmpfs("/tmp");
    c.sh("grep CapEff /proc/self/status; touch /tmp/x; chown 1 /tmp/x && echo chowned");
    c.run_both()
        .stdout_is(&format!("CapEff:\t{DEFAULT_CAPS:016x}"))
        .stderr_has("chown: /tmp/x: Operation not permitted");
    // The control: with CAP_CHOWN granted the same chown works.
    c.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let s = c["process"]["capabilities"][set].as_array_mut().unwrap();
            s.push(json!("CAP_CHOWN"));
        }
    });
    c.run_both()
        .both_ok()
        .stdout_is(&format!("CapEff:\t{:016x}\nchowned", DEFAULT_CAPS | 1));
}

#[test]
fn seccomp_rule_returns_its_errno() {
    let c = case!();
    c.tmpfs("/tmp");
    c.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
        })
    });
    c.sh("exec 2>&1; mkdir /tmp/d; touch /tmp/f && echo touched; grep Seccomp: /proc/self/status");
    c.run_both()
        .both_ok()
        .stdout_is("mkdir: can't create directory '/tmp/d': Function not implemented\ntouched\nSeccomp:\t2");
}

#[test]
fn masked_paths_are_unreadable() {
    let c = case!();
    // The masked files this host has (the kernel may lack /proc/kcore), read a byte of each.
    let files: Vec<&str> = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .filter(|f| std::path::Path::new(f).exists())
        .collect();
    assert!(!files.is_empty(), "no masked file to test on this host");
    let mut script = String::new();
    for f in &files {
        script.push_str(&format!("echo {f} $(head -c 1 {f} | wc -c); "));
    }
    script.push_str("echo /sys/firmware $(ls -A /sys/firmware | wc -l) $(stat -f -c %T /sys/firmware)");
    c.sh(&script);
    assert!(
        std::fs::read_dir("/sys/firmware").unwrap().count() > 0,
        "the host's /sys/firmware should not be empty for this test to mean anything"
    );
    let want: Vec<String> = files.iter().map(|f| format!("{f} 0")).collect();
    c.run_both()
        .both_ok()
        .stdout_is(&format!("{}\n/sys/firmware 0 tmpfs", want.join("\n")));
}

#[test]
fn readonly_rootfs_and_paths_refuse_writes() {
    let c = case!();
    c.sh("exec 2>&1; touch /newfile; echo x > /proc/sys/kernel/domainname; echo end");
    c.run_both().both_ok().stdout_is(
        "touch: /newfile: Read-only file system\n\
         sh: can't create /proc/sys/kernel/domainname: Read-only file system\nend",
    );
    // The control: a writable root takes the file.
    c.edit(|c| c["root"]["readonly"] = json!(false));
    c.sh("touch /newfile && echo written");
    c.run_both().both_ok().stdout_is("written");
}

#[test]
fn rlimits_are_set() {
    let c = case!();
    c.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}])
    });
    c.sh("ulimit -n; ulimit -Hn");
    c.run_both().both_ok().stdout_is("777\n888");
}

#[test]
fn env_cwd_and_user() {
    let c = case!();
    c.edit(|c| {
        let p = &mut c["process"];
        p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]});
        p["cwd"] = json!("/srv/work");
        p["env"].as_array_mut().unwrap().push(json!("FOO=bar baz"));
    });
    c.sh("id -u; id -g; id -G; pwd; echo \"$FOO\"");
    c.run_both()
        .both_ok()
        .stdout_is("1000\n1000\n1000 2000 3000\n/srv/work\nbar baz");
}

#[test]
fn no_new_privileges() {
    let c = case!();
    c.sh("grep NoNewPrivs /proc/self/status");
    c.run_both().both_ok().stdout_is("NoNewPrivs:\t1");
    c.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    c.run_both().both_ok().stdout_is("NoNewPrivs:\t0");
}

#[test]
fn oom_score_adj() {
    let c = case!();
    c.edit(|c| c["process"]["oomScoreAdj"] = json!(321));
    c.args(&["cat", "/proc/self/oom_score_adj"]);
    c.run_both().both_ok().stdout_is("321");
}

#[test]
fn sysctl_in_a_new_network_namespace() {
    let c = case!();
    let host = || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let before = host();
    c.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    c.args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    c.run_both().both_ok().stdout_is("1");
    assert_eq!(host(), before, "the host's ip_forward changed");
}

#[test]
fn tmpfs_and_readonly_bind_mounts() {
    let c = case!();
    for rt in BOTH {
        std::fs::write(c.scratch(rt, "data").join("hello"), "hello from the host\n").unwrap();
    }
    c.edit_each(|rt, cfg| {
        let m = cfg["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind",
                      "source": c.scratch(rt, "data"), "options": ["bind", "ro"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "size=1m", "mode=1777"]}));
    });
    c.sh(
        "exec 2>&1; cat /data/hello; touch /data/new; touch /scratch/new && echo scratch-ok; \
         awk '$2==\"/data\"||$2==\"/scratch\"{split($4,o,\",\"); print $2, o[1]}' /proc/mounts; \
         stat -f -c %T /scratch; stat -c %a /scratch",
    );
    c.run_both().both_ok().same_stdout().stdout_is(
        "hello from the host\ntouch: /data/new: Read-only file system\nscratch-ok\n\
         /data ro\n/scratch rw\ntmpfs\n1777",
    );
    for rt in BOTH {
        assert!(!c.scratch(rt, "data").join("new").exists(), "{rt}: wrote through a ro bind");
    }
}
