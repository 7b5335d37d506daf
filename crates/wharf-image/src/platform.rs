//! Platforms (`os/arch[/variant]`) and picking one manifest out of an image index or a Docker
//! manifest list, as Docker does: the host's platform unless told otherwise.

use crate::error::Error;
use serde_json::Value;
use std::fmt;

/// An `os/architecture[/variant]` triple in OCI spelling (`linux/amd64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os[/arch[/variant]]`; missing parts are the host's.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let host = Platform::host();
        let mut it = s.split('/');
        let os = it.next().filter(|p| !p.is_empty());
        let arch = it.next().filter(|p| !p.is_empty());
        let variant = it.next().filter(|p| !p.is_empty());
        if it.next().is_some() || os.is_none() {
            return Err(Error::InvalidArchive {
                reason: format!("invalid platform {s:?}: expected os[/arch[/variant]]"),
            });
        }
        Ok(Platform {
            os: os.unwrap_or(&host.os).to_ascii_lowercase(),
            architecture: normalize_arch(arch.unwrap_or(&host.architecture)),
            variant: variant
                .map(str::to_string)
                .or_else(|| arch.is_none().then_some(host.variant).flatten()),
        })
    }

    /// The platform a descriptor's `platform` object names, if any.
    pub fn of_descriptor(desc: &Value) -> Option<Self> {
        let p = &desc["platform"];
        Some(Platform {
            os: p["os"].as_str()?.to_string(),
            architecture: normalize_arch(p["architecture"].as_str()?),
            variant: p["variant"].as_str().map(str::to_string),
        })
    }

    /// Whether an image of platform `other` runs here: same os and architecture, and the same
    /// variant when both name one.
    fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

fn normalize_arch(a: &str) -> String {
    match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" => "386".into(),
        other => other.to_string(),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the descriptor for `want` out of an index's `manifests`: an exact variant match
/// first, then one without a variant. Attestation manifests (`unknown/unknown`) never match.
pub fn select<'a>(manifests: &'a [Value], want: &Platform) -> Result<&'a Value, Error> {
    let candidates: Vec<(&Value, Platform)> = manifests
        .iter()
        .filter_map(|m| Platform::of_descriptor(m).map(|p| (m, p)))
        .filter(|(_, p)| p.os != "unknown")
        .collect();
    let exact = candidates.iter().find(|(_, p)| {
        p == want
            || (p.variant.is_none()
                && want.variant.is_none()
                && p.os == want.os
                && p.architecture == want.architecture)
    });
    if let Some((m, _)) = exact {
        return Ok(m);
    }
    if let Some((m, _)) = candidates.iter().find(|(_, p)| want.accepts(p)) {
        return Ok(m);
    }
    // An index without platforms (a single-image OCI layout) has one obvious choice.
    if candidates.is_empty() && manifests.len() == 1 {
        return Ok(&manifests[0]);
    }
    let available: Vec<String> = candidates.iter().map(|(_, p)| p.to_string()).collect();
    Err(Error::NoMatchingPlatform {
        wanted: want.to_string(),
        available: if available.is_empty() {
            "no platforms".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn idx() -> Vec<Value> {
        vec![
            json!({"digest": "a", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}}),
            json!({"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}),
            json!({"digest": "c", "platform": {"os": "linux", "architecture": "amd64"}}),
            json!({"digest": "d", "platform": {"os": "unknown", "architecture": "unknown"}}),
            json!({"digest": "e", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}),
        ]
    }

    #[test]
    fn picks_requested_platform_and_variant() {
        let m = idx();
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(select(&m, &p("linux/amd64")).unwrap()["digest"], "c");
        assert_eq!(select(&m, &p("linux/arm/v7")).unwrap()["digest"], "b");
        assert_eq!(select(&m, &p("linux/arm64")).unwrap()["digest"], "e");
        assert_eq!(select(&m, &p("linux/x86_64")).unwrap()["digest"], "c");
        let e = select(&m, &p("linux/s390x")).unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/arm/v7"),
            "{e}"
        );
        assert!(!e.contains("unknown"), "{e}");
        assert_eq!(
            select(&[json!({"digest": "x"})], &Platform::host()).unwrap()["digest"],
            "x"
        );
    }

    #[test]
    fn host_is_linux_with_oci_arch() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert_ne!(h.architecture, "x86_64");
    }
}
