//! End-to-end: `docker build` (the docker CLI 28 with `DOCKER_BUILDKIT=0`, the classic build
//! API) against wharfd: the classic builder's stream, the images it makes, the cache (hits,
//! what invalidates it and what does not), multi-stage builds, failures that leave nothing
//! behind, and a wharfd killed in the middle of a step.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{stderr, stdout, Daemon, DOCKER};

/// `docker build` with the classic builder, in `dir`.
fn build(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    build_with(d, None, dir, args)
}

/// `docker [--config <cfg>] build` with the classic builder.
fn build_with(d: &Daemon, cfg: Option<&Path>, dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(DOCKER);
    if let Some(cfg) = cfg {
        c.arg("--config").arg(cfg);
    }
    c.arg("-H")
        .arg(d.host())
        .arg("build")
        .args(args)
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .expect("docker build")
}

fn build_ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let o = build(d, dir, args);
    assert!(
        o.status.success(),
        "docker build {args:?} failed: {}\n{}\n--- wharfd log ---\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
    stdout(&o)
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The id `Successfully built <id>` names.
fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' in:\n{out}"))
        .trim()
        .to_string()
}

/// What the build left in the data root: writable layers of steps, mounts under it.
fn leftovers(d: &Daemon) -> (Vec<String>, Vec<String>) {
    let data = d.dir.path().join("data");
    let rw: Vec<String> = std::fs::read_dir(data.join("layers/rw"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*data.to_string_lossy()))
        .map(String::from)
        .collect();
    (rw, mounts)
}

#[test]
fn a_dockerfile_builds_and_rebuilds_from_its_cache() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\n\
         ENV GREETING=hello\n\
         RUN echo \"made by $GREETING\" > /made && echo to-stderr >&2\n\
         COPY app/ /app/\n\
         WORKDIR /app\n\
         EXPOSE 8080\n\
         LABEL purpose=test\n\
         CMD [\"cat\", \"/app/main.txt\"]\n",
    );
    write(ctx.path(), "app/main.txt", "v1\n");
    write(ctx.path(), "unrelated.txt", "x\n");
    let out = build_ok(&d, ctx.path(), &["-t", "built:1"]);
    // The classic builder's stream.
    for want in [
        "Step 1/8 : FROM busybox",
        "Step 3/8 : RUN echo \"made by $GREETING\" > /made && echo to-stderr >&2",
        " ---> Running in ",
        "Removing intermediate container ",
        "Step 8/8 : CMD [\"cat\", \"/app/main.txt\"]",
        "Successfully tagged built:1",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("Using cache"), "{out}");
    let id = built_id(&out);
    // The image is what the Dockerfile says.
    assert_eq!(d.ok(&["run", "--rm", "built:1"]), "v1\n");
    assert_eq!(
        d.ok(&["run", "--rm", "built:1", "cat", "/made"]),
        "made by hello\n"
    );
    assert_eq!(d.ok(&["run", "--rm", "built:1", "pwd"]), "/app\n");
    let cfg = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}} {{.Config.Labels.purpose}} {{json .Config.Env}}",
        "built:1",
    ]);
    // The imported busybox has no PATH: the stage gets the default one, as with dockerd.
    assert_eq!(
        cfg.trim(),
        r#"{"8080/tcp":{}} test ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GREETING=hello"]"#
    );
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "built:1",
    ]);
    assert!(
        history.contains("/bin/sh -c #(nop)  ENV GREETING=hello"),
        "{history}"
    );
    // Nothing of the steps is left: no containers, writable layers or mounts.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(leftovers(&d), (vec![], vec![]));

    // A rebuild is all cache, to the same image.
    let again = build_ok(&d, ctx.path(), &["-t", "built:1"]);
    assert_eq!(again.matches(" ---> Using cache").count(), 7, "{again}");
    assert_eq!(built_id(&again), id);
    // A file the build does not copy changes nothing.
    write(ctx.path(), "unrelated.txt", "y\n");
    let unrelated = build_ok(&d, ctx.path(), &["-t", "built:1"]);
    assert_eq!(built_id(&unrelated), id, "{unrelated}");
    // A copied file re-runs its COPY and what follows, not what comes before.
    write(ctx.path(), "app/main.txt", "v2\n");
    let changed = build_ok(&d, ctx.path(), &["-t", "built:2"]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 2, "{changed}");
    assert_ne!(built_id(&changed), id);
    assert_eq!(d.ok(&["run", "--rm", "built:2"]), "v2\n");
    // --no-cache runs every step.
    let fresh = build_ok(&d, ctx.path(), &["--no-cache", "-t", "built:3"]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    // The cache survives a daemon restart.
    let mut d = d;
    d.stop();
    d.spawn();
    let restarted = build_ok(&d, ctx.path(), &["-t", "built:2"]);
    assert_eq!(
        restarted.matches(" ---> Using cache").count(),
        7,
        "{restarted}"
    );
    // The build cache shows in system df, and builder prune empties it.
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    let cache_line = df.lines().find(|l| l.starts_with("Build Cache")).unwrap();
    assert_ne!(cache_line, "Build Cache 0", "{df}");
    d.ok(&["builder", "prune", "-f"]);
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Build Cache 0"), "{df}");
    let pruned = build_ok(&d, ctx.path(), &["-t", "built:2"]);
    assert!(!pruned.contains("Using cache"), "{pruned}");
    assert_eq!(d.ok(&["run", "--rm", "built:2"]), "v2\n");
}

