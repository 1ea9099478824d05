//! DICOM foundations for Lumen: the data model the rest of the workspace shares.
//!
//! This crate parses and describes DICOM objects but opens no files or sockets:
//! callers hand it bytes or parsed objects.
//!
//! - [`attrs`]: the patient/study/series/instance attributes an archive indexes.
//! - [`query`]: the query model and matcher shared by QIDO-RS and C-FIND.
//! - [`json`]: DICOM JSON (PS3.18 Annex F) with BulkDataURIs.
//! - [`part10`]: parsing and checking received Part-10 bytes.
//! - [`pixel`]: decoding of pixel data in every common transfer syntax.
//! - [`render`]: rendered frames (modality LUT, VOI window, JPEG and PNG).
//! - [`scan`]: structural pre-scan of untrusted bytes (lengths, nesting) before parsing.

pub mod attrs;
pub mod geometry;
pub mod json;
pub mod part10;
pub mod pixel;
pub mod query;
pub mod render;
pub mod scan;
pub mod sop;
pub mod transcode;
