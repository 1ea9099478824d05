//! AI results as standard DICOM: a binary SEG (lungs and nodules over the source slices) and a
//! TID 1500 Comprehensive 3D SR (one measurement group per reported nodule plus the exam
//! summary), written by `lumen-report` from the engine's analysis.
//!
//! Exactly once: every UID and the date and time written are functions of the source series
//! (its Series Instance UID and the set of its SOP Instance UIDs), so a job that runs again after
//! a crash writes byte-identical objects and `Store::ingest` answers "already present".

use std::collections::HashMap;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use lumen_ai::lungs::{LEFT, LungMask, RIGHT};
use lumen_ai::{Analysis, Nodule, Volume};
use lumen_report::code::{dcm, sct, ucum};
use lumen_report::colour;
use lumen_report::{
    Algorithm, Code, Equipment, FindingGroup, Measurement, MeasurementReport, Qualitative,
    QualitativeValue, Segment, SegmentationOptions, SegmentationRef, SeriesInfo, SourceImage,
    StudyContext, WrittenObject,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Algorithm Name written in the SEG and the SR.
pub const ALGORITHM_NAME: &str = "Lumen chest CT CAD";

/// What the writers need from the source objects, taken before they become a volume.
pub struct Sources {
    study: StudyContext,
    images: HashMap<String, SourceImage>,
    series_uid: String,
    date_time: (String, String),
}

impl Sources {
    /// Reads the study context and each slice's geometry from the parsed source objects.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a InMemDicomObject>,
    ) -> Result<Self, String> {
        let mut study = None;
        let mut images = HashMap::new();
        let mut series_uid = String::new();
        let mut date_time = None;
        for o in objects {
            if study.is_none() {
                study =
                    Some(StudyContext::from_source(o).map_err(|e| format!("source study: {e}"))?);
                let s = |t| {
                    o.get(t)
                        .and_then(|e| e.to_str().ok())
                        .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
                        .filter(|v| !v.is_empty())
                };
                // A fixed date and time from the data, never "now": re-runs write equal bytes.
                date_time = Some(match (s(tags::STUDY_DATE), s(tags::STUDY_TIME)) {
                    (Some(d), Some(t)) => (d, t),
                    (Some(d), None) => (d, "000000".into()),
                    _ => match (s(tags::SERIES_DATE), s(tags::SERIES_TIME)) {
                        (Some(d), t) => (d, t.unwrap_or_else(|| "000000".into())),
                        _ => ("19700101".into(), "000000".into()),
                    },
                });
            }
            let img =
                SourceImage::from_object(o).map_err(|e| format!("source image geometry: {e}"))?;
            series_uid = img.series_instance_uid.clone();
            images.insert(img.sop_instance_uid.clone(), img);
        }
        Ok(Sources {
            study: study.ok_or("no source objects")?,
            images,
            series_uid,
            date_time: date_time.unwrap_or_default(),
        })
    }
}

/// The objects to store and what the job result records about them.
pub struct Results {
    /// The SEG, when the volume's slices are the source slices.
    pub seg: Option<WrittenObject>,
    /// The SR.
    pub sr: WrittenObject,
    /// Added to the job result (UIDs, per-nodule segment numbers and voxel counts, warnings).
    pub json: Value,
}

use lumen_report::uid::derived_uid;

/// The identity of the analysed input: series UID and the sorted set of SOP Instance UIDs.
fn input_key(series_uid: &str, sops: &[String]) -> Vec<u8> {
    let mut sops: Vec<&str> = sops.iter().map(String::as_str).collect();
    sops.sort_unstable();
    sops.dedup();
    let mut h = Sha256::new();
    h.update(series_uid.as_bytes());
    for s in sops {
        h.update([0u8]);
        h.update(s.as_bytes());
    }
    h.finalize().to_vec()
}

