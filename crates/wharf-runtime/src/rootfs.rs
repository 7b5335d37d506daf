//! The container's filesystem, set up by its init inside the new mount namespace: root
//! propagation, the config's mounts, /dev, pivot_root (or MS_MOVE + chroot), a read-only
//! root, masked and read-only paths.

use crate::error::{Context, Result, RuntimeError};
use crate::mountinfo;
use crate::mounts::{self, Options};
use crate::util::secure_join;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::path::{Path, PathBuf};

const NONE: Option<&str> = None;

/// What the rootfs setup needs to know besides the config.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// The container has its own user namespace (mknod is not allowed: bind devices).
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The container's cgroup in each hierarchy its manager drives. Without a cgroup
    /// namespace these are what `/sys/fs/cgroup` shows: the init may not have been moved
    /// there yet while it builds the rootfs, so its own /proc/self/cgroup can be stale.
    pub cgroup_dirs: &'a [PathBuf],
}

fn mnt(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, dst, fstype, flags, data).ctx(|| {
        format!(
            "mounting {} on {} (type {}, flags {:?}, data {:?})",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            dst.display(),
            fstype.unwrap_or(""),
            flags,
            data.unwrap_or("")
        )
    })
}

/// Everything before pivot_root: propagation, the rootfs bind, the mounts and /dev.
pub fn prepare(ctx: &Ctx) -> Result<()> {
    let linux = ctx.spec.linux().as_ref().expect("checked by Bundle");
    let prop = match linux.rootfs_propagation() {
        Some(p) => mounts::propagation(p).ok_or_else(|| {
            RuntimeError::Config(format!("unknown linux.rootfsPropagation {p:?}"))
        })?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Our copy of the host's mounts must not propagate back to the host.
    mnt(None, Path::new("/"), NONE, prop, None)?;
    make_parent_private(ctx.rootfs)?;
    mnt(
        Some(ctx.rootfs),
        ctx.rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;

    let mut dev_is_bind = false;
    for m in ctx.spec.mounts().iter().flatten() {
        if m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("bind") {
            dev_is_bind = true;
        }
        mount_one(ctx, m)?;
    }
    if !dev_is_bind {
        create_devices(ctx, linux.devices().as_deref().unwrap_or(&[]))?;
        dev_symlinks(ctx.rootfs)?;
    }
    Ok(())
}

/// pivot_root needs the rootfs's parent mount not to be shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let entries = mountinfo::read_self();
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    if let Some(e) = mountinfo::containing(&entries, parent) {
        if e.optional.iter().any(|o| o.starts_with("shared:")) {
            mnt(None, &e.mount_point, NONE, MsFlags::MS_PRIVATE, None)?;
        }
    }
    Ok(())
}

fn mount_one(ctx: &Ctx, m: &Mount) -> Result<()> {
    let dest = secure_join(ctx.rootfs, m.destination())?;
    let o = mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if o.bind { "bind" } else { "none" });
    match typ {
        "bind" => bind_mount(ctx, m, &dest, &o),
        _ if o.bind => bind_mount(ctx, m, &dest, &o),
        "cgroup" | "cgroup2" => mount_cgroup(ctx, &dest, &o),
        _ => {
            if typ == "proc" || typ == "sysfs" {
                if let Ok(md) = std::fs::symlink_metadata(&dest) {
                    if !md.is_dir() {
                        return Err(RuntimeError::Config(format!(
                            "{} mount destination {} is not a directory",
                            typ,
                            m.destination().display()
                        )));
                    }
                }
            }
            std::fs::create_dir_all(&dest)
                .ctx(|| format!("creating mount point {}", dest.display()))?;
            let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
            let data = (!o.data.is_empty()).then_some(o.data.as_str());
            let r = mnt(Some(&src), &dest, Some(typ), o.flags, data);
            match r {
                // sysfs cannot be mounted without owning the network namespace: bind the
                // host's, as runc does.
                Err(RuntimeError::Sys {
                    source: nix::Error::EPERM,
                    ..
                }) if typ == "sysfs" => {
                    mnt(
                        Some(Path::new("/sys")),
                        &dest,
                        NONE,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )?;
                    remount_bind(&dest, &o, Path::new("/sys"))
                }
                r => r,
            }?;
            for p in &o.propagation {
                mnt(None, &dest, NONE, *p, None)?;
            }
            Ok(())
        }
    }
}

