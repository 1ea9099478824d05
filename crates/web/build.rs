//! Embeds the radiologist's web app (`ui/`) into the binary: writes a table of
//! `(path, bytes, content type, ETag)` with `include_bytes!` for every file, so that `lumen serve`
//! needs no files beside it and no build step. Hand-written rather than `include_dir`
//! because Cargo then reruns this script whenever a UI file changes (`rerun-if-changed`),
//! which `include_dir` cannot ask for on stable Rust.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("ui");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut out =
        String::from("/// Embedded UI files: (path under `ui/`, bytes, content type, ETag).\n");
    out.push_str("pub(crate) static FILES: &[(&str, &[u8], &str, &str)] = &[\n");
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let bytes = std::fs::read(abs).expect("read ui file");
        // FNV-1a 64: stable across builds and Rust versions, enough to tell versions apart.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let etag = format!("\"{h:016x}\"");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?}), {:?}, {etag:?}),",
            abs.display().to_string(),
            content_type(rel)
        )
        .expect("write");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("ui_files.rs");
    std::fs::write(dest, out).expect("write ui_files.rs");
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
            continue;
        }
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            walk(root, &p, files);
        } else if let Ok(rel) = p.strip_prefix(root) {
            files.push((rel.to_string_lossy().replace('\\', "/"), p.clone()));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
