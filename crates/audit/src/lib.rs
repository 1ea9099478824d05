//! Lumen's audit trail on the wire: each [`lumen_model::AuditEvent`] as a DICOM audit
//! message (PS3.15 A.5), sent over syslog to a hospital's audit record repository as IHE
//! ATNA's Record Audit Event [ITI-20] describes.
//!
//! - [`message`]: the audit message XML ([`audit_message`]), with the table of EventIDs per
//!   action;
//! - [`syslog`]: RFC 5424 messages and the UDP (RFC 5426), TCP (RFC 6587 octet counting) and
//!   TLS (RFC 5425) transports, configured by [`SyslogConfig`] (`[audit.syslog]`);
//! - [`forward`]: the [`Forwarder`] that reads the trail from the index through [`AuditLog`]
//!   in sequence order and delivers it, at least once, across repository outages.
//!
//! The crate depends only on `lumen-model`; it opens sockets only to the configured
//! repository and reads only the configured certificate files.

#![warn(missing_docs)]

pub mod forward;
pub mod message;
pub mod syslog;

pub use forward::{AuditLog, Forwarder};
pub use message::{AuditSource, audit_message};
pub use syslog::{ConfigError, SendError, Sender, SyslogConfig, Transport};
