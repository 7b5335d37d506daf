//! Which cgroup hierarchies the host has mounted, from `/proc/self/mountinfo`, and where this
//! process sits in them, from `/proc/self/cgroup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// The v1 controllers wharf manages (a named hierarchy such as `name=systemd` is left alone).
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// One cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (not `/` inside a cgroup namespace or a bind mount).
    pub root: PathBuf,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup2, mounted at `root` (normally `/sys/fs/cgroup`).
    Unified { root: CgroupMount },
    /// v1 controller hierarchies (controller name → mount); `unified` is a cgroup2 mount
    /// beside them (hybrid mode, normally `/sys/fs/cgroup/unified`), used only for
    /// membership: the controllers stay on v1.
    Legacy {
        controllers: BTreeMap<String, CgroupMount>,
        unified: Option<CgroupMount>,
    },
}

impl Layout {
    /// Reads `/proc/self/mountinfo`.
    pub fn detect() -> Result<Layout, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Layout::from_mountinfo(&text)
    }

    /// Parses mountinfo text. cgroup2 mounted on `/sys/fs/cgroup` means pure v2; otherwise
    /// v1 controller mounts (if any) win, with a cgroup2 mount kept as the hybrid
    /// `unified` one; a lone cgroup2 mount elsewhere is used as pure v2.
    pub fn from_mountinfo(text: &str) -> Result<Layout, CgroupError> {
        let mut controllers = BTreeMap::new();
        let mut v2: Vec<CgroupMount> = Vec::new();
        for line in text.lines() {
            let Some(m) = MountLine::parse(line) else {
                continue;
            };
            let mount = CgroupMount {
                mount_point: PathBuf::from(unescape(m.mount_point)),
                root: PathBuf::from(unescape(m.root)),
            };
            match m.fstype {
                "cgroup2" => v2.push(mount),
                "cgroup" => {
                    for opt in m.super_options.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            // The first mount of a controller wins (later ones are bind mounts).
                            controllers
                                .entry(opt.to_string())
                                .or_insert_with(|| mount.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(root) = v2
            .iter()
            .find(|m| m.mount_point == Path::new("/sys/fs/cgroup"))
        {
            return Ok(Layout::Unified { root: root.clone() });
        }
        if !controllers.is_empty() {
            let unified = v2
                .iter()
                .find(|m| m.mount_point == Path::new("/sys/fs/cgroup/unified"))
                .or(v2.first())
                .cloned();
            return Ok(Layout::Legacy {
                controllers,
                unified,
            });
        }
        match v2.into_iter().next() {
            Some(root) => Ok(Layout::Unified { root }),
            None => Err(CgroupError::NoCgroupMounts),
        }
    }
}

/// The fields of a mountinfo line that matter here.
struct MountLine<'a> {
    root: &'a str,
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    /// `id parent maj:min root mount-point options [optional...] - fstype source super-options`
    fn parse(line: &'a str) -> Option<MountLine<'a>> {
        let (pre, post) = line.split_once(" - ")?;
        let mut pre = pre.split(' ');
        let root = pre.nth(3)?;
        let mount_point = pre.next()?;
        let mut post = post.split(' ');
        let fstype = post.next()?;
        let _source = post.next()?;
        let super_options = post.next().unwrap_or("");
        Some(MountLine {
            root,
            mount_point,
            fstype,
            super_options,
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where this process is in each hierarchy, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// v1 controller → cgroup path (as seen from the hierarchy's root).
    pub v1: BTreeMap<String, PathBuf>,
    /// The `0::` line: the cgroup2 path.
    pub unified: Option<PathBuf>,
}

impl OwnCgroups {
    /// Reads `/proc/self/cgroup`.
    pub fn detect() -> Result<OwnCgroups, CgroupError> {
        let path = Path::new("/proc/self/cgroup");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(OwnCgroups::parse(&text))
    }

    /// Parses `hierarchy-id:controller,list:path` lines.
    pub fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                own.unified = Some(PathBuf::from(path));
                continue;
            }
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                own.v1.insert(c.to_string(), PathBuf::from(path));
            }
        }
        own
    }
}

/// `own` (a path from `/proc/self/cgroup`) relative to the directory mounted by `mount`:
/// strips the mount's root so that a namespaced or bind-mounted hierarchy resolves right.
pub fn relative_to_mount(mount: &CgroupMount, own: &Path) -> PathBuf {
    let rel = own.strip_prefix(&mount.root).unwrap_or(own);
    rel.strip_prefix("/").unwrap_or(rel).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_uses_v1_controllers_and_keeps_the_unified_mount() {
        let Layout::Legacy {
            controllers,
            unified,
        } = Layout::from_mountinfo(HYBRID).unwrap()
        else {
            panic!("not legacy")
        };
        assert_eq!(
            controllers.keys().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "memory"]
        );
        assert_eq!(
            controllers["cpuacct"].mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            unified.unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn cgroup2_on_sys_fs_cgroup_is_unified() {
        let text = "25 21 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Layout::from_mountinfo(text).unwrap(),
            Layout::Unified {
                root: CgroupMount {
                    mount_point: "/sys/fs/cgroup".into(),
                    root: "/".into()
                }
            }
        );
    }

    #[test]
    fn pure_v1_has_no_unified_mount() {
        let text = "35 31 0:32 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let Layout::Legacy { unified, .. } = Layout::from_mountinfo(text).unwrap() else {
            panic!("not legacy")
        };
        assert_eq!(unified, None);
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let text = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(matches!(
            Layout::from_mountinfo(text),
            Err(CgroupError::NoCgroupMounts)
        ));
    }

    #[test]
    fn mount_points_are_unescaped() {
        let text = "25 21 0:22 /a\\040b /mnt/cg\\040x rw - cgroup2 none rw\n";
        let Layout::Unified { root } = Layout::from_mountinfo(text).unwrap() else {
            panic!()
        };
        assert_eq!(root.mount_point, Path::new("/mnt/cg x"));
        assert_eq!(root.root, Path::new("/a b"));
    }

    #[test]
    fn own_cgroups_are_parsed_per_controller() {
        let own = OwnCgroups::parse("4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/u\n");
        assert_eq!(own.v1["memory"], Path::new("/a/b"));
        assert_eq!(own.v1["cpuacct"], Path::new("/"));
        assert_eq!(own.unified.as_deref(), Some(Path::new("/u")));
    }

    #[test]
    fn own_path_is_made_relative_to_the_mount_root() {
        let m = CgroupMount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/ns".into(),
        };
        assert_eq!(relative_to_mount(&m, Path::new("/ns/a")), Path::new("a"));
        let m = CgroupMount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/".into(),
        };
        assert_eq!(relative_to_mount(&m, Path::new("/a/b")), Path::new("a/b"));
    }
}
