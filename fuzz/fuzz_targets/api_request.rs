//! Engine API requests before any handler runs: the route table (method and path, with the
//! `/vX.Y` prefix), query strings with percent escapes and `filters` JSON, the smaller JSON
//! bodies (exec create/start, `POST /auth`, `--mount` lists), `POST /commit`'s config body
//! with its `changes` (Dockerfile instructions), and the multiplexed stream decoder.
//!
//! The first byte chooses the parser. Asserts no panic; the frame decoder gives back exactly
//! the frames that were encoded, however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use wharf_api::codec::{frame, FrameDecoder};
use wharf_api::route::route;
use wharf_api::types::{ExecConfig, ExecStartConfig};
use wharf_engine::http::Query;

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            let (path, query) = s.split_once('?').unwrap_or((s, ""));
            let method = METHODS[usize::from(which / 5) % METHODS.len()];
            let _ = route(method, path);
            let q = Query::parse(Some(query));
            let _ = q.filters();
            let _ = q.flag("all");
            let _ = q.all("changes");
        }
        1 => {
            let _ = serde_json::from_slice::<ExecConfig>(rest);
            let _ = serde_json::from_slice::<ExecStartConfig>(rest);
            let _ = serde_json::from_slice::<wharf_registry::Credentials>(rest);
            let _ = serde_json::from_slice::<Vec<wharf_api::mount::Mount>>(rest);
        }
        2 => {
            // POST /commit: a JSON config body, then `changes` lines applied to it.
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            let (body, changes) = s.split_once('\n').unwrap_or((s, ""));
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(body) else {
                return;
            };
            let mut cfg = Map::new();
            for (k, v) in o {
                if !v.is_null() {
                    cfg.insert(k, v);
                }
            }
            for ch in changes.lines().filter(|c| !c.is_empty()) {
                let _ = wharf_image::store::apply_change(&mut cfg, ch);
            }
        }
        3 => {
            // Frames: the input is cut into payloads at 0xff bytes; the encoded stream is fed
            // back in pieces of varying size.
            let payloads: Vec<&[u8]> = rest.split(|b| *b == 0xff).collect();
            let mut wire = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                wire.extend(frame((i % 3) as u8, p));
            }
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            let mut at = 0;
            let mut step = usize::from(which / 5) + 1;
            while at < wire.len() {
                let end = (at + step).min(wire.len());
                got.extend(d.feed(&wire[at..end]));
                at = end;
                step = step * 2 % 37 + 1;
            }
            assert_eq!(d.pending(), 0);
            assert_eq!(got.len(), payloads.len());
            for (i, (s, p)) in got.iter().enumerate() {
                assert_eq!(usize::from(*s), i % 3);
                assert_eq!(&p[..], payloads[i]);
            }
        }
        _ => {
            // Raw bytes into the decoder: whatever it yields must be consistent.
            let mut d = FrameDecoder::default();
            let frames = d.feed(rest);
            let used: usize = frames.iter().map(|(_, p)| 8 + p.len()).sum();
            assert_eq!(used + d.pending(), rest.len());
        }
    }
});
