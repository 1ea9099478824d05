//! DICOM writers for AI results: Segmentation (SEG) and Comprehensive 3D SR (TID 1500); the
//! radiologist's report: its draft text (`draft`), PDF (`pdf`), and DICOM Encapsulated PDF and
//! Basic Text SR (`document`).
//!
//! Both writers build the object with dicom-rs's object model and return Part-10 bytes in
//! Explicit VR Little Endian with freshly generated UIDs; storing them is the caller's business.
//! The inputs are plain data (source slice geometry, masks, measurements), independent of the
//! AI engine's types.

#![warn(missing_docs)]

pub mod code;
pub mod colour;
mod dataset;
pub mod document;
pub mod draft;
pub mod pdf;
pub mod qr;
pub mod seg;
pub mod source;
pub mod sr;
pub mod time;
pub mod uid;

pub use code::Code;
pub use seg::{Segment, SegmentationOptions, write_segmentation};
pub use source::{Equipment, SeriesInfo, SourceImage, StudyContext};
pub use sr::{
    Algorithm, FindingGroup, Measurement, MeasurementReport, Qualitative, QualitativeValue,
    SegmentationRef, write_measurement_report,
};

/// A DICOM object written by this crate: its Part-10 bytes and identifiers.
#[derive(Debug, Clone)]
pub struct WrittenObject {
    /// The Part-10 file (preamble, meta group, Explicit VR Little Endian data set).
    pub bytes: Vec<u8>,
    /// SOP Class UID of the object.
    pub sop_class_uid: String,
    /// New SOP Instance UID.
    pub sop_instance_uid: String,
    /// New Series Instance UID (a new series of the source study).
    pub series_instance_uid: String,
    /// Study Instance UID, copied from the source.
    pub study_instance_uid: String,
}

/// Why an object could not be written. Messages carry UIDs and counts, never patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A required attribute is missing from the source header.
    #[error("source header lacks {0}")]
    MissingAttribute(&'static str),
    /// A source attribute has a value that cannot be used.
    #[error("source attribute {0} is invalid")]
    InvalidAttribute(&'static str),
    /// No source images were given.
    #[error("no source images")]
    NoSources,
    /// The source images do not share one grid (rows, columns, orientation, spacing).
    #[error("source image {sop_instance_uid} is not on the grid of the first source image")]
    NonUniformGrid {
        /// The offending source instance.
        sop_instance_uid: String,
    },
    /// A mask does not have `slices × rows × columns` voxels.
    #[error("mask of segment {segment} has {actual} voxels, expected {expected}")]
    MaskSize {
        /// 1-based segment number.
        segment: usize,
        /// Voxels expected.
        expected: usize,
        /// Voxels given.
        actual: usize,
    },
    /// No segments were given, or more than a SEG can hold.
    #[error("segment count {0} out of range 1..=65535")]
    SegmentCount(usize),
    /// A finding refers to a segment but the report names no segmentation.
    #[error("finding {0} references a segment but the report has no segmentation")]
    NoSegmentation(String),
    /// The report font cannot be used.
    #[error("report font: {0}")]
    Font(String),
    /// dicom-rs failed to build or encode the object.
    #[error("encoding the DICOM object failed: {0}")]
    Encode(String),
}

/// Result alias for this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
