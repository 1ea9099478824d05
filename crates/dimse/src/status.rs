//! DIMSE status codes (PS3.7 Annex C) and their classification.

/// Success.
pub const SUCCESS: u16 = 0x0000;
/// Warning: coercion of data elements (C-STORE).
pub const WARNING_COERCION: u16 = 0xB000;
/// Warning: elements discarded (C-STORE).
pub const WARNING_ELEMENTS_DISCARDED: u16 = 0xB006;
/// Warning: data set does not match SOP class (C-STORE).
pub const WARNING_DATA_SET_DOES_NOT_MATCH: u16 = 0xB007;
/// Warning: sub-operations complete, one or more failures (C-MOVE/C-GET).
pub const WARNING_SUB_OPERATIONS_FAILED: u16 = 0xB000;
/// Refused: out of resources (A7xx; C-STORE, C-FIND).
pub const REFUSED_OUT_OF_RESOURCES: u16 = 0xA700;
/// Refused: out of resources, unable to calculate number of matches (C-MOVE/C-GET).
pub const REFUSED_OUT_OF_RESOURCES_MATCHES: u16 = 0xA701;
/// Refused: out of resources, unable to perform sub-operations (C-MOVE/C-GET).
pub const REFUSED_OUT_OF_RESOURCES_SUB_OPERATIONS: u16 = 0xA702;
/// Refused: move destination unknown (C-MOVE).
pub const REFUSED_MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
/// Error: data set does not match SOP class (A9xx; C-STORE), identifier does not match (C-FIND).
pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
/// Error: cannot understand (Cxxx; C-STORE), unable to process (C-FIND/C-MOVE/C-GET).
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Failure: processing failure.
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// Failure: duplicate SOP instance.
pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
/// Failure: SOP class not supported.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Failure: not authorized.
pub const NOT_AUTHORIZED: u16 = 0x0124;
/// Failure: duplicate invocation (message ID already in use).
pub const DUPLICATE_INVOCATION: u16 = 0x0210;
/// Failure: unrecognized operation.
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Failure: mistyped argument.
pub const MISTYPED_ARGUMENT: u16 = 0x0212;
/// Cancel: the operation was cancelled by a C-CANCEL.
pub const CANCEL: u16 = 0xFE00;
/// Pending: matches or sub-operations are continuing.
pub const PENDING: u16 = 0xFF00;
/// Pending: matches are continuing, optional keys not supported (C-FIND).
pub const PENDING_WARNING: u16 = 0xFF01;

/// The broad meaning of a DIMSE status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// 0000.
    Success,
    /// 0001, Bxxx, 0107, 0116.
    Warning,
    /// FE00.
    Cancel,
    /// FF00, FF01.
    Pending,
    /// Everything else (Axxx, Cxxx, 01xx, 02xx).
    Failure,
}

/// Classify a status code.
pub fn kind(status: u16) -> StatusKind {
    match status {
        SUCCESS => StatusKind::Success,
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusKind::Warning,
        CANCEL => StatusKind::Cancel,
        PENDING | PENDING_WARNING => StatusKind::Pending,
        _ => StatusKind::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(kind(SUCCESS), StatusKind::Success);
        assert_eq!(kind(WARNING_DATA_SET_DOES_NOT_MATCH), StatusKind::Warning);
        assert_eq!(kind(REFUSED_OUT_OF_RESOURCES), StatusKind::Failure);
        assert_eq!(kind(0xA7FF), StatusKind::Failure);
        assert_eq!(kind(CANNOT_UNDERSTAND), StatusKind::Failure);
        assert_eq!(kind(SOP_CLASS_NOT_SUPPORTED), StatusKind::Failure);
        assert_eq!(kind(PENDING), StatusKind::Pending);
        assert_eq!(kind(CANCEL), StatusKind::Cancel);
    }
}
