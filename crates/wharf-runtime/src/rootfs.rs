//! The container's filesystem, set up by its init inside the new mount namespace: root
//! propagation, the config's mounts, /dev, pivot_root (or MS_MOVE + chroot), a read-only
//! root, masked and read-only paths.
//!
//! Mount points, device nodes and /dev links are resolved by the kernel inside the rootfs
//! and used as descriptors (`inroot`): a destination swapped for a symlink while the mounts
//! are made (through a volume another container shares, CVE-2021-30465) still lands inside
//! the root. Binds are cloned trees given their flags before they are attached
//! (`open_tree`, `mount_setattr`, `move_mount`), so no remount acts on a path afterwards.
//! Recursive options (`rro`, `rnosuid`, ...) are `mount_setattr` with `AT_RECURSIVE`. A
//! read-only tmpfs (and /dev) is mounted writable and made read-only last, after the devices
//! and /dev/console are in it. In a user namespace of their own, binds are made from sources
//! opened before it was entered (see `init::SourceOpener`).

use crate::error::{Context, Result, RuntimeError};
use crate::inroot::{self, MountAttr};
use crate::mountinfo;
use crate::mounts::{self, Options};
use crate::util::secure_join;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    /// Bind sources opened (`O_PATH`) before the init entered its user namespace, by the
    /// index of their mount in the config: in it they may be out of its reach.
    pub sources: &'a [(usize, OwnedFd)],
}

/// The sources of the config's bind mounts, by the index of their mount, as paths of the
/// runtime's (relative ones are the bundle's).
pub fn bind_sources(spec: &Spec, bundle: &Path) -> Vec<(usize, PathBuf)> {
    spec.mounts()
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, m)| {
            let o = mounts::parse(m.options().as_deref().unwrap_or(&[]));
            let bind = o.bind || m.typ().as_deref() == Some("bind");
            let src = m.source().as_ref().filter(|_| bind)?;
            Some((i, bundle.join(src)))
        })
        .collect()
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
    // Opened after the bind, so that it is the bind's root: every mount point below is
    // resolved from this descriptor.
    let root = nix::fcntl::open(
        ctx.rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening the rootfs {}", ctx.rootfs.display()))?;

    let mut dev_is_bind = false;
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        if m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("bind") {
            dev_is_bind = true;
        }
        mount_one(ctx, &root, m, i)?;
    }
    if !dev_is_bind {
        create_devices(ctx, &root, linux.devices().as_deref().unwrap_or(&[]))?;
        dev_symlinks(&root)?;
    }
    Ok(())
}

/// mount(2) onto the descriptor `target` (through its /proc/self/fd link); `dest` names
/// it in errors.
fn mnt_on(
    src: Option<&Path>,
    target: &OwnedFd,
    dest: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, &inroot::fd_path(target), fstype, flags, data).ctx(|| {
        format!(
            "mounting {} on {} (type {}, flags {:?}, data {:?})",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            dest.display(),
            fstype.unwrap_or(""),
            flags,
            data.unwrap_or("")
        )
    })
}

/// The root of the mount just made on `under` (the mount point's descriptor), opened again
/// by its name inside the root: refused unless it is a different mount than `under`'s, so a
/// destination swapped after the mount cannot redirect what is done to it next.
fn mounted_on(root: &OwnedFd, dest: &Path, under: &OwnedFd) -> Result<OwnedFd> {
    let top = inroot::open_path(root.as_fd(), dest)?;
    let (a, b) = (
        inroot::mount_id(under.as_fd()),
        inroot::mount_id(top.as_fd()),
    );
    if a.is_none() || a == b {
        return Err(RuntimeError::Config(format!(
            "mount point {} changed while it was mounted on",
            dest.display()
        )));
    }
    Ok(top)
}

/// The attributes a bind gets: the config's flags set (and those it clears explicitly
/// cleared); flags it does not name stay as the source's, which keeps the flags the kernel
/// locks in a user namespace.
fn bind_attr(o: &Options) -> MountAttr {
    let wanted = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let mut a = MountAttr::default();
    if wanted.is_empty() {
        return a;
    }
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, inroot::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, inroot::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, inroot::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, inroot::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, inroot::MOUNT_ATTR_NODIRATIME),
    ] {
        if wanted.contains(ms) {
            a.attr_set |= attr;
        }
        if o.cleared.contains(ms) {
            a.attr_clr |= attr;
        }
    }
    for (ms, attr) in [
        (MsFlags::MS_NOATIME, inroot::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, inroot::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_RELATIME, 0),
    ] {
        if wanted.contains(ms) {
            a.attr_clr |= inroot::MOUNT_ATTR_ATIME;
            a.attr_set |= attr;
        }
    }
    a
}

