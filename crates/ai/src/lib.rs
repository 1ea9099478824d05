//! Lumen's chest CT AI engine: volumes, lungs, nodules, measurements, Lung-RADS and evaluation.
//!
//! The crate has no HTTP and no storage: callers hand it a [`Volume`] (from files or in-memory
//! DICOM instances) and get an analysis back.

pub mod eval;
pub mod ndimage;
pub mod phantom;
pub mod volume;

pub use volume::{Geometry, Volume, VolumeError};
