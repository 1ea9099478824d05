//! Lumen's chest CT AI engine: volumes, lungs, nodules, measurements, Lung-RADS and evaluation.
//!
//! The crate has no HTTP and no storage: callers hand it a [`Volume`] (from files with
//! [`Volume::from_dicom_files`] or archived instances with [`Volume::from_objects`]) and get an
//! [`Analysis`] back from [`analyze`], which serialises to the JSON contract of `lumen analyze`.
//!
//! The default detector is a classical computer-aided detection pipeline of four typed
//! [`Stage`]s, each replaceable by a trained model ([`Pipeline`] holds them as trait objects):
//!
//! 1. `lungs` ([`lungs`]): threshold, border air removed, trachea and main bronchi grown and
//!    removed, left/right split, holes filled, closed per lung so juxtapleural nodules stay inside;
//! 2. `candidates` ([`candidates`]): scale-normalised LoG maxima at 1 and 2 mm, Hessian dot and
//!    line measures, merged across scales;
//! 3. `segmentation` ([`nodule`]): per-candidate half-maximum segmentation in a sub-millimetre
//!    ROI, opening by the inscribed radius to detach vessels and wall, ground-glass halo for
//!    part-solid nodules, Lung-RADS measurements and features;
//! 4. `fp-reduction` ([`pipeline::RuleScorer`]): a transparent logistic rule over the features.
//!
//! Categories follow Lung-RADS v2022 (baseline) and Fleischner 2017 ([`lungrads`]); [`eval`]
//! implements the LUNA16 FROC/CPM rules and Dice; [`phantom`] generates synthetic chest CTs with
//! ground truth and [`benchmark`] scores an analysis against them.

#![warn(missing_docs)]

pub mod benchmark;
pub mod candidates;
pub mod eval;
/// Lung-RADS v2022 and Fleischner 2017: the clinical model's rules (`lumen_model::lungrads`).
pub use lumen_model::lungrads;
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
