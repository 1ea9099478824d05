//! Shared helpers for lumen-ai integration tests: locating `../shared/data`.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data folder, or None (with a message) when it is absent.
/// Panics when absent and `LUMEN_REQUIRE_DATA=1` (CI).
pub fn data_dir(sub: &str) -> Option<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    let p = root.join(sub);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!(
            "test data {} is missing and LUMEN_REQUIRE_DATA=1",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: test data {} is missing (set LUMEN_REQUIRE_DATA=1 to fail instead)",
        p.display()
    );
    None
}

/// Splits a simple CSV (no quoted commas) into header and rows.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .collect();
    (header, rows)
}

/// Column index by name.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column {name}"))
}
