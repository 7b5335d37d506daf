//! Image references (`docker pull NAME`, `FROM`, tags in archives and API paths).
//!
//! Asserts: a reference that parses prints (full and familiar forms) to strings that parse
//! back to the same value, and the printed forms are stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_image::reference::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = parse(s) else {
        return;
    };
    let full = r.to_string();
    let again = parse(&full).unwrap_or_else(|e| panic!("{s:?} → {full:?} does not parse: {e}"));
    assert_eq!(again, r, "{s:?} → {full:?}");
    assert_eq!(again.to_string(), full);
    let familiar = r.familiar_string();
    let back = parse(&familiar).unwrap_or_else(|e| panic!("{s:?} → {familiar:?}: {e}"));
    assert_eq!(back, r, "{s:?} → familiar {familiar:?}");
    let name = r.familiar_name();
    let bare = parse(&name).unwrap_or_else(|e| panic!("{s:?} → name {name:?}: {e}"));
    assert_eq!(
        (bare.domain, bare.path),
        (r.domain, r.path),
        "{s:?} → {name:?}"
    );
});
