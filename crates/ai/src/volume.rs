//! CT volume assembly: DICOM slices to a 3D Hounsfield-unit volume with patient geometry.
//!
//! Slices are ordered along the slice normal (the cross product of the ImageOrientationPatient
//! cosines) by their ImagePositionPatient, never by file name or InstanceNumber. Rescale slope and
//! intercept are applied per slice, PixelPaddingValue (and its range) and out-of-field pixels become
//! air (-1024 HU). Duplicate positions are dropped, uneven spacing, missing slices and gantry tilt
//! are resampled onto a regular orthogonal grid; localizers are skipped; everything else that
//! cannot be assembled is refused with a [`VolumeError`] that says why.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use lumen_dicom::pixel::{Samples, decode_frame};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

/// HU value used for air, padding and pixels outside the reconstruction field.
pub const AIR_HU: i16 = -1024;

/// Why a set of DICOM instances could not become a volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// A file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No usable image was given.
    #[error("no usable CT image: {0}")]
    NoImages(String),
    /// An attribute needed for geometry or rescaling is missing or invalid.
    #[error("instance {sop_uid}: missing or invalid {attribute}")]
    Attribute {
        /// SOP Instance UID of the offending instance (or "?" when absent).
        sop_uid: String,
        /// The attribute keyword.
        attribute: &'static str,
    },
    /// Pixel data could not be decoded.
    #[error("instance {sop_uid}: {source}")]
    Pixel {
        /// SOP Instance UID of the offending instance.
        sop_uid: String,
        /// The decoder's error.
        #[source]
        source: lumen_dicom::pixel::PixelError,
    },
    /// Instances of several series were given together.
    #[error("instances belong to {count} series ({uids}); pass one series")]
    MixedSeries {
        /// Number of distinct series.
        count: usize,
        /// The series UIDs, comma separated.
        uids: String,
    },
    /// The slices are not parallel or do not share a size or pixel spacing.
    #[error("inconsistent slices: {0}")]
    Inconsistent(String),
    /// The slices cannot be put on a regular grid without inventing data.
    #[error("cannot build a regular volume: {0}")]
    Spacing(String),
    /// The image kind is not supported.
    #[error("unsupported image: {0}")]
    Unsupported(String),
}

/// Patient-coordinate geometry of a volume indexed `[z, y, x]` (slice, row, column).
///
/// `world = origin + x * spacing[2] * row_dir + y * spacing[1] * col_dir + z * spacing[0] * slice_dir`,
/// in DICOM patient coordinates (LPS, millimetres).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// World position of the centre of voxel (0, 0, 0), mm.
    pub origin: [f64; 3],
    /// Direction of increasing column index x (first ImageOrientationPatient triplet).
    pub row_dir: [f64; 3],
    /// Direction of increasing row index y (second ImageOrientationPatient triplet).
    pub col_dir: [f64; 3],
    /// Direction of increasing slice index z.
    pub slice_dir: [f64; 3],
    /// Voxel spacing `[z, y, x]` in mm.
    pub spacing: [f64; 3],
}

impl Geometry {
    /// An axial geometry with identity orientation.
    pub fn axial(origin: [f64; 3], spacing: [f64; 3]) -> Self {
        Self {
            origin,
            row_dir: [1.0, 0.0, 0.0],
            col_dir: [0.0, 1.0, 0.0],
            slice_dir: [0.0, 0.0, 1.0],
            spacing,
        }
    }

    /// World position (mm) of a continuous voxel index `[z, y, x]`.
    pub fn voxel_to_world(&self, v: [f64; 3]) -> [f64; 3] {
        let mut w = self.origin;
        for (i, wi) in w.iter_mut().enumerate() {
            *wi += v[2] * self.spacing[2] * self.row_dir[i]
                + v[1] * self.spacing[1] * self.col_dir[i]
                + v[0] * self.spacing[0] * self.slice_dir[i];
        }
        w
    }

