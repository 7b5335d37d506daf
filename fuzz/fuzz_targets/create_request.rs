//! `POST /containers/create` bodies: the typed parse (`CreateRequest::parse`) and every
//! engine check that runs on the body alone before an image or a namespace is touched:
//! unsupported HostConfig fields, port bindings, `Binds`, `Mounts`, `VolumesFrom`, tmpfs
//! options, duplicate destinations, capabilities and the cgroup resources.
//!
//! Asserts no panic, and that every accepted mount has an absolute destination.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wharf_api::types::{unsupported_host_fields, CreateRequest};
use wharf_engine::mounts;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = CreateRequest::parse(data) else {
        return;
    };
    let _ = unsupported_host_fields(&r.raw_host_config);
    let exposed: Vec<String> = r
        .config
        .exposed_ports
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    let publish_all = r.raw_host_config.get("PublishAllPorts") == Some(&Value::Bool(true));
    let _ = wharf_net::ports::requests(
        r.raw_host_config
            .get("PortBindings")
            .and_then(Value::as_object),
        &exposed,
        publish_all,
    );
    let hc = &r.host_config;
    let mut reqs = Vec::new();
    for b in hc.binds.iter().flatten() {
        if let Ok(m) = mounts::parse_bind(b) {
            assert!(m.destination.starts_with('/'), "{b:?} → {m:?}");
            reqs.push(m);
        }
    }
    for m in hc.mounts.iter().flatten() {
        if let Ok(p) = mounts::parse_mount(m) {
            assert!(p.destination.starts_with('/'), "{m:?} → {p:?}");
            reqs.push(p);
        }
        if let Some(o) = &m.tmpfs_options {
            let _ = mounts::tmpfs_options(o, m.read_only);
        }
    }
    for v in hc.volumes_from.iter().flatten() {
        let _ = mounts::parse_volumes_from(v);
    }
    let _ = mounts::check_duplicates(&reqs);
    let _ = wharf_engine::spec::capabilities(hc);
    let _ = wharf_engine::spec::resources(hc);
    for opts in hc.tmpfs.iter().flatten().map(|(_, o)| o) {
        for o in opts.split(',') {
            if let Some(size) = o.strip_prefix("size=") {
                let _ = wharf_engine::spec::size_of(size);
            }
        }
    }
});
