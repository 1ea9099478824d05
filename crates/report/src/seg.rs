//! DICOM Segmentation (binary SEG) writer: one segment per mask, frames only where a segment has
//! voxels, each frame referencing its source slice and carrying its plane position.

use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::dataset::{NewObject, Put, code_item, ds, ds_multi, new_object, to_part10};
use crate::source::{Equipment, SeriesInfo, SourceImage, StudyContext};
use crate::{Code, ReportError, Result, WrittenObject, code, uid};

/// Segmentation Storage SOP Class UID.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// One segment: what it is (codes), who made it (algorithm) and where it is (mask).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Segment Label, e.g. "Left lung" or "Nodule 1".
    pub label: String,
    /// Segment Description (optional; empty for none).
    pub description: String,
    /// Segmented Property Category, e.g. SCT 123037004 "Anatomical Structure".
    pub category: Code,
    /// Segmented Property Type, e.g. SCT 39607008 "Lung" or SCT 27925004 "Nodule".
    pub property_type: Code,
    /// Anatomic Region, e.g. SCT 39607008 "Lung" for a nodule.
    pub anatomic_region: Option<Code>,
    /// Segment Algorithm Name.
    pub algorithm_name: String,
    /// Algorithm version, recorded in the Segmentation Algorithm Identification Sequence.
    pub algorithm_version: String,
    /// Tracking ID, so that a follow-up can match the finding (optional).
    pub tracking_id: Option<String>,
    /// Tracking UID (optional; written only together with `tracking_id`).
    pub tracking_uid: Option<String>,
    /// Recommended display colour as CIELab scaled to 0..=65535 (optional).
    pub recommended_display_cielab: Option<[u16; 3]>,
    /// Binary mask over the source grid, `[slice][row][column]` in the order of the source
    /// images; non-zero means inside.
    pub mask: Vec<u8>,
}

/// Options of the SEG instance that are not per segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationOptions {
    /// Series and instance numbering of the new series.
    pub series: SeriesInfo,
    /// The writing device.
    pub equipment: Equipment,
    /// Content Label (CS: upper case, at most 16 characters; sanitised when written).
    pub content_label: String,
    /// Content Description.
    pub content_description: String,
    /// Dimension Organization UID; a new UID when `None`.
    pub dimension_organization_uid: Option<String>,
}

impl Default for SegmentationOptions {
    fn default() -> Self {
        SegmentationOptions {
            series: SeriesInfo {
                series_description: "Lumen AI segmentation".into(),
                ..SeriesInfo::default()
            },
            equipment: Equipment::default(),
            content_label: "LUMEN_AI".into(),
            content_description: "Lumen AI segmentation".into(),
            dimension_organization_uid: None,
        }
    }
}

/// Geometry shared by all source slices, checked once.
struct Grid {
    rows: usize,
    cols: usize,
    slices: usize,
    spacing_between_slices: Option<f64>,
}

fn check_grid(sources: &[SourceImage]) -> Result<Grid> {
    let first = sources.first().ok_or(ReportError::NoSources)?;
    let close = |a: &[f64], b: &[f64], tol: f64| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol);
    for s in sources {
        if s.rows != first.rows
            || s.cols != first.cols
            || !close(
                &s.image_orientation_patient,
                &first.image_orientation_patient,
                1e-4,
            )
            || !close(&s.pixel_spacing, &first.pixel_spacing, 1e-4)
        {
            return Err(ReportError::NonUniformGrid {
                sop_instance_uid: s.sop_instance_uid.clone(),
            });
        }
    }
    if first.rows == 0 || first.cols == 0 {
        return Err(ReportError::InvalidAttribute("Rows/Columns"));
    }
    // Spacing along the normal, written only when it is uniform.
    let n = first.normal();
    let along = |s: &SourceImage| {
        let p = s.image_position_patient;
        p[0] * n[0] + p[1] * n[1] + p[2] * n[2]
    };
    let gaps: Vec<f64> = sources
        .windows(2)
        .map(|w| (along(&w[1]) - along(&w[0])).abs())
        .collect();
    let spacing_between_slices = match gaps.first() {
        Some(&g0) if g0 > 1e-6 && gaps.iter().all(|g| (g - g0).abs() <= 1e-3 * g0.max(1.0)) => {
            Some(g0)
        }
        _ => None,
    };
    Ok(Grid {
        rows: usize::from(first.rows),
        cols: usize::from(first.cols),
        slices: sources.len(),
        spacing_between_slices,
    })
}

