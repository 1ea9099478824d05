//! Errors of the DIMSE layer, and their mapping to DIMSE statuses.

use crate::status;

/// An error in the DIMSE or upper layer, on either side of an association.
///
/// Variants carry UIDs, AE titles and sizes, never patient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DimseError {
    /// A socket read or write failed (including a connection reset).
    #[error("network I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection without releasing or aborting the association.
    #[error("connection closed by peer")]
    Closed,
    /// No PDU arrived within the configured timeout.
    #[error("timed out waiting for the peer ({0})")]
    Timeout(&'static str),
    /// A PDU could not be decoded or violated the upper layer protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A PDU exceeded the negotiated maximum length.
    #[error("PDU of {len} bytes exceeds the maximum of {max}")]
    PduTooLarge {
        /// Length announced in the PDU header.
        len: u32,
        /// Maximum accepted.
        max: u32,
    },
    /// A command set could not be encoded or decoded.
    #[error("invalid command set: {0}")]
    Command(String),
    /// The peer aborted the association (A-ABORT).
    #[error("association aborted by peer")]
    Aborted,
    /// The peer rejected the association request (A-ASSOCIATE-RJ).
    #[error("association rejected: {0}")]
    Rejected(String),
    /// No accepted presentation context fits the SOP class and transfer syntax to send.
    #[error(
        "no accepted presentation context for SOP class {sop_class_uid} in {transfer_syntax_uid}"
    )]
    NoPresentationContext {
        /// SOP class of the object.
        sop_class_uid: String,
        /// Transfer syntax of the object.
        transfer_syntax_uid: String,
    },
    /// A Part-10 file could not be read or split into meta and data set.
    #[error("invalid Part-10 input: {0}")]
    Part10(String),
    /// The peer answered with a response that does not match the request.
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
}

impl DimseError {
    /// The DIMSE status to answer with when this error stops an operation we were serving.
    pub fn status(&self) -> u16 {
        match self {
            DimseError::Command(_) => status::CANNOT_UNDERSTAND,
            DimseError::NoPresentationContext { .. } => status::SOP_CLASS_NOT_SUPPORTED,
            _ => status::PROCESSING_FAILURE,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = DimseError> = std::result::Result<T, E>;