/// Binds the host's `src` onto the descriptor `target`: a detached clone of the tree, its
/// attributes set, then attached; the propagation is set on the attached mount.
fn bind_fd(src: &Path, target: &OwnedFd, dest: &Path, o: &Options, recursive: bool) -> Result<()> {
    let tree = inroot::clone_tree(libc::AT_FDCWD, src, recursive, false)?;
    bind_tree(tree, target, dest, o)
}

/// Attaches the detached mount `tree` onto `target`, given `o`'s attributes first.
fn bind_tree(tree: OwnedFd, target: &OwnedFd, dest: &Path, o: &Options) -> Result<()> {
    let attr = bind_attr(o);
    if attr.attr_set != 0 || attr.attr_clr != 0 {
        inroot::set_attr(&tree, &attr, false, dest)?;
    }
    set_rec_attr(&tree, o, dest)?;
    inroot::attach(&tree, target, dest)?;
    // The tree's descriptor now names the attached mount's root.
    for p in &o.propagation {
        mnt_on(None, &tree, dest, NONE, *p, None)?;
    }
    Ok(())
}

/// The recursive attributes (`rro`, ...) on the mount held by `tree` and every mount below.
fn set_rec_attr(tree: &OwnedFd, o: &Options, dest: &Path) -> Result<()> {
    if o.rec_set == 0 && o.rec_clr == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: o.rec_set,
        attr_clr: o.rec_clr,
        ..MountAttr::default()
    };
    Ok(inroot::set_attr(tree, &attr, true, dest)?)
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

fn mount_one(ctx: &Ctx, root: &OwnedFd, m: &Mount, index: usize) -> Result<()> {
    let o = mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if o.bind { "bind" } else { "none" });
    let dest = m.destination();
    match typ {
        "bind" => bind_mount(ctx, root, m, &o, index),
        _ if o.bind => bind_mount(ctx, root, m, &o, index),
        // /sys/fs/cgroup sits on the sysfs mounted just before: nothing of the image's or a
        // volume's can be there, so the hierarchies are mounted by path.
        "cgroup" | "cgroup2" => mount_cgroup(ctx, &secure_join(ctx.rootfs, dest)?, &o),
        _ => {
            if typ == "proc" || typ == "sysfs" {
                if let Ok(fd) = inroot::open_path(root.as_fd(), dest) {
                    let is_dir = nix::sys::stat::fstat(&fd).is_ok_and(|st| {
                        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
                    });
                    if !is_dir {
                        return Err(RuntimeError::Config(format!(
                            "{} mount destination {} is not a directory",
                            typ,
                            dest.display()
                        )));
                    }
                }
            }
            let target = inroot::mkdir_all(root.as_fd(), dest)?;
            let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
            let data = (!o.data.is_empty()).then_some(o.data.as_str());
            // A read-only tmpfs (/dev above all: /dev/pts and the devices go in it) is made
            // writable and remounted read-only by `remount_read_only`, as runc does.
            let mut flags = o.flags;
            if ro_later(typ, dest) {
                flags.remove(MsFlags::MS_RDONLY);
            }
            let r = mnt_on(Some(&src), &target, dest, Some(typ), flags, data);
            match r {
                // sysfs cannot be mounted without owning the network namespace: bind the
                // host's, as runc does.
                Err(RuntimeError::Sys {
                    source: nix::Error::EPERM,
                    ..
                }) if typ == "sysfs" => {
                    let mut o = o.clone();
                    o.flags |= MsFlags::MS_BIND;
                    return bind_fd(Path::new("/sys"), &target, dest, &o, true);
                }
                r => r,
            }?;
            if !o.propagation.is_empty() || o.rec_set != 0 || o.rec_clr != 0 {
                let top = mounted_on(root, dest, &target)?;
                for p in &o.propagation {
                    mnt_on(None, &top, dest, NONE, *p, None)?;
                }
                set_rec_attr(&top, &o, dest)?;
            }
            Ok(())
        }
    }
}

fn bind_mount(ctx: &Ctx, root: &OwnedFd, m: &Mount, o: &Options, index: usize) -> Result<()> {
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
    let opened = ctx
        .sources
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, fd)| fd);
    let what = || {
        format!(
            "bind mount source {} (for {})",
            src.display(),
            m.destination().display()
        )
    };
    let is_dir = match opened {
        Some(fd) => nix::sys::stat::fstat(fd)
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
            .map_err(std::io::Error::from),
        None => std::fs::metadata(&src).map(|md| md.is_dir()),
    }
    .ctx(what)?;
    let dest = m.destination();
    let target = if is_dir {
        inroot::mkdir_all(root.as_fd(), dest)?
    } else {
        inroot::mkfile(root.as_fd(), dest)?
    };
    let tree = match opened {
        Some(fd) => inroot::clone_tree(fd.as_raw_fd(), Path::new(""), o.recursive, true)?,
        None => inroot::clone_tree(libc::AT_FDCWD, &src, o.recursive, false)?,
    };
    bind_tree(tree, &target, dest, o)
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

