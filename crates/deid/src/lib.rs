//! De-identification of DICOM objects for research and AI training: the DICOM PS3.15
//! Annex E Basic Application Level Confidentiality Profile, with the options Retain
//! Longitudinal Temporal Information with Modified Dates, Retain UIDs, Clean Descriptors
//! and a safelist of private attributes (Retain Safe Private).
//!
//! Part-10 bytes in, Part-10 bytes out: the crate opens no files or sockets. One
//! [`Deidentifier`] serves one export; its [`Secret`] (32 random bytes, new per export)
//! keys every replacement, so all instances of a study get one new Study Instance UID,
//! references inside sequences follow the objects they point to, and a patient keeps one
//! pseudonym and one date shift throughout the export, while nothing can be linked back
//! without the secret.
//!
//! What each action of [`table`] (Table E.1-1) does here, at every nesting level:
//! - X removes the attribute; Z leaves it empty (a sequence without items); D writes a
//!   dummy value of its VR (a new UID for UI; Patient's Name and Patient ID get the
//!   patient's pseudonym under Z and D alike, which Z allows);
//! - X/Z, X/D, Z/D, X/Z/D take the last choice (Z or D), which is valid whatever the
//!   attribute's type in the IOD (the table's choice depends on the IOD, unknown here);
//! - U and X/Z/U* (for the referenced sequences) replace UIDs by keyed 2.25 UIDs;
//! - K keeps a value; sequences under K, C, D and X/Z/U* are kept and their items cleaned
//!   by the same table; Content Sequence (D) keeps the SR tree's codes, numbers and
//!   references and replaces its free text (Text Value), the Clean Structured Content
//!   option not being offered;
//! - C shifts DA and DT values by the patient's whole-day offset (times of day are kept) or,
//!   for descriptors, masks every identifying string found in the object's removed or
//!   replaced attributes (names, IDs, institution) with `*`.
//!
//! Attributes the table does not list are kept, as the profile says; private attributes
//! are removed unless safelisted by group, private creator and element. Pixel data is kept
//! byte for byte in its transfer syntax; an image that shows or may show burned-in text
//! is flagged with a [`Warning`], never passed silently.
//! Errors carry no patient data.

mod dates;
mod derive;
mod engine;
pub mod table;

use serde::{Deserialize, Serialize};

pub use derive::Secret;

/// Which options of the profile apply, beyond the Basic Profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Retain Longitudinal Temporal Information with Modified Dates: dates are shifted
    /// by a per-patient number of days (consistent within the export) instead of removed.
    pub retain_longitudinal_modified_dates: bool,
    /// Retain UIDs: UIDs are kept instead of replaced.
    pub retain_uids: bool,
    /// Clean Descriptors: descriptions and comments are cleaned and kept instead of removed.
    pub clean_descriptors: bool,
    /// Private attributes kept (Retain Safe Private); every other private attribute is
    /// removed.
    pub safe_private: Vec<SafePrivate>,
}

/// A private attribute that is safe to keep: its odd group, its private creator and its
/// element within the creator's block (the low byte `ee` of `(gggg,xxee)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SafePrivate {
    /// The odd group.
    pub group: u16,
    /// The private creator (Private Creator Data Element value), compared trimmed.
    pub creator: String,
    /// The element offset within the creator's block.
    pub element: u8,
}

impl std::str::FromStr for SafePrivate {
    type Err = DeidError;

    /// Reads `GGGG,CREATOR,EE` (hexadecimal group and element offset), e.g.
    /// `0019,GEMS_ACQU_01,1E`.
    fn from_str(s: &str) -> Result<SafePrivate, DeidError> {
        let bad = || DeidError::SafePrivate(s.to_string());
        let mut parts = s.splitn(3, ',');
        let (Some(g), Some(c), Some(e)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let group = u16::from_str_radix(g.trim(), 16).map_err(|_| bad())?;
        let e = e.trim();
        let e = if e.len() == 4 { &e[2..] } else { e };
        let element = u8::from_str_radix(e, 16).map_err(|_| bad())?;
        let creator = c.trim().to_string();
        if group % 2 == 0 || creator.is_empty() {
            return Err(bad());
        }
        Ok(SafePrivate {
            group,
            creator,
            element,
        })
    }
}

/// What kind of caution a de-identified instance needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Burned In Annotation (0028,0301) is YES: the pixels show identifying text, which
    /// this profile does not remove (that is the Clean Pixel Data option).
    BurnedInAnnotation,
    /// Burned In Annotation is absent for a kind of image that often carries such text
    /// (ultrasound, secondary capture, photographs, projection radiography...).
    PossibleBurnedInAnnotation,
    /// Recognizable Visual Features (0028,0302) is YES (a face, for instance).
    RecognizableVisualFeatures,
    /// The free text of an SR's content tree was replaced by a dummy value.
    StructuredTextReplaced,
    /// An encapsulated document was replaced by a dummy value, as the profile requires.
    DocumentReplaced,
}

/// A caution about one de-identified instance, named by its new SOP Instance UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The new SOP Instance UID of the instance.
    pub sop_instance_uid: String,
    /// What it is.
    pub kind: WarningKind,
    /// What it means, for the person who exports (no patient data).
    pub message: String,
}

/// A de-identified instance.
#[derive(Debug, Clone)]
pub struct Deidentified {
    /// The Part-10 object, in the transfer syntax it came in.
    pub bytes: Vec<u8>,
    /// Its (new) SOP Instance UID.
    pub sop_instance_uid: String,
    /// Its (new) Study Instance UID, if it has one.
    pub study_instance_uid: Option<String>,
    /// Its (new) Series Instance UID, if it has one.
    pub series_instance_uid: Option<String>,
    /// What the exporter must know about it (burned-in annotation...).
    pub warnings: Vec<Warning>,
}

/// Why an object could not be de-identified. Messages hold no patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeidError {
    /// The bytes are not a readable Part-10 object.
    #[error("not a readable DICOM object: {0}")]
    Parse(String),
    /// The object has no SOP Instance UID (0008,0018) nor Media Storage SOP Instance UID.
    #[error("the object has no SOP Instance UID")]
    NoSopInstanceUid,
    /// The de-identified object could not be encoded.
    #[error("cannot encode the de-identified object: {0}")]
    Encode(String),
    /// A safelist entry is not `GGGG,CREATOR,EE` with an odd group.
    #[error(
        "invalid private attribute {0:?}: expected GGGG,CREATOR,EE (odd hexadecimal group, \
         private creator, hexadecimal element offset)"
    )]
    SafePrivate(String),
}

/// The de-identifier of one export.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    options: Options,
    secret: Secret,
}

impl Deidentifier {
    /// A de-identifier applying `options`, keyed by the export's `secret`.
    pub fn new(options: Options, secret: Secret) -> Deidentifier {
        Deidentifier { options, secret }
    }

    /// The options applied.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The UID that replaces `original` in this export (itself under Retain UIDs).
    pub fn replacement_uid(&self, original: &str) -> String {
        if self.options.retain_uids {
            original.trim_end_matches(['\0', ' ']).to_string()
        } else {
            derive::uid(&self.secret, original.trim_end_matches(['\0', ' ']))
        }
    }

    /// De-identifies one Part-10 object.
    pub fn deidentify(&self, part10: &[u8]) -> Result<Deidentified, DeidError> {
        engine::run(self, part10)
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }
}

#[cfg(test)]
mod tests;
