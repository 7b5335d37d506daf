//! Image references parsed and normalized as Docker does (distribution/reference):
//! `busybox` → `docker.io/library/busybox:latest`, `host:5000/ns/name:tag`, `name@sha256:…`.

use std::fmt;

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";

/// A reference that failed to parse, with Docker's wording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("repository name must not be longer than 255 characters")]
    TooLong,
    #[error("invalid reference format: digest {0:?} is not a valid sha256 digest")]
    Digest(String),
}

/// A normalized reference: domain, path, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn is_component(s: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == sep_start || i == b.len() {
            return false;
        }
    }
}

fn is_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (s, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// Parses and normalizes a reference as `docker pull` does.
pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Format);
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| ReferenceError::Digest(d.into()))?;
            if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(ReferenceError::Digest(d.into()));
            }
            (r, Some(d.to_string()))
        }
        None => (s, None),
    };
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            if !is_tag(tag) {
                return Err(ReferenceError::Format);
            }
            (&rest[..last_slash + i], Some(tag.to_string()))
        }
        None => (rest, None),
    };
    if name.len() > 255 {
        return Err(ReferenceError::TooLong);
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, remainder))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !is_domain(first) {
                return Err(ReferenceError::Format);
            }
            (first.to_string(), remainder.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase(path));
    }
    if path.is_empty() || !path.split('/').all(is_component) {
        return Err(ReferenceError::Format);
    }
    // As Docker, the limit is on the normalized name (`docker.io/library/...`).
    if domain.len() + 1 + path.len() > 255 {
        return Err(ReferenceError::TooLong);
    }
    let tag = match (&tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        _ => tag,
    };
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

impl Reference {
    /// `docker.io/library/busybox` → `busybox`; other registries keep their domain. As in
    /// Docker, `library/` goes only when one component is left (`library/library/x` stays).
    /// Unlike Docker, `docker.io/` stays when the path's first component would read as a
    /// domain (`docker.io/a.b/c`, not `a.b/c`), so that the familiar form parses back.
    pub fn familiar_name(&self) -> String {
        let first = self.path.split('/').next().unwrap_or_default();
        if self.domain == DEFAULT_DOMAIN
            && self.path.contains('/')
            && (first.contains('.') || first == "localhost")
        {
            format!("{}/{}", self.domain, self.path)
        } else if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The familiar form with tag and/or digest: `busybox:latest`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("localhost/app:v1", "localhost/app:v1", "localhost/app:v1"),
            (
                "localhost:5000/ns/name:tag",
                "localhost:5000/ns/name:tag",
                "localhost:5000/ns/name:tag",
            ),
            (
                "registry.example.com/a/b/c",
                "registry.example.com/a/b/c:latest",
                "registry.example.com/a/b/c:latest",
            ),
            (
                "my_app-x.y__z",
                "docker.io/library/my_app-x.y__z:latest",
                "my_app-x.y__z:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar_string(), familiar, "{input}");
        }
    }

    #[test]
    fn familiar_forms_parse_back_to_the_same_reference() {
        // Found by fuzz/fuzz_targets/reference.rs: the familiar form of
        // docker.io/library/library/x was library/x, which is docker.io/library/x, and that of
        // docker.io/a.b/c was a.b/c, which names the registry a.b.
        for s in [
            "docker.io/library/library/x",
            "library/library/x:1",
            "busybox",
            "a/b",
            "docker.io/a.b/c",
            "docker.io/localhost/c",
        ] {
            let r = parse(s).unwrap();
            assert_eq!(parse(&r.familiar_string()).unwrap(), r, "{s}");
        }
        assert_eq!(
            parse("docker.io/library/library/x")
                .unwrap()
                .familiar_name(),
            "library/library/x"
        );
        assert_eq!(
            parse("docker.io/a.b/c").unwrap().familiar_name(),
            "docker.io/a.b/c"
        );
    }

    #[test]
    fn the_length_limit_is_on_the_normalized_name() {
        // Found by fuzz/fuzz_targets/reference.rs: a 250-character name parsed, but its full
        // form docker.io/library/<name> did not (Docker limits the full name to 255).
        let name = "a".repeat(255 - "docker.io/library/".len());
        assert!(parse(&name).is_ok());
        assert_eq!(parse(&format!("{name}a")), Err(ReferenceError::TooLong));
        let r = parse(&name).unwrap();
        assert_eq!(parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert!(matches!(
            parse("busybox@sha256:abc"),
            Err(ReferenceError::Digest(_))
        ));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            ":tag",
            "a:",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a:t@g",
            "a:-tag",
            "host:po/x",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            parse("Busybox"),
            Err(ReferenceError::Uppercase("library/Busybox".into()))
        );
        assert_eq!(
            parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
    }
}
