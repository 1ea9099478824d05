//! DIMSE command sets (group 0000): the [`Command`] type and its Implicit VR Little Endian codec.
//!
//! Command sets are always encoded in Implicit VR Little Endian with Command Group Length
//! (0000,0000) first (PS3.7 6.3.1, E.1). Encoding goes through dicom-rs's
//! [`InMemDicomObject`], so element order, padding and group length follow its writer;
//! decoding walks the flat element list directly (see `Elements`).

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

use crate::error::{DimseError, Result};

/// Command Data Set Type (0000,0800) value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;
/// The value this crate writes when a data set follows (any other value than 0101 means one).
pub const DATA_SET_PRESENT: u16 = 0x0000;
/// Maximum length of Error Comment (0000,0902), an LO.
pub const ERROR_COMMENT_MAX: usize = 64;

/// The DIMSE operation of a message: Command Field (0000,0100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandField {
    /// C-STORE-RQ (0001).
    CStoreRq,
    /// C-STORE-RSP (8001).
    CStoreRsp,
    /// C-GET-RQ (0010).
    CGetRq,
    /// C-GET-RSP (8010).
    CGetRsp,
    /// C-FIND-RQ (0020).
    CFindRq,
    /// C-FIND-RSP (8020).
    CFindRsp,
    /// C-MOVE-RQ (0021).
    CMoveRq,
    /// C-MOVE-RSP (8021).
    CMoveRsp,
    /// C-ECHO-RQ (0030).
    CEchoRq,
    /// C-ECHO-RSP (8030).
    CEchoRsp,
    /// C-CANCEL-RQ (0FFF).
    CCancelRq,
    /// Any other value (N-services, unknown).
    Other(u16),
}

impl CommandField {
    /// The numeric value of the field.
    pub fn value(self) -> u16 {
        match self {
            CommandField::CStoreRq => 0x0001,
            CommandField::CStoreRsp => 0x8001,
            CommandField::CGetRq => 0x0010,
            CommandField::CGetRsp => 0x8010,
            CommandField::CFindRq => 0x0020,
            CommandField::CFindRsp => 0x8020,
            CommandField::CMoveRq => 0x0021,
            CommandField::CMoveRsp => 0x8021,
            CommandField::CEchoRq => 0x0030,
            CommandField::CEchoRsp => 0x8030,
            CommandField::CCancelRq => 0x0FFF,
            CommandField::Other(v) => v,
        }
    }

    /// The field for a numeric value.
    pub fn from_value(v: u16) -> Self {
        match v {
            0x0001 => CommandField::CStoreRq,
            0x8001 => CommandField::CStoreRsp,
            0x0010 => CommandField::CGetRq,
            0x8010 => CommandField::CGetRsp,
            0x0020 => CommandField::CFindRq,
            0x8020 => CommandField::CFindRsp,
            0x0021 => CommandField::CMoveRq,
            0x8021 => CommandField::CMoveRsp,
            0x0030 => CommandField::CEchoRq,
            0x8030 => CommandField::CEchoRsp,
            0x0FFF => CommandField::CCancelRq,
            other => CommandField::Other(other),
        }
    }

    /// Whether this is a response (bit 15 set).
    pub fn is_response(self) -> bool {
        self.value() & 0x8000 != 0
    }

    /// The response field answering this request field (e.g. C-STORE-RQ → C-STORE-RSP).
    pub fn response(self) -> Self {
        Self::from_value(self.value() | 0x8000)
    }
}

/// Priority (0000,0700) of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// 0000.
    #[default]
    Medium,
    /// 0001.
    High,
    /// 0002.
    Low,
}

impl Priority {
    /// The numeric value.
    pub fn value(self) -> u16 {
        match self {
            Priority::Medium => 0,
            Priority::High => 1,
            Priority::Low => 2,
        }
    }

    /// The priority for a value; unknown values read as medium.
    pub fn from_value(v: u16) -> Self {
        match v {
            1 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Medium,
        }
    }
}

/// Sub-operation counters of C-MOVE/C-GET responses (0000,1020..1023).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubOperations {
    /// Number of Remaining Sub-operations.
    pub remaining: Option<u16>,
    /// Number of Completed Sub-operations.
    pub completed: Option<u16>,
    /// Number of Failed Sub-operations.
    pub failed: Option<u16>,
    /// Number of Warning Sub-operations.
    pub warning: Option<u16>,
}

