//! The structural scan against every real file in the shared data folder: it must accept
//! every file dicom-object parses, refuse the broken ones fast (including the two that
//! used to take seconds to fail), and cost microseconds on a CT slice.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lumen_dicom::part10::{self, Part10Error};
use lumen_dicom::scan;

/// `../shared/data`, or `None` (with a message) when absent; panics when
/// LUMEN_REQUIRE_DATA=1.
fn data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if p.join("dicom-samples").is_dir() {
        return Some(p);
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("shared data folder {} is missing", p.display());
    }
    eprintln!("SKIPPED: shared data folder {} is missing", p.display());
    None
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Part-10 files (DICM prefix) under the data folder, with their bytes.
fn part10_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let b = std::fs::read(&p).ok()?;
            part10::meta_offset(&b)?;
            let name = p.strip_prefix(root).unwrap().display().to_string();
            Some((name, b))
        })
        .collect()
}

/// Refusals within this are "fast" (lumen-dicom is unoptimised in debug builds).
fn fast() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_millis(50)
    } else {
        Duration::from_millis(10)
    }
}

/// Broken files in the corpus: name suffix and a piece of the expected message.
const BROKEN: &[(&str, &str)] = &[
    (
        "MR_truncated.dcm",
        "(7FE0,0010) at offset 1488: declared length 8192",
    ),
    ("rtplan_truncated.dcm", "(300A,00B0) at offset 1410"),
    (
        "DICOMDIR-nooffset",
        "exceeds the 224 bytes left in the enclosing sequence",
    ),
    ("meta_missing_tsyntax.dcm", "no transfer syntax UID"),
    ("no_meta_group_length.dcm", "(0002,0000) group length"),
    // Implicit VR data set under an explicit VR transfer syntax: dicom-object read it as
    // explicit VR into a 1.3 GB garbage length (1.5 s release, ~19 s debug).
    (
        "SC_rgb_jpeg.dcm",
        "(0008,0008) at offset 356 has no valid VR",
    ),
    // Private UN element with undefined length (implicit VR sequence): dicom-parser reads
    // the content as explicit VR and allocates garbage lengths (12 s release, ~60 s debug).
    (
        "UN_sequence.dcm",
        "(4453,100C) at offset 358 has VR UN and undefined length",
    ),
];
/// Broken files that dicom-object takes seconds on: not parsed raw here.
const SLOW_RAW: &[&str] = &["SC_rgb_jpeg.dcm", "UN_sequence.dcm"];

#[test]
fn scan_accepts_every_parseable_sample_and_refuses_broken_ones_fast() {
    let Some(root) = data_dir() else { return };
    let files = part10_files(&root);
    assert!(files.len() > 300, "only {} Part-10 files", files.len());
    let mut refused = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (name, b) in &files {
        let t = Instant::now();
        let scanned = scan::check_part10(b);
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, name.clone());
        }
        // Headers only: microseconds in release; large enhanced multi-frame objects
        // (thousands of elements) take tens of ms in an unoptimised build.
        assert!(took < fast() * 4, "{name}: scan took {took:?}");
        let t = Instant::now();
        let parsed = part10::parse(b);
        let took = t.elapsed();
        match (&scanned, &parsed) {
            (Ok(_), Ok(_)) => continue,
            (_, Err(e)) => {
                let known = BROKEN
                    .iter()
                    .find(|(n, _)| name.ends_with(n))
                    .unwrap_or_else(|| panic!("{name}: refused: {e}"));
                let msg = e.to_string();
                assert!(msg.contains(known.1), "{name}: {msg}");
                assert!(
                    matches!(e, Part10Error::Structure(_) | Part10Error::Unsupported(_)),
                    "{name}: {e:?}"
                );
                assert!(took < fast(), "{name}: refusal took {took:?}");
                eprintln!("{name}: refused in {took:?}: {msg}");
                if !SLOW_RAW.iter().any(|n| name.ends_with(n)) {
                    // The scan refuses nothing dicom-object would have read.
                    let off = part10::meta_offset(b).unwrap();
                    let raw = dicom_object::OpenFileOptions::new()
                        .read_preamble(dicom_object::file::ReadPreamble::Never)
                        .from_reader(&b[off..]);
                    assert!(raw.is_err(), "{name}: dicom-object parses it");
                }
                refused.push(known.0);
            }
            (Err(e), Ok(_)) => panic!("{name}: scan refused but parse accepted: {e}"),
        }
    }
    refused.sort();
    let mut expected: Vec<_> = BROKEN.iter().map(|b| b.0).collect();
    expected.sort();
    assert_eq!(refused, expected);
    eprintln!(
        "{} Part-10 files; slowest scan {:?} ({})",
        files.len(),
        slowest.0,
        slowest.1
    );
}

