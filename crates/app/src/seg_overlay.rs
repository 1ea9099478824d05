//! The SEG overlay the viewer draws: a stored binary SEG read back as its segments and, per
//! referenced source slice, the runs of each segment's frame (start, length, in pixels).

use std::collections::BTreeMap;

use dicom_dictionary_std::tags;
use serde_json::{Value, json};

use crate::AppError;

const COLORS: [&str; 6] = [
    "#ef4444", "#f59e0b", "#a855f7", "#ec4899", "#14b8a6", "#eab308",
];

/// Reads a binary SEG: segments and, per referenced source instance, the runs of each
/// segment's frame.
pub(crate) fn overlay_from_seg(
    bytes: &[u8],
    findings: &BTreeMap<u64, String>,
) -> Result<Value, AppError> {
    let bad = |m: &str| AppError::internal(format!("stored SEG unreadable: {m}"));
    let obj = lumen_dicom::part10::parse(bytes).map_err(|e| bad(&e.to_string()))?;
    let int = |o: &dicom_object::InMemDicomObject, t| -> Option<u64> {
        o.get(t).and_then(|e| e.to_int::<u64>().ok())
    };
    let rows = int(&obj, tags::ROWS).ok_or_else(|| bad("no Rows"))? as usize;
    let cols = int(&obj, tags::COLUMNS).ok_or_else(|| bad("no Columns"))? as usize;
    let frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1) as usize;
    let mut segments = Vec::new();
    let mut nodule_i = 0;
    for item in obj
        .get(tags::SEGMENT_SEQUENCE)
        .and_then(|e| e.items())
        .into_iter()
        .flatten()
    {
        let number = int(item, tags::SEGMENT_NUMBER).unwrap_or(0);
        let label = item
            .get(tags::SEGMENT_LABEL)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let lung = label.to_ascii_lowercase().contains("lung");
        let color = if lung {
            if label.to_ascii_lowercase().contains("right") {
                "#3b82f6"
            } else {
                "#22c55e"
            }
        } else {
            nodule_i += 1;
            COLORS[(nodule_i - 1) % COLORS.len()]
        };
        segments.push(json!({
            "number": number,
            "label": label,
            "kind": if lung { "lung" } else { "nodule" },
            "finding_id": findings.get(&number),
            "color": color,
        }));
    }
    let pixels = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.to_bytes().ok())
        .ok_or_else(|| bad("no Pixel Data"))?;
    let plane = rows * cols;
    if pixels.len() * 8 < plane * frames {
        return Err(bad("Pixel Data shorter than its frames"));
    }
    let per_frame: Vec<&dicom_object::InMemDicomObject> = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let mut slices: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (f, item) in per_frame.iter().enumerate().take(frames) {
        let seg = item
            .get(tags::SEGMENT_IDENTIFICATION_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|i| int(i, tags::REFERENCED_SEGMENT_NUMBER));
        let sop = item
            .get(tags::DERIVATION_IMAGE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|d| d.get(tags::SOURCE_IMAGE_SEQUENCE))
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|s| s.get(tags::REFERENCED_SOP_INSTANCE_UID))
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string());
        let (Some(seg), Some(sop)) = (seg, sop) else {
            continue;
        };
        let start_bit = f * plane;
        let mut runs: Vec<usize> = Vec::new();
        let mut run_start = None;
        for p in 0..plane {
            let b = start_bit + p;
            let on = pixels[b / 8] >> (b % 8) & 1 == 1;
            match (on, run_start) {
                (true, None) => run_start = Some(p),
                (false, Some(s0)) => {
                    runs.push(s0);
                    runs.push(p - s0);
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(s0) = run_start {
            runs.push(s0);
            runs.push(plane - s0);
        }
        if runs.is_empty() {
            continue;
        }
        slices
            .entry(sop)
            .or_default()
            .push(json!({ "segment": seg, "runs": runs }));
    }
    Ok(json!({
        "segments": segments,
        "rows": rows,
        "columns": cols,
        "slices": slices,
    }))
}
