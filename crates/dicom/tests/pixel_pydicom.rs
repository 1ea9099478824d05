//! pydicom's test files: each transfer syntax against its uncompressed twin, colour, multi-frame,
//! 1- and 32-bit data, original frames, and broken files that must give errors, not panics.

use std::path::{Path, PathBuf};

use dicom_object::DefaultDicomObject;
use lumen_dicom::pixel::{
    Frame, Photometric, PixelError, Samples, decode_frame, encapsulated_frame, encapsulated_frames,
    frame_count, media_type, native_frame_bytes,
};

/// `../shared/data/dicom-samples`, or `None` (with a message) when absent; panics when
/// LUMEN_REQUIRE_DATA=1.
fn samples_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if p.is_dir() {
        return Some(p.join("dicom-samples"));
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("shared data folder {} is missing", p.display());
    }
    eprintln!("SKIPPED: shared data folder {} is missing", p.display());
    None
}

fn open(dir: &Path, name: &str) -> DefaultDicomObject {
    let p = ["pydicom-3.0.2-test-files", "pydicom-data-1.0.0"]
        .iter()
        .map(|d| dir.join(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found"));
    dicom_object::open_file(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn all_frames(obj: &DefaultDicomObject, name: &str) -> Vec<Frame> {
    (0..frame_count(obj))
        .map(|f| decode_frame(obj, f).unwrap_or_else(|e| panic!("{name} frame {f}: {e}")))
        .collect()
}

fn values(f: &Frame) -> Vec<i64> {
    (0..f.samples.len())
        .map(|i| f.samples.get(i).unwrap())
        .collect()
}

/// Largest and mean absolute sample difference between two decodes of the same image.
fn errors(a: &[Frame], b: &[Frame], what: &str) -> (i64, f64) {
    assert_eq!(a.len(), b.len(), "{what}: frame count");
    let mut max = 0;
    let (mut sum, mut n) = (0i64, 0usize);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.rows, x.cols, x.samples_per_pixel),
            (y.rows, y.cols, y.samples_per_pixel),
            "{what}: shape"
        );
        assert_eq!(x.photometric, y.photometric, "{what}: photometric");
        for (p, q) in values(x).iter().zip(values(y)) {
            max = max.max((p - q).abs());
            sum += (p - q).abs();
            n += 1;
        }
    }
    (max, sum as f64 / n.max(1) as f64)
}

fn max_error(a: &[Frame], b: &[Frame], what: &str) -> i64 {
    errors(a, b, what).0
}

/// Lossy twins: mean absolute error below `mean` (sharp colour edges make the maximum large
/// under chroma subsampling, so the mean is the meaningful bound).
fn check_lossy(dir: &Path, reference: &str, others: &[&str], mean: f64) {
    let r = all_frames(&open(dir, reference), reference);
    for other in others {
        let o = all_frames(&open(dir, other), other);
        let (max, m) = errors(&r, &o, other);
        println!("{other} vs {reference}: max error {max}, mean {m:.2}");
        assert!(m < mean, "{other} vs {reference}: mean error {m:.2}");
    }
}

fn check_twins(dir: &Path, reference: &str, others: &[&str], tolerance: i64) {
    let r = all_frames(&open(dir, reference), reference);
    for other in others {
        let o = all_frames(&open(dir, other), other);
        let err = max_error(&r, &o, other);
        println!("{other} vs {reference}: max error {err}");
        assert!(err <= tolerance, "{other} vs {reference}: max error {err}");
    }
}

#[test]
fn lossless_syntaxes_match_uncompressed_twins() {
    let Some(dir) = samples_dir() else { return };
    let exact: &[(&str, &[&str])] = &[
        (
            "MR_small.dcm",
            &[
                "MR_small_implicit.dcm",
                "MR_small_bigendian.dcm",
                "MR_small_expb.dcm",
                "MR_small_RLE.dcm",
                "MR_small_jp2klossless.dcm",
                "MR_small_jpeg_ls_lossless.dcm",
            ],
        ),
        (
            "emri_small.dcm",
            &[
                "emri_small_big_endian.dcm",
                "emri_small_RLE.dcm",
                "emri_small_jpeg_2k_lossless.dcm",
                "emri_small_jpeg_ls_lossless.dcm",
            ],
        ),
        ("SC_rgb.dcm", &["SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"]),
        ("SC_rgb_2frame.dcm", &["SC_rgb_rle_2frame.dcm"]),
        ("SC_rgb_16bit.dcm", &["SC_rgb_rle_16bit.dcm"]),
        ("SC_rgb_32bit.dcm", &["SC_rgb_rle_32bit.dcm"]),
        ("SC_rgb_small_odd.dcm", &["SC_rgb_small_odd_big_endian.dcm"]),
        ("rtdose.dcm", &["rtdose_expb.dcm", "rtdose_rle.dcm"]),
        (
            "rtdose_1frame.dcm",
            &["rtdose_expb_1frame.dcm", "rtdose_rle_1frame.dcm"],
        ),
        ("liver.dcm", &["liver_expb.dcm"]),
        ("liver_1frame.dcm", &["liver_expb_1frame.dcm"]),
        ("OBXXXX1A.dcm", &["OBXXXX1A_rle.dcm"]),
        ("693_UNCR.dcm", &["693_J2KR.dcm"]),
        ("US1_J2KR.dcm", &[]),
    ];
    for (reference, others) in exact {
        check_twins(&dir, reference, others, 0);
    }
}

/// Lossy twins: YBR_FULL files round-trip within 6 (rounding gives +-2; the saturated colour bars
/// of SC_rgb clip Cb/Cr at 0/255 when the YBR files were made, which costs a few more); lossy JPEG/JPEG-LS/J2K at the quality
/// these files were made with stay within the stated bounds of the 0-255 range.
#[test]
fn lossy_and_ybr_twins_are_close() {
    let Some(dir) = samples_dir() else { return };
    check_twins(
        &dir,
        "SC_rgb.dcm",
        &[
            "SC_ybr_full_uncompressed.dcm",
            "SC_ybr_full_422_uncompressed.dcm",
        ],
        6,
    );
    // NEAR for these JPEG-LS streams is 2 per component (checked with a scan-header dump).
    check_twins(
        &dir,
        "SC_rgb.dcm",
        &["SC_rgb_jls_lossy_line.dcm", "SC_rgb_jls_lossy_sample.dcm"],
        3,
    );
    check_lossy(
        &dir,
        "SC_rgb.dcm",
        &[
            "SC_rgb_jpeg_dcmtk.dcm",
            "SC_rgb_dcmtk_+eb+cy+np.dcm",
            "SC_rgb_dcmtk_+eb+cy+s2.dcm",
            "SC_rgb_dcmtk_+eb+cy+n1.dcm",
            "SC_rgb_dcmtk_+eb+cy+n2.dcm",
            "SC_rgb_dcmtk_+eb+cy+s4.dcm",
            "SC_rgb_dcmtk_+eb+cr.dcm",
            "SC_rgb_jpeg_lossy_gdcm.dcm",
            "SC_rgb_gdcm_KY.dcm",
        ],
        4.0,
    );
    check_lossy(&dir, "US1_J2KR.dcm", &["US1_J2KI.dcm"], 4.0);
    check_lossy(
        &dir,
        "SC_rgb_small_odd.dcm",
        &["SC_rgb_small_odd_jpeg.dcm"],
        4.0,
    );
    check_lossy(&dir, "JPEG2000_UNC.dcm", &["JPEG2000.dcm"], 4.0);
}

#[test]
fn other_syntaxes_decode() {
    let Some(dir) = samples_dir() else { return };
    for name in [
        "image_dfl.dcm",
        "JPEG-lossy.dcm",
        "JPGExtended.dcm",
        "JPEG-LL.dcm",
        "JPGLosslessP14SV1_1s_1f_8b.dcm",
        "JPEGLSNearLossless_08.dcm",
        "JPEGLSNearLossless_16.dcm",
        "693_J2KI.dcm",
        "MR2_J2KI.dcm",
        "MR2_J2KR.dcm",
        "GDCMJ2K_TextGBR.dcm",
        "examples_jpeg2k.dcm",
        "examples_ybr_color.dcm",
        "examples_rgb_color.dcm",
        "examples_palette.dcm",
        "SC_jpeg_no_color_transform.dcm",
        "SC_jpeg_no_color_transform_2.dcm",
        "SC_rgb_jpeg_app14_dcmd.dcm",
        "J2K_pixelrep_mismatch.dcm",
        "eCT_Supplemental.dcm",
        "CT_small.dcm",
        "MR_small_padded.dcm",
    ] {
        let obj = open(&dir, name);
        let frames = all_frames(&obj, name);
        let f = &frames[0];
        let distinct = values(f)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(distinct > 1, "{name}: flat image");
        if f.samples_per_pixel == 3 {
            assert_eq!(f.photometric, Photometric::Rgb, "{name}");
        }
    }
    // The two lossless JPEGs of MR2 agree.
    let a = all_frames(&open(&dir, "MR2_J2KR.dcm"), "MR2_J2KR");
    let b = all_frames(&open(&dir, "MR2_J2KI.dcm"), "MR2_J2KI");
    assert!(max_error(&a, &b, "MR2") < 1 << 10);
}

#[test]
fn signed_and_bit_depth_handling() {
    let Some(dir) = samples_dir() else { return };
    // CT_small is signed 16-bit CT: I16 samples with negative values.
    let ct = decode_frame(&open(&dir, "CT_small.dcm"), 0).unwrap();
    assert!(
        matches!(&ct.samples, Samples::I16(v) if v.iter().any(|&x| x < 0)) || {
            // Its stored values may all be non-negative; the type must still be signed.
            matches!(ct.samples, Samples::I16(_))
        }
    );
    // emri_small: 12 bits stored in 16: every sample below 4096.
    let mr = decode_frame(&open(&dir, "emri_small.dcm"), 3).unwrap();
    assert!(values(&mr).iter().all(|&v| (0..4096).contains(&v)));
    // 1-bit SEG-like data unpacks to 0/1.
    let liver = decode_frame(&open(&dir, "liver.dcm"), 1).unwrap();
    assert!(values(&liver).iter().all(|&v| v == 0 || v == 1));
    assert!(values(&liver).contains(&1));
    // 32-bit RT Dose.
    let dose = decode_frame(&open(&dir, "rtdose.dcm"), 14).unwrap();
    assert!(matches!(dose.samples, Samples::U32(_)));
}

#[test]
fn original_frames_and_media_types() {
    let Some(dir) = samples_dir() else { return };
    // Multi-frame JPEG baseline without a Basic Offset Table: 30 frames, each a JPEG.
    let obj = open(&dir, "examples_ybr_color.dcm");
    let frames = encapsulated_frames(&obj).unwrap();
    assert_eq!(frames.len(), 30);
    for f in &frames {
        let end = f.len() - f.iter().rev().take_while(|&&b| b == 0).count();
        assert!(f.starts_with(&[0xFF, 0xD8]) && f[..end].ends_with(&[0xFF, 0xD9]));
    }
    assert_eq!(encapsulated_frame(&obj, 29).unwrap(), frames[29]);
    assert!(matches!(
        encapsulated_frame(&obj, 30),
        Err(PixelError::FrameOutOfRange {
            frame: 30,
            count: 30
        })
    ));
    // Multi-fragment single frame (NEMA JPEG-LS): joined into one stream.
    let mr1 = dicom_object::open_file(dir.join("nema-wg04-compression/JLSL/MR1_JLSL")).unwrap();
    let jls = encapsulated_frame(&mr1, 0).unwrap();
    assert_eq!(jls.len(), 65536 * 3 + 33162);
    // Native objects have no encapsulated frames.
    assert!(encapsulated_frame(&open(&dir, "MR_small.dcm"), 0).is_err());

    assert_eq!(media_type("1.2.840.10008.1.2.4.50"), Some("image/jpeg"));
    assert_eq!(media_type("1.2.840.10008.1.2.4.51"), Some("image/jpeg"));
    assert_eq!(media_type("1.2.840.10008.1.2.4.70"), Some("image/jpeg"));
    assert_eq!(media_type("1.2.840.10008.1.2.4.80"), Some("image/jls"));
    assert_eq!(media_type("1.2.840.10008.1.2.4.90"), Some("image/jp2"));
    assert_eq!(media_type("1.2.840.10008.1.2.5"), Some("image/dicom-rle"));
    assert_eq!(
        media_type("1.2.840.10008.1.2.1"),
        Some("application/octet-stream")
    );
    assert_eq!(media_type("1.2.3.4"), None);
}

#[test]
fn native_frame_bytes_are_little_endian_frames() {
    let Some(dir) = samples_dir() else { return };
    let le = native_frame_bytes(&open(&dir, "emri_small.dcm"), 2).unwrap();
    let be = native_frame_bytes(&open(&dir, "emri_small_big_endian.dcm"), 2).unwrap();
    let rle = native_frame_bytes(&open(&dir, "emri_small_RLE.dcm"), 2).unwrap();
    assert_eq!(le.len(), 64 * 64 * 2);
    assert_eq!(le, be);
    assert_eq!(le, rle);
    let rgb_be = native_frame_bytes(&open(&dir, "SC_rgb_small_odd_big_endian.dcm"), 0).unwrap();
    assert_eq!(
        rgb_be,
        native_frame_bytes(&open(&dir, "SC_rgb_small_odd.dcm"), 0).unwrap()
    );
}

#[test]
fn broken_files_give_errors_not_panics() {
    let Some(dir) = samples_dir() else { return };
    let py = dir.join("pydicom-3.0.2-test-files");
    let data = dir.join("pydicom-data-1.0.0");
    for p in [
        py.join("MR_truncated.dcm"),
        py.join("JPEG2000-embedded-sequence-delimiter.dcm"),
        py.join("badVR.dcm"),
        py.join("rtplan_truncated.dcm"),
        py.join("meta_missing_tsyntax.dcm"),
        py.join("no_meta.dcm"),
        data.join("emri_small_jpeg_2k_lossless_too_short.dcm"),
        data.join("bad_sequence.dcm"),
        data.join("explicit_VR-UN.dcm"),
    ] {
        // Parsing may fail first; either way nothing panics.
        // (UN_sequence.dcm and SC_rgb_jpeg.dcm are left out: dicom-object spends 25-50 s failing
        // to parse them in a debug build, a Part-10 parsing matter rather than a pixel one.)
        if let Ok(obj) = dicom_object::open_file(&p) {
            for f in 0..frame_count(&obj).min(3) {
                let r = decode_frame(&obj, f);
                println!(
                    "{}: frame {f}: {:?}",
                    p.display(),
                    r.as_ref().map(|_| ()).map_err(|e| e.to_string())
                );
            }
        }
    }
}

/// Corrupting real streams (truncation, flipped bytes) must give errors or images, never panics.
#[test]
fn corrupted_streams_do_not_panic() {
    let Some(dir) = samples_dir() else { return };
    let nema = dir.join("nema-wg04-compression");
    for p in [
        nema.join("JPLL/CT1_JPLL"),
        nema.join("JPLY/MR1_JPLY"),
        nema.join("JLSL/CT2_JLSL"),
        nema.join("J2KR/MR4_J2KR"),
        nema.join("RLE/NM1_RLE"),
    ] {
        let mut obj = dicom_object::open_file(&p).unwrap();
        let frame = encapsulated_frame(&obj, 0).unwrap().into_owned();
        for cut in [0, 1, 2, 10, 64, 100, frame.len() / 2, frame.len() - 2] {
            let mut bad = frame[..cut].to_vec();
            if cut > 200 {
                bad[cut / 3] ^= 0x5A;
                bad[cut / 4] = 0xFF;
            }
            replace_fragments(&mut obj, bad);
            let r = decode_frame(&obj, 0);
            // Truncated JPEG, JPEG-LS and RLE data is always detected; JPEG 2000 allows
            // truncated code streams (fewer quality layers), so OpenJPEG may return an image.
            // Removing only the EOI loses no data, and libjpeg decodes it like files without EOI.
            let must_fail =
                cut <= 100 || (cut == frame.len() / 2 && !p.to_string_lossy().contains("J2K"));
            assert!(
                r.is_err() || !must_fail,
                "{} truncated to {cut}: decoded",
                p.display()
            );
        }
    }
}

fn replace_fragments(obj: &mut DefaultDicomObject, data: Vec<u8>) {
    use dicom_core::value::{PixelFragmentSequence, Value};
    use dicom_core::{DataElement, VR};
    let seq = PixelFragmentSequence::new(Vec::<u32>::new(), vec![data]);
    obj.put(DataElement::new(
        dicom_dictionary_std::tags::PIXEL_DATA,
        VR::OB,
        Value::PixelSequence(seq),
    ));
}

/// The one transcoder (WADO-RS and C-GET/C-MOVE): lossless twins re-encoded in Explicit VR
/// Little Endian carry native pixel data equal to the uncompressed reference, the file meta
/// names the new syntax, and the result reads back.
#[test]
fn transcoding_to_native_keeps_the_pixels() {
    let Some(dir) = samples_dir() else { return };
    for (reference, twins) in [
        (
            "MR_small.dcm",
            &[
                "MR_small_RLE.dcm",
                "MR_small_jp2klossless.dcm",
                "MR_small_jpeg_ls_lossless.dcm",
            ][..],
        ),
        ("SC_rgb_2frame.dcm", &["SC_rgb_rle_2frame.dcm"][..]),
    ] {
        let r = all_frames(&open(&dir, reference), reference);
        for twin in twins {
            let path = ["pydicom-3.0.2-test-files", "pydicom-data-1.0.0"]
                .iter()
                .map(|d| dir.join(d).join(twin))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{twin} not found"));
            let bytes = std::fs::read(&path).unwrap();
            for target in ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"] {
                let out = lumen_dicom::transcode::transcode(&bytes, target)
                    .unwrap_or_else(|e| panic!("{twin} to {target}: {e}"));
                assert_eq!(out.meta().transfer_syntax().trim_end_matches('\0'), target);
                let mut written = Vec::new();
                out.write_all(&mut written).unwrap();
                let back = lumen_dicom::part10::parse(&written).unwrap();
                let t = all_frames(&back, twin);
                assert_eq!(max_error(&r, &t, twin), 0, "{twin} to {target}");
            }
        }
    }
    assert!(matches!(
        lumen_dicom::transcode::transcode(b"not dicom", "1.2.840.10008.1.2.1"),
        Err(lumen_dicom::transcode::TranscodeError::Failed { .. })
    ));
    assert!(matches!(
        lumen_dicom::transcode::transcode(b"", "1.2.3.4"),
        Err(lumen_dicom::transcode::TranscodeError::UnknownSyntax(_))
    ));
}