    /// Continuous voxel index `[z, y, x]` of a world position (mm): the exact inverse of
    /// [`Geometry::voxel_to_world`], also for non-orthogonal axes.
    pub fn world_to_voxel(&self, w: [f64; 3]) -> [f64; 3] {
        // Columns of M are the scaled axes for x, y, z; solve M * [x y z] = w - origin.
        let a = scale(self.row_dir, self.spacing[2]);
        let b = scale(self.col_dir, self.spacing[1]);
        let c = scale(self.slice_dir, self.spacing[0]);
        let d = sub(w, self.origin);
        let det = dot(a, cross(b, c));
        let x = dot(d, cross(b, c)) / det;
        let y = dot(a, cross(d, c)) / det;
        let z = dot(a, cross(b, d)) / det;
        [z, y, x]
    }

    /// Volume of one voxel in mm³.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// +1 when increasing z goes towards the head (patient +Z in LPS), -1 otherwise.
    pub fn superior_sign(&self) -> f64 {
        if self.slice_dir[2] >= 0.0 { 1.0 } else { -1.0 }
    }

    /// True when the slices are axial (normal within ~18 degrees of the patient z axis).
    pub fn is_axial(&self) -> bool {
        self.slice_dir[2].abs() > 0.95
    }
}

/// A CT volume in Hounsfield units, indexed `[z, y, x]`, with its patient geometry.
#[derive(Debug, Clone)]
pub struct Volume {
    /// HU values, `[z, y, x]`; air, padding and out-of-field pixels are [`AIR_HU`].
    pub hu: Array3<i16>,
    /// Patient-coordinate geometry.
    pub geometry: Geometry,
    /// Series Instance UID, when known.
    pub series_uid: Option<String>,
    /// Study Instance UID, when known.
    pub study_uid: Option<String>,
    /// For each z index, the SOP Instance UID of the source slice when it is an original slice
    /// (None where the slice was interpolated).
    pub slice_sop_uids: Vec<Option<String>>,
    /// What was repaired or ignored while assembling (no patient data).
    pub warnings: Vec<String>,
}

impl Volume {
    /// Builds a volume from an HU array and a geometry (phantoms, tests, other sources).
    pub fn new(hu: Array3<i16>, geometry: Geometry) -> Self {
        let nz = hu.shape()[0];
        Self {
            hu,
            geometry,
            series_uid: None,
            study_uid: None,
            slice_sop_uids: vec![None; nz],
            warnings: Vec::new(),
        }
    }

    /// Shape `[z, y, x]`.
    pub fn shape(&self) -> [usize; 3] {
        let s = self.hu.shape();
        [s[0], s[1], s[2]]
    }

    /// World position (mm) of a continuous voxel index `[z, y, x]`.
    pub fn voxel_to_world(&self, v: [f64; 3]) -> [f64; 3] {
        self.geometry.voxel_to_world(v)
    }

    /// Continuous voxel index `[z, y, x]` of a world position (mm).
    pub fn world_to_voxel(&self, w: [f64; 3]) -> [f64; 3] {
        self.geometry.world_to_voxel(w)
    }

