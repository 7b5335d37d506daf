//! A thin driver over the library for bench/images.sh:
//!
//! ```text
//! imgbench load <store> <archive>              docker load
//! imgbench save <store> <image> <out.tar>      docker save (Docker archive)
//! imgbench save-oci <store> <image> <dir>      save as an OCI layout directory
//! ```

use std::path::Path;
use std::process::ExitCode;
use wharf_image::ImageStore;

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let r = match a.get(1).map(String::as_str) {
        Some("load") if a.len() == 4 => ImageStore::open(Path::new(&a[2])).and_then(|s| {
            let mut f = std::fs::File::open(&a[3]).map_err(|e| wharf_image::Error::Io {
                path: a[3].clone().into(),
                source: e,
            })?;
            s.load(&mut f, &mut |l| println!("{l}")).map(|_| ())
        }),
        Some("save") if a.len() == 5 => ImageStore::open(Path::new(&a[2])).and_then(|s| {
            let f = std::fs::File::create(&a[4]).map_err(|e| wharf_image::Error::Io {
                path: a[4].clone().into(),
                source: e,
            })?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            s.save(&[a[3].clone()], &mut w)?;
            std::io::Write::flush(&mut w).map_err(|e| wharf_image::Error::Io {
                path: a[4].clone().into(),
                source: e,
            })
        }),
        Some("save-oci") if a.len() == 5 => ImageStore::open(Path::new(&a[2]))
            .and_then(|s| s.save_oci_dir(&[a[3].clone()], Path::new(&a[4]))),
        _ => {
            eprintln!("usage: imgbench load <store> <archive> | save <store> <image> <out> | save-oci <store> <image> <dir>");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgbench: {e}");
            ExitCode::FAILURE
        }
    }
}
