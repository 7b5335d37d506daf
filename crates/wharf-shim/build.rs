//! Links the shim as a position-dependent executable: a PIE's relocated read-only data
//! (.data.rel.ro: vtables, tables of string pointers) becomes private dirty memory in every
//! shim process, while a non-PIE's stays clean page cache shared by all of them, which
//! `memory::release_setup_pages` can drop. Code is still compiled position-independent.
fn main() {
    println!("cargo:rustc-link-arg-bin=wharf-shim=-no-pie");
}
