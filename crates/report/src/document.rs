//! A signed report as DICOM, so that other PACS and viewers receive it: an Encapsulated PDF
//! (1.2.840.10008.5.1.4.1.1.104.1) and a Basic Text SR (1.2.840.10008.5.1.4.1.1.88.11) whose
//! content tree is the report's sections as TEXT items under one CONTAINER, with the signer as
//! Verifying Observer. Both go into a new series of the report's study.

use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::dataset::{NewObject, Put, code_item, new_object, to_part10};
use crate::{Code, Equipment, ReportError, Result, SeriesInfo, StudyContext, WrittenObject};

/// Encapsulated PDF Storage.
pub const ENCAPSULATED_PDF_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.1";
/// Basic Text SR Storage.
pub const BASIC_TEXT_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.11";

/// Diagnostic imaging report (LOINC 18748-4): the document title of both objects.
pub fn report_title() -> Code {
    Code::new("18748-4", "LN", "Diagnostic imaging report")
}

/// Section codes of the text SR.
pub mod section {
    use crate::Code;
    /// Findings (DCM 121070).
    pub fn findings() -> Code {
        Code::new("121070", "DCM", "Findings")
    }
    /// Impression (DCM 121073).
    pub fn impression() -> Code {
        Code::new("121073", "DCM", "Impression")
    }
    /// Recommendation (DCM 121074).
    pub fn recommendation() -> Code {
        Code::new("121074", "DCM", "Recommendation")
    }
    /// Addendum (LOINC 55107-7).
    pub fn addendum() -> Code {
        Code::new("55107-7", "LN", "Addendum")
    }
}

/// Who signed, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// Verifying Observer Name (PN, e.g. `Doe^Jane` or a display name).
    pub name: String,
    /// Verifying Organization.
    pub organization: String,
    /// Verification date and time (DT, `YYYYMMDDHHMMSS`, UTC).
    pub date_time: String,
}

/// An earlier object this one follows (Predecessor Documents Sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predecessor {
    /// Its series.
    pub series_instance_uid: String,
    /// Its SOP class.
    pub sop_class_uid: String,
    /// Its instance.
    pub sop_instance_uid: String,
}

