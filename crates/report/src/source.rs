//! What the writers need to know about the source series, its study and the writing device.

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::dataset::Put;
use crate::{ReportError, Result};

/// One source slice (a single-frame image of the series the results derive from).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceImage {
    /// SOP Class UID of the source instance.
    pub sop_class_uid: String,
    /// SOP Instance UID of the source instance.
    pub sop_instance_uid: String,
    /// Series Instance UID of the source instance.
    pub series_instance_uid: String,
    /// Image Position (Patient) of the first transmitted pixel, in mm.
    pub image_position_patient: [f64; 3],
    /// Image Orientation (Patient): row then column direction cosines.
    pub image_orientation_patient: [f64; 6],
    /// Pixel Spacing: distance between rows, then between columns, in mm.
    pub pixel_spacing: [f64; 2],
    /// Slice Thickness in mm, if known.
    pub slice_thickness: Option<f64>,
    /// Rows of the image.
    pub rows: u16,
    /// Columns of the image.
    pub cols: u16,
}

impl SourceImage {
    /// Reads the geometry of a single-frame source image from its header.
    pub fn from_object(obj: &InMemDicomObject) -> Result<Self> {
        Ok(SourceImage {
            sop_class_uid: required_str(obj, tags::SOP_CLASS_UID, "SOPClassUID")?,
            sop_instance_uid: required_str(obj, tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
            series_instance_uid: required_str(obj, tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
            image_position_patient: floats(
                obj,
                tags::IMAGE_POSITION_PATIENT,
                "ImagePositionPatient",
            )?,
            image_orientation_patient: floats(
                obj,
                tags::IMAGE_ORIENTATION_PATIENT,
                "ImageOrientationPatient",
            )?,
            pixel_spacing: floats(obj, tags::PIXEL_SPACING, "PixelSpacing")?,
            slice_thickness: obj
                .get(tags::SLICE_THICKNESS)
                .and_then(|e| e.to_float64().ok()),
            rows: int(obj, tags::ROWS, "Rows")?,
            cols: int(obj, tags::COLUMNS, "Columns")?,
        })
    }

    /// The unit normal of the image plane (row × column direction).
    pub fn normal(&self) -> [f64; 3] {
        let o = &self.image_orientation_patient;
        let n = [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if len > 0.0 {
            [n[0] / len, n[1] / len, n[2] / len]
        } else {
            [0.0, 0.0, 1.0]
        }
    }
}

/// Patient, study and frame-of-reference attributes copied from a source instance.
///
/// Empty strings are written as empty (Type 2) attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudyContext {
    /// Patient's Name (0010,0010).
    pub patient_name: String,
    /// Patient ID (0010,0020).
    pub patient_id: String,
    /// Patient's Birth Date (0010,0030).
    pub patient_birth_date: String,
    /// Patient's Sex (0010,0040).
    pub patient_sex: String,
    /// Study Instance UID (0020,000D); required.
    pub study_instance_uid: String,
    /// Study Date (0008,0020).
    pub study_date: String,
    /// Study Time (0008,0030).
    pub study_time: String,
    /// Referring Physician's Name (0008,0090).
    pub referring_physician_name: String,
    /// Study ID (0020,0010).
    pub study_id: String,
    /// Accession Number (0008,0050).
    pub accession_number: String,
    /// Frame of Reference UID (0020,0052) of the source series; required for SEG and SCOORD3D.
    pub frame_of_reference_uid: String,
}

impl StudyContext {
    /// Copies the Patient, General Study and Frame of Reference attributes from a source header.
    pub fn from_source(obj: &InMemDicomObject) -> Result<Self> {
        let s = |tag: Tag| optional_str(obj, tag);
        Ok(StudyContext {
            patient_name: s(tags::PATIENT_NAME),
            patient_id: s(tags::PATIENT_ID),
            patient_birth_date: s(tags::PATIENT_BIRTH_DATE),
            patient_sex: s(tags::PATIENT_SEX),
            study_instance_uid: required_str(obj, tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
            study_date: s(tags::STUDY_DATE),
            study_time: s(tags::STUDY_TIME),
            referring_physician_name: s(tags::REFERRING_PHYSICIAN_NAME),
            study_id: s(tags::STUDY_ID),
            accession_number: s(tags::ACCESSION_NUMBER),
            frame_of_reference_uid: required_str(
                obj,
                tags::FRAME_OF_REFERENCE_UID,
                "FrameOfReferenceUID",
            )?,
        })
    }

    /// Writes the Patient and General Study module attributes.
    pub(crate) fn put_patient_study(&self, o: &mut InMemDicomObject) -> Result<()> {
        if self.study_instance_uid.is_empty() {
            return Err(ReportError::MissingAttribute("StudyInstanceUID"));
        }
        o.str(tags::PATIENT_NAME, VR::PN, self.patient_name.clone());
        o.str(tags::PATIENT_ID, VR::LO, self.patient_id.clone());
        o.str(
            tags::PATIENT_BIRTH_DATE,
            VR::DA,
            self.patient_birth_date.clone(),
        );
        o.str(tags::PATIENT_SEX, VR::CS, self.patient_sex.clone());
        o.str(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            self.study_instance_uid.clone(),
        );
        o.str(tags::STUDY_DATE, VR::DA, self.study_date.clone());
        o.str(tags::STUDY_TIME, VR::TM, self.study_time.clone());
        o.str(
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            self.referring_physician_name.clone(),
        );
        o.str(tags::STUDY_ID, VR::SH, self.study_id.clone());
        o.str(
            tags::ACCESSION_NUMBER,
            VR::SH,
            self.accession_number.clone(),
        );
        Ok(())
    }
}

/// The device writing the object (General and Enhanced General Equipment modules).
#[derive(Debug, Clone, PartialEq)]
pub struct Equipment {
    /// Manufacturer (0008,0070).
    pub manufacturer: String,
    /// Manufacturer's Model Name (0008,1090).
    pub model_name: String,
    /// Device Serial Number (0018,1000).
    pub device_serial_number: String,
    /// Software Versions (0018,1020).
    pub software_versions: String,
}

impl Default for Equipment {
    fn default() -> Self {
        Equipment {
            manufacturer: "Lumen".into(),
            model_name: "Lumen".into(),
            device_serial_number: "0".into(),
            software_versions: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl Equipment {
    /// Writes the equipment attributes.
    pub(crate) fn put(&self, o: &mut InMemDicomObject) {
        o.str(tags::MANUFACTURER, VR::LO, self.manufacturer.clone());
        o.str(
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            self.model_name.clone(),
        );
        o.str(
            tags::DEVICE_SERIAL_NUMBER,
            VR::LO,
            self.device_serial_number.clone(),
        );
        o.str(
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            self.software_versions.clone(),
        );
    }
}

/// Attributes of the new series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    /// Series Number (0020,0011).
    pub series_number: i32,
    /// Series Description (0008,103E).
    pub series_description: String,
    /// Instance Number (0020,0013).
    pub instance_number: i32,
    /// Series Instance UID of the new series; a new UID when `None`.
    pub series_instance_uid: Option<String>,
    /// SOP Instance UID of the new instance; a new UID when `None`.
    pub sop_instance_uid: Option<String>,
    /// Date and time (DA, TM) written as instance creation, series and content date and time;
    /// now (UTC) when `None`. Fixed UIDs and a fixed date and time make the writers
    /// deterministic: the same input gives the same bytes (exactly-once storage on re-runs).
    pub date_time: Option<(String, String)>,
}

impl Default for SeriesInfo {
    fn default() -> Self {
        SeriesInfo {
            series_number: 1000,
            series_description: String::new(),
            instance_number: 1,
            series_instance_uid: None,
            sop_instance_uid: None,
            date_time: None,
        }
    }
}

fn optional_str(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

fn required_str(obj: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<String> {
    let s = optional_str(obj, tag);
    if s.is_empty() {
        Err(ReportError::MissingAttribute(name))
    } else {
        Ok(s)
    }
}

fn floats<const N: usize>(
    obj: &InMemDicomObject,
    tag: Tag,
    name: &'static str,
) -> Result<[f64; N]> {
    let e = obj.get(tag).ok_or(ReportError::MissingAttribute(name))?;
    let v = e
        .to_multi_float64()
        .map_err(|_| ReportError::InvalidAttribute(name))?;
    v.get(..N)
        .and_then(|s| <[f64; N]>::try_from(s).ok())
        .ok_or(ReportError::InvalidAttribute(name))
}

fn int(obj: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<u16> {
    obj.get(tag)
        .ok_or(ReportError::MissingAttribute(name))?
        .to_int::<u16>()
        .map_err(|_| ReportError::InvalidAttribute(name))
}