/// A DIMSE command set: the fields of the C-services (PS3.7 9.3).
///
/// Absent optional fields are not encoded. UIDs are held without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command Field (0000,0100).
    pub field: CommandField,
    /// Message ID (0000,0110), in requests.
    pub message_id: Option<u16>,
    /// Message ID Being Responded To (0000,0120), in responses.
    pub message_id_being_responded_to: Option<u16>,
    /// Affected SOP Class UID (0000,0002).
    pub affected_sop_class_uid: Option<String>,
    /// Affected SOP Instance UID (0000,1000).
    pub affected_sop_instance_uid: Option<String>,
    /// Priority (0000,0700), in C-STORE/C-FIND/C-MOVE/C-GET requests.
    pub priority: Option<Priority>,
    /// Whether a data set follows (Command Data Set Type (0000,0800) other than 0101).
    pub has_data_set: bool,
    /// Status (0000,0900), in responses.
    pub status: Option<u16>,
    /// Error Comment (0000,0902), at most 64 characters.
    pub error_comment: Option<String>,
    /// Move Destination (0000,0600), in C-MOVE-RQ.
    pub move_destination: Option<String>,
    /// Move Originator AE Title (0000,1030), in C-STORE-RQ issued by a C-MOVE.
    pub move_originator_ae_title: Option<String>,
    /// Move Originator Message ID (0000,1031), in C-STORE-RQ issued by a C-MOVE.
    pub move_originator_message_id: Option<u16>,
    /// Sub-operation counters, in C-MOVE/C-GET responses.
    pub sub_operations: SubOperations,
}

impl Command {
    /// An empty command with this field and no data set.
    pub fn new(field: CommandField) -> Self {
        Command {
            field,
            message_id: None,
            message_id_being_responded_to: None,
            affected_sop_class_uid: None,
            affected_sop_instance_uid: None,
            priority: None,
            has_data_set: false,
            status: None,
            error_comment: None,
            move_destination: None,
            move_originator_ae_title: None,
            move_originator_message_id: None,
            sub_operations: SubOperations::default(),
        }
    }

    /// C-ECHO-RQ.
    pub fn echo_rq(message_id: u16) -> Self {
        Command {
            message_id: Some(message_id),
            affected_sop_class_uid: Some(crate::sop::VERIFICATION.to_string()),
            ..Command::new(CommandField::CEchoRq)
        }
    }

    /// C-STORE-RQ for one instance; a data set follows.
    pub fn store_rq(
        message_id: u16,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        priority: Priority,
    ) -> Self {
        Command {
            message_id: Some(message_id),
            affected_sop_class_uid: Some(sop_class_uid.to_string()),
            affected_sop_instance_uid: Some(sop_instance_uid.to_string()),
            priority: Some(priority),
            has_data_set: true,
            ..Command::new(CommandField::CStoreRq)
        }
    }

    /// The response to this request with a status, echoing message ID and affected SOP
    /// class/instance as PS3.7 requires; no data set.
    pub fn response(&self, status: u16) -> Self {
        Command {
            message_id_being_responded_to: self.message_id,
            affected_sop_class_uid: self.affected_sop_class_uid.clone(),
            affected_sop_instance_uid: self.affected_sop_instance_uid.clone(),
            status: Some(status),
            ..Command::new(self.field.response())
        }
    }

    /// Set Error Comment, cut to 64 characters of the default repertoire
    /// (non-ASCII and control characters become `?`).
    pub fn with_error_comment(mut self, comment: &str) -> Self {
        let clean: String = comment
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .take(ERROR_COMMENT_MAX)
            .collect();
        self.error_comment = Some(clean);
        self
    }

