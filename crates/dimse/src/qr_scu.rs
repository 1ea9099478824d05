//! Query/retrieve as SCU on a [`StoreScu`] association: C-FIND (collecting the pending
//! identifiers), C-GET (receiving the C-STORE sub-operations on the same association) and
//! C-MOVE (sub-operations go to another AE; only the counts come back).
//!
//! The association must have been negotiated with the query/retrieve SOP class used (see
//! [`qr_proposals`]) and, for C-GET, with storage contexts and SCP role selection for the
//! classes to receive ([`get_storage_proposals`], [`StoreScu::connect_with_roles`]).

use bytes::Bytes;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use crate::command::{Command, CommandField, Priority};
use crate::error::{DimseError, Result};
use crate::scu::{Proposal, StoreScu};
use crate::sop::{
    EXPLICIT_VR_LE, IMPLICIT_VR_LE, PATIENT_ROOT_FIND, PATIENT_ROOT_GET, PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE,
};
use crate::status::{self, StatusKind};

/// The information model of a query/retrieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryModel {
    /// Patient Root.
    PatientRoot,
    /// Study Root.
    StudyRoot,
}

impl QueryModel {
    /// The C-FIND SOP class.
    pub fn find_uid(self) -> &'static str {
        match self {
            QueryModel::PatientRoot => PATIENT_ROOT_FIND,
            QueryModel::StudyRoot => STUDY_ROOT_FIND,
        }
    }

    /// The C-GET SOP class.
    pub fn get_uid(self) -> &'static str {
        match self {
            QueryModel::PatientRoot => PATIENT_ROOT_GET,
            QueryModel::StudyRoot => STUDY_ROOT_GET,
        }
    }

    /// The C-MOVE SOP class.
    pub fn move_uid(self) -> &'static str {
        match self {
            QueryModel::PatientRoot => PATIENT_ROOT_MOVE,
            QueryModel::StudyRoot => STUDY_ROOT_MOVE,
        }
    }
}

/// Proposals for the C-FIND, C-GET and C-MOVE classes of `model` (Explicit then Implicit
/// VR Little Endian).
pub fn qr_proposals(model: QueryModel) -> Vec<Proposal> {
    [model.find_uid(), model.get_uid(), model.move_uid()]
        .into_iter()
        .map(|c| Proposal::new(c, &[EXPLICIT_VR_LE, IMPLICIT_VR_LE]))
        .collect()
}

/// Storage classes a C-GET receives by default (the common image, SR and SEG classes).
pub const GET_STORAGE_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",     // CT
    "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",     // MR
    "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1",     // CR
    "1.2.840.10008.5.1.4.1.1.1.1",   // DX for Presentation
    "1.2.840.10008.5.1.4.1.1.1.2",   // Mammography for Presentation
    "1.2.840.10008.5.1.4.1.1.6.1",   // US
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.128",   // PET
    "1.2.840.10008.5.1.4.1.1.20",    // NM
    "1.2.840.10008.5.1.4.1.1.66.4",  // Segmentation
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33", // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59", // Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  // Grayscale Softcopy Presentation State
];

/// Transfer syntaxes a C-GET receives by default, each in a context of its own so that
/// instances come as stored.
pub const GET_TRANSFER_SYNTAXES: &[&str] = &[
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
];

/// One proposal per (class, transfer syntax) of `classes` × `syntaxes`.
pub fn get_storage_proposals(classes: &[&str], syntaxes: &[&str]) -> Vec<Proposal> {
    classes
        .iter()
        .flat_map(|c| syntaxes.iter().map(move |ts| Proposal::new(c, &[ts])))
        .collect()
}

/// An identifier: Query/Retrieve Level plus `keys` (tag, VR, value; empty value: return key).
pub fn identifier(level: &str, keys: &[(Tag, VR, &str)]) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(level),
    ));
    for (tag, vr, value) in keys {
        let v = if value.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(*value)
        };
        obj.put(DataElement::new(*tag, *vr, v));
    }
    obj
}

/// A data set received by a C-GET (a C-STORE sub-operation), as sent.
#[derive(Debug, Clone)]
pub struct ReceivedInstance {
    /// Affected SOP Class UID.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the presentation context it came on.
    pub transfer_syntax_uid: String,
    /// The data set bytes.
    pub dataset: Bytes,
}

