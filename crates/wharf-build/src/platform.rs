//! Platforms (`linux/arm64/v8`) and the build's automatic platform ARGs.
//!
//! BuildKit defines `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` (the machine
//! that builds) and `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` (what
//! `--platform` asks for, else the build machine) in the global scope: `FROM` lines see
//! them; a stage sees one only after `ARG NAME` without a value, which takes the automatic
//! value. Names are normalized as containerd does (`x86_64` is `amd64`, `aarch64` is
//! `arm64`, `arm64/v8` is `arm64`, `armhf` is `arm/v7`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?}: {reason}")]
pub struct PlatformError {
    pub text: String,
    pub reason: &'static str,
}

/// The names of the automatic ARGs, in the order BuildKit lists them.
pub const AUTOMATIC_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

impl Platform {
    /// The machine this process runs on.
    pub fn host() -> Platform {
        let (arch, variant) = normalize_arch(std::env::consts::ARCH, None);
        Platform {
            os: "linux".into(),
            arch,
            variant,
        }
    }

    /// `os[/arch[/variant]]`, or a bare architecture (`arm64`: the os is linux), normalized.
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let err = |reason| PlatformError {
            text: text.to_string(),
            reason,
        };
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("invalid platform: empty component"));
        }
        if parts.iter().any(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(err("invalid platform: unexpected character"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] if is_os(one) => (one.to_string(), std::env::consts::ARCH, None),
            [one] => ("linux".to_string(), *one, None),
            [os, arch] => (os.to_string(), *arch, None),
            [os, arch, variant] => (os.to_string(), *arch, Some(*variant)),
            _ => return Err(err("invalid platform: too many components")),
        };
        if !is_os(&os) {
            return Err(err(
                "unknown operating system or architecture: invalid argument",
            ));
        }
        let (arch, variant) = normalize_arch(arch, variant);
        Ok(Platform { os, arch, variant })
    }

    /// The eight automatic ARGs for a build on `build` targeting `target`.
    pub fn automatic_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(8);
        for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
            out.push((format!("{prefix}PLATFORM"), p.to_string()));
            out.push((format!("{prefix}OS"), p.os.clone()));
            out.push((format!("{prefix}ARCH"), p.arch.clone()));
            out.push((
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            ));
        }
        out
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn is_os(s: &str) -> bool {
    matches!(
        s,
        "linux"
            | "windows"
            | "darwin"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "android"
            | "aix"
            | "plan9"
            | "js"
            | "wasip1"
    )
}

/// containerd's architecture normalization.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let v = variant.map(str::to_string);
    match arch {
        "i386" | "x86" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => {
            let v = v.filter(|v| v != "v1");
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = v.filter(|v| v != "8" && v != "v8");
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match v.as_deref() {
                None | Some("7") | Some("v7") => "v7",
                Some("5") | Some("v5") => "v5",
                Some("6") | Some("v6") => "v6",
                Some("8") | Some("v8") => "v8",
                Some(other) => return ("arm".into(), Some(other.to_string())),
            };
            ("arm".into(), Some(v.into()))
        }
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le".into(), v),
        other => (other.to_string(), v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_normalize_as_containerd() {
        for (text, want) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("LINUX/AMD64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("arm64", "linux/arm64"),
            ("linux/386", "linux/386"),
            ("windows/amd64", "windows/amd64"),
            ("linux/s390x", "linux/s390x"),
        ] {
            assert_eq!(Platform::parse(text).unwrap().to_string(), want, "{text}");
        }
        for bad in [
            "",
            "linux//amd64",
            "linux/amd64/v8/x",
            "plan10/amd64",
            "linux/am d64",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_automatic_args_describe_both_platforms() {
        let build = Platform::parse("linux/amd64").unwrap();
        let target = Platform::parse("linux/arm/v7").unwrap();
        let args = Platform::automatic_args(&build, &target);
        let get = |k: &str| args.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("BUILDPLATFORM"), "linux/amd64");
        assert_eq!(get("BUILDVARIANT"), "");
        assert_eq!(get("TARGETPLATFORM"), "linux/arm/v7");
        assert_eq!(get("TARGETARCH"), "arm");
        assert_eq!(get("TARGETVARIANT"), "v7");
        let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, AUTOMATIC_ARGS);
        assert_eq!(Platform::host().os, "linux");
    }
}