    /// Reads a series from files or folders (folders are read non-recursively; files that are not
    /// DICOM images are skipped with a warning).
    pub fn from_dicom_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, VolumeError> {
        let files = expand_paths(paths)?;
        if files.is_empty() {
            return Err(VolumeError::NoImages("no files given".into()));
        }
        let results: Vec<Result<Option<SliceData>, (PathBuf, String)>> = files
            .par_iter()
            .map(|p| match dicom_object::open_file(p) {
                Ok(obj) => slice_from_object(&obj).map_err(|e| (p.clone(), e.to_string())),
                Err(e) => Err((p.clone(), e.to_string())),
            })
            .collect();
        let mut slices = Vec::new();
        let mut warnings = Vec::new();
        let mut unreadable = 0usize;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(Some(s)) => slices.push(s),
                Ok(None) => {}
                Err((p, e)) => {
                    unreadable += 1;
                    if first_err.is_none() {
                        first_err = Some(VolumeError::Read { path: p, reason: e });
                    }
                }
            }
        }
        if unreadable > 0 {
            if slices.is_empty() {
                return Err(first_err.unwrap_or(VolumeError::NoImages("nothing readable".into())));
            }
            warnings.push(format!(
                "{unreadable} file(s) skipped: not readable CT images"
            ));
        }
        let mut vol = assemble(slices)?;
        warnings.append(&mut vol.warnings);
        vol.warnings = warnings;
        Ok(vol)
    }

    /// Builds a volume from in-memory DICOM instances of one series (e.g. archived instances).
    pub fn from_objects(objects: Vec<DefaultDicomObject>) -> Result<Self, VolumeError> {
        let slices: Vec<Option<SliceData>> = objects
            .par_iter()
            .map(slice_from_object)
            .collect::<Result<_, _>>()?;
        assemble(slices.into_iter().flatten().collect())
    }
}

fn expand_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, VolumeError> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| VolumeError::Read {
                path: p.to_path_buf(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.to_path_buf());
        }
    }
    Ok(out)
}

/// One decoded slice with the metadata assembly needs.
#[derive(Debug, Clone)]
pub(crate) struct SliceData {
    pub sop_uid: String,
    pub series_uid: Option<String>,
    pub study_uid: Option<String>,
    pub position: [f64; 3],
    pub orientation: [f64; 6],
    /// Pixel spacing (row spacing = between rows (y), column spacing = between columns (x)).
    pub pixel_spacing: [f64; 2],
    pub rows: usize,
    pub cols: usize,
    pub instance_number: Option<i32>,
    pub hu: Vec<i16>,
}

fn get_str(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().trim_end_matches('\0').to_string())
        .filter(|s| !s.is_empty())
}

fn get_f64s(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_float64().ok())
}

fn get_i64(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<i64>().ok())
}

/// Extracts one slice; `Ok(None)` for instances that are not part of an axial stack
/// (localizers, non-image objects).
pub(crate) fn slice_from_object(
    obj: &DefaultDicomObject,
) -> Result<Option<SliceData>, VolumeError> {
    let sop_uid = get_str(obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| "?".into());
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Ok(None);
    }
    if let Some(it) = get_str(obj, tags::IMAGE_TYPE)
        && it.to_ascii_uppercase().contains("LOCALIZER")
    {
        return Ok(None);
    }
    let attr = |attribute: &'static str| VolumeError::Attribute {
        sop_uid: sop_uid.clone(),
        attribute,
    };
    if let Some(n) = get_i64(obj, tags::NUMBER_OF_FRAMES)
        && n > 1
    {
        return Err(VolumeError::Unsupported(format!(
            "multi-frame instance {sop_uid} ({n} frames); enhanced CT is not supported yet"
        )));
    }
    let spp = get_i64(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if spp != 1 {
        return Err(VolumeError::Unsupported(format!(
            "instance {sop_uid} is a colour image"
        )));
    }
    let position = get_f64s(obj, tags::IMAGE_POSITION_PATIENT)
        .filter(|v| v.len() == 3 && v.iter().all(|x| x.is_finite()))
        .ok_or_else(|| attr("ImagePositionPatient"))?;
    let orientation = get_f64s(obj, tags::IMAGE_ORIENTATION_PATIENT)
        .filter(|v| v.len() == 6 && v.iter().all(|x| x.is_finite()))
        .ok_or_else(|| attr("ImageOrientationPatient"))?;
    let pixel_spacing = get_f64s(obj, tags::PIXEL_SPACING)
        .filter(|v| v.len() == 2 && v.iter().all(|x| x.is_finite() && *x > 0.0))
        .ok_or_else(|| attr("PixelSpacing"))?;
    let slope = get_f64s(obj, tags::RESCALE_SLOPE)
        .and_then(|v| v.first().copied())
        .unwrap_or(1.0);
    let intercept = get_f64s(obj, tags::RESCALE_INTERCEPT)
        .and_then(|v| v.first().copied())
        .unwrap_or(0.0);
    if !slope.is_finite() || !intercept.is_finite() || slope == 0.0 {
        return Err(attr("RescaleSlope/RescaleIntercept"));
    }
    let padding = get_i64(obj, tags::PIXEL_PADDING_VALUE);
    let padding_limit = get_i64(obj, tags::PIXEL_PADDING_RANGE_LIMIT);
    let frame = decode_frame(obj, 0).map_err(|source| VolumeError::Pixel {
        sop_uid: sop_uid.clone(),
        source,
    })?;
    let rows = frame.rows as usize;
    let cols = frame.cols as usize;
    let hu = stored_to_hu(&frame.samples, slope, intercept, padding, padding_limit);
    if hu.len() != rows * cols {
        return Err(attr("PixelData (length)"));
    }
    let mut o = [0.0; 6];
    o.copy_from_slice(&orientation);
    Ok(Some(SliceData {
        sop_uid: sop_uid.clone(),
        series_uid: get_str(obj, tags::SERIES_INSTANCE_UID),
        study_uid: get_str(obj, tags::STUDY_INSTANCE_UID),
        position: [position[0], position[1], position[2]],
        orientation: o,
        pixel_spacing: [pixel_spacing[0], pixel_spacing[1]],
        rows,
        cols,
        instance_number: get_i64(obj, tags::INSTANCE_NUMBER).map(|v| v as i32),
        hu,
    }))
}

