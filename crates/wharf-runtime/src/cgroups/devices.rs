//! Device access rules: OCI `linux.resources.devices` normalised, the cgroup v1 rule lines,
//! and the effective rule set that the v2 eBPF program enforces.
//!
//! The rules are applied in order, starting from "deny everything", with cgroup v1 semantics: a wildcard rule (`type: a`, no
//! major/minor, all of `rwm`) resets the default (allow or deny everything) and forgets the
//! earlier rules; any other rule adds an exception to the default (merging access with an
//! exception for the same device) or, when it repeats the default action, takes access away
//! from the exception for exactly the same device (it does not punch holes in a wildcard
//! exception, as in the kernel). A `type: a` rule with a major, a minor or partial access is
//! taken as the same rule for both `b` and `c`.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// Access bits, with the values of the kernel's `BPF_DEVCG_ACC_*`.
pub mod access {
    pub const MKNOD: u8 = 1;
    pub const READ: u8 = 2;
    pub const WRITE: u8 = 4;
    pub const ALL: u8 = MKNOD | READ | WRITE;
}

/// The device type of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    /// Every device (only in a wildcard rule).
    All,
    Block,
    Char,
}

/// One normalised rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub typ: DevType,
    /// `None`: any.
    pub major: Option<u32>,
    /// `None`: any.
    pub minor: Option<u32>,
    /// [`access`] bits, never 0.
    pub access: u8,
}

impl DeviceRule {
    /// The wildcard reset rule `a *:* rwm`.
    pub fn is_wildcard(&self) -> bool {
        self.typ == DevType::All && self.major.is_none() && self.minor.is_none()
    }

    /// The v1 `devices.allow`/`devices.deny` line, e.g. `c 1:3 rwm` (a wildcard is `a`).
    pub fn v1_line(&self) -> String {
        if self.is_wildcard() {
            return "a".into();
        }
        let t = match self.typ {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{t} {}:{} {}",
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

/// `rwm` for the bits set.
pub fn access_string(bits: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (access::READ, 'r'),
        (access::WRITE, 'w'),
        (access::MKNOD, 'm'),
    ] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn parse_access(s: Option<&str>) -> Result<u8, CgroupError> {
    let s = s.unwrap_or("");
    if s.is_empty() {
        return Ok(access::ALL);
    }
    // Other letters are ignored, as runc does (runc's own suite writes "rwa").
    Ok(s.chars().fold(0u8, |acc, c| {
        acc | match c {
            'r' => access::READ,
            'w' => access::WRITE,
            'm' => access::MKNOD,
            _ => {
                tracing::debug!("devices: access {s:?}: {c:?} ignored");
                0
            }
        }
    }))
}

fn parse_number(n: Option<i64>, what: &str) -> Result<Option<u32>, CgroupError> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None), // -1 is the wildcard in runc's configs
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::InvalidResource(format!("devices: invalid {what} {n}"))),
    }
}

/// Normalises OCI rules (see the module docs for `type: a`).
pub fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut out = Vec::new();
    for r in rules {
        let access = parse_access(r.access().as_deref())?;
        let major = parse_number(r.major(), "major")?;
        let minor = parse_number(r.minor(), "minor")?;
        let rule = |typ| DeviceRule {
            allow: r.allow(),
            typ,
            major,
            minor,
            access,
        };
        match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => {
                if major.is_none() && minor.is_none() && access == access::ALL {
                    out.push(rule(DevType::All));
                } else {
                    out.push(rule(DevType::Block));
                    out.push(rule(DevType::Char));
                }
            }
            LinuxDeviceType::B => out.push(rule(DevType::Block)),
            LinuxDeviceType::C | LinuxDeviceType::U => out.push(rule(DevType::Char)),
            LinuxDeviceType::P => {
                return Err(CgroupError::InvalidResource(
                    "devices: type p (fifo) cannot be controlled by the devices cgroup".into(),
                ))
            }
        }
    }
    Ok(out)
}

/// The effective rule set: the default action and the exceptions to it (each with the
/// opposite action). Rules start from "deny everything" (as runc, and as v1's initial
/// `devices.deny a`), so an empty rule list denies every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub default_allow: bool,
    pub exceptions: Vec<DeviceRule>,
}

/// Applies `rules` in order with v1 semantics (see the module docs).
pub fn effective(rules: &[DeviceRule]) -> Effective {
    let mut eff = Effective {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.is_wildcard() {
            eff.default_allow = r.allow;
            eff.exceptions.clear();
            continue;
        }
        let same = |e: &&mut DeviceRule| (e.typ, e.major, e.minor) == (r.typ, r.major, r.minor);
        if r.allow != eff.default_allow {
            match eff.exceptions.iter_mut().find(same) {
                Some(e) => e.access |= r.access,
                None => eff.exceptions.push(*r),
            }
        } else if let Some(e) = eff.exceptions.iter_mut().find(same) {
            e.access &= !r.access;
        }
        eff.exceptions.retain(|e| e.access != 0);
    }
    eff
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn oci_rules_normalise_to_v1_lines() {
        let r = normalize(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rw"},
                {"allow":true,"type":"b","major":-1,"minor":-1,"access":"m"},
                {"allow":true,"type":"a","major":5,"access":"r"}]"#,
        ))
        .unwrap();
        let lines: Vec<String> = r.iter().map(DeviceRule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "a",
                "c 1:3 rwm",
                "c 136:* rw",
                "b *:* m",
                "b 5:* r",
                "c 5:* r"
            ]
        );
        assert!(!r[0].allow && r[1].allow);
    }

    #[test]
    fn unknown_access_letters_are_ignored_and_fifo_is_refused() {
        // As runc: "rx" is "r".
        let r = normalize(&rules(r#"[{"allow":true,"type":"c","access":"rx"}]"#)).unwrap();
        assert_eq!(r[0].access, access::READ);
        assert!(normalize(&rules(r#"[{"allow":true,"type":"p"}]"#)).is_err());
    }

    #[test]
    fn a_wildcard_resets_and_later_rules_merge_or_remove() {
        let r = normalize(&rules(
            r#"[{"allow":true,"type":"c","major":9,"minor":9,"access":"r"},
                {"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"r"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"w"},
                {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"m"}]"#,
        ))
        .unwrap();
        let eff = effective(&r);
        assert!(!eff.default_allow);
        let lines: Vec<String> = eff.exceptions.iter().map(DeviceRule::v1_line).collect();
        assert_eq!(lines, ["c 1:3 rw"]);
    }

    #[test]
    fn rules_start_from_deny_all() {
        assert_eq!(
            effective(&[]),
            Effective {
                default_allow: false,
                exceptions: vec![]
            }
        );
        // Without a leading wildcard an allow rule is an exception to "deny all".
        let r = normalize(&rules(r#"[{"allow":true,"type":"c","major":1,"minor":3}]"#)).unwrap();
        let eff = effective(&r);
        assert!(!eff.default_allow);
        assert_eq!(eff.exceptions[0].v1_line(), "c 1:3 rwm");
    }
}
