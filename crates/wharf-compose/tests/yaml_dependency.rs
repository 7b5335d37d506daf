//! DESIGN.md's YAML trap: `serde_yaml` is unmaintained and `serde_yml` unsound
//! (RUSTSEC-2025-0068); the workspace's lock file must hold neither.

#[test]
fn no_serde_yaml_nor_serde_yml_in_the_lock_file() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).expect("Cargo.lock");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(
        names.contains(&"serde_yaml_ng"),
        "the YAML crate we chose is not in the lock file"
    );
    for bad in ["serde_yaml", "serde_yml"] {
        assert!(
            !names.contains(&bad),
            "{bad} is in Cargo.lock: use serde_yaml_ng (DESIGN.md)"
        );
    }
}