/// Converts stored samples to HU. Padding is compared on the 16-bit pattern, so a padding value
/// written as unsigned (e.g. 63536) matches signed samples (-2000) as the standard intends.
pub(crate) fn stored_to_hu(
    samples: &Samples,
    slope: f64,
    intercept: f64,
    padding: Option<i64>,
    padding_limit: Option<i64>,
) -> Vec<i16> {
    let to_hu = |raw: f64| -> i16 {
        let v = (raw * slope + intercept).round();
        if v < AIR_HU as f64 {
            AIR_HU
        } else if v > i16::MAX as f64 {
            i16::MAX
        } else {
            v as i16
        }
    };
    match samples {
        Samples::I16(v) => {
            let pad = padding.map(|p| p as u16 as i16);
            let lim = padding_limit.map(|p| p as u16 as i16);
            v.iter()
                .map(|&s| {
                    if is_padding(s as i64, pad.map(i64::from), lim.map(i64::from)) {
                        AIR_HU
                    } else {
                        to_hu(s as f64)
                    }
                })
                .collect()
        }
        Samples::U16(v) => {
            let pad = padding.map(|p| p as u16);
            let lim = padding_limit.map(|p| p as u16);
            v.iter()
                .map(|&s| {
                    if is_padding(s as i64, pad.map(i64::from), lim.map(i64::from)) {
                        AIR_HU
                    } else {
                        to_hu(s as f64)
                    }
                })
                .collect()
        }
        Samples::U8(v) => v
            .iter()
            .map(|&s| {
                if padding == Some(s as i64) {
                    AIR_HU
                } else {
                    to_hu(s as f64)
                }
            })
            .collect(),
        // 32-bit samples (other Samples variants) via their generic accessor.
        other => (0..other.len())
            .map(|i| {
                let s = other.get(i).unwrap_or(0);
                if is_padding(s, padding, padding_limit) {
                    AIR_HU
                } else {
                    to_hu(s as f64)
                }
            })
            .collect(),
    }
}

