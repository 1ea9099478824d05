//! Lumen's audit trail on the wire: each [`lumen_model::AuditEvent`] as a DICOM audit
//! message (PS3.15 A.5), for a hospital's audit record repository.
//!
//! - [`message`]: the audit message XML ([`audit_message`]), with the table of EventIDs per
//!   action.
//!
//! The crate depends only on `lumen-model`.

pub mod message;

pub use message::{AuditSource, audit_message};
