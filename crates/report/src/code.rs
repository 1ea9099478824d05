//! Coded concepts (Code Sequence Macro) and the codes Lumen's SEG and SR use.

/// A coded concept: value, coding scheme designator and meaning (PS3.3 Table 8.8-1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code {
    /// Code Value (0008,0100).
    pub value: String,
    /// Coding Scheme Designator (0008,0102), e.g. `SCT`, `DCM`, `UCUM`.
    pub scheme: String,
    /// Code Meaning (0008,0104).
    pub meaning: String,
}

impl Code {
    /// Builds a code from its value, scheme and meaning.
    pub fn new(
        value: impl Into<String>,
        scheme: impl Into<String>,
        meaning: impl Into<String>,
    ) -> Self {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = ($v:literal, $s:literal, $m:literal);)*) => {
        $(
            $(#[$doc])*
            pub fn $name() -> Code {
                Code::new($v, $s, $m)
            }
        )*
    };
}

/// SNOMED CT codes.
pub mod sct {
    use super::Code;
    codes! {
        /// Lung (body structure); segmented property type and finding site.
        lung = ("39607008", "SCT", "Lung");
        /// Right lung.
        right_lung = ("3341006", "SCT", "Right lung");
        /// Left lung.
        left_lung = ("44029006", "SCT", "Left lung");
        /// Nodule (morphologic abnormality).
        nodule = ("27925004", "SCT", "Nodule");
        /// Segmented property category "Anatomical Structure".
        anatomical_structure = ("123037004", "SCT", "Anatomical Structure");
        /// Segmented property category "Morphologically Abnormal Structure".
        morphologically_abnormal_structure = ("49755003", "SCT", "Morphologically Abnormal Structure");
        /// Thorax (anatomic region).
        thorax = ("43799004", "SCT", "Thorax");
        /// Finding Site (concept name).
        finding_site = ("363698007", "SCT", "Finding Site");
        /// Long axis.
        long_axis = ("103339001", "SCT", "Long Axis");
        /// Short axis.
        short_axis = ("103340004", "SCT", "Short Axis");
        /// Volume.
        volume = ("118565006", "SCT", "Volume");
        /// Diameter.
        diameter = ("81827009", "SCT", "Diameter");
        /// Mean (derivation).
        mean = ("373098007", "SCT", "Mean");
        /// CT of chest (procedure reported).
        ct_chest = ("169069000", "SCT", "CT of chest");
    }
}

/// DICOM Controlled Terminology (DCM) codes.
pub mod dcm {
    use super::Code;
    codes! {
        /// Root of TID 1500.
        imaging_measurement_report = ("126000", "DCM", "Imaging Measurement Report");
        /// Container of measurement groups.
        imaging_measurements = ("126010", "DCM", "Imaging Measurements");
        /// One group per finding.
        measurement_group = ("125007", "DCM", "Measurement Group");
        /// Image Library container.
        image_library = ("111028", "DCM", "Image Library");
        /// Image Library Group container.
        image_library_group = ("126200", "DCM", "Image Library Group");
        /// Language of Content Item and Descendants.
        language_of_content = ("121049", "DCM", "Language of Content Item and Descendants");
        /// Observer Type.
        observer_type = ("121005", "DCM", "Observer Type");
        /// Observer type value "Device".
        device = ("121007", "DCM", "Device");
        /// Device Observer UID.
        device_observer_uid = ("121012", "DCM", "Device Observer UID");
        /// Device Observer Name.
        device_observer_name = ("121013", "DCM", "Device Observer Name");
        /// Device Observer Manufacturer.
        device_observer_manufacturer = ("121014", "DCM", "Device Observer Manufacturer");
        /// Device Observer Model Name.
        device_observer_model_name = ("121015", "DCM", "Device Observer Model Name");
        /// Procedure reported.
        procedure_reported = ("121058", "DCM", "Procedure reported");
        /// Tracking Identifier.
        tracking_identifier = ("112039", "DCM", "Tracking Identifier");
        /// Tracking Unique Identifier.
        tracking_unique_identifier = ("112040", "DCM", "Tracking Unique Identifier");
        /// Finding.
        finding = ("121071", "DCM", "Finding");
        /// Referenced Segment.
        referenced_segment = ("121191", "DCM", "Referenced Segment");
        /// Source series for segmentation.
        source_series_for_segmentation = ("121232", "DCM", "Source series for segmentation");
        /// Derivation (concept modifier).
        derivation = ("121401", "DCM", "Derivation");
        /// Attenuation Coefficient (CT number).
        attenuation_coefficient = ("112031", "DCM", "Attenuation Coefficient");
        /// Algorithm Name.
        algorithm_name = ("111001", "DCM", "Algorithm Name");
        /// Algorithm Version.
        algorithm_version = ("111003", "DCM", "Algorithm Version");
        /// Image Region (TID 1410 ROI), here a SCOORD3D point.
        image_region = ("111030", "DCM", "Image Region");
        /// Purpose of reference for SEG source images.
        source_image_for_processing = ("121322", "DCM", "Source image for image processing operation");
        /// Algorithm family "Artificial Intelligence" (CID 7162).
        artificial_intelligence = ("123110", "DCM", "Artificial Intelligence");
        /// Derivation code of a SEG.
        segmentation = ("113076", "DCM", "Segmentation");
    }
}

/// UMLS codes.
pub mod umls {
    use super::Code;
    codes! {
        /// Qualitative Evaluations container (TID 1500 exam-level and TID 1411).
        qualitative_evaluations = ("C0034375", "UMLS", "Qualitative Evaluations");
    }
}

/// RFC 5646 language tags.
pub mod rfc5646 {
    use super::Code;
    codes! {
        /// English.
        english = ("en", "RFC5646", "English");
    }
}

/// UCUM units.
pub mod ucum {
    use super::Code;
    codes! {
        /// Millimetre.
        mm = ("mm", "UCUM", "millimeter");
        /// Cubic millimetre.
        mm3 = ("mm3", "UCUM", "cubic millimeter");
        /// Hounsfield unit.
        hounsfield = ("[hnsf'U]", "UCUM", "Hounsfield unit");
    }
}