#[test]
fn a_failing_step_reports_its_exit_code_and_leaves_nothing() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo before\nRUN exit 3\nRUN echo never\n",
    );
    let o = build(&d, ctx.path(), &["-t", "fails"]);
    assert!(!o.status.success());
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        err.contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{out}\n{err}"
    );
    assert!(!out.contains("Step 4/4"), "{out}");
    // The failed step's container is kept (as dockerd keeps it without --force-rm).
    let kept = d.ok(&["ps", "-aq"]);
    assert_eq!(kept.lines().count(), 1, "{kept}");
    d.ok(&["rm", kept.trim()]);
    assert_eq!(leftovers(&d), (vec![], vec![]));
    assert!(d.docker(&["image", "inspect", "fails"]).status.code() != Some(0));
    // With --force-rm nothing is left.
    let o = build(&d, ctx.path(), &["--force-rm", "-t", "fails"]);
    assert!(!o.status.success());
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(leftovers(&d), (vec![], vec![]));
    // A Dockerfile error names the line.
    write(ctx.path(), "Dockerfile", "FROM busybox\nNOPE x\n");
    let o = build(&d, ctx.path(), &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 2: unknown instruction: NOPE"),
        "{}",
        stderr(&o)
    );
    // A missing source names it.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nCOPY missing.txt /\n",
    );
    let o = build(&d, ctx.path(), &[]);
    // Named with the file and line of the step.
    assert!(
        stderr(&o).contains("Dockerfile:2: COPY failed: file not found in build context")
            && stderr(&o).contains("missing.txt"),
        "{}",
        stderr(&o)
    );
    assert_eq!(leftovers(&d), (vec![], vec![]));
}

#[test]
fn multi_stage_builds_build_only_what_the_target_needs() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "ARG BASE=busybox\n\
         FROM $BASE AS maker\n\
         ARG WORD=default\n\
         RUN echo \"$WORD\" > /word\n\
         FROM busybox AS broken\n\
         RUN exit 1\n\
         FROM busybox\n\
         COPY --from=maker /word /copied\n\
         CMD [\"cat\", \"/copied\"]\n",
    );
    // `broken` is not needed by the last stage: it is not built.
    let out = build_ok(&d, ctx.path(), &["--build-arg", "WORD=given", "-t", "ms"]);
    assert!(!out.contains("exit 1"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "ms"]), "given\n");
    // --target stops at a stage.
    let out = build_ok(&d, ctx.path(), &["--target", "maker", "-t", "ms:maker"]);
    assert_eq!(
        d.ok(&["run", "--rm", "ms:maker", "cat", "/word"]),
        "default\n"
    );
    assert!(!out.contains("COPY --from"), "{out}");
    // An unused build arg is reported.
    let out = build_ok(&d, ctx.path(), &["--build-arg", "UNUSED=1", "-t", "ms"]);
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    let o = build(&d, ctx.path(), &["--target", "nosuch"]);
    assert!(
        stderr(&o).contains("failed to reach build target nosuch in Dockerfile"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn context_options_dockerignore_quiet_labels_and_add() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "build/Dockerfile.dev",
        "FROM busybox\n\
         COPY . /ctx/\n\
         ADD layer.tar.gz /unpacked/\n\
         COPY <<EOF /inline.txt\n\
         inline $HOME\n\
         EOF\n\
         RUN ls /ctx | sort | tr '\\n' ' ' > /listing\n",
    );
    write(ctx.path(), ".dockerignore", "secret*\n!secret-ok\n*.log\n");
    write(ctx.path(), "keep.txt", "k");
    write(ctx.path(), "secret.key", "no");
    write(ctx.path(), "secret-ok", "yes");
    write(ctx.path(), "debug.log", "no");
    // A gzip'd tar that ADD unpacks.
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "inner/file", "from the tar\n");
    let st = Command::new("tar")
        .args(["-czf"])
        .arg(ctx.path().join("layer.tar.gz"))
        .arg("-C")
        .arg(src.path())
        .arg("inner")
        .status()
        .unwrap();
    assert!(st.success());
    let out = build_ok(
        &d,
        ctx.path(),
        &[
            "-f",
            &ctx.path().join("build/Dockerfile.dev").to_string_lossy(),
            "-q",
            "--label",
            "from=cli",
            "-t",
            "opts",
        ],
    );
    // -q prints the image id alone.
    assert!(
        out.trim().starts_with("sha256:") && out.trim().lines().count() == 1,
        "{out}"
    );
    let listing = d.ok(&["run", "--rm", "opts", "cat", "/listing"]);
    assert_eq!(listing, "build keep.txt layer.tar.gz secret-ok ");
    assert_eq!(
        d.ok(&["run", "--rm", "opts", "cat", "/unpacked/inner/file"]),
        "from the tar\n"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "opts", "cat", "/inline.txt"]),
        "inline \n"
    );
    let label = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.from}}",
        "opts",
    ]);
    assert_eq!(label.trim(), "cli");
}

