//! Lumen's chest CT AI engine: volumes, lungs, nodules, measurements, Lung-RADS and evaluation.
//!
//! The crate has no HTTP and no storage: callers hand it a [`Volume`] (from files or in-memory
//! DICOM instances) and get an analysis back.

#![warn(missing_docs)]

pub mod benchmark;
pub mod candidates;
pub mod eval;
pub mod lungrads;
pub mod lungs;
pub mod ndimage;
pub mod nodule;
pub mod phantom;
pub mod pipeline;
pub mod volume;

pub use pipeline::{Analysis, Config, Nodule, Pipeline, Stage, analyze};
pub use volume::{Geometry, Volume, VolumeError};

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// The series could not be assembled.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The series is not an axial stack the detector can use.
    #[error("unsuitable series: {0}")]
    Unsuitable(String),
    /// No lungs were found.
    #[error("no lungs found: {0}")]
    NoLungs(String),
    /// A stage failed.
    #[error("stage {stage} failed: {reason}")]
    Stage {
        /// Stage name.
        stage: String,
        /// Why.
        reason: String,
    },
}