    /// Encode as a command set: Implicit VR Little Endian, Command Group Length first.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut elements: Vec<DataElement<_>> = Vec::with_capacity(12);
        let uid = |tag: Tag, v: &str| DataElement::new(tag, VR::UI, PrimitiveValue::from(v));
        let us = |tag: Tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
        let ae = |tag: Tag, v: &str| DataElement::new(tag, VR::AE, PrimitiveValue::from(v));
        if let Some(v) = &self.affected_sop_class_uid {
            elements.push(uid(tags::AFFECTED_SOP_CLASS_UID, v));
        }
        elements.push(us(tags::COMMAND_FIELD, self.field.value()));
        if let Some(v) = self.message_id {
            elements.push(us(tags::MESSAGE_ID, v));
        }
        if let Some(v) = self.message_id_being_responded_to {
            elements.push(us(tags::MESSAGE_ID_BEING_RESPONDED_TO, v));
        }
        if let Some(v) = &self.move_destination {
            elements.push(ae(tags::MOVE_DESTINATION, v));
        }
        if let Some(v) = self.priority {
            elements.push(us(tags::PRIORITY, v.value()));
        }
        let ds_type = if self.has_data_set {
            DATA_SET_PRESENT
        } else {
            NO_DATA_SET
        };
        elements.push(us(tags::COMMAND_DATA_SET_TYPE, ds_type));
        if let Some(v) = self.status {
            elements.push(us(tags::STATUS, v));
        }
        if let Some(v) = &self.error_comment {
            elements.push(DataElement::new(
                tags::ERROR_COMMENT,
                VR::LO,
                PrimitiveValue::from(v.as_str()),
            ));
        }
        if let Some(v) = &self.affected_sop_instance_uid {
            elements.push(uid(tags::AFFECTED_SOP_INSTANCE_UID, v));
        }
        let sub = &self.sub_operations;
        for (tag, v) in [
            (tags::NUMBER_OF_REMAINING_SUBOPERATIONS, sub.remaining),
            (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, sub.completed),
            (tags::NUMBER_OF_FAILED_SUBOPERATIONS, sub.failed),
            (tags::NUMBER_OF_WARNING_SUBOPERATIONS, sub.warning),
        ] {
            if let Some(v) = v {
                elements.push(us(tag, v));
            }
        }
        if let Some(v) = &self.move_originator_ae_title {
            elements.push(ae(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE, v));
        }
        if let Some(v) = self.move_originator_message_id {
            elements.push(us(tags::MOVE_ORIGINATOR_MESSAGE_ID, v));
        }
        let obj = InMemDicomObject::command_from_element_iter(elements);
        let mut out = Vec::with_capacity(256);
        obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .map_err(|e| DimseError::Command(format!("cannot encode command set: {e}")))?;
        Ok(out)
    }

    /// Decode a command set (Implicit VR Little Endian).
    ///
    /// Command Field is required; every other field is optional here and checked by the
    /// service that handles the command.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let obj = Elements::read(bytes)?;
        let get_u16 = |tag| obj.u16(tag);
        let get_str = |tag| obj.str(tag);
        let field = get_u16(tags::COMMAND_FIELD)?
            .ok_or_else(|| DimseError::Command("missing Command Field".into()))?;
        Ok(Command {
            field: CommandField::from_value(field),
            message_id: get_u16(tags::MESSAGE_ID)?,
            message_id_being_responded_to: get_u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
            affected_sop_class_uid: get_str(tags::AFFECTED_SOP_CLASS_UID)?,
            affected_sop_instance_uid: get_str(tags::AFFECTED_SOP_INSTANCE_UID)?,
            priority: get_u16(tags::PRIORITY)?.map(Priority::from_value),
            // Absent Command Data Set Type is treated as "no data set".
            has_data_set: get_u16(tags::COMMAND_DATA_SET_TYPE)?.is_some_and(|v| v != NO_DATA_SET),
            status: get_u16(tags::STATUS)?,
            error_comment: get_str(tags::ERROR_COMMENT)?,
            move_destination: get_str(tags::MOVE_DESTINATION)?,
            move_originator_ae_title: get_str(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE)?,
            move_originator_message_id: get_u16(tags::MOVE_ORIGINATOR_MESSAGE_ID)?,
            sub_operations: SubOperations {
                remaining: get_u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS)?,
                completed: get_u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS)?,
                failed: get_u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS)?,
                warning: get_u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS)?,
            },
        })
    }
}

/// The elements of a command set, read directly. A command set is a flat list of group
/// 0000 elements in Implicit VR Little Endian (PS3.7 E.1): no sequences, no undefined
/// lengths, a handful of US, UI, AE and LO values. Walking it here, rather than with
/// dicom-rs's data set reader, also checks that every element fits the buffer before
/// anything is allocated (a few garbage bytes may declare gigabytes), and avoids the
/// backtrace that reader captures at the end of its input (3% of a C-STORE's CPU time).
struct Elements<'a> {
    elements: Vec<(u16, &'a [u8])>,
}

