//! Where a slice lies in its series, for findings drawn on it: its index in the series' slice
//! order and its image geometry.

use dicom_dictionary_std::tags;
use lumen_store::StoredInstance;
use serde_json::{Map, Value};

use crate::AppError;

/// A slice's index in the series' slice order, and its geometry.
pub(crate) struct SliceGeometry {
    pub index: usize,
    pub position: [f64; 3],
    pub row_dir: [f64; 3],
    pub col_dir: [f64; 3],
    pub spacing: [f64; 2],
}

fn floats(m: &Map<String, Value>, t: dicom_object::Tag) -> Vec<f64> {
    lumen_dicom::json::string_values(m, t)
        .iter()
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// A slice's place: position, instance number and SOP Instance UID.
struct Placed {
    position: [f64; 3],
    number: Option<i64>,
    sop: String,
}

/// The series' slices in Lumen's slice order (`lumen_dicom::geometry`), as SOP Instance
/// UIDs: what the viewer stacks, and what a finding's slice index counts in. Instances
/// without image geometry are left out.
pub(crate) fn slice_order<'a>(
    instances: impl IntoIterator<Item = (&'a str, &'a Map<String, Value>)>,
) -> Vec<String> {
    let mut normal = None;
    let mut placed = Vec::new();
    for (sop, m) in instances {
        let ipp = floats(m, tags::IMAGE_POSITION_PATIENT);
        let iop = floats(m, tags::IMAGE_ORIENTATION_PATIENT);
        if ipp.len() != 3 || iop.len() != 6 {
            continue;
        }
        if normal.is_none() {
            normal = lumen_dicom::geometry::slice_normal([
                iop[0], iop[1], iop[2], iop[3], iop[4], iop[5],
            ]);
        }
        placed.push(Placed {
            position: [ipp[0], ipp[1], ipp[2]],
            number: floats(m, tags::INSTANCE_NUMBER).first().map(|n| *n as i64),
            sop: sop.to_string(),
        });
    }
    let Some(normal) = normal else {
        return Vec::new();
    };
    lumen_dicom::geometry::sort_slices(&mut placed, normal, |p| p.position, |p| p.number);
    placed.into_iter().map(|p| p.sop).collect()
}

/// The geometry of slice `sop` among the series' instances (with their metadata).
pub(crate) fn slice_geometry(
    meta: &[(StoredInstance, Map<String, Value>)],
    sop: &str,
) -> Result<SliceGeometry, AppError> {
    let (_, m) = meta
        .iter()
        .find(|(i, _)| i.sop_instance_uid == sop)
        .ok_or_else(|| AppError::Invalid("the slice is not in the series".into()))?;
    let ipp = floats(m, tags::IMAGE_POSITION_PATIENT);
    let iop = floats(m, tags::IMAGE_ORIENTATION_PATIENT);
    let ps = floats(m, tags::PIXEL_SPACING);
    if ipp.len() != 3 || iop.len() != 6 || ps.len() != 2 {
        return Err(AppError::Invalid(
            "the slice has no image geometry (position, orientation, spacing)".into(),
        ));
    }
    let index = slice_order(meta.iter().map(|(i, m)| (i.sop_instance_uid.as_str(), m)))
        .iter()
        .position(|u| u == sop)
        .unwrap_or(0);
    Ok(SliceGeometry {
        index,
        position: [ipp[0], ipp[1], ipp[2]],
        row_dir: [iop[0], iop[1], iop[2]],
        col_dir: [iop[3], iop[4], iop[5]],
        spacing: [ps[0], ps[1]],
    })
}