/// The final response of a C-GET or C-MOVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveResult {
    /// Final status.
    pub status: u16,
    /// Error Comment, if any.
    pub error_comment: Option<String>,
    /// Completed sub-operations.
    pub completed: u16,
    /// Failed sub-operations.
    pub failed: u16,
    /// Warning sub-operations.
    pub warning: u16,
    /// Pending responses seen.
    pub pending: usize,
}

impl StoreScu {
    fn context_for(&self, sop_class_uid: &str) -> Result<(u8, String)> {
        self.contexts
            .iter()
            .find(|c| c.abstract_syntax == sop_class_uid)
            .map(|c| (c.id, c.transfer_syntax.clone()))
            .ok_or_else(|| DimseError::NoPresentationContext {
                sop_class_uid: sop_class_uid.into(),
                transfer_syntax_uid: "any".into(),
            })
    }

    async fn send_qr(
        &mut self,
        field: CommandField,
        sop_class_uid: &str,
        identifier: &InMemDicomObject,
        move_destination: Option<&str>,
    ) -> Result<Command> {
        let (ctx, ts_uid) = self.context_for(sop_class_uid)?;
        let ts = TransferSyntaxRegistry
            .get(&ts_uid)
            .ok_or_else(|| DimseError::Protocol(format!("transfer syntax {ts_uid} unknown")))?;
        let mut data = Vec::new();
        identifier
            .write_dataset_with_ts(&mut data, ts)
            .map_err(|e| DimseError::Command(format!("cannot encode identifier: {e}")))?;
        let rq = Command {
            message_id: Some(self.message_id()),
            affected_sop_class_uid: Some(sop_class_uid.to_string()),
            priority: Some(Priority::Medium),
            has_data_set: true,
            move_destination: move_destination.map(str::to_string),
            ..Command::new(field)
        };
        self.conn
            .send_message(ctx, &rq.encode()?, Some(&data))
            .await?;
        Ok(rq)
    }

    fn check_response(rq: &Command, cmd: &Command, expected: CommandField) -> Result<u16> {
        if cmd.field != expected || cmd.message_id_being_responded_to != rq.message_id {
            return Err(DimseError::UnexpectedResponse(format!(
                "{:?} to message {:?} while waiting for {expected:?} to {:?}",
                cmd.field, cmd.message_id_being_responded_to, rq.message_id
            )));
        }
        cmd.status
            .ok_or_else(|| DimseError::Command("response without Status".into()))
    }

    /// C-FIND: send `identifier` (which carries the Query/Retrieve Level) and collect the
    /// identifiers of the pending responses. A final failure status is an error.
    pub async fn find(
        &mut self,
        model: QueryModel,
        identifier: &InMemDicomObject,
    ) -> Result<Vec<InMemDicomObject>> {
        let rq = self
            .send_qr(CommandField::CFindRq, model.find_uid(), identifier, None)
            .await?;
        let mut out = Vec::new();
        loop {
            let msg = self.next_message().await?;
            let st = Self::check_response(&rq, &msg.command, CommandField::CFindRsp)?;
            match status::kind(st) {
                StatusKind::Pending => {
                    let data = msg.data.map(|d| d.bytes()).ok_or_else(|| {
                        DimseError::Protocol("pending C-FIND-RSP without identifier".into())
                    })?;
                    let ts_uid = self
                        .contexts
                        .iter()
                        .find(|c| c.id == msg.context_id)
                        .map(|c| c.transfer_syntax.clone())
                        .unwrap_or_else(|| IMPLICIT_VR_LE.into());
                    let ts = TransferSyntaxRegistry.get(&ts_uid).ok_or_else(|| {
                        DimseError::Protocol(format!("transfer syntax {ts_uid} unknown"))
                    })?;
                    let obj =
                        InMemDicomObject::read_dataset_with_ts(&data[..], ts).map_err(|e| {
                            DimseError::Protocol(format!("bad C-FIND-RSP identifier: {e}"))
                        })?;
                    out.push(obj);
                }
                StatusKind::Success | StatusKind::Warning | StatusKind::Cancel => return Ok(out),
                _ => {
                    return Err(DimseError::Protocol(format!(
                        "C-FIND failed with status {st:04X} {}",
                        msg.command.error_comment.unwrap_or_default()
                    )));
                }
            }
        }
    }