#[test]
fn a_daemon_killed_during_a_step_leaves_nothing_after_restart() {
    require_env!();
    let mut d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", "FROM busybox\nRUN sleep 30\n");
    let mut child = Command::new(DOCKER)
        .arg("-H")
        .arg(d.host())
        .args(["build", "-t", "killed"])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::eventually("the step's container running", || {
        !d.ok(&["ps", "-q"]).trim().is_empty()
    });
    d.kill9();
    let _ = child.wait();
    d.spawn();
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let (rw, mounts) = leftovers(&d);
    assert!(rw.is_empty(), "writable layers left: {rw:?}");
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    let tmp = d.dir.path().join("data/build/tmp");
    assert!(!tmp.exists() || std::fs::read_dir(&tmp).unwrap().next().is_none());
    assert!(d.docker(&["image", "inspect", "killed"]).status.code() != Some(0));
    // And a build works after it.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo ok > /ok\n",
    );
    build_ok(&d, ctx.path(), &["-t", "after"]);
    assert_eq!(d.ok(&["run", "--rm", "after", "cat", "/ok"]), "ok\n");
}

#[test]
fn add_downloads_urls_and_run_steps_get_the_requested_host_settings() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    // A file served on loopback (the daemon runs in the host's network namespace).
    let served = tempfile::tempdir().unwrap();
    write(served.path(), "data.txt", "downloaded\n");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(served.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(&mut server);
    common::eventually("the http server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("http://127.0.0.1:{port}/data.txt");
    // sha256 of "downloaded\n".
    let sum = {
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(b"downloaded\n"))
        )
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             ADD {url} /dl/\n\
             ADD --checksum={sum} {url} /checked.txt\n\
             RUN stat -c %a /dl/data.txt > /mode && grep -c '^10.9.8.7[[:space:]]*extra.example' /etc/hosts > /hosts && df -k /dev/shm | tail -1 | awk '{{print $2}}' > /shm\n"
        ),
    );
    build_ok(
        &d,
        ctx.path(),
        &[
            "--add-host",
            "extra.example:10.9.8.7",
            "--shm-size",
            "32m",
            "-t",
            "urls",
        ],
    );
    let cat = |f: &str| d.ok(&["run", "--rm", "urls", "cat", f]);
    assert_eq!(cat("/dl/data.txt"), "downloaded\n");
    assert_eq!(cat("/checked.txt"), "downloaded\n");
    assert_eq!(cat("/mode"), "600\n");
    assert_eq!(cat("/hosts"), "1\n");
    assert_eq!(cat("/shm"), "32768\n");
    // A wrong checksum fails the step, naming both digests.
    write(
        ctx.path(),
        "Dockerfile",
        &format!(
            "FROM busybox\nADD --checksum=sha256:{} {url} /x\n",
            "0".repeat(64)
        ),
    );
    let o = build(&d, ctx.path(), &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("has digest {sum}")),
        "{}",
        stderr(&o)
    );
    // A URL that answers 404 names the status.
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox\nADD http://127.0.0.1:{port}/nope /x\n"),
    );
    let o = build(&d, ctx.path(), &[]);
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
}

#[test]
fn run_mounts_bind_from_stages_and_context_cache_and_tmpfs() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "keep.txt", "kept\n");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS tools\n\
         RUN mkdir /t && echo tool > /t/x\n\
         FROM busybox\n\
         RUN --mount=type=bind,from=tools,source=/t,target=/mnt/t cat /mnt/t/x > /got\n\
         RUN --mount=type=bind,source=.,target=/ctx,rw echo scribble > /ctx/new && cat /ctx/keep.txt > /kept\n\
         RUN --mount=type=bind,target=/ro sh -c 'echo x > /ro/f' 2>/dev/null; test ! -e /ro/f && echo refused > /ro-write\n\
         RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log | tr -d ' ' > /count\n\
         RUN --mount=type=tmpfs,target=/scratch touch /scratch/f && ls /scratch > /tmpls\n\
         COPY . /c/\n",
    );
    build_ok(&d, ctx.path(), &["-t", "mounts"]);
    let cat = |f: &str| d.ok(&["run", "--rm", "mounts", "cat", f]);
    assert_eq!(cat("/got"), "tool\n");
    assert_eq!(cat("/kept"), "kept\n");
    assert_eq!(cat("/ro-write"), "refused\n");
    assert_eq!(cat("/count"), "1\n");
    assert_eq!(cat("/tmpls"), "f\n");
    // Writes to a writable bind of the context are discarded: the context is as sent.
    let listing = d.ok(&["run", "--rm", "mounts", "ls", "/c"]);
    assert_eq!(listing, "Dockerfile\nkeep.txt\n");
    // What a tmpfs held is not in the image, nor the mount point the step made for it (as
    // BuildKit removes its mount stubs).
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "mounts",
            "sh",
            "-c",
            "test ! -e /scratch && echo gone"
        ]),
        "gone\n"
    );
    // The cache directory outlives the build.
    build_ok(&d, ctx.path(), &["--no-cache", "-t", "mounts"]);
    assert_eq!(cat("/count"), "2\n");
    assert_eq!(leftovers(&d), (vec![], vec![]));
}

