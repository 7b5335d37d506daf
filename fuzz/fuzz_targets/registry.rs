//! What a registry (or a token server) sends back to a pull: manifests and image indexes as
//! the engine reads them (platform choice, config and layer digests), `WWW-Authenticate`
//! challenges, token answers and their lifetimes; plus the client's `X-Registry-Auth` header.
//!
//! The first byte chooses the parser, the rest is its input. Asserts no panic, and that the
//! digests the engine takes out of a manifest are well-formed (they are used in paths and
//! sliced for progress ids).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wharf_engine::pull::{index_entry, manifest_parts};
use wharf_image::digest::is_sha256 as valid_digest;
use wharf_image::platform::Platform;
use wharf_registry::auth::{decode_registry_auth, parse_challenge, Challenge, TokenResponse};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let Ok(m) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            if m["manifests"].is_array() {
                for want in ["linux/amd64", "linux/arm/v7", "linux/arm64"] {
                    let want = Platform::parse(want).expect("valid");
                    if let Ok(d) = index_entry(&m, &want, "fuzz") {
                        assert!(valid_digest(&d), "{d:?}");
                    }
                }
            }
            if let Ok((config, layers)) = manifest_parts(&m, "fuzz") {
                assert!(valid_digest(&config), "{config:?}");
                for (d, _, _) in layers {
                    assert!(valid_digest(&d), "{d:?}");
                    let _short = &d.trim_start_matches("sha256:")[..12];
                }
            }
        }
        1 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Some(Challenge::Bearer { realm, .. } | Challenge::Basic { realm }) =
                parse_challenge(s)
            {
                let _ = realm.len();
            }
        }
        2 => {
            if let Ok(t) = serde_json::from_slice::<TokenResponse>(rest) {
                let now = std::time::Instant::now();
                if let Some(at) = t.renew_at(now) {
                    assert!(at > now);
                }
                let _ = t.token();
            }
        }
        3 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(Some(c)) = decode_registry_auth(s) {
                assert!(!c.is_empty());
                let _ = c.basic();
            }
        }
        _ => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(p) = Platform::parse(s) {
                let again = Platform::parse(&p.to_string()).expect("a parsed platform prints");
                assert_eq!(again, p, "{s:?}");
            }
        }
    }
});