fn create_devices(ctx: &Ctx, root: &OwnedFd, devices: &[LinuxDevice]) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let r = (|| {
        for (path, major, minor) in default_devices() {
            if devices.iter().any(|d| d.path() == Path::new(path)) {
                continue;
            }
            make_device(
                ctx,
                root,
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
                root,
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
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(RuntimeError::Config(format!(
            "device path {} has no file name",
            path.display()
        )));
    };
    let dir = inroot::mkdir_all(root.as_fd(), parent)?;
    let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    if ctx.userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let target = inroot::mkfile(root.as_fd(), path)?;
        let tree = inroot::clone_tree(libc::AT_FDCWD, path, false, false)?;
        inroot::attach(&tree, &target, path)?;
        return Ok(());
    }
    nix::sys::stat::mknodat(
        &dir,
        name,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        makedev(major, minor),
    )
    .ctx(|| format!("creating device {}", path.display()))?;
    nix::unistd::fchownat(
        &dir,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", path.display()))?;
    Ok(())
}

fn dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = inroot::open_path(root.as_fd(), Path::new("/dev"))?;
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
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("linking /dev/{name}")),
        }
    }
    // /dev/ptmx is the container's own devpts instance's.
    let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::unistd::symlinkat("pts/ptmx", &dev, "ptmx").ctx(|| "linking /dev/ptmx".into())?;
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
    hide_full_proc_and_sys(rootfs)?;
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mnt(Some(rootfs), Path::new("/"), NONE, MsFlags::MS_MOVE, None)?;
    nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// Without pivot_root the host's mounts stay in the container's mount namespace, under its
/// chroot. The kernel lets a user namespace mount a new proc or sysfs only if a fully visible
/// one (the filesystem's root, nothing locked over it) is already mounted in the mount
/// namespace: the host's /proc and /sys would be that, and a process of the container could
/// `unshare -mrpf` and mount a proc with nothing masked. So the full proc and sysfs mounts
/// outside the rootfs are detached (or, when that is not allowed, covered by a tmpfs) first.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<()> {
    let entries = mountinfo::read_self();
    for e in entries.iter().filter(|e| {
        e.root == Path::new("/")
            && (e.fstype == "proc" || e.fstype == "sysfs")
            && !e.mount_point.starts_with(rootfs)
    }) {
        let mp = &e.mount_point;
        // The detach must not propagate to the host.
        match mount(
            None::<&str>,
            mp,
            NONE,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            NONE,
        ) {
            // Gone with a mount detached before (/sys/fs/... under /sys).
            Err(nix::Error::ENOENT) => continue,
            r => r.ctx(|| format!("making {} a slave mount", mp.display()))?,
        }
        match umount2(mp, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL) | Err(nix::Error::EPERM) => mnt(
                Some(Path::new("tmpfs")),
                mp,
                Some("tmpfs"),
                MsFlags::empty(),
                None,
            )?,
            Err(e) => return Err(e).ctx(|| format!("detaching {}", mp.display())),
        }
    }
    Ok(())
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

/// Whether a mount of type `typ` on `dest` is mounted writable first and made read-only
/// (when its options say `ro`) only by [`remount_read_only`]: tmpfs mounts and /dev, which the setup
/// still writes to after mounting them.
fn ro_later(typ: &str, dest: &Path) -> bool {
    typ == "tmpfs" || dest.components().eq(Path::new("/dev").components())
}

/// The last step of the rootfs, after /dev/console: the read-only tmpfs mounts (and /dev)
/// that `prepare` made writable are made read-only.
pub fn remount_read_only(spec: &Spec) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        let o = mounts::parse(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("none");
        if o.bind || !o.flags.contains(MsFlags::MS_RDONLY) || !ro_later(typ, m.destination()) {
            continue;
        }
        let root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "opening the container's root".into())?;
        let top = inroot::open_path(root.as_fd(), m.destination())?;
        // MS_REMOUNT|MS_BIND changes only the mount's own flags (allowed in a user namespace
        // too): those the options set are given again, so that none is dropped.
        let keep = o.flags
            & (MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME);
        mnt_on(
            None,
            &top,
            m.destination(),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
            None,
        )?;
    }
    Ok(())
}

/// After pivot: masked and read-only paths, read-only root, final propagation.
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