#[test]
fn from_images_of_a_private_registry_pull_with_x_registry_config() {
    require_env!();
    let Some(reg) = common::LocalRegistry::start_with(common::RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let cfg = tempfile::tempdir().unwrap();
    let name = format!("{}/team/base:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    let login = Command::new(DOCKER)
        .arg("--config")
        .arg(cfg.path())
        .args([
            "-H",
            &d.host(),
            "login",
            &reg.addr,
            "-u",
            "alice",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"s3cret\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(login.status.success(), "{}", stderr(&login));
    let push = Command::new(DOCKER)
        .arg("--config")
        .arg(cfg.path())
        .args(["-H", &d.host(), "push", &name])
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", stderr(&push));
    d.ok(&["rmi", &name]);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM {name}\nRUN echo pulled > /p\n"),
    );
    // Without the credentials: the registry's refusal.
    let anon = tempfile::tempdir().unwrap();
    let o = build_with(&d, Some(anon.path()), ctx.path(), &["-t", "private"]);
    assert!(!o.status.success());
    let t = stderr(&o);
    assert!(
        t.contains("401") || t.contains("unauthorized") || t.contains("authentication"),
        "{t}"
    );
    // With them (the CLI sends every stored auth as X-Registry-Config): pulled and built.
    let o = build_with(&d, Some(cfg.path()), ctx.path(), &["-t", "private"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(d.ok(&["run", "--rm", "private", "cat", "/p"]), "pulled\n");
    d.ok(&["image", "inspect", &name]);
}

scenario!(
    add_unpacks_every_compression_and_copies_other_compressed_files,
    wharfd,
    dockerd_netns
);

/// ADD unpacks a local tar compressed with gzip, bzip2, xz or zstd (what moby's
/// DecompressStream reads; moby 20.10 has no zstd), and copies a compressed file that is no
/// tar as it is; the same Dockerfile on dockerd's classic builder gives the same files.
fn add_unpacks_every_compression_and_copies_other_compressed_files(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "inner/file", "from the tar\n");
    let tar = ctx.path().join("t.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(src.path())
        .arg("inner")
        .status()
        .unwrap();
    assert!(st.success());
    let mut dockerfile = String::from("FROM busybox\n");
    for (tool, ext) in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        let out = ctx.path().join(format!("t.tar.{ext}"));
        let o = Command::new(tool).arg("-c").arg(&tar).output().unwrap();
        assert!(o.status.success(), "{tool}");
        std::fs::write(&out, o.stdout).unwrap();
        dockerfile.push_str(&format!("ADD t.tar.{ext} /x-{ext}/\n"));
    }
    write(ctx.path(), "note.txt", "just text\n");
    let o = Command::new("gzip")
        .arg("-c")
        .arg(ctx.path().join("note.txt"))
        .output()
        .unwrap();
    std::fs::write(ctx.path().join("note.txt.gz"), o.stdout).unwrap();
    dockerfile.push_str("ADD note.txt.gz /n/\n");
    write(ctx.path(), "Dockerfile", &dockerfile);
    build_ok(&d, ctx.path(), &["-t", "adds"]);
    let run = |cmd: &str| d.ok(&["run", "--rm", "--network", "none", "adds", "sh", "-c", cmd]);
    assert_eq!(
        run("cat /x-gz/inner/file /x-bz2/inner/file /x-xz/inner/file"),
        "from the tar\n".repeat(3)
    );
    // zstd: unpacked since moby 23 (dockerd 20.10 copies the file).
    let zst = if place == common::Place::DockerdNetns {
        "t.tar.zst\n"
    } else {
        "inner\n"
    };
    assert_eq!(run("ls /x-zst"), zst);
    assert_eq!(
        run("ls /n; gunzip -c /n/note.txt.gz"),
        "note.txt.gz\njust text\n"
    );
}

/// `COPY --link`: the copied layer does not depend on what is below it: built on another
/// base, the step reuses the layer made before (the same diff id, no copy run), and the
/// image works on its new base.
#[test]
fn copy_link_reuses_its_layer_on_a_new_base() {
    require_env!();
    let d = Daemon::start();
    d.busybox_and_child();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "app/main.txt", "the app\n");
    let df = |base: &str| format!("FROM {base}\nCOPY --link app/ /opt/app/\n");
    write(ctx.path(), "Dockerfile", &df("busybox"));
    build_ok(&d, ctx.path(), &["-t", "linked:a"]);
    write(ctx.path(), "Dockerfile", &df("child:1"));
    let out = build_ok(&d, ctx.path(), &["-t", "linked:b"]);
    assert!(out.contains(" ---> Using cache"), "{out}");
    let last = |img: &str| {
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{range .RootFS.Layers}}{{println .}}{{end}}",
            img,
        ])
        .lines()
        .last()
        .unwrap()
        .to_string()
    };
    assert_eq!(last("linked:a"), last("linked:b"));
    for img in ["linked:a", "linked:b"] {
        assert_eq!(
            d.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                img,
                "cat",
                "/opt/app/main.txt"
            ]),
            "the app\n"
        );
    }
    // The child's own file is there under the linked layer.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "linked:b",
            "sh",
            "-c",
            "test -s /blob && echo base"
        ]),
        "base\n"
    );
}

