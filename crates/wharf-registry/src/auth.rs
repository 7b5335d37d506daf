//! Registry authentication: credentials as clients send them (`X-Registry-Auth`, the body of
//! `POST /auth`), `WWW-Authenticate` challenges, and the bearer-token flow of the
//! distribution spec (challenge → token endpoint → scoped token).

use base64::Engine as _;
use serde::Deserialize;

/// A user's credentials for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// A refresh token from an earlier login (sent to the token endpoint instead).
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    /// The registry these are for, as the client wrote it.
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }

    /// The `Basic` Authorization header value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Decodes an `X-Registry-Auth` header: base64url (padded or not) of a JSON object with
/// `username`, `password`, `serveraddress`, `identitytoken`. None for an empty or `{}` value.
pub fn decode_registry_auth(header: &str) -> Result<Option<Credentials>, String> {
    let h = header.trim();
    if h.is_empty() {
        return Ok(None);
    }
    let trimmed = h.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| format!("X-Registry-Auth is not base64: {e}"))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) || bytes == b"{}" {
        return Ok(None);
    }
    let c: Credentials = serde_json::from_slice(&bytes)
        .map_err(|e| format!("X-Registry-Auth is not a JSON auth config: {e}"))?;
    Ok((!c.is_empty()).then_some(c))
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Bearer {
        realm: String,
        service: String,
        scope: String,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="https://auth/token",service="reg",scope="..."`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic {
            realm: get("realm"),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm"),
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `k="v",k2=v2` pairs (quoted values may hold commas).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs.min(b.len())..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    /// Seconds; the spec's default is 60.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// When a token received at `now` is to be replaced: 10 s before it expires (at least
    /// half-way through its `expires_in`, 60 s by default). None (never) for a lifetime too
    /// long to add to `now`, which a token server may send.
    pub fn renew_at(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let life = std::time::Duration::from_secs(self.expires_in.unwrap_or(60).max(1));
        let margin = std::time::Duration::from_secs(10).min(life / 2);
        now.checked_add(life - margin)
    }

    pub fn token(&self) -> &str {
        if self.token.is_empty() {
            &self.access_token
        } else {
            &self.token
        }
    }
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: "Registry Realm".into()
            })
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5001/token".into(),
                service: "reg".into(),
                scope: "repository:a/b:pull,push".into()
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn registry_auth_header() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let c = decode_registry_auth(&enc(
            r#"{"username":"u","password":"p+/?","serveraddress":"127.0.0.1:5000"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(c.password, "p+/?");
        assert_eq!(c.basic(), "Basic dTpwKy8/");
        assert_eq!(decode_registry_auth("").unwrap(), None);
        assert_eq!(decode_registry_auth(&enc("{}")).unwrap(), None);
        assert!(decode_registry_auth("!!!").is_err());
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn token_lifetimes_from_the_server_cannot_overflow_the_clock() {
        // A token server's `expires_in` is untrusted: u64::MAX seconds used to panic in
        // `Instant + Duration` (found writing fuzz/fuzz_targets/registry.rs, which covers it).
        let now = std::time::Instant::now();
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        assert_eq!(t.renew_at(now), None);
        let t: TokenResponse = serde_json::from_str(r#"{"token":"t"}"#).unwrap();
        assert_eq!(
            t.renew_at(now),
            Some(now + std::time::Duration::from_secs(50))
        );
        let t: TokenResponse = serde_json::from_str(r#"{"token":"t","expires_in":0}"#).unwrap();
        assert!(t.renew_at(now).is_some_and(|r| r > now));
    }
}
