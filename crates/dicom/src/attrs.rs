//! The attributes an archive indexes: the patient/study/series/instance hierarchy.
//!
//! [`index_record`] turns a received object into an [`IndexRecord`] with one DICOM JSON
//! map per level, which the store keeps and QIDO-RS / C-FIND match and return.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use serde_json::{Map, Value};

use crate::json;

/// A level of the DICOM information model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Patient level (Patient Root query model).
    Patient,
    /// Study level.
    Study,
    /// Series level.
    Series,
    /// Composite instance level ("IMAGE" in C-FIND).
    Instance,
}

impl Level {
    /// The level's name as used in C-FIND's Query/Retrieve Level (0008,0052).
    pub fn dimse_name(self) -> &'static str {
        match self {
            Level::Patient => "PATIENT",
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Instance => "IMAGE",
        }
    }
}

/// Attributes kept at the patient level.
pub const PATIENT_TAGS: &[Tag] = &[
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_BIRTH_TIME,
    tags::PATIENT_SEX,
    tags::OTHER_PATIENT_I_DS_SEQUENCE,
    tags::PATIENT_AGE,
    tags::PATIENT_COMMENTS,
];

/// Attributes kept at the study level (besides the patient's, which every study carries).
pub const STUDY_TAGS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::ACCESSION_NUMBER,
    tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::STUDY_DESCRIPTION,
    tags::PROCEDURE_CODE_SEQUENCE,
    tags::NAME_OF_PHYSICIANS_READING_STUDY,
    tags::ADMITTING_DIAGNOSES_DESCRIPTION,
    tags::PATIENT_SIZE,
    tags::PATIENT_WEIGHT,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_ID,
    tags::INSTITUTION_NAME,
];

/// Attributes kept at the series level.
pub const SERIES_TAGS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::SERIES_DATE,
    tags::SERIES_TIME,
    tags::MODALITY,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::MANUFACTURER,
    tags::INSTITUTION_NAME,
    tags::STATION_NAME,
    tags::SERIES_DESCRIPTION,
    tags::PERFORMING_PHYSICIAN_NAME,
    tags::OPERATORS_NAME,
    tags::MANUFACTURER_MODEL_NAME,
    tags::BODY_PART_EXAMINED,
    tags::SLICE_THICKNESS,
    tags::PROTOCOL_NAME,
    tags::PATIENT_POSITION,
    tags::SERIES_INSTANCE_UID,
    tags::SERIES_NUMBER,
    tags::LATERALITY,
    tags::FRAME_OF_REFERENCE_UID,
    tags::PERFORMED_PROCEDURE_STEP_START_DATE,
    tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    tags::REQUEST_ATTRIBUTES_SEQUENCE,
];

/// Attributes kept at the instance level (QIDO-RS's default instance attributes and a few more).
pub const INSTANCE_TAGS: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::INSTANCE_CREATION_DATE,
    tags::INSTANCE_CREATION_TIME,
    tags::CONTENT_DATE,
    tags::CONTENT_TIME,
    tags::ACQUISITION_DATE,
    tags::ACQUISITION_TIME,
    tags::TIMEZONE_OFFSET_FROM_UTC,
    tags::IMAGE_TYPE,
    tags::INSTANCE_NUMBER,
    tags::ACQUISITION_NUMBER,
    tags::IMAGE_POSITION_PATIENT,
    tags::IMAGE_ORIENTATION_PATIENT,
    tags::SLICE_LOCATION,
    tags::SAMPLES_PER_PIXEL,
    tags::PHOTOMETRIC_INTERPRETATION,
    tags::NUMBER_OF_FRAMES,
    tags::ROWS,
    tags::COLUMNS,
    tags::PIXEL_SPACING,
    tags::BITS_ALLOCATED,
    tags::BITS_STORED,
    tags::CONCEPT_NAME_CODE_SEQUENCE,
    tags::COMPLETION_FLAG,
    tags::VERIFICATION_FLAG,
    tags::CONTENT_LABEL,
    tags::CONTENT_DESCRIPTION,
];

/// The attributes kept at `level` (the patient's are also kept at study level).
pub fn level_tags(level: Level) -> &'static [Tag] {
    match level {
        Level::Patient => PATIENT_TAGS,
        Level::Study => STUDY_TAGS,
        Level::Series => SERIES_TAGS,
        Level::Instance => INSTANCE_TAGS,
    }
}

/// Why a received object cannot be indexed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttrError {
    /// A required attribute is absent or empty.
    #[error("required attribute {0} is missing or empty")]
    Missing(&'static str),
    /// An attribute has a value that is not allowed (e.g. an invalid UID).
    #[error("attribute {name} has an invalid value: {reason}")]
    Invalid {
        /// The attribute's keyword.
        name: &'static str,
        /// Why the value is invalid (never contains patient data).
        reason: String,
    },
}