/// A RUN step is confined as `docker run` is: the same capabilities, seccomp mode and
/// no_new_privs, its own namespaces (with `--network none` only a loopback), and the
/// container's exited process is gone once the build has ended.
#[test]
fn a_run_step_is_confined_as_a_run_container_is() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    let probe = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
                 ls /sys/class/net; for n in pid mnt net; do readlink /proc/self/ns/$n; done";
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox\nRUN ({probe}) > /probe\n"),
    );
    build_ok(&d, ctx.path(), &["--network", "none", "-t", "probe"]);
    let step = d.ok(&["run", "--rm", "probe", "cat", "/probe"]);
    let run = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    let host_ns: Vec<String> = ["pid", "mnt", "net"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/self/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let (step_lines, run_lines): (Vec<&str>, Vec<&str>) =
        (step.lines().collect(), run.lines().collect());
    assert_eq!(step_lines.len(), run_lines.len(), "{step}\n---\n{run}");
    for (s, r) in step_lines.iter().zip(&run_lines) {
        if s.contains(":[") {
            // A namespace: the step's own, not the host's (nor the same as another container's).
            assert!(
                !host_ns.iter().any(|h| h == s),
                "the step shares the host's {s}"
            );
        } else {
            assert_eq!(
                s, r,
                "RUN step (left) and run (right) differ:\n{step}\n---\n{run}"
            );
        }
    }
    assert!(step.contains("Seccomp:\t2"), "{step}");
    assert_eq!(
        step.lines()
            .filter(|l| !l.contains(':'))
            .collect::<Vec<_>>(),
        ["lo"]
    );
    let (rw, mounts) = leftovers(&d);
    assert!(rw.is_empty() && mounts.is_empty(), "{rw:?} {mounts:?}");
}

scenario!(
    rm_false_keeps_step_containers_and_forcerm_removes_failed_ones,
    wharfd,
    dockerd_netns
);

/// The exited containers of a daemon: `(status, command)` of each, sorted.
fn containers(d: &Daemon) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = d
        .ok(&[
            "ps",
            "-a",
            "--no-trunc",
            // The RUN steps' (dockerd also makes a container for ENV and the other
            // config-only steps, created and never started; wharfd makes none).
            "--filter",
            "status=exited",
            "--format",
            "{{.Status}}\t{{.Command}}",
        ])
        .lines()
        .map(|l| {
            let (st, cmd) = l.split_once('\t').unwrap();
            // "Exited (3) 2 seconds ago": the state and code, not the time.
            let st = st.split(')').next().unwrap_or(st).to_string() + ")";
            (st, cmd.trim_matches('"').to_string())
        })
        .collect();
    v.sort();
    v
}

fn remove_all(d: &Daemon) {
    for id in d.ok(&["ps", "-aq"]).split_whitespace() {
        d.ok(&["rm", "-f", id]);
    }
}

/// `--rm=false` keeps every RUN step's container (stopped, with what the step wrote); by
/// default only a failed step's container is kept; `--force-rm` removes that one too. The
/// same on dockerd's classic builder.
fn rm_false_keeps_step_containers_and_forcerm_removes_failed_ones(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo one > /one\nENV X=1\nRUN echo two > /two\n",
    );
    let out = build_ok(&d, ctx.path(), &["--rm=false", "-t", "kept"]);
    assert!(!out.contains("Removing intermediate container"), "{out}");
    let got = containers(&d);
    assert_eq!(
        got,
        [
            (
                "Exited (0)".to_string(),
                "/bin/sh -c 'echo one > /one'".to_string()
            ),
            (
                "Exited (0)".to_string(),
                "/bin/sh -c 'echo two > /two'".to_string()
            ),
        ],
        "{out}"
    );
    // A kept container holds what its step wrote, and can be committed.
    let ids = d.ok(&["ps", "-aq", "--filter", "status=exited"]);
    let diffs: String = ids
        .split_whitespace()
        .map(|id| d.ok(&["diff", id]))
        .collect();
    assert!(
        diffs.contains("A /one") && diffs.contains("A /two"),
        "{diffs}"
    );
    if place != common::Place::DockerdNetns {
        // Not the build's any more: a restart leaves them.
        let mut d2 = d;
        d2.stop();
        d2.spawn();
        assert_eq!(containers(&d2).len(), 2);
        remove_all(&d2);
        assert_eq!(leftovers(&d2), (vec![], vec![]));
        return rm_default_and_forcerm(d2, ctx.path());
    }
    remove_all(&d);
    rm_default_and_forcerm(d, ctx.path());
}

fn rm_default_and_forcerm(d: Daemon, ctx: &Path) {
    write(
        ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo ok > /ok\nRUN echo failing && exit 3\n",
    );
    // By default: the successful step's container goes, the failed one stays.
    let o = build(&d, ctx, &["--no-cache", "-t", "failed"]);
    assert!(!o.status.success());
    assert_eq!(
        stdout(&o)
            .matches("Removing intermediate container")
            .count(),
        1,
        "{}",
        stdout(&o)
    );
    assert_eq!(
        containers(&d),
        [(
            "Exited (3)".to_string(),
            "/bin/sh -c 'echo failing && exit 3'".to_string()
        )]
    );
    remove_all(&d);
    // --force-rm: both go, the failed one after its failure.
    let o = build(&d, ctx, &["--no-cache", "--force-rm", "-t", "failed"]);
    assert!(!o.status.success());
    assert_eq!(
        stdout(&o)
            .matches("Removing intermediate container")
            .count(),
        2,
        "{}",
        stdout(&o)
    );
    assert_eq!(containers(&d), []);
}

