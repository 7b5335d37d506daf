//! Mount options of the OCI config: flags, propagation and filesystem data, as runc parses
//! them.

use crate::inroot;
use nix::mount::MsFlags;

/// A mount's parsed options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, ...), needed when remounting a bind.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// Comma-joined filesystem data (`mode=755,size=65536k`).
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
    /// Attributes set and cleared on the mount and every mount below it (`rro`, `rnosuid`,
    /// ...: `mount_setattr` with `AT_RECURSIVE`, Linux 5.12+), as `MOUNT_ATTR_*` bits.
    pub rec_set: u64,
    pub rec_clr: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: false,
            recursive: false,
            rec_set: 0,
            rec_clr: 0,
        }
    }
}

pub fn parse(options: &[String]) -> Options {
    let mut o = Options::default();
    let mut data = Vec::new();
    for opt in options {
        if let Some((clear, attr)) = recursive_attr(opt) {
            if clear {
                o.rec_clr |= attr;
            } else {
                o.rec_set |= attr;
                // An access-time mode is a value, not a bit: setting one clears the field.
                if attr & !MOUNT_ATTR_ATIME == 0 {
                    o.rec_clr |= MOUNT_ATTR_ATIME;
                }
            }
            continue;
        }
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "private" => prop(&mut o, MsFlags::MS_PRIVATE),
            "rprivate" => prop(&mut o, MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => prop(&mut o, MsFlags::MS_SHARED),
            "rshared" => prop(&mut o, MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => prop(&mut o, MsFlags::MS_SLAVE),
            "rslave" => prop(&mut o, MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => prop(&mut o, MsFlags::MS_UNBINDABLE),
            "runbindable" => prop(&mut o, MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            // Handled by idmapped mounts, which we do not do; and docker's "z"/"Z" labels.
            "idmap" | "ridmap" | "z" | "Z" | "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other.to_string());
                (MsFlags::empty(), MsFlags::empty())
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
    }
    o.data = data.join(",");
    o
}

const MOUNT_ATTR_ATIME: u64 = inroot::MOUNT_ATTR_ATIME;

/// The recursive options (runc's names): whether the option clears its attribute, and the
/// attribute. `rrelatime` is the access-time value 0 (`MOUNT_ATTR_RELATIME`).
fn recursive_attr(opt: &str) -> Option<(bool, u64)> {
    use inroot::*;
    Some(match opt {
        "rro" => (false, MOUNT_ATTR_RDONLY),
        "rrw" => (true, MOUNT_ATTR_RDONLY),
        "rnosuid" => (false, MOUNT_ATTR_NOSUID),
        "rsuid" => (true, MOUNT_ATTR_NOSUID),
        "rnodev" => (false, MOUNT_ATTR_NODEV),
        "rdev" => (true, MOUNT_ATTR_NODEV),
        "rnoexec" => (false, MOUNT_ATTR_NOEXEC),
        "rexec" => (true, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (false, 0),
        "rnorelatime" => (true, 0),
        "rnoatime" => (false, MOUNT_ATTR_NOATIME),
        "ratime" => (true, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (false, MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (true, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

fn prop(o: &mut Options, f: MsFlags) -> (MsFlags, MsFlags) {
    o.propagation.push(f);
    (MsFlags::empty(), MsFlags::empty())
}

/// The propagation flags of `linux.rootfsPropagation`.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = parse(&s(&["nosuid", "strictatime", "mode=755", "size=65536k"]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
        let o = parse(&s(&["rbind", "ro", "rprivate"]));
        assert!(o.bind && o.recursive);
        assert!(o
            .flags
            .contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let o = parse(&s(&["ro", "rw"]));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("bogus"), None);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&s(&["rbind", "ro", "rro", "rnosuid"]));
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            o.rec_set,
            inroot::MOUNT_ATTR_RDONLY | inroot::MOUNT_ATTR_NOSUID
        );
        assert_eq!(o.rec_clr, 0);
        assert_eq!(o.data, "");
        let o = parse(&s(&["rrw", "rnoatime"]));
        assert_eq!(o.rec_set, inroot::MOUNT_ATTR_NOATIME);
        assert_eq!(
            o.rec_clr,
            inroot::MOUNT_ATTR_RDONLY | inroot::MOUNT_ATTR_ATIME
        );
        let o = parse(&s(&["rrelatime"]));
        assert_eq!((o.rec_set, o.rec_clr), (0, inroot::MOUNT_ATTR_ATIME));
    }
}