/// Everything the index keeps about one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRecord {
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Series Instance UID (0020,000E).
    pub series_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: String,
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// Transfer syntax the object is stored in.
    pub transfer_syntax_uid: String,
    /// Patient ID (0010,0020), empty if absent.
    pub patient_id: String,
    /// Modality (0008,0060), empty if absent.
    pub modality: String,
    /// Instance Number (0020,0013), if present and numeric.
    pub instance_number: Option<i64>,
    /// Number of Frames (0028,0008); 1 for single-frame images, 0 without pixel data.
    pub number_of_frames: u32,
    /// Patient + study attributes as DICOM JSON.
    pub study_json: Map<String, Value>,
    /// Series attributes as DICOM JSON.
    pub series_json: Map<String, Value>,
    /// Instance attributes as DICOM JSON.
    pub instance_json: Map<String, Value>,
    /// The full data set (no file meta) as DICOM JSON with relative BulkDataURIs;
    /// see [`json::metadata`].
    pub metadata_json: Map<String, Value>,
}

/// Checks that `uid` is a syntactically valid DICOM UID (PS3.5 9.1).
pub fn check_uid(name: &'static str, uid: &str) -> Result<(), AttrError> {
    let invalid = |reason: &str| AttrError::Invalid {
        name,
        reason: reason.to_string(),
    };
    if uid.is_empty() {
        return Err(AttrError::Missing(name));
    }
    if uid.len() > 64 {
        return Err(invalid("longer than 64 characters"));
    }
    for part in uid.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("not a dotted sequence of digits"));
        }
    }
    Ok(())
}

/// Reads a string attribute, trimmed of DICOM padding; empty if absent.
pub fn string_of(obj: &InMemDicomObject, tag: Tag) -> String {
    // `get`, not `element_opt`: dicom-object builds an error with a captured backtrace
    // for every absent attribute there (seen as 3% of ingest CPU time).
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string()
        })
        .unwrap_or_default()
}

fn required_uid(obj: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<String, AttrError> {
    let v = string_of(obj, tag);
    check_uid(name, &v)?;
    Ok(v)
}

/// Builds the index record of a parsed Part-10 object, checking the identifying attributes.
///
/// The data set's SOP Instance UID and SOP Class UID must agree with the file meta group.
pub fn index_record(obj: &DefaultDicomObject) -> Result<IndexRecord, AttrError> {
    index_record_with(obj, None)
}

/// As [`index_record`], for an object parsed by [`crate::part10::parse_for_index`]
/// without its trailing Pixel Data (`skipped`), which the record lists as if it had
/// been read.
pub fn index_record_with(
    obj: &DefaultDicomObject,
    skipped: Option<&crate::part10::SkippedPixelData>,
) -> Result<IndexRecord, AttrError> {
    let meta = obj.meta();
    let ds: &InMemDicomObject = obj;
    let study_uid = required_uid(ds, tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?;
    let series_uid = required_uid(ds, tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?;
    let sop_instance_uid = required_uid(ds, tags::SOP_INSTANCE_UID, "SOPInstanceUID")?;
    let sop_class_uid = required_uid(ds, tags::SOP_CLASS_UID, "SOPClassUID")?;
    let meta_sop = meta.media_storage_sop_instance_uid().trim_end_matches('\0');
    if !meta_sop.is_empty() && meta_sop != sop_instance_uid {
        return Err(AttrError::Invalid {
            name: "MediaStorageSOPInstanceUID",
            reason: "differs from the data set's SOPInstanceUID".into(),
        });
    }
    let meta_class = meta.media_storage_sop_class_uid().trim_end_matches('\0');
    if !meta_class.is_empty() && meta_class != sop_class_uid {
        return Err(AttrError::Invalid {
            name: "MediaStorageSOPClassUID",
            reason: "differs from the data set's SOPClassUID".into(),
        });
    }
    let transfer_syntax_uid = meta.transfer_syntax().trim_end_matches('\0').to_string();
    let instance_number = string_of(ds, tags::INSTANCE_NUMBER).parse::<i64>().ok();
    let number_of_frames = if skipped.is_some()
        || ds.get(tags::PIXEL_DATA).is_some()
        || ds.get(tags::FLOAT_PIXEL_DATA).is_some()
    {
        string_of(ds, tags::NUMBER_OF_FRAMES)
            .parse::<u32>()
            .unwrap_or(1)
            .max(1)
    } else {
        0
    };
    let mut study_json = json::select(ds, PATIENT_TAGS);
    study_json.extend(json::select(ds, STUDY_TAGS));
    Ok(IndexRecord {
        patient_id: string_of(ds, tags::PATIENT_ID),
        modality: string_of(ds, tags::MODALITY),
        instance_number,
        number_of_frames,
        study_json,
        series_json: json::select(ds, SERIES_TAGS),
        instance_json: json::select(ds, INSTANCE_TAGS),
        metadata_json: {
            let mut m = json::metadata(ds);
            if let Some(p) = skipped {
                m.insert(
                    json::tag_key(tags::PIXEL_DATA),
                    json::bulk_reference(tags::PIXEL_DATA, p.vr),
                );
            }
            m
        },
        study_uid,
        series_uid,
        sop_instance_uid,
        sop_class_uid,
        transfer_syntax_uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_syntax() {
        assert!(check_uid("x", "1.2.840.10008.1.2").is_ok());
        assert!(check_uid("x", "").is_err());
        assert!(check_uid("x", "1..2").is_err());
        assert!(check_uid("x", "1.2a").is_err());
        assert!(check_uid("x", &"1".repeat(65)).is_err());
    }
}