scenario!(
    cache_from_a_loaded_image_reuses_its_steps,
    wharfd,
    dockerd_netns
);

/// `--cache-from`: an image built, saved, removed with its build cache and loaded again
/// gives its steps to a build that names it (` ---> Using cache`, the same image); a build
/// that does not name it runs every step.
fn cache_from_a_loaded_image_reuses_its_steps(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "app.txt", "the app\n");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo built > /built\nCOPY app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n",
    );
    let first = built_id(&build_ok(&d, ctx.path(), &["-t", "cached:1"]));
    let saved = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let o = d.docker(&["save", "-o", &saved.to_string_lossy(), "cached:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    d.ok(&["rmi", "cached:1"]);
    d.ok(&["builder", "prune", "-af"]);
    // Nothing of the build is left to hit.
    assert!(d.docker(&["image", "inspect", &first]).status.code() != Some(0));
    let o = d.docker(&["load", "-i", &saved.to_string_lossy()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let with = build_ok(
        &d,
        ctx.path(),
        &["--cache-from", "cached:1", "-t", "cached:2"],
    );
    assert_eq!(with.matches(" ---> Using cache").count(), 3, "{with}");
    assert_eq!(built_id(&with), first);
    assert_eq!(d.ok(&["run", "--rm", "cached:2"]), "the app\n");
    // Without it: the loaded image's steps are not this daemon's cache.
    let without = build_ok(&d, ctx.path(), &["-t", "cached:3"]);
    assert!(!without.contains("Using cache"), "{without}");
}

/// What an image is, as `docker inspect` and a container of it show: the config fields the
/// instructions set, and the owner, group, mode and kind of `files` (and their text).
fn image_facts(d: &Daemon, image: &str, files: &[&str]) -> (String, String) {
    let cfg = d.ok(&[
        "image",
        "inspect",
        "--format",
        "Shell={{json .Config.Shell}}\nUser={{json .Config.User}}\n\
         Entrypoint={{json .Config.Entrypoint}}\nCmd={{json .Config.Cmd}}\n\
         Volumes={{json .Config.Volumes}}\nOnBuild={{json .Config.OnBuild}}\n\
         Healthcheck={{json .Config.Healthcheck}}\nStopSignal={{json .Config.StopSignal}}\n\
         WorkingDir={{json .Config.WorkingDir}}\nEnv={{json .Config.Env}}\n\
         ExposedPorts={{json .Config.ExposedPorts}}",
        image,
    ]);
    let script = format!(
        "for f in {}; do if [ -e $f ]; then stat -c '%n %u:%g %a %F' $f; \
         if [ -f $f ]; then cat $f; fi; else echo \"$f missing\"; fi; done",
        files.join(" ")
    );
    let fs = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "0",
        "--entrypoint",
        "sh",
        image,
        "-c",
        &script,
    ]);
    (cfg, fs)
}

/// The instructions the classic builder knows, built by wharfd and by dockerd's classic
/// builder from the same Dockerfiles: the same image config (SHELL, USER, ENTRYPOINT and
/// CMD, VOLUME, ONBUILD, HEALTHCHECK, STOPSIGNAL, WORKDIR) and the same files (COPY/ADD
/// `--chown` by name and number, the `escape` directive, what RUN writes under a VOLUME);
/// a child build runs the ONBUILD triggers, and its ENTRYPOINT resets the parent's CMD.
#[test]
fn instructions_make_the_image_dockerd_makes() {
    require_env!();
    let w = Daemon::start();
    let Some(dd) = Daemon::launch(common::Place::DockerdNetns, None) else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(c, "f.txt", "file\n");
    write(c, "d/x.sh", "#!/bin/sh\n");
    write(c, "d/sub/g.txt", "g\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str, m: u32| {
            std::fs::set_permissions(c.join(p), std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode("d/x.sh", 0o755);
        mode("d/sub/g.txt", 0o640);
        mode("d/sub", 0o750);
    }
    write(
        c,
        "Dockerfile",
        "# escape=`\n\
         FROM busybox\n\
         SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
         RUN echo C:\\dir\\file > /escaped.txt && echo one `\n    two > /continued.txt\n\
         COPY --chown=nobody:nogroup f.txt /named.txt\n\
         COPY --chown=1234:5678 d/ /numeric/\n\
         ADD --chown=1234 f.txt /added/\n\
         RUN mkdir -p /data && echo before > /data/before\n\
         VOLUME /data /logs\n\
         VOLUME [\"/json-vol\"]\n\
         RUN echo after > /data/after && echo inlog > /logs/x\n\
         HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD test -e /named.txt\n\
         STOPSIGNAL SIGUSR1\n\
         EXPOSE 80/udp 8080\n\
         ONBUILD RUN echo triggered > /tmp/onbuild.txt\n\
         ONBUILD COPY f.txt /tmp/from-onbuild.txt\n\
         ENTRYPOINT [\"/bin/echo\", \"ep\"]\n\
         CMD [\"default\"]\n\
         USER nobody:nogroup\n\
         WORKDIR /home/w\n\
         ENV PATH=/custom:/bin:$PATH\n",
    );
    write(
        c,
        "child.Dockerfile",
        "FROM parent\nENTRYPOINT [\"/bin/cat\"]\nRUN id -u > /tmp/id\n",
    );
    write(
        c,
        "shellform.Dockerfile",
        "FROM busybox\nSHELL [\"/bin/sh\", \"-x\", \"-c\"]\nCMD echo shell form\n\
         HEALTHCHECK NONE\nENTRYPOINT exec echo ep\nUSER 1234\n",
    );
    let files = [
        "/escaped.txt",
        "/continued.txt",
        "/named.txt",
        "/numeric",
        "/numeric/x.sh",
        "/numeric/sub",
        "/numeric/sub/g.txt",
        "/added",
        "/added/f.txt",
        "/data",
        "/data/before",
        "/data/after",
        "/logs",
        "/logs/x",
        "/json-vol",
        "/home/w",
    ];
    let child_files = ["/tmp/onbuild.txt", "/tmp/from-onbuild.txt", "/tmp/id"];
    let (child_df, shell_df) = (c.join("child.Dockerfile"), c.join("shellform.Dockerfile"));
    let mut got = Vec::new();
    for d in [&w, &dd] {
        d.busybox();
        build_ok(d, c, &["-t", "parent"]);
        let child = build_ok(d, c, &["-f", &child_df.to_string_lossy(), "-t", "child"]);
        build_ok(
            d,
            c,
            &["-f", &shell_df.to_string_lossy(), "-t", "shellform"],
        );
        got.push((
            image_facts(d, "parent", &files),
            image_facts(d, "child", &child_files),
            image_facts(d, "shellform", &[]),
            child.contains("# Executing 2 build triggers"),
        ));
    }
    let (wharf, dockerd) = (&got[0], &got[1]);
    assert_eq!(
        wharf.0 .0, dockerd.0 .0,
        "parent config: wharfd, then dockerd"
    );
    assert_eq!(
        wharf.0 .1, dockerd.0 .1,
        "parent files: wharfd, then dockerd"
    );
    assert_eq!(
        wharf.1 .0, dockerd.1 .0,
        "child config: wharfd, then dockerd"
    );
    assert_eq!(
        wharf.1 .1, dockerd.1 .1,
        "child files: wharfd, then dockerd"
    );
    assert_eq!(
        wharf.2 .0, dockerd.2 .0,
        "shell forms: wharfd, then dockerd"
    );
    assert_eq!(wharf.3, dockerd.3, "the triggers' note");
    // Not vacuous: what the Dockerfiles set is there.
    assert!(
        wharf.0 .0.contains("StopSignal=\"SIGUSR1\""),
        "{}",
        wharf.0 .0
    );
    assert!(
        wharf.1 .1.contains("/tmp/onbuild.txt 65534:65534"),
        "{}",
        wharf.1 .1
    );
}

/// What the classic builder lacks, as BuildKit documents it (the Dockerfile reference):
/// `COPY --chmod` (octal, files and the directories copied), `--parents` (the sources' paths
/// kept under the destination, from a `/./` pivot when there is one), `--exclude` (patterns
/// left out of the copy), `RUN --network=none|host|default` (only a loopback; the daemon's
/// namespace; the build's network) and `RUN <<EOF` scripts.
#[test]
fn buildkit_flags_copy_and_run_as_documented() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(c, "f.txt", "file\n");
    write(c, "x/a.txt", "xa\n");
    write(c, "y/a.txt", "ya\n");
    write(c, "base/deep/b.txt", "b\n");
    write(c, "base/deep/c.md", "c\n");
    write(c, "tree/keep.txt", "keep\n");
    write(c, "tree/drop.log", "drop\n");
    write(c, "tree/skip/inner.txt", "skipped\n");
    write(c, "tree/sub/also.log", "drop\n");
    write(c, "tree/sub/kept.txt", "kept\n");
    write(
        c,
        "Dockerfile",
        "FROM busybox\n\
         COPY --chmod=751 f.txt /chmod.txt\n\
         COPY --chmod=640 x/ /chmod-dir/\n\
         COPY --parents x/a.txt y/a.txt /parents/\n\
         COPY --parents ./base/./deep/*.txt /pivot/\n\
         COPY x/a.txt /no-parents/\n\
         COPY --exclude=**/*.log --exclude=skip tree/ /excluded/\n\
         RUN --network=none ls /sys/class/net > /net-none\n\
         RUN --network=host readlink /proc/self/ns/net > /net-host\n\
         RUN --network=default ls /sys/class/net > /net-default\n\
         RUN <<EOF\n\
         echo heredoc > /heredoc.txt\n\
         echo \"$((1 + 2))\" >> /heredoc.txt\n\
         EOF\n",
    );
    build_ok(&d, c, &["-t", "bk"]);
    let sh = |cmd: &str| d.ok(&["run", "--rm", "--network", "none", "bk", "sh", "-c", cmd]);
    assert_eq!(
        sh("stat -c '%n %a' /chmod.txt /chmod-dir/a.txt"),
        "/chmod.txt 751\n/chmod-dir/a.txt 640\n"
    );
    assert_eq!(
        sh("cd /parents && find . -type f | sort && cat x/a.txt y/a.txt"),
        "./x/a.txt\n./y/a.txt\nxa\nya\n"
    );
    assert_eq!(
        sh("cd /pivot && find . | sort"),
        ".\n./deep\n./deep/b.txt\n"
    );
    assert_eq!(sh("ls /no-parents"), "a.txt\n");
    assert_eq!(
        sh("cd /excluded && find . -type f | sort"),
        "./keep.txt\n./sub/kept.txt\n"
    );
    assert_eq!(sh("cat /net-none"), "lo\n");
    let host_ns = d.host_run("readlink", &["/proc/self/ns/net"]);
    assert_eq!(sh("cat /net-host"), host_ns);
    let default = sh("cat /net-default");
    assert!(
        default.lines().any(|l| l == "eth0") && default.lines().any(|l| l == "lo"),
        "{default}"
    );
    assert_eq!(sh("cat /heredoc.txt"), "heredoc\n3\n");
}

/// The cgroup limits and ulimits a process sees (cgroup v1 or v2), one `file value` a line.
const LIMITS_PROBE: &str = "for f in cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us \
     cpuset/cpuset.cpus cpuset/cpuset.mems memory/memory.limit_in_bytes \
     memory/memory.memsw.limit_in_bytes cpu.max cpu.weight cpuset.cpus cpuset.mems memory.max \
     memory.swap.max; do [ -r /sys/fs/cgroup/$f ] && echo \"$f $(cat /sys/fs/cgroup/$f)\"; \
     done; echo \"nofile $(ulimit -n)\"";

/// The resource flags of `docker build` (`memory`, `memswap`, `cpushares`, `cpuperiod`,
/// `cpuquota`, `cpusetcpus`, `cpusetmems`, `ulimits`) limit the RUN steps as the same
/// flags limit a `docker run` container.
#[test]
fn run_steps_get_the_builds_resource_limits() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox\nRUN ({LIMITS_PROBE}) > /limits\n"),
    );
    let flags = [
        "-m",
        "256m",
        "--memory-swap",
        "512m",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--ulimit",
        "nofile=1234:2345",
    ];
    let mut args = flags.to_vec();
    args.extend(["-t", "limited"]);
    build_ok(&d, ctx.path(), &args);
    let step = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "limited",
        "cat",
        "/limits",
    ]);
    let mut run = vec!["run", "--rm", "--network", "none"];
    run.extend(flags);
    run.extend(["busybox", "sh", "-c", LIMITS_PROBE]);
    assert_eq!(step, d.ok(&run));
    // Not vacuous: the limits are there, and a build without them has none of them.
    assert!(step.contains("nofile 1234"), "{step}");
    assert!(
        step.contains("cpu.cfs_quota_us 50000") || step.contains("cpu.max 50000 100000"),
        "{step}"
    );
    let plain = build_ok(&d, ctx.path(), &["--no-cache", "-t", "unlimited"]);
    let _ = plain;
    let free = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "unlimited",
        "cat",
        "/limits",
    ]);
    assert_ne!(free, step);
}

/// `--pull`: the FROM image is pulled even when it is local (the registry's newer one is
/// used); without it the local one is.
#[test]
fn pull_refreshes_a_local_from_image() {
    require_env!();
    let Some(reg) = common::LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox_and_child();
    let name = format!("{}/pull/base:1", reg.addr);
    // The registry has child:1 under the name; the daemon has busybox under it.
    d.ok(&["tag", "child:1", &name]);
    d.ok(&["push", &name]);
    d.ok(&["tag", "busybox", &name]);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM {name}\nRUN (test -e /blob && echo registry || echo local) > /from\n"),
    );
    build_ok(&d, ctx.path(), &["-t", "local-base"]);
    let from = |img: &str| d.ok(&["run", "--rm", "--network", "none", img, "cat", "/from"]);
    assert_eq!(from("local-base"), "local\n");
    build_ok(&d, ctx.path(), &["--pull", "-t", "pulled-base"]);
    assert_eq!(from("pulled-base"), "registry\n");
}

/// `--platform`: the build's platform is the automatic `TARGET*` ARGs' (BuildKit's rule), and
/// a FROM image of another platform is not taken for it.
#[test]
fn platform_sets_the_target_args() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nARG TARGETPLATFORM\nARG TARGETARCH\nRUN echo \"$TARGETPLATFORM $TARGETARCH\" > /p\n",
    );
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let platform = format!("linux/{host}");
    build_ok(&d, ctx.path(), &["--platform", &platform, "-t", "plat"]);
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "plat", "cat", "/p"]),
        format!("{platform} {host}\n")
    );
    let other = if host == "s390x" {
        "linux/ppc64le"
    } else {
        "linux/s390x"
    };
    let o = build(&d, ctx.path(), &["--platform", other, "-t", "plat-other"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!(
            "does not match the specified platform: wanted {other}, actual: {platform}"
        )),
        "{}",
        stderr(&o)
    );
}

/// The classic parameters wharfd cannot honour are refused by name, not ignored:
/// `isolation` other than default, `cgroupparent`; `ulimits` are honoured (see above).
#[test]
fn unsupported_build_parameters_are_refused() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", "FROM busybox\nRUN true\n");
    for (flags, want) in [
        (
            &["--isolation", "hyperv"][..],
            "isolation \"hyperv\" is not supported",
        ),
        (
            &["--cgroup-parent", "elsewhere"][..],
            "cgroupparent \"elsewhere\" is not supported",
        ),
    ] {
        let o = build(&d, ctx.path(), flags);
        assert!(!o.status.success(), "{flags:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{flags:?}: {}", stderr(&o));
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}