impl<'a> Elements<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Err(DimseError::Command("empty command set".into()));
        }
        let mut elements = Vec::with_capacity(12);
        let mut i = 0usize;
        while i < bytes.len() {
            let Some(h) = bytes.get(i..i + 8) else {
                return Err(DimseError::Command("truncated element header".into()));
            };
            let group = u16::from_le_bytes([h[0], h[1]]);
            let element = u16::from_le_bytes([h[2], h[3]]);
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if group != 0x0000 {
                return Err(DimseError::Command(format!(
                    "element of group {group:04X} in a command set"
                )));
            }
            if len > bytes.len() - i - 8 {
                return Err(DimseError::Command(
                    "element length exceeds the command set".into(),
                ));
            }
            elements.push((element, &bytes[i + 8..i + 8 + len]));
            i += 8 + len;
        }
        Ok(Elements { elements })
    }

    fn value(&self, tag: Tag) -> Option<&'a [u8]> {
        if tag.group() != 0x0000 {
            return None;
        }
        self.elements
            .iter()
            .find(|(e, _)| *e == tag.element())
            .map(|(_, v)| *v)
    }

    /// A US value (exactly two bytes).
    fn u16(&self, tag: Tag) -> Result<Option<u16>> {
        match self.value(tag) {
            None => Ok(None),
            Some([a, b]) => Ok(Some(u16::from_le_bytes([*a, *b]))),
            Some(v) => Err(DimseError::Command(format!(
                "bad value in {tag}: {} bytes where US needs 2",
                v.len()
            ))),
        }
    }

    /// A text value (UI, AE, LO, SH), without its padding.
    fn str(&self, tag: Tag) -> Result<Option<String>> {
        match self.value(tag) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .map(|s| Some(s.trim_matches(|c: char| c == '\0' || c == ' ').to_string()))
                .map_err(|_| DimseError::Command(format!("bad value in {tag}: not text"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk an Implicit VR LE command set, returning (tag, value) pairs.
    fn elements(bytes: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
        let mut out = vec![];
        let mut i = 0;
        while i < bytes.len() {
            let g = u16::from_le_bytes([bytes[i], bytes[i + 1]]);
            let e = u16::from_le_bytes([bytes[i + 2], bytes[i + 3]]);
            let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
            out.push((g, e, bytes[i + 8..i + 8 + len].to_vec()));
            i += 8 + len;
        }
        out
    }

    #[test]
    fn store_rq_layout_and_round_trip() {
        let rq = Command::store_rq(
            7,
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4.5",
            Priority::Medium,
        );
        let bytes = rq.encode().unwrap();
        let els = elements(&bytes);
        // Command Group Length first, equal to the length of everything after it.
        assert_eq!((els[0].0, els[0].1), (0x0000, 0x0000));
        let gl = u32::from_le_bytes(els[0].2.clone().try_into().unwrap()) as usize;
        assert_eq!(gl, bytes.len() - 12);
        // Ascending tags, even lengths, UIDs padded with NUL.
        let mut prev = 0u16;
        for (g, e, v) in &els[1..] {
            assert_eq!(*g, 0);
            assert!(*e > prev);
            prev = *e;
            assert_eq!(v.len() % 2, 0);
        }
        let sop_inst = els.iter().find(|x| x.1 == 0x1000).unwrap();
        assert_eq!(sop_inst.2, b"1.2.3.4.5\0");
        let ds_type = els.iter().find(|x| x.1 == 0x0800).unwrap();
        assert_eq!(ds_type.2, 0u16.to_le_bytes());
        assert_eq!(Command::decode(&bytes).unwrap(), rq);
    }

    #[test]
    fn response_round_trip() {
        let rq = Command::store_rq(65535, "1.2.3", "4.5.6", Priority::High);
        let rsp = rq
            .response(crate::status::REFUSED_OUT_OF_RESOURCES)
            .with_error_comment(&"ünïcode too long ".repeat(10));
        assert_eq!(rsp.field, CommandField::CStoreRsp);
        assert_eq!(rsp.message_id_being_responded_to, Some(65535));
        let comment = rsp.error_comment.clone().unwrap();
        assert_eq!(comment.len(), 64);
        assert!(comment.starts_with("?n?code"));
        let bytes = rsp.encode().unwrap();
        let back = Command::decode(&bytes).unwrap();
        assert_eq!(back, rsp);
        assert!(!back.has_data_set);
    }

    #[test]
    fn echo_and_move_round_trip() {
        let echo = Command::echo_rq(1);
        assert_eq!(Command::decode(&echo.encode().unwrap()).unwrap(), echo);
        let mut mv = Command::new(CommandField::CMoveRsp);
        mv.message_id_being_responded_to = Some(3);
        mv.status = Some(crate::status::PENDING);
        mv.sub_operations = SubOperations {
            remaining: Some(5),
            completed: Some(2),
            failed: Some(0),
            warning: Some(1),
        };
        let mut mvrq = Command::new(CommandField::CMoveRq);
        mvrq.move_destination = Some("DEST".into());
        mvrq.has_data_set = true;
        mvrq.priority = Some(Priority::Low);
        for c in [mv, mvrq] {
            assert_eq!(Command::decode(&c.encode().unwrap()).unwrap(), c);
        }
        assert_eq!(CommandField::CCancelRq.value(), 0x0FFF);
        assert_eq!(
            CommandField::from_value(0x0140),
            CommandField::Other(0x0140)
        );
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(Command::decode(&[1, 2, 3]).is_err());
        // A valid element that is not Command Field.
        let bytes = [0u8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
        assert!(Command::decode(&bytes).is_err());
        // Garbage declaring a ~1.8 GB element must fail fast, without allocating it.
        let t = std::time::Instant::now();
        assert!(Command::decode(b"\0\0\0\0a command set").is_err());
        assert!(Command::decode(b"not a command set").is_err());
        assert!(Command::decode(&[]).is_err());
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
    }
}
