//! Comprehensive 3D SR writer following TID 1500 "Imaging Measurement Report": one measurement
//! group per finding (TID 1411 with a SEG segment, TID 1410 with a SCOORD3D point, else
//! TID 1501), plus exam-level qualitative evaluations.

use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::code::{dcm, rfc5646, sct, umls};
use crate::dataset::{NewObject, Put, ds, new_object, to_part10};
use crate::seg::{SEGMENTATION_STORAGE, sop_ref};
use crate::source::{Equipment, SeriesInfo, SourceImage, StudyContext};
use crate::{Code, ReportError, Result, WrittenObject, uid};

/// Comprehensive 3D SR Storage SOP Class UID.
pub const COMPREHENSIVE_3D_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.34";

/// The algorithm that produced the findings (TID 4019 Algorithm Identification).
#[derive(Debug, Clone, PartialEq)]
pub struct Algorithm {
    /// Algorithm Name.
    pub name: String,
    /// Algorithm Version.
    pub version: String,
}

/// One numeric measurement (TID 300).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// What was measured, e.g. SCT 103339001 "Long Axis".
    pub concept: Code,
    /// The value, in `unit`.
    pub value: f64,
    /// UCUM unit, e.g. `mm`, `mm3`, `[hnsf'U]`.
    pub unit: Code,
    /// Derivation modifier, e.g. SCT 373098007 "Mean" (mean diameter, mean attenuation).
    pub derivation: Option<Code>,
}

/// The value of a qualitative evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum QualitativeValue {
    /// A coded value (CODE content item).
    Code(Code),
    /// Free text (TEXT content item).
    Text(String),
}

/// A qualitative evaluation: a concept and its coded or textual value.
#[derive(Debug, Clone, PartialEq)]
pub struct Qualitative {
    /// What is evaluated, e.g. NCIt C41144 "Texture" or a Lung-RADS category concept.
    pub concept: Code,
    /// The evaluation.
    pub value: QualitativeValue,
}

/// One finding, written as one measurement group.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingGroup {
    /// Tracking Identifier (human readable, e.g. "Nodule 1").
    pub tracking_id: String,
    /// Tracking Unique Identifier, stable across reports so that follow-ups can match.
    pub tracking_uid: String,
    /// Finding, e.g. SCT 27925004 "Nodule".
    pub finding: Code,
    /// Finding Site, e.g. SCT 39607008 "Lung" or a lobe.
    pub finding_site: Option<Code>,
    /// Numeric measurements.
    pub measurements: Vec<Measurement>,
    /// Qualitative evaluations (type, Lung-RADS category...).
    pub qualitative: Vec<Qualitative>,
    /// Centre in patient coordinates (mm), written as a SCOORD3D POINT when there is no segment.
    pub center: Option<[f64; 3]>,
    /// Segment number in the report's segmentation; makes the group volumetric (TID 1411).
    pub segment_number: Option<u16>,
}

/// The SEG instance that findings' segment numbers refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationRef {
    /// SOP Instance UID of the SEG.
    pub sop_instance_uid: String,
    /// Series Instance UID of the SEG.
    pub series_instance_uid: String,
}

impl From<&WrittenObject> for SegmentationRef {
    fn from(w: &WrittenObject) -> Self {
        SegmentationRef {
            sop_instance_uid: w.sop_instance_uid.clone(),
            series_instance_uid: w.series_instance_uid.clone(),
        }
    }
}

/// A TID 1500 Imaging Measurement Report.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementReport {
    /// Procedure reported, e.g. SCT 169069000 "CT of chest".
    pub procedure_reported: Code,
    /// The algorithm; also the device observer's name.
    pub algorithm: Algorithm,
    /// Findings, one measurement group each.
    pub findings: Vec<FindingGroup>,
    /// Exam-level qualitative evaluations (overall Lung-RADS category, recommendation...).
    pub summary: Vec<Qualitative>,
    /// The segmentation that findings refer to, if any.
    pub segmentation: Option<SegmentationRef>,
    /// Series and instance numbering of the new series.
    pub series: SeriesInfo,
    /// The writing device; also the device observer.
    pub equipment: Equipment,
    /// Device Observer UID identifying the writing device; a new UID when `None`.
    pub device_observer_uid: Option<String>,
}