fn bind_mount(ctx: &Ctx, m: &Mount, dest: &Path, o: &Options) -> Result<()> {
    let src = m.source().clone().ok_or_else(|| {
        RuntimeError::Config(format!(
            "bind mount on {} has no source",
            m.destination().display()
        ))
    })?;
    let src = if src.is_absolute() {
        src
    } else {
        ctx.bundle.join(src)
    };
    let md = std::fs::metadata(&src).ctx(|| {
        format!(
            "bind mount source {} (for {})",
            src.display(),
            m.destination().display()
        )
    })?;
    if md.is_dir() {
        std::fs::create_dir_all(dest).ctx(|| format!("creating mount point {}", dest.display()))?;
    } else {
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).ctx(|| format!("creating {}", p.display()))?;
        }
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::File::create(dest)
                .ctx(|| format!("creating mount point {}", dest.display()))?;
        }
    }
    let mut flags = MsFlags::MS_BIND;
    if o.recursive {
        flags |= MsFlags::MS_REC;
    }
    mnt(Some(&src), dest, NONE, flags, None)?;
    remount_bind(dest, o, &src)?;
    for p in &o.propagation {
        mnt(None, dest, NONE, *p, None)?;
    }
    Ok(())
}

/// A bind mount ignores most flags: apply them with a remount, keeping the flags the kernel
/// locks on the source (in a user namespace they cannot be cleared).
fn remount_bind(dest: &Path, o: &Options, src: &Path) -> Result<()> {
    let wanted = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if wanted.is_empty() {
        return Ok(());
    }
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | wanted;
    if let Ok(st) = nix::sys::statvfs::statvfs(src) {
        use nix::sys::statvfs::FsFlags;
        let f = st.flags();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(fs) && !o.cleared.contains(ms) {
                flags |= ms;
            }
        }
    }
    mnt(None, dest, NONE, flags, None)
}

/// /sys/fs/cgroup in the container: cgroup2 on a unified host; on v1 (and hybrid) hosts a
/// tmpfs holding one mount per hierarchy. With a cgroup namespace the kernel roots those at
/// the container's cgroup; without one the container's own cgroup directories are bound.
fn mount_cgroup(ctx: &Ctx, dest: &Path, o: &Options) -> Result<()> {
    std::fs::create_dir_all(dest).ctx(|| format!("creating {}", dest.display()))?;
    let flags = o.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = o.flags.contains(MsFlags::MS_RDONLY);
    let entries = mountinfo::read_self();
    let unified = entries
        .iter()
        .any(|e| e.fstype == "cgroup2" && e.mount_point == Path::new("/sys/fs/cgroup"));
    let own = own_cgroups();
    if unified {
        if ctx.cgroupns {
            let ro_flag = if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            return mnt(
                Some(Path::new("cgroup2")),
                dest,
                Some("cgroup2"),
                flags | ro_flag,
                None,
            );
        }
        let src = container_cgroup(ctx, Path::new("/sys/fs/cgroup")).unwrap_or_else(|| {
            let path = own.get("").cloned().unwrap_or_default();
            Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
        });
        mnt(
            Some(&src),
            dest,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        if ro {
            mnt(
                None,
                dest,
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
                None,
            )?;
        }
        return Ok(());
    }
    mnt(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )?;
    for e in entries.iter().filter(|e| {
        (e.fstype == "cgroup" || e.fstype == "cgroup2")
            && e.mount_point.starts_with("/sys/fs/cgroup")
            && e.mount_point != Path::new("/sys/fs/cgroup")
    }) {
        let Some(name) = e.mount_point.file_name() else {
            continue;
        };
        let target = dest.join(name);
        std::fs::create_dir_all(&target).ctx(|| format!("creating {}", target.display()))?;
        let ro_flag = if ro {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        if ctx.cgroupns {
            let data: Vec<&str> = e
                .super_options
                .split(',')
                .filter(|s| *s != "rw" && *s != "ro")
                .collect();
            let data = data.join(",");
            mnt(
                Some(Path::new("cgroup")),
                &target,
                Some(&e.fstype),
                flags | ro_flag,
                (!data.is_empty()).then_some(data.as_str()),
            )?;
        } else {
            // The hierarchy's key in /proc/self/cgroup: its controllers, or "" for cgroup2.
            let key = if e.fstype == "cgroup2" {
                String::new()
            } else {
                e.super_options
                    .split(',')
                    .filter(|s| *s != "rw" && *s != "ro" && !s.starts_with("clone_children"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let src = container_cgroup(ctx, &e.mount_point).unwrap_or_else(|| {
                let sub = own.get(&key).cloned().unwrap_or_default();
                e.mount_point.join(sub.trim_start_matches('/'))
            });
            mnt(
                Some(&src),
                &target,
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            mnt(
                None,
                &target,
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | ro_flag,
                None,
            )?;
        }
        // "cpu" and "cpuacct" name the comounted "cpu,cpuacct".
        let n = name.to_string_lossy();
        if n.contains(',') {
            for part in n.split(',') {
                let link = dest.join(part);
                if std::fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(&*n, &link)
                        .ctx(|| format!("linking {}", link.display()))?;
                }
            }
        }
    }
    if ro {
        mnt(
            None,
            dest,
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// The container's cgroup directory in the hierarchy mounted at `mount_point`, when its
/// manager drives that hierarchy.
fn container_cgroup(ctx: &Ctx, mount_point: &Path) -> Option<PathBuf> {
    ctx.cgroup_dirs
        .iter()
        .find(|d| d.starts_with(mount_point))
        .cloned()
}

/// /proc/self/cgroup as a map from the controllers field ("" for cgroup2) to the path.
fn own_cgroups() -> std::collections::HashMap<String, String> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            let ctrl = it.next()?.to_string();
            Some((ctrl, it.next()?.to_string()))
        })
        .collect()
}

/// The devices every container gets, as the spec lists them.
fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

fn create_devices(ctx: &Ctx, devices: &[LinuxDevice]) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let r = (|| {
        for (path, major, minor) in default_devices() {
            if devices.iter().any(|d| d.path() == Path::new(path)) {
                continue;
            }
            make_device(
                ctx,
                Path::new(path),
                SFlag::S_IFCHR,
                major,
                minor,
                0o666,
                0,
                0,
            )?;
        }
        for d in devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(RuntimeError::Config(format!(
                        "device {}: type \"a\" is for the cgroup allow-list, not a node",
                        d.path().display()
                    )))
                }
            };
            make_device(
                ctx,
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    r
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &Ctx,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dest = secure_join(ctx.rootfs, path)?;
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p).ctx(|| format!("creating {}", p.display()))?;
    }
    let _ = std::fs::remove_file(&dest);
    if ctx.userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        std::fs::File::create(&dest).ctx(|| format!("creating {}", dest.display()))?;
        return mnt(Some(path), &dest, NONE, MsFlags::MS_BIND, None);
    }
    mknod(
        &dest,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        makedev(major, minor),
    )
    .ctx(|| format!("creating device {}", path.display()))?;
    nix::unistd::chown(
        &dest,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .ctx(|| format!("chown {}", path.display()))?;
    Ok(())
}

fn dev_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let l = dev.join(name);
        match std::os::unix::fs::symlink(target, &l) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("linking {}", l.display())),
        }
    }
    // /dev/ptmx is the container's own devpts instance's.
    let ptmx = dev.join("ptmx");
    let _ = std::fs::remove_file(&ptmx);
    std::os::unix::fs::symlink("pts/ptmx", &ptmx).ctx(|| "linking /dev/ptmx".into())?;
    Ok(())
}