#[test]
fn truncated_and_corrupted_samples_fail_fast() {
    let Some(root) = data_dir() else { return };
    let p = "dicom-samples/pydicom-3.0.2-test-files/";
    let names = [
        format!("{p}CT_small.dcm"),
        format!("{p}MR_small_bigendian.dcm"),
        format!("{p}MR_small_implicit.dcm"),
        format!("{p}SC_rgb_jpeg_gdcm.dcm"),
        format!("{p}image_dfl.dcm"),
        format!("{p}test-SR.dcm"),
        "dicom-samples/pydicom-data-1.0.0/emri_small_jpeg_2k_lossless.dcm".to_string(),
        "lidc-idri-0001/ct/000001.dcm".to_string(),
    ];
    let mut worst = Duration::ZERO;
    let mut cases = 0;
    for name in &names {
        let Ok(b) = std::fs::read(root.join(name)) else {
            panic!("{name} missing")
        };
        part10::parse(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = b.len();
        let mut check = |bytes: &[u8]| {
            let t = Instant::now();
            let _ = part10::parse(bytes);
            let took = t.elapsed();
            worst = worst.max(took);
            cases += 1;
            took
        };
        // Truncations at ~150 places, denser near the start where the headers are.
        let mut cuts: Vec<usize> = (1..100).map(|i| i * n.min(4096) / 100).collect();
        cuts.extend((1..50).map(|i| i * n / 50));
        for cut in cuts {
            let took = check(&b[..cut]);
            assert!(took < fast() * 4, "{name} cut at {cut}: {took:?}");
        }
        // Bytes set to 0xFF one at a time through the first 2 KiB (tags, VRs, lengths).
        let mut c = b.clone();
        for i in (132..n.min(2048)).step_by(3) {
            let old = c[i];
            c[i] = 0xFF;
            let took = check(&c);
            assert!(took < fast() * 4, "{name} byte {i} set: {took:?}");
            c[i] = old;
        }
    }
    eprintln!("{cases} corrupted inputs, slowest parse {worst:?}");
}

#[test]
fn scan_overhead_on_a_ct_slice() {
    let Some(root) = data_dir() else { return };
    let b = std::fs::read(root.join("lidc-idri-0001/ct/000001.dcm")).unwrap();
    let iters = 2000;
    let t = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(scan::check_part10(std::hint::black_box(&b)).unwrap());
    }
    let scan_each = t.elapsed() / iters;
    let t = Instant::now();
    for _ in 0..200 {
        std::hint::black_box(part10::parse(std::hint::black_box(&b)).unwrap());
    }
    let parse_each = t.elapsed() / 200;
    let s = scan::check_part10(&b).unwrap();
    eprintln!(
        "LIDC 512x512 slice ({} bytes, {} elements): scan {scan_each:?}, parse with scan {parse_each:?} ({})",
        b.len(),
        s.elements,
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    assert!(
        scan_each < Duration::from_millis(1),
        "scan took {scan_each:?}"
    );
}

/// Ingest's header-only parse gives every sample the index record of the full parse, and
/// skips the pixel data of the common case (explicit VR, pixel data last).
#[test]
fn index_parse_without_pixel_data_matches_the_full_parse() {
    let Some(root) = data_dir() else { return };
    let (mut compared, mut skipped) = (0, 0);
    for (name, bytes) in part10_files(&root) {
        let Ok(full) = part10::parse(&bytes) else {
            assert!(
                part10::parse_for_index(&bytes).is_err(),
                "{name}: refused by parse, accepted by parse_for_index"
            );
            continue;
        };
        let (obj, skip) = part10::parse_for_index(&bytes)
            .unwrap_or_else(|e| panic!("{name}: parse accepts, parse_for_index refuses: {e}"));
        let want = lumen_dicom::attrs::index_record(&full);
        let got = lumen_dicom::attrs::index_record_with(&obj, skip.as_ref());
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(w, g, "{name}: index records differ"),
            (Err(_), Err(_)) => {}
            (w, g) => panic!(
                "{name}: full parse {:?}, header parse {:?}",
                w.is_ok(),
                g.is_ok()
            ),
        }
        compared += 1;
        if skip.is_some() {
            assert!(
                obj.get(dicom_dictionary_std::tags::PIXEL_DATA).is_none(),
                "{name}: pixel data read although skipped"
            );
            skipped += 1;
        }
    }
    eprintln!("{compared} samples compared, pixel data skipped in {skipped}");
    assert!(
        compared > 100 && skipped > 50,
        "{compared} compared, {skipped} skipped"
    );
}
