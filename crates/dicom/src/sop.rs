//! SOP classes and transfer syntaxes: names and which ones an archive stores.

use dicom_core::dictionary::{UidDictionary, UidType};
use dicom_dictionary_std::StandardSopClassDictionary;

/// Whether `uid` is a standard Storage SOP class (any composite object an archive keeps),
/// excluding Storage Commitment and other services whose names mention storage.
pub fn is_storage_sop_class(uid: &str) -> bool {
    let Some(e) = StandardSopClassDictionary.by_uid(uid.trim_end_matches('\0')) else {
        return false;
    };
    e.r#type == UidType::SopClass
        && e.name.contains("Storage")
        && !e.name.contains("Commitment")
        && !e.name.contains("Retrieve")
        && !e.name.contains("Query")
        && !e.name.contains("Directory")
}

/// The standard name of a SOP class, if known.
pub fn sop_class_name(uid: &str) -> Option<&'static str> {
    StandardSopClassDictionary
        .by_uid(uid.trim_end_matches('\0'))
        .map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_classes() {
        assert!(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.2")); // CT
        assert!(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.66.4")); // SEG
        assert!(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.88.34")); // Comprehensive 3D SR
        assert!(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.104.1")); // Encapsulated PDF
        assert!(!is_storage_sop_class("1.2.840.10008.1.1")); // Verification
        assert!(!is_storage_sop_class("1.2.840.10008.1.20.1")); // Storage Commitment Push
        assert!(!is_storage_sop_class("1.2.3.4"));
        assert!(!is_storage_sop_class("1.2.840.10008.1.3.10")); // DICOMDIR
    }
}