/// Tracking UID of a nodule: a function of the series and the nodule's rank and centre, so the
/// same analysis of the same series always gives the same UID.
fn tracking_uid(series_uid: &str, n: &Nodule) -> String {
    let c = n.center_world_mm;
    derived_uid(
        series_uid.as_bytes(),
        &format!("nodule {} {:.1} {:.1} {:.1}", n.id, c[0], c[1], c[2]),
    )
}

fn lobe_code(lobe: &str) -> Code {
    match lobe {
        "RUL" => Code::new("45653009", "SCT", "Upper lobe of right lung"),
        "RML" => Code::new("72481006", "SCT", "Middle lobe of right lung"),
        "RLL" => Code::new("266005", "SCT", "Lower lobe of right lung"),
        "LUL" => Code::new("44714003", "SCT", "Upper lobe of left lung"),
        "LLL" => Code::new("41224006", "SCT", "Lower lobe of left lung"),
        _ => sct::lung(),
    }
}

fn lumen_code(v: &str, m: &str) -> Code {
    Code::new(v, "99LUMEN", m)
}

fn type_code(n: &Nodule) -> Code {
    let v = serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "solid".into());
    let meaning = match v.as_str() {
        "part-solid" => "Part-solid",
        "ground-glass" => "Ground-glass",
        "calcified" => "Calcified",
        _ => "Solid",
    };
    lumen_code(&v.to_uppercase().replace('-', "_"), meaning)
}

fn lung_rads_concept() -> Code {
    lumen_code("LUNGRADS", "Lung-RADS v2022 category")
}

fn lung_rads_value(cat: &str) -> Code {
    lumen_code(&format!("LR{cat}"), &format!("Lung-RADS {cat}"))
}

