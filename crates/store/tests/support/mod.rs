//! Helpers shared by lumen-store's test files: the sample object and a file listing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// pydicom's `CT_small.dcm` from `../shared/data`, or `None` (with a message) when absent;
/// panics when `LUMEN_REQUIRE_DATA=1`.
pub fn sample() -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    if !p.exists() {
        assert!(
            std::env::var("LUMEN_REQUIRE_DATA").as_deref() != Ok("1"),
            "../shared/data missing"
        );
        eprintln!("SKIP: ../shared/data not found");
        return None;
    }
    Some(std::fs::read(p).expect("read sample"))
}

/// Every file below `p`.
pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
