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

/// The geometry of slice `sop` among the series' instances (with their metadata).
pub(crate) fn slice_geometry(
    meta: &[(StoredInstance, Map<String, Value>)],
    sop: &str,
) -> Result<SliceGeometry, AppError> {
    let mut slices = Vec::new();
    let mut this = None;
    for (i, m) in meta {
        let ipp = floats(m, tags::IMAGE_POSITION_PATIENT);
        let iop = floats(m, tags::IMAGE_ORIENTATION_PATIENT);
        let ps = floats(m, tags::PIXEL_SPACING);
        if ipp.len() != 3 || iop.len() != 6 {
            continue;
        }
        let r = [iop[0], iop[1], iop[2]];
        let c = [iop[3], iop[4], iop[5]];
        let n = [
            r[1] * c[2] - r[2] * c[1],
            r[2] * c[0] - r[0] * c[2],
            r[0] * c[1] - r[1] * c[0],
        ];
        let along = ipp[0] * n[0] + ipp[1] * n[1] + ipp[2] * n[2];
        // Ascending z as the AI engine orders slices (for axial series).
        let key = if n[2] < 0.0 { -along } else { along };
        slices.push((key, i.sop_instance_uid.clone()));
        if i.sop_instance_uid == sop && ps.len() == 2 {
            this = Some(([ipp[0], ipp[1], ipp[2]], r, c, [ps[0], ps[1]]));
        }
    }
    let (position, row_dir, col_dir, spacing) = this.ok_or_else(|| {
        AppError::Invalid("the slice has no image geometry (position, orientation, spacing)".into())
    })?;
    slices.sort_by(|a, b| a.0.total_cmp(&b.0));
    let index = slices.iter().position(|(_, u)| u == sop).unwrap_or(0);
    Ok(SliceGeometry {
        index,
        position,
        row_dir,
        col_dir,
        spacing,
    })
}