/// Builds the SEG (when the volume is on the source grid) and the SR for `analysis`.
pub fn build(
    src: &Sources,
    volume: &Volume,
    analysis: &Analysis,
    lungs: &LungMask,
) -> Result<Results, String> {
    let version = env!("CARGO_PKG_VERSION");
    let mut warnings = Vec::new();
    let sops: Vec<String> = src.images.keys().cloned().collect();
    let key = input_key(&src.series_uid, &sops);
    let fixed = |what: &str, description: &str, number: i32, series_uid: &str| SeriesInfo {
        series_number: number,
        series_description: description.into(),
        instance_number: 1,
        series_instance_uid: Some(series_uid.into()),
        sop_instance_uid: Some(derived_uid(&key, what)),
        date_time: Some(src.date_time.clone()),
    };
    let seg_series_uid = derived_uid(&key, "seg series");
    let sr_series_uid = derived_uid(&key, "sr series");
    let equipment = Equipment {
        software_versions: version.into(),
        ..Equipment::default()
    };
    let reported: Vec<&Nodule> = analysis.reported().collect();

    // The slices in volume order, when each is an original slice on the source grid.
    let shape = volume.shape();
    let ordered: Option<Vec<&SourceImage>> = volume
        .slice_sop_uids
        .iter()
        .map(|u| u.as_ref().and_then(|u| src.images.get(u)))
        .collect();
    let ordered = ordered.filter(|o| {
        o.iter()
            .all(|s| usize::from(s.rows) == shape[1] && usize::from(s.cols) == shape[2])
    });

    let mut nodule_json = Vec::new();
    let mut seg_obj = None;
    let mut lung_voxels = json!(null);
    if let Some(ordered) = &ordered {
        let sources: Vec<SourceImage> = ordered.iter().map(|s| (*s).clone()).collect();
        let plane = shape[1] * shape[2];
        let total = plane * shape[0];
        let base = Segment {
            label: String::new(),
            description: String::new(),
            category: sct::anatomical_structure(),
            property_type: sct::lung(),
            anatomic_region: None,
            algorithm_name: ALGORITHM_NAME.into(),
            algorithm_version: version.into(),
            tracking_id: None,
            tracking_uid: None,
            recommended_display_cielab: None,
            mask: Vec::new(),
        };
        let mut right = vec![0u8; total];
        let mut left = vec![0u8; total];
        let (cz, cy, cx) = lungs.labels.dim();
        let f = lungs.factors;
        for z in 0..shape[0] {
            for y in 0..shape[1] {
                for x in 0..shape[2] {
                    let (a, b, c) = (z / f[0], y / f[1], x / f[2]);
                    if a >= cz || b >= cy || c >= cx {
                        continue;
                    }
                    let i = z * plane + y * shape[2] + x;
                    match lungs.labels[[a, b, c]] {
                        l if l == RIGHT => right[i] = 1,
                        l if l == LEFT => left[i] = 1,
                        _ => {}
                    }
                }
            }
        }
        let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
        lung_voxels = json!({ "right": count(&right), "left": count(&left) });
        let mut segments = vec![
            Segment {
                label: "Right lung".into(),
                anatomic_region: Some(sct::right_lung()),
                recommended_display_cielab: Some(colour::srgb_to_dicom_lab(colour::RIGHT_LUNG)),
                mask: right,
                ..base.clone()
            },
            Segment {
                label: "Left lung".into(),
                anatomic_region: Some(sct::left_lung()),
                recommended_display_cielab: Some(colour::srgb_to_dicom_lab(colour::LEFT_LUNG)),
                mask: left,
                ..base.clone()
            },
        ];
        for (rank, n) in reported.iter().enumerate() {
            let mut mask = vec![0u8; total];
            let mut voxels = 0usize;
            if let Some(m) = &n.mask {
                for [z, y, x] in m.volume_voxels(shape) {
                    mask[z * plane + y * shape[2] + x] = 1;
                    voxels += 1;
                }
            } else {
                warnings.push(format!("nodule {} has no mask; its segment is empty", n.id));
            }
            let segment_number = segments.len() + 1;
            let tuid = tracking_uid(&src.series_uid, n);
            nodule_json.push(json!({
                "id": n.id,
                "tracking_id": format!("Nodule {}", n.id),
                "tracking_uid": tuid,
                "segment_number": segment_number,
                "voxels": voxels,
            }));
            segments.push(Segment {
                label: format!("Nodule {}", n.id),
                description: format!("{} nodule, {}", type_code(n).meaning, n.lobe),
                category: sct::morphologically_abnormal_structure(),
                property_type: sct::nodule(),
                anatomic_region: Some(lobe_code(n.lobe)),
                tracking_id: Some(format!("Nodule {}", n.id)),
                tracking_uid: Some(tuid),
                recommended_display_cielab: Some(colour::srgb_to_dicom_lab(colour::nodule(rank))),
                mask,
                ..base.clone()
            });
        }
        let options = SegmentationOptions {
            series: fixed(
                "seg instance",
                "Lumen AI segmentation",
                1000,
                &seg_series_uid,
            ),
            equipment: equipment.clone(),
            dimension_organization_uid: Some(derived_uid(&key, "seg dimensions")),
            ..SegmentationOptions::default()
        };
        seg_obj = Some(
            lumen_report::write_segmentation(&src.study, &sources, &segments, &options)
                .map_err(|e| format!("writing the SEG: {e}"))?,
        );
    } else {
        warnings.push(
            "the volume was resampled (its slices are not the source slices): no SEG was written \
             and the SR gives nodule centres as points only"
                .to_string(),
        );
        for n in &reported {
            nodule_json.push(json!({
                "id": n.id,
                "tracking_id": format!("Nodule {}", n.id),
                "tracking_uid": tracking_uid(&src.series_uid, n),
                "segment_number": null,
            }));
        }
    }

    // The SR references the source slices (all of them, in a stable order).
    let mut sr_sources: Vec<SourceImage> = src.images.values().cloned().collect();
    sr_sources.sort_by(|a, b| a.sop_instance_uid.cmp(&b.sop_instance_uid));
    if let Some(o) = &ordered {
        sr_sources = o.iter().map(|s| (*s).clone()).collect();
    }
    let m = |concept: Code, value: f64, unit: Code, derivation: Option<Code>| Measurement {
        concept,
        value,
        unit,
        derivation,
    };
    let findings = reported
        .iter()
        .zip(&nodule_json)
        .map(|(n, j)| FindingGroup {
            tracking_id: format!("Nodule {}", n.id),
            tracking_uid: tracking_uid(&src.series_uid, n),
            finding: sct::nodule(),
            finding_site: Some(lobe_code(n.lobe)),
            measurements: vec![
                m(sct::long_axis(), n.long_axis_mm, ucum::mm(), None),
                m(sct::short_axis(), n.short_axis_mm, ucum::mm(), None),
                m(sct::volume(), n.volume_mm3, ucum::mm3(), None),
                m(
                    sct::diameter(),
                    n.mean_diameter_mm,
                    ucum::mm(),
                    Some(sct::mean()),
                ),
                m(
                    dcm::attenuation_coefficient(),
                    n.mean_hu,
                    ucum::hounsfield(),
                    Some(sct::mean()),
                ),
            ],
            qualitative: vec![
                Qualitative {
                    concept: Code::new("C41144", "NCIt", "Texture"),
                    value: QualitativeValue::Code(type_code(n)),
                },
                Qualitative {
                    concept: lung_rads_concept(),
                    value: QualitativeValue::Code(lung_rads_value(n.lung_rads.as_str())),
                },
            ],
            center: Some(n.center_world_mm),
            segment_number: j["segment_number"]
                .as_u64()
                .and_then(|v| u16::try_from(v).ok()),
        })
        .collect();
    let report = MeasurementReport {
        procedure_reported: sct::ct_chest(),
        algorithm: Algorithm {
            name: ALGORITHM_NAME.into(),
            version: version.into(),
        },
        findings,
        summary: vec![
            Qualitative {
                concept: lung_rads_concept(),
                value: QualitativeValue::Code(lung_rads_value(analysis.lung_rads.as_str())),
            },
            Qualitative {
                concept: lumen_code("LUNGRADS_MGMT", "Lung-RADS management"),
                value: QualitativeValue::Text(analysis.lung_rads_management.clone()),
            },
            Qualitative {
                concept: lumen_code("FLEISCHNER", "Fleischner 2017 recommendation"),
                value: QualitativeValue::Text(analysis.fleischner.clone()),
            },
        ],
        segmentation: seg_obj.as_ref().map(SegmentationRef::from),
        series: fixed("sr instance", "Lumen AI measurements", 1001, &sr_series_uid),
        equipment,
        device_observer_uid: Some(derived_uid(b"lumen", "device observer")),
    };
    let sr = lumen_report::write_measurement_report(&src.study, &sr_sources, &report)
        .map_err(|e| format!("writing the SR: {e}"))?;
    let json = json!({
        "seg_sop_uid": seg_obj.as_ref().map(|s| s.sop_instance_uid.clone()),
        "sr_sop_uid": sr.sop_instance_uid,
        "result_series_uid": sr.series_instance_uid,
        "seg_series_uid": seg_obj.as_ref().map(|s| s.series_instance_uid.clone()),
        "sr_series_uid": sr.series_instance_uid,
        "nodules": nodule_json,
        "lung_voxels": lung_voxels,
        "warnings": warnings,
    });
    Ok(Results {
        seg: seg_obj,
        sr,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_are_valid_and_stable() {
        let k = input_key("1.2.3", &["1.2.3.2".into(), "1.2.3.1".into()]);
        let k2 = input_key("1.2.3", &["1.2.3.1".into(), "1.2.3.2".into()]);
        assert_eq!(k, k2, "order of the instances does not matter");
        let a = derived_uid(&k, "seg instance");
        assert_eq!(a, derived_uid(&k2, "seg instance"));
        assert_ne!(a, derived_uid(&k, "sr instance"));
        assert_ne!(
            a,
            derived_uid(&input_key("1.2.3", &["1.2.3.1".into()]), "seg instance")
        );
        assert!(a.len() <= 64 && a.starts_with("2.25."));
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()) && !a[5..].starts_with('0'));
    }
}