/// Writes `report` about `sources` (the source series' slices) as a Comprehensive 3D SR in a
/// new series of the source study.
pub fn write_measurement_report(
    study: &StudyContext,
    sources: &[SourceImage],
    report: &MeasurementReport,
) -> Result<WrittenObject> {
    if sources.is_empty() {
        return Err(ReportError::NoSources);
    }
    for f in &report.findings {
        if f.segment_number.is_some() && report.segmentation.is_none() {
            return Err(ReportError::NoSegmentation(f.tracking_uid.clone()));
        }
        if f.center.is_some() && study.frame_of_reference_uid.is_empty() {
            return Err(ReportError::MissingAttribute("FrameOfReferenceUID"));
        }
    }
    let series = &report.series;
    let (
        mut o,
        NewObject {
            sop_instance_uid,
            series_instance_uid,
            date,
            time,
        },
    ) = new_object(study, series, COMPREHENSIVE_3D_SR_STORAGE, "SR")?;
    o.seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]);
    // General Equipment.
    report.equipment.put(&mut o);
    // SR Document General.
    o.str(
        tags::INSTANCE_NUMBER,
        VR::IS,
        report.series.instance_number.to_string(),
    );
    o.str(tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    o.str(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    o.str(tags::CONTENT_DATE, VR::DA, date);
    o.str(tags::CONTENT_TIME, VR::TM, time);
    o.seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    o.seq(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence(study, sources, report.segmentation.as_ref())],
    );

    // SR Document Content: the TID 1500 tree.
    o.str(tags::VALUE_TYPE, VR::CS, "CONTAINER");
    o.code(
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        &dcm::imaging_measurement_report(),
    );
    o.str(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut template = InMemDicomObject::new_empty();
    template.str(tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    template.str(tags::TEMPLATE_IDENTIFIER, VR::CS, "1500");
    o.seq(tags::CONTENT_TEMPLATE_SEQUENCE, vec![template]);

    let mut root = vec![
        code_item(
            Rel::ConceptMod,
            dcm::language_of_content(),
            &rfc5646::english(),
        ),
        code_item(Rel::ObsContext, dcm::observer_type(), &dcm::device()),
        uidref_item(
            Rel::ObsContext,
            dcm::device_observer_uid(),
            &report
                .device_observer_uid
                .clone()
                .unwrap_or_else(uid::new_uid),
        ),
        text_item(
            Rel::ObsContext,
            dcm::device_observer_name(),
            &report.algorithm.name,
        ),
        text_item(
            Rel::ObsContext,
            dcm::device_observer_manufacturer(),
            &report.equipment.manufacturer,
        ),
        text_item(
            Rel::ObsContext,
            dcm::device_observer_model_name(),
            &report.equipment.model_name,
        ),
        code_item(
            Rel::ConceptMod,
            dcm::procedure_reported(),
            &report.procedure_reported,
        ),
    ];
    let library_group = container(
        Rel::Contains,
        dcm::image_library_group(),
        sources.iter().map(image_item).collect(),
    );
    root.push(container(
        Rel::Contains,
        dcm::image_library(),
        vec![library_group],
    ));
    let groups = report
        .findings
        .iter()
        .map(|f| measurement_group(f, report, study, sources))
        .collect::<Result<Vec<_>>>()?;
    root.push(container(
        Rel::Contains,
        dcm::imaging_measurements(),
        groups,
    ));
    if !report.summary.is_empty() {
        root.push(container(
            Rel::Contains,
            umls::qualitative_evaluations(),
            report.summary.iter().map(qualitative_item).collect(),
        ));
    }
    o.seq(tags::CONTENT_SEQUENCE, root);

    Ok(WrittenObject {
        bytes: to_part10(o)?,
        sop_class_uid: COMPREHENSIVE_3D_SR_STORAGE.into(),
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid: study.study_instance_uid.clone(),
    })
}

fn measurement_group(
    f: &FindingGroup,
    report: &MeasurementReport,
    study: &StudyContext,
    sources: &[SourceImage],
) -> Result<InMemDicomObject> {
    let mut items = vec![
        text_item(Rel::ObsContext, dcm::tracking_identifier(), &f.tracking_id),
        uidref_item(
            Rel::ObsContext,
            dcm::tracking_unique_identifier(),
            &f.tracking_uid,
        ),
        code_item(Rel::Contains, dcm::finding(), &f.finding),
    ];
    match (f.segment_number, &report.segmentation, f.center) {
        (Some(n), Some(seg), _) => {
            // TID 1411: the segment is the ROI.
            let mut r = InMemDicomObject::new_empty();
            r.str(tags::REFERENCED_SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
            r.str(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                seg.sop_instance_uid.clone(),
            );
            r.us(tags::REFERENCED_SEGMENT_NUMBER, n);
            let mut item = content_item(Rel::Contains, "IMAGE", Some(dcm::referenced_segment()));
            item.seq(tags::REFERENCED_SOP_SEQUENCE, vec![r]);
            items.push(item);
            items.push(uidref_item(
                Rel::Contains,
                dcm::source_series_for_segmentation(),
                &sources[0].series_instance_uid,
            ));
        }
        (Some(_), None, _) => return Err(ReportError::NoSegmentation(f.tracking_uid.clone())),
        (None, _, Some(c)) => {
            // TID 1410: a SCOORD3D point is the ROI.
            let mut item = content_item(Rel::Contains, "SCOORD3D", Some(dcm::image_region()));
            item.str(
                tags::REFERENCED_FRAME_OF_REFERENCE_UID,
                VR::UI,
                study.frame_of_reference_uid.clone(),
            );
            item.str(tags::GRAPHIC_TYPE, VR::CS, "POINT");
            item.prim(
                tags::GRAPHIC_DATA,
                VR::FL,
                PrimitiveValue::F32(c.iter().map(|&v| v as f32).collect::<Vec<_>>().into()),
            );
            items.push(item);
        }
        (None, _, None) => {} // TID 1501: no ROI.
    }
    items.extend(algorithm_items(&report.algorithm));
    if let Some(site) = &f.finding_site {
        items.push(code_item(Rel::ConceptMod, sct::finding_site(), site));
    }
    for m in &f.measurements {
        let mut value = InMemDicomObject::new_empty();
        value.code(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, &m.unit);
        value.str(tags::NUMERIC_VALUE, VR::DS, ds(m.value));
        value.prim(
            tags::FLOATING_POINT_VALUE,
            VR::FD,
            PrimitiveValue::F64(vec![m.value].into()),
        );
        let mut item = content_item(Rel::Contains, "NUM", Some(m.concept.clone()));
        item.seq(tags::MEASURED_VALUE_SEQUENCE, vec![value]);
        let mut children = Vec::new();
        if let Some(d) = &m.derivation {
            children.push(code_item(Rel::ConceptMod, dcm::derivation(), d));
        }
        children.extend(algorithm_items(&report.algorithm));
        item.seq(tags::CONTENT_SEQUENCE, children);
        items.push(item);
    }
    items.extend(f.qualitative.iter().map(qualitative_item));
    Ok(container(Rel::Contains, dcm::measurement_group(), items))
}

fn algorithm_items(a: &Algorithm) -> [InMemDicomObject; 2] {
    [
        text_item(Rel::ConceptMod, dcm::algorithm_name(), &a.name),
        text_item(Rel::ConceptMod, dcm::algorithm_version(), &a.version),
    ]
}

/// The Hierarchical SOP Instance Reference of everything the content refers to.
fn evidence(
    study: &StudyContext,
    sources: &[SourceImage],
    seg: Option<&SegmentationRef>,
) -> InMemDicomObject {
    let mut series: Vec<(String, Vec<InMemDicomObject>)> = Vec::new();
    for s in sources {
        match series
            .iter_mut()
            .find(|(uid, _)| *uid == s.series_instance_uid)
        {
            Some((_, v)) => v.push(sop_ref(s)),
            None => series.push((s.series_instance_uid.clone(), vec![sop_ref(s)])),
        }
    }
    if let Some(seg) = seg {
        let mut r = InMemDicomObject::new_empty();
        r.str(tags::REFERENCED_SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
        r.str(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            seg.sop_instance_uid.clone(),
        );
        series.push((seg.series_instance_uid.clone(), vec![r]));
    }
    let mut item = InMemDicomObject::new_empty();
    item.str(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        study.study_instance_uid.clone(),
    );
    item.seq(
        tags::REFERENCED_SERIES_SEQUENCE,
        series
            .into_iter()
            .map(|(uid, refs)| {
                let mut s = InMemDicomObject::new_empty();
                s.str(tags::SERIES_INSTANCE_UID, VR::UI, uid);
                s.seq(tags::REFERENCED_SOP_SEQUENCE, refs);
                s
            })
            .collect(),
    );
    item
}

/// Relationship types used in TID 1500.
#[derive(Clone, Copy)]
enum Rel {
    Contains,
    ConceptMod,
    ObsContext,
}

fn content_item(rel: Rel, value_type: &str, name: Option<Code>) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let rel = match rel {
        Rel::Contains => "CONTAINS",
        Rel::ConceptMod => "HAS CONCEPT MOD",
        Rel::ObsContext => "HAS OBS CONTEXT",
    };
    o.str(tags::RELATIONSHIP_TYPE, VR::CS, rel);
    o.str(tags::VALUE_TYPE, VR::CS, value_type);
    if let Some(name) = name {
        o.code(tags::CONCEPT_NAME_CODE_SEQUENCE, &name);
    }
    o
}

fn container(rel: Rel, name: Code, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut o = content_item(rel, "CONTAINER", Some(name));
    o.str(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    if !children.is_empty() {
        o.seq(tags::CONTENT_SEQUENCE, children);
    }
    o
}

fn code_item(rel: Rel, name: Code, value: &Code) -> InMemDicomObject {
    let mut o = content_item(rel, "CODE", Some(name));
    o.code(tags::CONCEPT_CODE_SEQUENCE, value);
    o
}

fn text_item(rel: Rel, name: Code, value: &str) -> InMemDicomObject {
    let mut o = content_item(rel, "TEXT", Some(name));
    o.str(tags::TEXT_VALUE, VR::UT, value);
    o
}

fn uidref_item(rel: Rel, name: Code, value: &str) -> InMemDicomObject {
    let mut o = content_item(rel, "UIDREF", Some(name));
    o.str(tags::UID, VR::UI, value);
    o
}

fn image_item(s: &SourceImage) -> InMemDicomObject {
    let mut o = content_item(Rel::Contains, "IMAGE", None);
    o.seq(tags::REFERENCED_SOP_SEQUENCE, vec![sop_ref(s)]);
    o
}

fn qualitative_item(q: &Qualitative) -> InMemDicomObject {
    match &q.value {
        QualitativeValue::Code(c) => code_item(Rel::Contains, q.concept.clone(), c),
        QualitativeValue::Text(t) => text_item(Rel::Contains, q.concept.clone(), t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_reference_needs_a_segmentation() {
        let study = StudyContext {
            study_instance_uid: "2.25.7".into(),
            frame_of_reference_uid: "2.25.8".into(),
            ..StudyContext::default()
        };
        let src = SourceImage {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "2.25.1".into(),
            series_instance_uid: "2.25.2".into(),
            image_position_patient: [0.0; 3],
            image_orientation_patient: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [1.0, 1.0],
            slice_thickness: None,
            rows: 2,
            cols: 2,
        };
        let report = MeasurementReport {
            procedure_reported: sct::ct_chest(),
            algorithm: Algorithm {
                name: "a".into(),
                version: "1".into(),
            },
            findings: vec![FindingGroup {
                tracking_id: "Nodule 1".into(),
                tracking_uid: "2.25.3".into(),
                finding: sct::nodule(),
                finding_site: None,
                measurements: vec![],
                qualitative: vec![],
                center: None,
                segment_number: Some(1),
            }],
            summary: vec![],
            segmentation: None,
            series: SeriesInfo::default(),
            equipment: Equipment::default(),
            device_observer_uid: None,
        };
        let err = write_measurement_report(&study, std::slice::from_ref(&src), &report)
            .expect_err("dangling segment");
        assert!(matches!(err, ReportError::NoSegmentation(ref u) if u == "2.25.3"));

        let ok = MeasurementReport {
            findings: vec![FindingGroup {
                segment_number: None,
                center: Some([1.0, 2.0, 3.0]),
                ..report.findings[0].clone()
            }],
            ..report
        };
        let w = write_measurement_report(&study, &[src], &ok).expect("write");
        assert_eq!(w.sop_class_uid, COMPREHENSIVE_3D_SR_STORAGE);
        assert_eq!(w.study_instance_uid, "2.25.7");
    }
}
