//! The SOP classes and transfer syntaxes the SCP accepts by default.

/// Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Implicit VR Little Endian, the default transfer syntax.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Patient Root Query/Retrieve Information Model - FIND.
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
/// Patient Root Query/Retrieve Information Model - MOVE.
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
/// Patient Root Query/Retrieve Information Model - GET.
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
/// Study Root Query/Retrieve Information Model - FIND.
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
/// Study Root Query/Retrieve Information Model - MOVE.
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
/// Study Root Query/Retrieve Information Model - GET.
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// The DIMSE service an abstract syntax belongs to (for access control and dispatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Verification (C-ECHO).
    Echo,
    /// A storage SOP class (C-STORE).
    Store,
    /// A query/retrieve FIND model (C-FIND).
    Find,
    /// A query/retrieve MOVE model (C-MOVE).
    Move,
    /// A query/retrieve GET model (C-GET).
    Get,
}

/// The query/retrieve service of a Patient Root or Study Root model, if `uid` is one.
pub fn query_retrieve_service(uid: &str) -> Option<Service> {
    match uid {
        PATIENT_ROOT_FIND | STUDY_ROOT_FIND => Some(Service::Find),
        PATIENT_ROOT_MOVE | STUDY_ROOT_MOVE => Some(Service::Move),
        PATIENT_ROOT_GET | STUDY_ROOT_GET => Some(Service::Get),
        _ => None,
    }
}

/// Storage SOP classes accepted by default: the common image, structured report,
/// segmentation, radiotherapy, presentation state and document classes.
pub const STORAGE_SOP_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.1",      // Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",    // Digital X-Ray for Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  // Digital X-Ray for Processing
    "1.2.840.10008.5.1.4.1.1.1.2",    // Digital Mammography for Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  // Digital Mammography for Processing
    "1.2.840.10008.5.1.4.1.1.1.3",    // Digital Intra-Oral X-Ray for Presentation
    "1.2.840.10008.5.1.4.1.1.13.1.3", // Breast Tomosynthesis
    "1.2.840.10008.5.1.4.1.1.2",      // CT
    "1.2.840.10008.5.1.4.1.1.2.1",    // Enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",    // Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",      // MR
    "1.2.840.10008.5.1.4.1.1.4.1",    // Enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.2",    // MR Spectroscopy
    "1.2.840.10008.5.1.4.1.1.4.3",    // Enhanced MR Color
    "1.2.840.10008.5.1.4.1.1.4.4",    // Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",    // Ultrasound
    "1.2.840.10008.5.1.4.1.1.6.2",    // Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.3.1",    // Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.20",     // Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",    // PET
    "1.2.840.10008.5.1.4.1.1.128.1",  // Legacy Converted Enhanced PET
    "1.2.840.10008.5.1.4.1.1.130",    // Enhanced PET
    "1.2.840.10008.5.1.4.1.1.7",      // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.1",    // Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",    // Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",    // Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",    // Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.12.1",   // X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.12.1.1", // Enhanced XA
    "1.2.840.10008.5.1.4.1.1.12.2",   // X-Ray Radiofluoroscopic
    "1.2.840.10008.5.1.4.1.1.12.2.1", // Enhanced XRF
    "1.2.840.10008.5.1.4.1.1.481.1",  // RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  // RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  // RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.4",  // RT Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.5",  // RT Plan
    "1.2.840.10008.5.1.4.1.1.481.7",  // RT Treatment Summary Record
    "1.2.840.10008.5.1.4.1.1.481.8",  // RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.481.9",  // RT Ion Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.66",     // Raw Data
    "1.2.840.10008.5.1.4.1.1.66.1",   // Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.2",   // Spatial Fiducials
    "1.2.840.10008.5.1.4.1.1.66.3",   // Deformable Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.4",   // Segmentation
    "1.2.840.10008.5.1.4.1.1.66.5",   // Surface Segmentation
    "1.2.840.10008.5.1.4.1.1.66.7",   // Label Map Segmentation
    "1.2.840.10008.5.1.4.1.1.30",     // Parametric Map
    "1.2.840.10008.5.1.4.1.1.67",     // Real World Value Mapping
    "1.2.840.10008.5.1.4.1.1.88.11",  // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  // Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.35",  // Extensible SR
    "1.2.840.10008.5.1.4.1.1.88.59",  // Key Object Selection Document
    "1.2.840.10008.5.1.4.1.1.88.65",  // Chest CAD SR
    "1.2.840.10008.5.1.4.1.1.88.67",  // X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.68",  // Radiopharmaceutical Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.73",  // Patient Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.50",  // Mammography CAD SR
    "1.2.840.10008.5.1.4.1.1.11.1",   // Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.11.2",   // Color Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.11.3",   // Pseudo-Color Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.11.4",   // Blending Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  // Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.104.2",  // Encapsulated CDA
    "1.2.840.10008.5.1.4.1.1.104.3",  // Encapsulated STL
    "1.2.840.10008.5.1.4.1.1.77.1.1", // VL Endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.2", // VL Microscopic
    "1.2.840.10008.5.1.4.1.1.77.1.4", // VL Photographic
    "1.2.840.10008.5.1.4.1.1.77.1.6", // VL Whole Slide Microscopy
    "1.2.840.10008.5.1.4.1.1.9.1.1",  // 12-lead ECG Waveform
    "1.2.840.10008.5.1.4.1.1.9.1.2",  // General ECG Waveform
];

/// Transfer syntaxes accepted by default for storage. When a presentation context proposes
/// several, the requestor's order decides (the first proposed that is in this list).
pub const STORAGE_TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.70",  // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90",  // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.201", // HTJ2K Lossless
    "1.2.840.10008.1.2.4.202", // HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.57",  // JPEG Lossless non-hierarchical
    "1.2.840.10008.1.2.5",     // RLE Lossless
    "1.2.840.10008.1.2.1",     // Explicit VR Little Endian
    "1.2.840.10008.1.2",       // Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",     // Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.4.50",  // JPEG Baseline 8-bit
    "1.2.840.10008.1.2.4.51",  // JPEG Extended 12-bit
    "1.2.840.10008.1.2.4.81",  // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.91",  // JPEG 2000
    "1.2.840.10008.1.2.4.203", // HTJ2K
    "1.2.840.10008.1.2.4.100", // MPEG2 Main Profile
    "1.2.840.10008.1.2.4.102", // MPEG-4 AVC/H.264
    "1.2.840.10008.1.2.4.110", // JPEG XL Lossless
    "1.2.840.10008.1.2.4.112", // JPEG XL
];

/// Remove UID padding (trailing NUL or spaces).
pub fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::dictionary::UidDictionary;
    use dicom_dictionary_std::StandardSopClassDictionary;

    #[test]
    fn default_lists_are_storage_and_unique() {
        for uid in STORAGE_SOP_CLASSES {
            let name = StandardSopClassDictionary.by_uid(uid).map(|e| e.name);
            assert!(name.is_some_and(|n| n.contains("Storage")), "{uid}");
        }
        let mut v = STORAGE_SOP_CLASSES.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), STORAGE_SOP_CLASSES.len());
        assert_eq!(trim_uid("1.2.3\0"), "1.2.3");
    }
}