/// Makes `rootfs` the root: pivot_root, detaching the old root; or, with `no_pivot`, or
/// when the kernel refuses pivot_root (EINVAL: a rootfs on the initramfs cannot be pivoted),
/// MS_MOVE and chroot.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        return move_root(rootfs);
    }
    match pivot(rootfs) {
        Err(RuntimeError::Sys {
            source: nix::Error::EINVAL,
            ..
        }) => {
            tracing::warn!(
                "pivot_root refused for {}: moving the root instead",
                rootfs.display()
            );
            move_root(rootfs)
        }
        r => r,
    }
}

fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mnt(Some(rootfs), Path::new("/"), NONE, MsFlags::MS_MOVE, None)?;
    nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

fn pivot(rootfs: &Path) -> Result<()> {
    let oldroot = std::fs::File::open("/").ctx(|| "opening /".into())?;
    let newroot = std::fs::File::open(rootfs).ctx(|| format!("opening {}", rootfs.display()))?;
    nix::unistd::fchdir(&newroot).ctx(|| "fchdir to the rootfs".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    // The old root is now stacked under "."; detach it without touching the host.
    nix::unistd::fchdir(&oldroot).ctx(|| "fchdir to the old root".into())?;
    mnt(
        None,
        Path::new("."),
        NONE,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After pivot: read-only root, masked and read-only paths, final propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("checked by Bundle");
    for p in linux.masked_paths().iter().flatten() {
        mask(Path::new(p))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly(Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        let mut keep = MsFlags::empty();
        if let Ok(st) = nix::sys::statvfs::statvfs("/") {
            use nix::sys::statvfs::FsFlags;
            for (fs, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            ] {
                if st.flags().contains(fs) {
                    keep |= ms;
                }
            }
        }
        mnt(None, Path::new("/"), NONE, flags | keep, None)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if let Some(f) = mounts::propagation(p) {
            mnt(None, Path::new("/"), NONE, f, None)?;
        }
    }
    Ok(())
}

fn mask(p: &Path) -> Result<()> {
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("masking {}", p.display())),
        Ok(md) if md.is_dir() => mnt(
            Some(Path::new("tmpfs")),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        ),
        Ok(_) => mnt(
            Some(Path::new("/dev/null")),
            p,
            NONE,
            MsFlags::MS_BIND,
            None,
        ),
    }
}

fn readonly(p: &Path) -> Result<()> {
    match mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
        Err(nix::Error::ENOENT) => return Ok(()),
        r => r.ctx(|| format!("binding read-only path {}", p.display()))?,
    }
    mnt(
        None,
        p,
        NONE,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None,
    )
}