/// Writes an Encapsulated PDF of `pdf` into a new series of `study`.
pub fn encapsulated_pdf(
    study: &StudyContext,
    pdf: &[u8],
    title: &str,
    series: &SeriesInfo,
    equipment: &Equipment,
) -> Result<WrittenObject> {
    if !pdf.starts_with(b"%PDF") {
        return Err(ReportError::InvalidAttribute("EncapsulatedDocument"));
    }
    let (
        mut o,
        NewObject {
            sop_instance_uid,
            series_instance_uid,
            date,
            time,
        },
    ) = new_object(study, series, ENCAPSULATED_PDF_STORAGE, "DOC")?;
    // General Equipment, SC Equipment.
    equipment.put(&mut o);
    o.str(tags::CONVERSION_TYPE, VR::CS, "WSD");
    // Encapsulated Document.
    o.str(
        tags::INSTANCE_NUMBER,
        VR::IS,
        series.instance_number.to_string(),
    );
    o.str(tags::CONTENT_DATE, VR::DA, date.clone());
    o.str(tags::CONTENT_TIME, VR::TM, time.clone());
    o.str(tags::ACQUISITION_DATE_TIME, VR::DT, format!("{date}{time}"));
    o.str(tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    o.str(tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO");
    o.str(tags::DOCUMENT_TITLE, VR::ST, title);
    o.code(tags::CONCEPT_NAME_CODE_SEQUENCE, &report_title());
    o.str(
        tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
        VR::LO,
        "application/pdf",
    );
    let len = u32::try_from(pdf.len()).map_err(|_| ReportError::Encode("PDF too large".into()))?;
    o.prim(
        tags::ENCAPSULATED_DOCUMENT_LENGTH,
        VR::UL,
        PrimitiveValue::from(len),
    );
    // OB of even length: a trailing NUL pads an odd PDF (the length above is the PDF's).
    let mut bytes = pdf.to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    o.prim(
        tags::ENCAPSULATED_DOCUMENT,
        VR::OB,
        PrimitiveValue::from(bytes),
    );
    Ok(WrittenObject {
        bytes: to_part10(o)?,
        sop_class_uid: ENCAPSULATED_PDF_STORAGE.into(),
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid: study.study_instance_uid.clone(),
    })
}

/// The text of a report for a Basic Text SR.
#[derive(Debug, Clone, PartialEq)]
pub struct TextReport {
    /// The sections in order: concept (e.g. [`section::findings`]) and text.
    pub sections: Vec<(Code, String)>,
    /// The signer; the document is VERIFIED when present, else UNVERIFIED.
    pub verifier: Option<Verifier>,
    /// The object this one follows (the signed report, for an addendum).
    pub predecessor: Option<Predecessor>,
    /// The document's language, as an RFC 5646 tag (`en`, `zh-CN`), when known.
    pub language: Option<String>,
}

/// Writes a Basic Text SR of `report` into a new series of `study`.
pub fn text_sr(
    study: &StudyContext,
    report: &TextReport,
    series: &SeriesInfo,
    equipment: &Equipment,
) -> Result<WrittenObject> {
    let (
        mut o,
        NewObject {
            sop_instance_uid,
            series_instance_uid,
            date,
            time,
        },
    ) = new_object(study, series, BASIC_TEXT_SR_STORAGE, "SR")?;
    o.seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]);
    equipment.put(&mut o);
    // SR Document General.
    o.str(
        tags::INSTANCE_NUMBER,
        VR::IS,
        series.instance_number.to_string(),
    );
    o.str(tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    match &report.verifier {
        Some(v) => {
            o.str(tags::PRELIMINARY_FLAG, VR::CS, "FINAL");
            o.str(tags::VERIFICATION_FLAG, VR::CS, "VERIFIED");
            let mut item = InMemDicomObject::new_empty();
            item.str(tags::VERIFYING_OBSERVER_NAME, VR::PN, v.name.clone());
            item.seq(
                tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE,
                vec![],
            );
            item.str(tags::VERIFYING_ORGANIZATION, VR::LO, v.organization.clone());
            item.str(tags::VERIFICATION_DATE_TIME, VR::DT, v.date_time.clone());
            o.seq(tags::VERIFYING_OBSERVER_SEQUENCE, vec![item]);
        }
        None => {
            o.str(tags::PRELIMINARY_FLAG, VR::CS, "PRELIMINARY");
            o.str(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
        }
    }
    o.str(tags::CONTENT_DATE, VR::DA, date);
    o.str(tags::CONTENT_TIME, VR::TM, time);
    if let Some(p) = &report.predecessor {
        let mut sop = InMemDicomObject::new_empty();
        sop.str(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            p.sop_class_uid.clone(),
        );
        sop.str(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            p.sop_instance_uid.clone(),
        );
        let mut se = InMemDicomObject::new_empty();
        se.str(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            p.series_instance_uid.clone(),
        );
        se.seq(tags::REFERENCED_SOP_SEQUENCE, vec![sop]);
        let mut st = InMemDicomObject::new_empty();
        st.str(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            study.study_instance_uid.clone(),
        );
        st.seq(tags::REFERENCED_SERIES_SEQUENCE, vec![se]);
        o.seq(tags::PREDECESSOR_DOCUMENTS_SEQUENCE, vec![st]);
    }
    o.seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    // SR Document Content: a CONTAINER of TEXT items.
    o.str(tags::VALUE_TYPE, VR::CS, "CONTAINER");
    o.code(tags::CONCEPT_NAME_CODE_SEQUENCE, &report_title());
    o.str(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut items = Vec::new();
    if let Some(lang) = &report.language {
        let mut it = InMemDicomObject::new_empty();
        it.str(tags::RELATIONSHIP_TYPE, VR::CS, "HAS CONCEPT MOD");
        it.str(tags::VALUE_TYPE, VR::CS, "CODE");
        it.code(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            &Code::new("121049", "DCM", "Language of Content Item and Descendants"),
        );
        let meaning = match lang.as_str() {
            "zh-CN" => "Chinese (China)",
            "en" => "English",
            other => other,
        };
        it.seq(
            tags::CONCEPT_CODE_SEQUENCE,
            vec![code_item(&Code::new(lang.clone(), "RFC5646", meaning))],
        );
        items.push(it);
    }
    for (concept, text) in &report.sections {
        if text.trim().is_empty() {
            continue; // TEXT items need a value
        }
        let mut it = InMemDicomObject::new_empty();
        it.str(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
        it.str(tags::VALUE_TYPE, VR::CS, "TEXT");
        it.code(tags::CONCEPT_NAME_CODE_SEQUENCE, concept);
        it.str(tags::TEXT_VALUE, VR::UT, text.clone());
        items.push(it);
    }
    o.seq(tags::CONTENT_SEQUENCE, items);
    Ok(WrittenObject {
        bytes: to_part10(o)?,
        sop_class_uid: BASIC_TEXT_SR_STORAGE.into(),
        sop_instance_uid,
        series_instance_uid,
        study_instance_uid: study.study_instance_uid.clone(),
    })
}