/// Content Label is a CS value: upper case letters, digits, space and underscore, ≤ 16 chars.
fn content_label(s: &str) -> String {
    let l: String = s
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .map(|c| {
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    if l.trim().is_empty() {
        "SEGMENTATION".into()
    } else {
        l
    }
}

/// Writes a binary DICOM Segmentation of `segments` over `sources` (one entry per source slice,
/// in mask order) as a new series of the source study.
///
/// Segment numbers are 1-based positions in `segments`. A segment with no voxels keeps one empty
/// frame (on the first slice) so that every segment is represented.
pub fn write_segmentation(
    study: &StudyContext,
    sources: &[SourceImage],
    segments: &[Segment],
    options: &SegmentationOptions,
) -> Result<WrittenObject> {
    let grid = check_grid(sources)?;
    if segments.is_empty() || segments.len() > usize::from(u16::MAX) {
        return Err(ReportError::SegmentCount(segments.len()));
    }
    if study.frame_of_reference_uid.is_empty() {
        return Err(ReportError::MissingAttribute("FrameOfReferenceUID"));
    }
    let plane = grid.rows * grid.cols;
    let expected = plane * grid.slices;
    for (i, s) in segments.iter().enumerate() {
        if s.mask.len() != expected {
            return Err(ReportError::MaskSize {
                segment: i + 1,
                expected,
                actual: s.mask.len(),
            });
        }
    }

    // Frames: (segment index, slice index), segment-major.
    let mut frames: Vec<(usize, usize)> = Vec::new();
    for (si, s) in segments.iter().enumerate() {
        let before = frames.len();
        for z in 0..grid.slices {
            if s.mask[z * plane..(z + 1) * plane].iter().any(|&v| v != 0) {
                frames.push((si, z));
            }
        }
        if frames.len() == before {
            frames.push((si, 0));
        }
    }
    let overlap = (0..expected).any(|i| segments.iter().filter(|s| s.mask[i] != 0).count() > 1);

    let series = &options.series;
    let dimension_uid = options
        .dimension_organization_uid
        .clone()
        .unwrap_or_else(uid::new_uid);
    let first = &sources[0];

    // SOP Common, Patient, General Study, General Series.
    let (
        mut o,
        NewObject {
            sop_instance_uid,
            series_instance_uid,
            date,
            time,
        },
    ) = new_object(study, series, SEGMENTATION_STORAGE, "SEG")?;
    // Frame of Reference.
    o.str(
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        study.frame_of_reference_uid.clone(),
    );
    o.str(tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    // General Equipment, Enhanced General Equipment.
    options.equipment.put(&mut o);
    // General Image, Multi-frame Functional Groups.
    o.str(
        tags::INSTANCE_NUMBER,
        VR::IS,
        options.series.instance_number.to_string(),
    );
    o.str(tags::CONTENT_DATE, VR::DA, date);
    o.str(tags::CONTENT_TIME, VR::TM, time);
    o.str(tags::NUMBER_OF_FRAMES, VR::IS, frames.len().to_string());
    // Image Pixel, Segmentation Image.
    o.str(tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
    o.us(tags::SAMPLES_PER_PIXEL, 1);
    o.str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    o.us(tags::ROWS, first.rows);
    o.us(tags::COLUMNS, first.cols);
    o.us(tags::BITS_ALLOCATED, 1);
    o.us(tags::BITS_STORED, 1);
    o.us(tags::HIGH_BIT, 0);
    o.us(tags::PIXEL_REPRESENTATION, 0);
    o.str(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    o.str(
        tags::CONTENT_LABEL,
        VR::CS,
        content_label(&options.content_label),
    );
    o.str(
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        options.content_description.clone(),
    );
    o.str(tags::CONTENT_CREATOR_NAME, VR::PN, "");
    o.str(tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    o.str(
        tags::SEGMENTS_OVERLAP,
        VR::CS,
        if overlap { "YES" } else { "NO" },
    );
    o.seq(
        tags::SEGMENT_SEQUENCE,
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| segment_item(i, s))
            .collect(),
    );

    // Multi-frame Dimension.
    let mut org = InMemDicomObject::new_empty();
    org.str(
        tags::DIMENSION_ORGANIZATION_UID,
        VR::UI,
        dimension_uid.clone(),
    );
    o.seq(tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
    o.str(tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D");
    let dim = |pointer: Tag, group: Tag, label: &str| {
        let mut d = InMemDicomObject::new_empty();
        d.str(
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            dimension_uid.clone(),
        );
        d.prim(
            tags::DIMENSION_INDEX_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![pointer].into()),
        );
        d.prim(
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![group].into()),
        );
        d.str(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
        d
    };
    o.seq(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dim(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dim(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    );

    // Shared functional groups: pixel measures and plane orientation.
    let mut measures = InMemDicomObject::new_empty();
    measures.str(tags::PIXEL_SPACING, VR::DS, ds_multi(&first.pixel_spacing));
    let thickness = first
        .slice_thickness
        .filter(|t| *t > 0.0)
        .or(grid.spacing_between_slices)
        .unwrap_or(1.0);
    measures.str(tags::SLICE_THICKNESS, VR::DS, ds(thickness));
    if let Some(sp) = grid.spacing_between_slices {
        measures.str(tags::SPACING_BETWEEN_SLICES, VR::DS, ds(sp));
    }
    let mut orientation = InMemDicomObject::new_empty();
    orientation.str(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&first.image_orientation_patient),
    );
    let mut shared = InMemDicomObject::new_empty();
    shared.seq(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    shared.seq(tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation]);
    o.seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]);

    // Per-frame functional groups.
    let per_frame = frames
        .iter()
        .map(|&(si, z)| frame_item(&sources[z], si, z))
        .collect();
    o.seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame);

    // Common Instance Reference: every source instance, grouped by series.
    o.seq(tags::REFERENCED_SERIES_SEQUENCE, referenced_series(sources));

    // Pixel Data: frames packed back to back, one bit per pixel, least significant bit first.
    let total_bits = frames.len() * plane;
    let mut pixels = vec![0u8; total_bits.div_ceil(8).next_multiple_of(2)];
    for (fi, &(si, z)) in frames.iter().enumerate() {
        let mask = &segments[si].mask[z * plane..(z + 1) * plane];
        let base = fi * plane;
        for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v != 0) {
            let bit = base + i;
            pixels[bit / 8] |= 1 << (bit % 8);
        }
    }
    o.prim(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(pixels.into()));

    Ok(WrittenObject {
        bytes: to_part10(o)?,
        sop_class_uid: SEGMENTATION_STORAGE.into(),
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid: study.study_instance_uid.clone(),
    })
}

fn segment_item(index: usize, s: &Segment) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    // Index is < 65535 (checked by the caller).
    item.us(
        tags::SEGMENT_NUMBER,
        u16::try_from(index + 1).unwrap_or(u16::MAX),
    );
    item.str(tags::SEGMENT_LABEL, VR::LO, s.label.clone());
    if !s.description.is_empty() {
        item.str(tags::SEGMENT_DESCRIPTION, VR::ST, s.description.clone());
    }
    item.code(tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE, &s.category);
    item.code(
        tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
        &s.property_type,
    );
    if let Some(region) = &s.anatomic_region {
        item.code(tags::ANATOMIC_REGION_SEQUENCE, region);
    }
    item.str(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
    item.str(
        tags::SEGMENT_ALGORITHM_NAME,
        VR::LO,
        s.algorithm_name.clone(),
    );
    let mut alg = InMemDicomObject::new_empty();
    alg.code(
        tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
        &code::dcm::artificial_intelligence(),
    );
    alg.str(tags::ALGORITHM_NAME, VR::LO, s.algorithm_name.clone());
    alg.str(tags::ALGORITHM_VERSION, VR::LO, s.algorithm_version.clone());
    item.seq(
        tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
        vec![alg],
    );
    if let Some(id) = &s.tracking_id {
        item.str(tags::TRACKING_ID, VR::UT, id.clone());
        if let Some(u) = &s.tracking_uid {
            item.str(tags::TRACKING_UID, VR::UI, u.clone());
        }
    }
    if let Some(lab) = s.recommended_display_cielab {
        item.prim(
            tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
            VR::US,
            PrimitiveValue::U16(lab.to_vec().into()),
        );
    }
    item
}

fn frame_item(src: &SourceImage, segment_index: usize, slice: usize) -> InMemDicomObject {
    let mut source = InMemDicomObject::new_empty();
    source.str(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        src.sop_class_uid.clone(),
    );
    source.str(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        src.sop_instance_uid.clone(),
    );
    source.str(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
    source.code(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        &code::dcm::source_image_for_processing(),
    );
    let mut derivation = InMemDicomObject::new_empty();
    derivation.seq(tags::SOURCE_IMAGE_SEQUENCE, vec![source]);
    derivation.seq(
        tags::DERIVATION_CODE_SEQUENCE,
        vec![code_item(&code::dcm::segmentation())],
    );

    let segment_number = u32::try_from(segment_index + 1).unwrap_or(u32::MAX);
    let position_index = u32::try_from(slice + 1).unwrap_or(u32::MAX);
    let mut content = InMemDicomObject::new_empty();
    content.prim(
        tags::DIMENSION_INDEX_VALUES,
        VR::UL,
        PrimitiveValue::U32(vec![segment_number, position_index].into()),
    );
    let mut position = InMemDicomObject::new_empty();
    position.str(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        ds_multi(&src.image_position_patient),
    );
    let mut ident = InMemDicomObject::new_empty();
    ident.us(
        tags::REFERENCED_SEGMENT_NUMBER,
        u16::try_from(segment_number).unwrap_or(u16::MAX),
    );

    let mut item = InMemDicomObject::new_empty();
    item.seq(tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]);
    item.seq(tags::FRAME_CONTENT_SEQUENCE, vec![content]);
    item.seq(tags::PLANE_POSITION_SEQUENCE, vec![position]);
    item.seq(tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![ident]);
    item
}

/// ReferencedSeriesSequence items (series UID + referenced instances), in source order.
pub(crate) fn referenced_series(sources: &[SourceImage]) -> Vec<InMemDicomObject> {
    let mut series: Vec<(&str, Vec<&SourceImage>)> = Vec::new();
    for s in sources {
        match series
            .iter_mut()
            .find(|(uid, _)| *uid == s.series_instance_uid)
        {
            Some((_, v)) => v.push(s),
            None => series.push((&s.series_instance_uid, vec![s])),
        }
    }
    series
        .into_iter()
        .map(|(uid, instances)| {
            let mut item = InMemDicomObject::new_empty();
            item.str(tags::SERIES_INSTANCE_UID, VR::UI, uid);
            item.seq(
                tags::REFERENCED_INSTANCE_SEQUENCE,
                instances.into_iter().map(sop_ref).collect(),
            );
            item
        })
        .collect()
}

/// A SOP Instance Reference item (class and instance UID).
pub(crate) fn sop_ref(s: &SourceImage) -> InMemDicomObject {
    let mut r = InMemDicomObject::new_empty();
    r.str(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        s.sop_class_uid.clone(),
    );
    r.str(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        s.sop_instance_uid.clone(),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::sct;

    fn sources(n: usize, rows: u16, cols: u16) -> Vec<SourceImage> {
        (0..n)
            .map(|z| SourceImage {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                sop_instance_uid: format!("2.25.{}", z + 1),
                series_instance_uid: "2.25.99".into(),
                image_position_patient: [-10.0, -20.0, 2.5 * z as f64],
                image_orientation_patient: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                pixel_spacing: [0.5, 0.5],
                slice_thickness: Some(2.5),
                rows,
                cols,
            })
            .collect()
    }

    fn study() -> StudyContext {
        StudyContext {
            study_instance_uid: "2.25.7".into(),
            frame_of_reference_uid: "2.25.8".into(),
            ..StudyContext::default()
        }
    }

    fn segment(mask: Vec<u8>) -> Segment {
        Segment {
            label: "Nodule".into(),
            description: String::new(),
            category: sct::morphologically_abnormal_structure(),
            property_type: sct::nodule(),
            anatomic_region: None,
            algorithm_name: "test".into(),
            algorithm_version: "1".into(),
            tracking_id: None,
            tracking_uid: None,
            recommended_display_cielab: None,
            mask,
        }
    }

    fn parse(w: &WrittenObject) -> InMemDicomObject {
        dicom_object::from_reader(&w.bytes[128..])
            .expect("parse")
            .into_inner()
    }

    #[test]
    fn frames_pack_back_to_back_and_empty_segments_keep_one_frame() {
        // 3 slices of 3×5 (15 bits a frame, not a byte multiple).
        let src = sources(3, 3, 5);
        let mut a = vec![0u8; 45];
        a[15] = 1; // slice 1, first pixel
        a[29] = 1; // slice 1, last pixel
        a[30 + 7] = 1; // slice 2, pixel 7
        let b = vec![0u8; 45];
        let w = write_segmentation(
            &study(),
            &src,
            &[segment(a), segment(b)],
            &SegmentationOptions::default(),
        )
        .expect("write");
        let o = parse(&w);
        let frames: u32 = o
            .element(tags::NUMBER_OF_FRAMES)
            .expect("frames")
            .to_int()
            .expect("int");
        assert_eq!(frames, 3); // two for segment 1, one empty for segment 2
        let px = o
            .element(tags::PIXEL_DATA)
            .expect("pixels")
            .to_bytes()
            .expect("bytes");
        assert_eq!(px.len(), 6); // 45 bits → 6 bytes, even
        let bit = |i: usize| px[i / 8] >> (i % 8) & 1;
        let set: Vec<usize> = (0..45).filter(|&i| bit(i) == 1).collect();
        assert_eq!(set, vec![0, 14, 15 + 7]);
        assert_eq!(
            o.element(tags::SEGMENTS_OVERLAP)
                .expect("overlap")
                .to_str()
                .expect("str"),
            "NO"
        );
    }

    #[test]
    fn rejects_wrong_mask_size_and_mixed_grids() {
        let src = sources(2, 4, 4);
        let err = write_segmentation(
            &study(),
            &src,
            &[segment(vec![1; 31])],
            &SegmentationOptions::default(),
        )
        .expect_err("short mask");
        assert!(matches!(
            err,
            ReportError::MaskSize {
                expected: 32,
                actual: 31,
                ..
            }
        ));

        let mut mixed = sources(2, 4, 4);
        mixed[1].pixel_spacing = [0.7, 0.7];
        let err = write_segmentation(
            &study(),
            &mixed,
            &[segment(vec![1; 32])],
            &SegmentationOptions::default(),
        )
        .expect_err("mixed grid");
        assert!(matches!(err, ReportError::NonUniformGrid { .. }));

        let err = write_segmentation(&study(), &src, &[], &SegmentationOptions::default())
            .expect_err("no segments");
        assert!(matches!(err, ReportError::SegmentCount(0)));
    }

    #[test]
    fn content_label_is_a_valid_cs() {
        assert_eq!(content_label("Lumen AI v1.2 (lungs)"), "LUMEN AI V1_2 _L");
        assert_eq!(content_label(""), "SEGMENTATION");
    }
}
