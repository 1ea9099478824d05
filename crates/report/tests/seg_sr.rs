//! Writes a SEG and a TID 1500 SR over real LIDC slices, validates both with dciodvfy and reads
//! them back with highdicom.

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use lumen_report::code::sct;
use lumen_report::*;

/// `../shared/data`, or `None` (with a message) when absent; panics when LUMEN_REQUIRE_DATA=1.
fn data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("test data missing at {}", p.display());
    }
    eprintln!("skipping: test data missing at {}", p.display());
    None
}

fn require_tools() -> bool {
    std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Runs dciodvfy on a file: `None` (with a message) when the tool is absent, else its output.
fn dciodvfy(path: &Path) -> Option<String> {
    match Command::new("dciodvfy").arg(path).output() {
        Ok(out) => Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => {
            assert!(!require_tools(), "dciodvfy unavailable: {e}");
            eprintln!("skipping dciodvfy: {e}");
            None
        }
    }
}

/// Asserts dciodvfy finds no errors; prints its warnings.
fn assert_valid(path: &Path, what: &str) {
    let Some(out) = dciodvfy(path) else { return };
    eprintln!("dciodvfy {what}:\n{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy errors in {what}: {errors:#?}");
}

/// The Python interpreter from LUMEN_PYTHON if highdicom imports there.
fn python() -> Option<String> {
    let py = std::env::var("LUMEN_PYTHON").ok().filter(|p| !p.is_empty());
    let ok = py.as_ref().is_some_and(|py| {
        Command::new(py)
            .args(["-c", "import highdicom"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ok {
        return py;
    }
    assert!(
        !require_tools(),
        "LUMEN_PYTHON must name a Python with highdicom"
    );
    eprintln!("skipping highdicom read-back: set LUMEN_PYTHON to a Python with highdicom");
    None
}

struct Fixture {
    study: StudyContext,
    sources: Vec<SourceImage>,
}

/// 16 consecutive LIDC-IDRI-0001 slices from the middle of the series, sorted by position.
fn lidc(dir: &Path) -> Fixture {
    let ct = dir.join("lidc-idri-0001/ct");
    let mut headers = Vec::new();
    for entry in std::fs::read_dir(&ct).expect("read LIDC dir") {
        let path = entry.expect("entry").path();
        let obj = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(&path)
            .expect("open LIDC slice");
        let src = SourceImage::from_object(&obj).expect("source geometry");
        headers.push((src, obj));
    }
    headers.sort_by(|a, b| a.0.image_position_patient[2].total_cmp(&b.0.image_position_patient[2]));
    let mid = headers.len() / 2;
    let picked: Vec<_> = headers.drain(mid - 8..mid + 8).collect();
    let study = StudyContext::from_source(&picked[0].1).expect("study context");
    Fixture {
        study,
        sources: picked.into_iter().map(|(s, _)| s).collect(),
    }
}

/// Masks over the fixture grid: a "lung" (two ellipses, absent from the first two slices) and a
/// spherical nodule of radius 6 mm.
fn masks(f: &Fixture) -> (Vec<u8>, Vec<u8>) {
    let s0 = &f.sources[0];
    let (rows, cols) = (usize::from(s0.rows), usize::from(s0.cols));
    let n = f.sources.len();
    let mut lung = vec![0u8; n * rows * cols];
    let mut nodule = vec![0u8; n * rows * cols];
    let [dr, dc] = s0.pixel_spacing;
    let zc = f.sources[8].image_position_patient[2];
    let (rc, cc) = (250.0, 160.0);
    for (z, src) in f.sources.iter().enumerate() {
        let dz = src.image_position_patient[2] - zc;
        for r in 0..rows {
            for c in 0..cols {
                let i = (z * rows + r) * cols + c;
                let (y, x) = (r as f64, c as f64);
                let right = ((x - 160.0) / 90.0).powi(2) + ((y - 250.0) / 140.0).powi(2) <= 1.0;
                let left = ((x - 352.0) / 90.0).powi(2) + ((y - 250.0) / 140.0).powi(2) <= 1.0;
                if z >= 2 && (right || left) {
                    lung[i] = 1;
                }
                let d2 = ((y - rc) * dr).powi(2) + ((x - cc) * dc).powi(2) + dz * dz;
                if d2 <= 36.0 {
                    nodule[i] = 255;
                }
            }
        }
    }
    (lung, nodule)
}

fn runs(mask: &[u8]) -> Vec<[usize; 2]> {
    let mut out: Vec<[usize; 2]> = Vec::new();
    for (i, &v) in mask.iter().enumerate() {
        if v == 0 {
            continue;
        }
        match out.last_mut() {
            Some(last) if last[0] + last[1] == i => last[1] += 1,
            _ => out.push([i, 1]),
        }
    }
    out
}

fn segments(f: &Fixture) -> Vec<Segment> {
    let (lung, nodule) = masks(f);
    let base = Segment {
        label: String::new(),
        description: String::new(),
        category: sct::anatomical_structure(),
        property_type: sct::lung(),
        anatomic_region: None,
        algorithm_name: "Lumen chest CT".into(),
        algorithm_version: "0.1.0".into(),
        tracking_id: None,
        tracking_uid: None,
        recommended_display_cielab: None,
        mask: Vec::new(),
    };
    vec![
        Segment {
            label: "Lungs".into(),
            mask: lung,
            ..base.clone()
        },
        Segment {
            label: "Nodule 1".into(),
            description: "Solid nodule, right upper lobe".into(),
            category: sct::morphologically_abnormal_structure(),
            property_type: sct::nodule(),
            anatomic_region: Some(sct::lung()),
            tracking_id: Some("Nodule 1".into()),
            tracking_uid: Some(uid::new_uid()),
            recommended_display_cielab: Some([54_000, 53_000, 46_000]),
            mask: nodule,
            ..base
        },
    ]
}

#[test]
fn seg_over_lidc_validates_and_reads_back_voxel_for_voxel() {
    let Some(dir) = data_dir() else { return };
    let f = lidc(&dir);
    let segs = segments(&f);
    let seg = write_segmentation(&f.study, &f.sources, &segs, &SegmentationOptions::default())
        .expect("write SEG");
    assert_eq!(seg.study_instance_uid, f.study.study_instance_uid);

    // Structure as written: 14 lung frames + the nodule's slices, all with plane positions.
    let obj = dicom_object::from_reader(&seg.bytes[128..]).expect("parse SEG back");
    let frames: usize = obj
        .element(tags::NUMBER_OF_FRAMES)
        .expect("frames")
        .to_int()
        .expect("int");
    let nodule_slices = (0..16)
        .filter(|z| {
            let plane = 512 * 512;
            segs[1].mask[z * plane..(z + 1) * plane]
                .iter()
                .any(|&v| v != 0)
        })
        .count();
    assert!(nodule_slices >= 3, "nodule spans {nodule_slices} slices");
    assert_eq!(frames, 14 + nodule_slices);

    let tmp = tempfile::tempdir().expect("tempdir");
    let seg_path = tmp.path().join("seg.dcm");
    std::fs::write(&seg_path, &seg.bytes).expect("write file");
    assert_valid(&seg_path, "SEG");

    let Some(py) = python() else { return };
    let input = serde_json::json!({
        "seg": seg_path,
        "sources": f.sources.iter().map(|s| serde_json::json!({
            "uid": s.sop_instance_uid,
            "position": s.image_position_patient,
        })).collect::<Vec<_>>(),
    });
    let out = read_back(&py, tmp.path(), &input);
    let read = &out["seg"];
    assert_eq!(read["segment_numbers"], serde_json::json!([1, 2]));
    assert_eq!(read["labels"]["2"]["type"], "27925004");
    assert_eq!(read["labels"]["1"]["type"], "39607008");
    for (i, s) in segs.iter().enumerate() {
        let want = serde_json::to_value(runs(&s.mask)).expect("json");
        let n = (i + 1).to_string();
        assert_eq!(
            read["by_source"][&n], want,
            "segment {n} by source instance"
        );
        assert_eq!(
            read["by_volume"][&n], want,
            "segment {n} through the volume API"
        );
    }
    eprintln!(
        "highdicom {} read {} segments back voxel for voxel",
        out["highdicom"],
        segs.len()
    );
}

fn read_back(py: &str, tmp: &Path, input: &serde_json::Value) -> serde_json::Value {
    let input_path = tmp.join("input.json");
    std::fs::write(&input_path, input.to_string()).expect("write input");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/read_back.py");
    let out = Command::new(py)
        .arg(script)
        .arg(&input_path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "read_back.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read_back.py JSON")
}

fn report(seg: &WrittenObject) -> MeasurementReport {
    use lumen_report::code::{dcm, ucum};
    let lumen = |v: &str, m: &str| Code::new(v, "99LUMEN", m);
    let m = |concept: Code, value: f64, unit: Code, derivation: Option<Code>| Measurement {
        concept,
        value,
        unit,
        derivation,
    };
    let texture = Code::new("C41144", "NCIt", "Texture");
    let lung_rads = lumen("LUNGRADS", "Lung-RADS v2022 category");
    MeasurementReport {
        procedure_reported: sct::ct_chest(),
        algorithm: Algorithm {
            name: "Lumen chest CT".into(),
            version: "0.1.0".into(),
        },
        findings: vec![
            FindingGroup {
                tracking_id: "Nodule 1".into(),
                tracking_uid: uid::new_uid(),
                finding: sct::nodule(),
                finding_site: Some(Code::new("45653009", "SCT", "Upper lobe of right lung")),
                measurements: vec![
                    m(sct::long_axis(), 12.3, ucum::mm(), None),
                    m(sct::short_axis(), 9.75, ucum::mm(), None),
                    m(sct::volume(), 904.78, ucum::mm3(), None),
                    m(sct::diameter(), 11.025, ucum::mm(), Some(sct::mean())),
                    m(
                        dcm::attenuation_coefficient(),
                        -12.5,
                        ucum::hounsfield(),
                        Some(sct::mean()),
                    ),
                ],
                qualitative: vec![
                    Qualitative {
                        concept: texture.clone(),
                        value: QualitativeValue::Code(lumen("SOLID", "Solid")),
                    },
                    Qualitative {
                        concept: lung_rads.clone(),
                        value: QualitativeValue::Code(lumen("4A", "Lung-RADS 4A")),
                    },
                ],
                center: Some([-60.1, -30.2, -120.3]),
                segment_number: Some(2),
            },
            FindingGroup {
                tracking_id: "Nodule 2".into(),
                tracking_uid: uid::new_uid(),
                finding: sct::nodule(),
                finding_site: Some(sct::lung()),
                measurements: vec![
                    m(sct::long_axis(), 4.5, ucum::mm(), None),
                    m(sct::volume(), 33.0, ucum::mm3(), None),
                ],
                qualitative: vec![Qualitative {
                    concept: lung_rads.clone(),
                    value: QualitativeValue::Code(lumen("2", "Lung-RADS 2")),
                }],
                center: Some([80.5, 10.25, -118.0]),
                segment_number: None,
            },
        ],
        summary: vec![
            Qualitative {
                concept: lung_rads,
                value: QualitativeValue::Text("4A".into()),
            },
            Qualitative {
                concept: lumen("FLEISCHNER", "Fleischner 2017 recommendation"),
                value: QualitativeValue::Text("CT at 3 months".into()),
            },
        ],
        segmentation: Some(SegmentationRef::from(seg)),
        series: SeriesInfo {
            series_number: 1001,
            series_description: "Lumen AI measurements".into(),
            instance_number: 1,
            ..SeriesInfo::default()
        },
        equipment: Equipment::default(),
        device_observer_uid: None,
    }
}

#[test]
fn sr_tid1500_validates_and_reads_back() {
    let Some(dir) = data_dir() else { return };
    let f = lidc(&dir);
    let segs = segments(&f);
    let seg = write_segmentation(&f.study, &f.sources, &segs, &SegmentationOptions::default())
        .expect("write SEG");
    let rep = report(&seg);
    let sr = write_measurement_report(&f.study, &f.sources, &rep).expect("write SR");
    assert_eq!(sr.study_instance_uid, seg.study_instance_uid);
    assert_ne!(sr.series_instance_uid, seg.series_instance_uid);

    let tmp = tempfile::tempdir().expect("tempdir");
    let seg_path = tmp.path().join("seg.dcm");
    let sr_path = tmp.path().join("sr.dcm");
    std::fs::write(&seg_path, &seg.bytes).expect("write SEG file");
    std::fs::write(&sr_path, &sr.bytes).expect("write SR file");
    assert_valid(&sr_path, "SR");

    let Some(py) = python() else { return };
    let out = read_back(&py, tmp.path(), &serde_json::json!({ "sr": sr_path }));
    let read = &out["sr"];
    let groups = read["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), rep.findings.len());
    for want in &rep.findings {
        let got = groups
            .iter()
            .find(|g| g["tracking_uid"] == want.tracking_uid.as_str())
            .unwrap_or_else(|| panic!("group {} missing", want.tracking_id));
        assert_eq!(got["tracking_id"], want.tracking_id.as_str());
        assert_eq!(got["finding"], "27925004");
        let site = want.finding_site.as_ref().map(|c| c.value.as_str());
        assert_eq!(got["finding_sites"][0].as_str(), site);
        let measurements = got["measurements"].as_array().expect("measurements");
        assert_eq!(measurements.len(), want.measurements.len());
        for (g, w) in measurements.iter().zip(&want.measurements) {
            assert_eq!(g["concept"], w.concept.value.as_str());
            assert_eq!(g["unit"], w.unit.value.as_str());
            assert_eq!(g["value"].as_f64(), Some(w.value), "{}", w.concept.meaning);
            let d = w.derivation.as_ref().map(|c| c.value.as_str());
            assert_eq!(g["derivation"].as_str(), d);
        }
        let qual: Vec<(&str, &str)> = got["qualitative"]
            .as_array()
            .expect("qualitative")
            .iter()
            .map(|q| {
                (
                    q["concept"].as_str().unwrap_or(""),
                    q["value"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let want_qual: Vec<(&str, &str)> = want
            .qualitative
            .iter()
            .map(|q| match &q.value {
                QualitativeValue::Code(c) => (q.concept.value.as_str(), c.value.as_str()),
                QualitativeValue::Text(t) => (q.concept.value.as_str(), t.as_str()),
            })
            .collect();
        assert_eq!(qual, want_qual);
        match want.segment_number {
            Some(n) => assert_eq!(got["segment"], serde_json::json!([seg.sop_instance_uid, n])),
            None => assert!(got["segment"].is_null()),
        }
    }
    assert_eq!(
        read["summary"],
        serde_json::json!([
            {"concept": "LUNGRADS", "text": "4A"},
            {"concept": "FLEISCHNER", "text": "CT at 3 months"},
        ])
    );
    assert_eq!(read["observer"]["Device Observer Name"], "Lumen chest CT");
    let mut evidence: Vec<&str> = f
        .sources
        .iter()
        .map(|s| s.sop_instance_uid.as_str())
        .collect();
    evidence.push(&seg.sop_instance_uid);
    evidence.sort();
    assert_eq!(read["evidence"], serde_json::json!(evidence));
    eprintln!(
        "highdicom {} read {} measurement groups back",
        out["highdicom"],
        groups.len()
    );
}

#[test]
fn seg_over_dcmqi_three_slice_ct_validates() {
    let Some(dir) = data_dir() else { return };
    let ct = dir.join("dicom-samples/dcmqi-examples/segmentations/ct-3slice");
    let mut headers: Vec<_> = ["01.dcm", "02.dcm", "03.dcm"]
        .iter()
        .map(|n| {
            let obj = OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .open_file(ct.join(n))
                .expect("open dcmqi slice");
            (SourceImage::from_object(&obj).expect("geometry"), obj)
        })
        .collect();
    headers.sort_by(|a, b| a.0.image_position_patient[2].total_cmp(&b.0.image_position_patient[2]));
    let study = StudyContext::from_source(&headers[0].1).expect("study");
    let sources: Vec<SourceImage> = headers.into_iter().map(|(s, _)| s).collect();
    let plane = 512 * 512;
    let mut mask = vec![0u8; 3 * plane];
    for z in 0..3 {
        for r in 200..260 {
            for c in 300..340 {
                mask[z * plane + r * 512 + c] = 1;
            }
        }
    }
    let seg = Segment {
        label: "Box".into(),
        description: String::new(),
        category: sct::morphologically_abnormal_structure(),
        property_type: sct::nodule(),
        anatomic_region: Some(sct::lung()),
        algorithm_name: "Lumen test".into(),
        algorithm_version: "0".into(),
        tracking_id: None,
        tracking_uid: None,
        recommended_display_cielab: None,
        mask,
    };
    let w = write_segmentation(&study, &sources, &[seg], &SegmentationOptions::default())
        .expect("write SEG");
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("seg.dcm");
    std::fs::write(&path, &w.bytes).expect("write file");
    assert_valid(&path, "SEG over dcmqi ct-3slice");
}

#[test]
fn fixed_uids_and_date_make_identical_bytes() {
    let Some(dir) = data_dir() else { return };
    let f = lidc(&dir);
    let segs = segments(&f);
    let fixed = |sop: &str, series: &str| SeriesInfo {
        sop_instance_uid: Some(sop.into()),
        series_instance_uid: Some(series.into()),
        date_time: Some(("20000101".into(), "120000".into())),
        ..SeriesInfo::default()
    };
    let opts = SegmentationOptions {
        series: fixed("2.25.11", "2.25.10"),
        dimension_organization_uid: Some("2.25.12".into()),
        ..SegmentationOptions::default()
    };
    let a = write_segmentation(&f.study, &f.sources, &segs, &opts).expect("SEG a");
    let b = write_segmentation(&f.study, &f.sources, &segs, &opts).expect("SEG b");
    assert_eq!(a.sop_instance_uid, "2.25.11");
    assert_eq!(a.series_instance_uid, "2.25.10");
    assert!(a.bytes == b.bytes, "SEG bytes differ between runs");
    let mut rep = report(&a);
    rep.series = fixed("2.25.21", "2.25.10");
    rep.device_observer_uid = Some("2.25.22".into());
    let x = write_measurement_report(&f.study, &f.sources, &rep).expect("SR x");
    let y = write_measurement_report(&f.study, &f.sources, &rep).expect("SR y");
    assert_eq!(x.sop_instance_uid, "2.25.21");
    assert!(x.bytes == y.bytes, "SR bytes differ between runs");
}