    /// C-GET: each C-STORE sub-operation on this association is handed to `on_store`,
    /// whose `Err(comment)` answers it with 0110 (processing failure); returns the final
    /// response.
    pub async fn get(
        &mut self,
        model: QueryModel,
        identifier: &InMemDicomObject,
        mut on_store: impl FnMut(ReceivedInstance) -> std::result::Result<(), String>,
    ) -> Result<RetrieveResult> {
        let rq = self
            .send_qr(CommandField::CGetRq, model.get_uid(), identifier, None)
            .await?;
        let mut pending = 0;
        loop {
            let msg = self.next_message().await?;
            if msg.command.field == CommandField::CStoreRq {
                let ts = self
                    .contexts
                    .iter()
                    .find(|c| c.id == msg.context_id)
                    .map(|c| c.transfer_syntax.clone())
                    .unwrap_or_default();
                let cmd = msg.command;
                let outcome = match msg.data {
                    Some(dataset) if !msg.oversized => on_store(ReceivedInstance {
                        sop_class_uid: cmd.affected_sop_class_uid.clone().unwrap_or_default(),
                        sop_instance_uid: cmd.affected_sop_instance_uid.clone().unwrap_or_default(),
                        transfer_syntax_uid: ts,
                        dataset: dataset.bytes(),
                    }),
                    _ => Err("data set missing or too large".into()),
                };
                let rsp = match outcome {
                    Ok(()) => cmd.response(status::SUCCESS),
                    Err(c) => cmd
                        .response(status::PROCESSING_FAILURE)
                        .with_error_comment(&c),
                };
                self.conn
                    .send_message(msg.context_id, &rsp.encode()?, None)
                    .await?;
                continue;
            }
            let st = Self::check_response(&rq, &msg.command, CommandField::CGetRsp)?;
            if status::kind(st) == StatusKind::Pending {
                pending += 1;
                continue;
            }
            return Ok(result(st, &msg.command, pending));
        }
    }

    /// C-MOVE to `destination` (an AE the peer knows); returns the final response.
    pub async fn move_to(
        &mut self,
        model: QueryModel,
        destination: &str,
        identifier: &InMemDicomObject,
    ) -> Result<RetrieveResult> {
        let rq = self
            .send_qr(
                CommandField::CMoveRq,
                model.move_uid(),
                identifier,
                Some(destination),
            )
            .await?;
        let mut pending = 0;
        loop {
            let msg = self.next_message().await?;
            let st = Self::check_response(&rq, &msg.command, CommandField::CMoveRsp)?;
            if status::kind(st) == StatusKind::Pending {
                pending += 1;
                continue;
            }
            return Ok(result(st, &msg.command, pending));
        }
    }
}

fn result(st: u16, cmd: &Command, pending: usize) -> RetrieveResult {
    let so = cmd.sub_operations;
    RetrieveResult {
        status: st,
        error_comment: cmd.error_comment.clone(),
        completed: so.completed.unwrap_or(0),
        failed: so.failed.unwrap_or(0),
        warning: so.warning.unwrap_or(0),
        pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_fit_one_association() {
        let n = qr_proposals(QueryModel::StudyRoot).len()
            + get_storage_proposals(GET_STORAGE_CLASSES, GET_TRANSFER_SYNTAXES).len()
            + 1;
        assert!(n <= 128, "{n}");
    }

    #[test]
    fn identifier_has_level_and_keys() {
        let o = identifier(
            "STUDY",
            &[
                (tags::PATIENT_ID, VR::LO, "AB*"),
                (tags::STUDY_INSTANCE_UID, VR::UI, ""),
            ],
        );
        assert_eq!(
            o.element(tags::QUERY_RETRIEVE_LEVEL)
                .unwrap()
                .to_str()
                .unwrap(),
            "STUDY"
        );
        assert!(o.element(tags::STUDY_INSTANCE_UID).is_ok());
    }
}