fn is_padding(s: i64, pad: Option<i64>, lim: Option<i64>) -> bool {
    match (pad, lim) {
        (Some(p), Some(l)) => s >= p.min(l) && s <= p.max(l),
        (Some(p), None) => s == p,
        _ => false,
    }
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

/// Assembles decoded slices into a regular volume.
pub(crate) fn assemble(mut slices: Vec<SliceData>) -> Result<Volume, VolumeError> {
    let mut warnings = Vec::new();
    if slices.is_empty() {
        return Err(VolumeError::NoImages(
            "no image slices (localizers and non-images are skipped)".into(),
        ));
    }
    // Series.
    let mut uids: Vec<String> = slices.iter().filter_map(|s| s.series_uid.clone()).collect();
    uids.sort();
    uids.dedup();
    if uids.len() > 1 {
        return Err(VolumeError::MixedSeries {
            count: uids.len(),
            uids: uids.join(", "),
        });
    }
    // Orientation: all slices parallel with identical in-plane axes.
    let o = slices[0].orientation;
    let mut row = [o[0], o[1], o[2]];
    let mut col = [o[3], o[4], o[5]];
    let (nr, nc) = (norm(row), norm(col));
    if (nr - 1.0).abs() > 0.01 || (nc - 1.0).abs() > 0.01 || dot(row, col).abs() > 0.01 {
        return Err(VolumeError::Inconsistent(
            "ImageOrientationPatient is not two orthonormal vectors".into(),
        ));
    }
    row = scale(row, 1.0 / nr);
    col = scale(col, 1.0 / nc);
    // Re-orthogonalise col against row so that the geometry inverse is exact.
    col = sub(col, scale(row, dot(row, col)));
    col = scale(col, 1.0 / norm(col));
    // Lumen's one slice order (lumen_dicom::geometry): index z increases towards the head
    // for axial series, whichever way the orientation's normal points.
    let normal =
        lumen_dicom::geometry::slice_normal([row[0], row[1], row[2], col[0], col[1], col[2]])
            .ok_or_else(|| {
                VolumeError::Inconsistent("ImageOrientationPatient is degenerate".into())
            })?;
    let (rows, cols, ps) = (slices[0].rows, slices[0].cols, slices[0].pixel_spacing);
    let before = slices.len();
    slices.retain(|s| {
        let r = [s.orientation[0], s.orientation[1], s.orientation[2]];
        let c = [s.orientation[3], s.orientation[4], s.orientation[5]];
        let n = cross(r, c);
        (dot(n, normal).abs() / norm(n).max(1e-9)) > 0.9999 && dot(r, row) > 0.9999
    });
    if slices.len() < before {
        // Orientation differs: a second stack (e.g. coronal reformat) in the same series.
        let dropped = before - slices.len();
        if dropped * 2 >= before {
            return Err(VolumeError::Inconsistent(format!(
                "{dropped} of {before} slices have another orientation"
            )));
        }
        warnings.push(format!(
            "{dropped} slice(s) with another orientation ignored"
        ));
    }
    for s in &slices {
        if s.rows != rows || s.cols != cols {
            return Err(VolumeError::Inconsistent(format!(
                "slice sizes differ ({}x{} vs {}x{})",
                s.rows, s.cols, rows, cols
            )));
        }
        if (s.pixel_spacing[0] - ps[0]).abs() > 1e-3 || (s.pixel_spacing[1] - ps[1]).abs() > 1e-3 {
            return Err(VolumeError::Inconsistent("pixel spacings differ".into()));
        }
    }
    // Sort along the normal.
    lumen_dicom::geometry::sort_slices(
        &mut slices,
        normal,
        |s| s.position,
        |s| s.instance_number.map(i64::from),
    );
    // Duplicates (same position within 0.01 mm): keep the first.
    let n0 = slices.len();
    slices.dedup_by(|b, a| (dot(b.position, normal) - dot(a.position, normal)).abs() < 0.01);
    if slices.len() < n0 {
        warnings.push(format!(
            "{} slice(s) at duplicate positions dropped",
            n0 - slices.len()
        ));
    }
    let series_uid = slices[0].series_uid.clone();
    let study_uid = slices[0].study_uid.clone();
    let (sy, sx) = (ps[0], ps[1]);
    if slices.len() == 1 {
        let s = slices.pop().expect("one slice");
        let hu = Array3::from_shape_vec((1, rows, cols), s.hu)
            .map_err(|e| VolumeError::Inconsistent(e.to_string()))?;
        let geometry = Geometry {
            origin: s.position,
            row_dir: row,
            col_dir: col,
            slice_dir: normal,
            spacing: [1.0, sy, sx],
        };
        warnings.push("single slice: slice spacing unknown, 1 mm assumed".into());
        return Ok(Volume {
            hu,
            geometry,
            series_uid,
            study_uid,
            slice_sop_uids: vec![Some(s.sop_uid)],
            warnings,
        });
    }
    let d: Vec<f64> = slices.iter().map(|s| dot(s.position, normal)).collect();
    let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sorted_gaps = gaps.clone();
    sorted_gaps.sort_by(f64::total_cmp);
    let median_gap = sorted_gaps[(sorted_gaps.len() - 1) / 2];
    let max_gap = sorted_gaps[sorted_gaps.len() - 1];
    let min_gap = sorted_gaps[0];
    let uneven = (max_gap - min_gap) > 0.01 * median_gap.max(0.1);
    if max_gap > 3.0 * median_gap + 1e-6 {
        return Err(VolumeError::Spacing(format!(
            "gap of {max_gap:.2} mm between slices where {median_gap:.2} mm is usual (more than two missing slices)"
        )));
    }
    // In-plane offsets of each slice relative to the first (non-zero: gantry tilt or shifts).
    let p0 = slices[0].position;
    let offsets: Vec<[f64; 2]> = slices
        .iter()
        .map(|s| {
            let v = sub(s.position, p0);
            [dot(v, col), dot(v, row)]
        })
        .collect();
    let max_shift = offsets
        .iter()
        .map(|o| o[0].abs().max(o[1].abs()))
        .fold(0.0, f64::max);
    let tilted = max_shift > 0.01;
    let nz_src = slices.len();
    if !uneven && !tilted {
        let mut hu = Array3::<i16>::zeros((nz_src, rows, cols));
        let mut uids = Vec::with_capacity(nz_src);
        for (z, s) in slices.into_iter().enumerate() {
            let plane = ndarray::ArrayView2::from_shape((rows, cols), &s.hu)
                .map_err(|e| VolumeError::Inconsistent(e.to_string()))?;
            hu.index_axis_mut(Axis(0), z).assign(&plane);
            uids.push(Some(s.sop_uid));
        }
        let spacing_z = (d[nz_src - 1] - d[0]) / (nz_src - 1) as f64;
        return Ok(Volume {
            hu,
            geometry: Geometry {
                origin: p0,
                row_dir: row,
                col_dir: col,
                slice_dir: normal,
                spacing: [spacing_z, sy, sx],
            },
            series_uid,
            study_uid,
            slice_sop_uids: uids,
            warnings,
        });
    }
    // Resample onto a regular orthogonal grid along the normal starting at the first slice.
    let dz = if uneven {
        min_gap.max(median_gap * 0.5)
    } else {
        median_gap
    };
    let length = d[nz_src - 1] - d[0];
    let nz = (length / dz).round() as usize + 1;
    let dz = if nz > 1 { length / (nz - 1) as f64 } else { dz };
    if uneven {
        warnings.push(format!(
            "uneven slice spacing ({min_gap:.2}-{max_gap:.2} mm): resampled to {dz:.3} mm"
        ));
    }
    if tilted {
        warnings.push(format!(
            "gantry tilt or shifted slices (up to {max_shift:.2} mm in-plane): resampled to an orthogonal grid"
        ));
    }
    let mut hu = Array3::<i16>::from_elem((nz, rows, cols), AIR_HU);
    let mut uids = vec![None; nz];
    hu.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(uids.par_iter_mut())
        .enumerate()
        .for_each(|(k, (mut plane, uid))| {
            let target = d[0] + k as f64 * dz;
            // Bracketing source slices.
            let i = match d.binary_search_by(|x| x.total_cmp(&target)) {
                Ok(i) => i,
                Err(i) => i.saturating_sub(1),
            };
            let i = i.min(nz_src - 1);
            let j = (i + 1).min(nz_src - 1);
            let t = if j > i {
                ((target - d[i]) / (d[j] - d[i])).clamp(0.0, 1.0)
            } else {
                0.0
            };
            if t < 1e-6 && !tilted {
                *uid = Some(slices[i].sop_uid.clone());
            }
            for y in 0..rows {
                for x in 0..cols {
                    // World point of the output voxel, in the first slice's in-plane frame.
                    let py = y as f64 * sy;
                    let px = x as f64 * sx;
                    let a = sample_plane(
                        &slices[i],
                        rows,
                        cols,
                        sy,
                        sx,
                        py - offsets[i][0],
                        px - offsets[i][1],
                    );
                    let v = if t > 1e-6 {
                        let b = sample_plane(
                            &slices[j],
                            rows,
                            cols,
                            sy,
                            sx,
                            py - offsets[j][0],
                            px - offsets[j][1],
                        );
                        a * (1.0 - t) + b * t
                    } else {
                        a
                    };
                    plane[[y, x]] = v.round().clamp(AIR_HU as f64, i16::MAX as f64) as i16;
                }
            }
        });
    Ok(Volume {
        hu,
        geometry: Geometry {
            origin: p0,
            row_dir: row,
            col_dir: col,
            slice_dir: normal,
            spacing: [dz, sy, sx],
        },
        series_uid,
        study_uid,
        slice_sop_uids: uids,
        warnings,
    })
}

/// Bilinear sample of a slice at in-plane mm offsets (`py` along rows, `px` along columns).
fn sample_plane(
    s: &SliceData,
    rows: usize,
    cols: usize,
    sy: f64,
    sx: f64,
    py: f64,
    px: f64,
) -> f64 {
    let fy = py / sy;
    let fx = px / sx;
    if fy < -0.5 || fx < -0.5 || fy > rows as f64 - 0.5 || fx > cols as f64 - 0.5 {
        return AIR_HU as f64;
    }
    let fy = fy.clamp(0.0, (rows - 1) as f64);
    let fx = fx.clamp(0.0, (cols - 1) as f64);
    let y0 = fy.floor() as usize;
    let x0 = fx.floor() as usize;
    let y1 = (y0 + 1).min(rows - 1);
    let x1 = (x0 + 1).min(cols - 1);
    let (ty, tx) = (fy - y0 as f64, fx - x0 as f64);
    let g = |y: usize, x: usize| s.hu[y * cols + x] as f64;
    (g(y0, x0) * (1.0 - tx) + g(y0, x1) * tx) * (1.0 - ty)
        + (g(y1, x0) * (1.0 - tx) + g(y1, x1) * tx) * ty
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(z: f64, shift: [f64; 2], value: i16, n: usize) -> SliceData {
        SliceData {
            sop_uid: format!("1.2.{z}"),
            series_uid: Some("1.2.3".into()),
            study_uid: None,
            position: [shift[1], shift[0], z],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [1.0, 1.0],
            rows: n,
            cols: n,
            instance_number: Some((100.0 - z) as i32),
            hu: (0..n * n).map(|i| value + (i % n) as i16).collect(),
        }
    }

    #[test]
    fn geometry_round_trip_oblique() {
        let g = Geometry {
            origin: [-10.0, 20.0, 5.0],
            row_dir: [0.8, 0.6, 0.0],
            col_dir: [0.0, 0.0, -1.0],
            slice_dir: [-0.6, 0.8, 0.2],
            spacing: [2.5, 0.7, 0.8],
        };
        let v = [3.3, 100.25, 17.0];
        let w = g.voxel_to_world(v);
        let back = g.world_to_voxel(w);
        for i in 0..3 {
            assert!((back[i] - v[i]).abs() < 1e-9, "{back:?} vs {v:?}");
        }
    }

    #[test]
    fn sorts_by_position_not_instance_number() {
        let s = vec![
            slice(5.0, [0.0; 2], 30, 4),
            slice(1.0, [0.0; 2], 10, 4),
            slice(3.0, [0.0; 2], 20, 4),
        ];
        let v = assemble(s).unwrap();
        assert_eq!(v.shape(), [3, 4, 4]);
        assert_eq!(v.hu[[0, 0, 0]], 10);
        assert_eq!(v.hu[[2, 0, 0]], 30);
        assert_eq!(v.geometry.spacing[0], 2.0);
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn duplicate_and_missing_slice_resampled() {
        let s = vec![
            slice(0.0, [0.0; 2], 0, 4),
            slice(1.0, [0.0; 2], 10, 4),
            slice(1.0, [0.0; 2], 10, 4),
            slice(3.0, [0.0; 2], 30, 4),
            slice(4.0, [0.0; 2], 40, 4),
        ];
        let v = assemble(s).unwrap();
        assert_eq!(v.shape()[0], 5);
        assert!((v.geometry.spacing[0] - 1.0).abs() < 1e-9);
        assert_eq!(v.hu[[2, 0, 0]], 20, "missing slice linearly interpolated");
        assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
        assert!(v.slice_sop_uids[2].is_none());
    }

    #[test]
    fn refuses_large_gap_and_mixed_series() {
        let s = vec![
            slice(0.0, [0.0; 2], 0, 4),
            slice(1.0, [0.0; 2], 0, 4),
            slice(9.0, [0.0; 2], 0, 4),
        ];
        assert!(matches!(assemble(s), Err(VolumeError::Spacing(_))));
        let mut a = slice(0.0, [0.0; 2], 0, 4);
        a.series_uid = Some("9.9".into());
        let s = vec![a, slice(1.0, [0.0; 2], 0, 4)];
        assert!(matches!(
            assemble(s),
            Err(VolumeError::MixedSeries { count: 2, .. })
        ));
    }

    #[test]
    fn gantry_tilt_is_resampled() {
        // Each slice shifted by +1 mm along y per mm of z: content fixed in the patient frame moves.
        let n = 8;
        let mut s = Vec::new();
        for k in 0..4 {
            let mut sl = slice(k as f64, [k as f64, 0.0], 0, n);
            // A bright pixel at patient y = 4 mm: row index 4 - k in a slice shifted by k.
            sl.hu = vec![0; n * n];
            sl.hu[(4 - k) * n + 2] = 100;
            s.push(sl);
        }
        let v = assemble(s).unwrap();
        for k in 0..4 {
            assert_eq!(v.hu[[k, 4, 2]], 100, "slice {k}");
        }
        assert!(v.warnings.iter().any(|w| w.contains("tilt")));
    }

    #[test]
    fn padding_value_unsigned_pattern_matches_signed_samples() {
        let raw = Samples::I16(vec![-2000, -1024, 0, 100]);
        let hu = stored_to_hu(&raw, 1.0, -1024.0, Some(63536), None);
        assert_eq!(hu, vec![AIR_HU, AIR_HU, -1024, -924]);
        let hu = stored_to_hu(
            &Samples::U16(vec![0, 1024, 1064]),
            1.0,
            -1024.0,
            Some(0),
            None,
        );
        assert_eq!(hu, vec![AIR_HU, 0, 40]);
    }
}
