//! The SCU: [`StoreScu`] associates with a peer and sends C-ECHO and C-STORE.
//!
//! Data sets are sent exactly as given (no transcoding), so a presentation context must have
//! been accepted for the object's SOP class in its own transfer syntax.

use std::path::Path;
use std::time::Duration;

use dicom_object::meta::FileMetaTable;
use dicom_ul::pdu::{
    AssociationRQ, Pdu, PresentationContextProposed, PresentationContextResultReason,
    RequestorRoles, UserVariableItem,
};
use tokio::net::{TcpStream, ToSocketAddrs};
use tracing::debug;

use crate::assoc::{
    APPLICATION_CONTEXT, AcceptedContext, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME,
};
use crate::command::{Command, CommandField, Priority};
use crate::conn::{Conn, Incoming};
use crate::error::{DimseError, Result};
use crate::pdata::{Assembler, Message, pdv_items};
use crate::sop::{EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION, trim_uid};

/// SCU settings.
#[derive(Debug, Clone)]
pub struct ScuConfig {
    /// Our (calling) AE title. Default `LUMEN`.
    pub calling_ae_title: String,
    /// The peer's (called) AE title. Default `ANY-SCP`.
    pub called_ae_title: String,
    /// Maximum P-DATA-TF length we accept. Default 256 KiB.
    pub max_pdu_length: u32,
    /// Timeout for connecting and for each PDU exchanged. Default 60 s.
    pub timeout: Duration,
}

impl Default for ScuConfig {
    fn default() -> Self {
        ScuConfig {
            calling_ae_title: "LUMEN".into(),
            called_ae_title: "ANY-SCP".into(),
            max_pdu_length: 256 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A presentation context to propose: one abstract syntax and its transfer syntaxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// SOP class UID.
    pub abstract_syntax: String,
    /// Transfer syntax UIDs, preferred first.
    pub transfer_syntaxes: Vec<String>,
}

impl Proposal {
    /// A proposal for one SOP class in the given transfer syntaxes.
    pub fn new(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Self {
        Proposal {
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One proposal per distinct (SOP class, transfer syntax) pair, each proposing only that
/// transfer syntax so that objects can be sent as they are.
pub fn proposals_for<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Proposal> {
    let mut out: Vec<Proposal> = Vec::new();
    for (class, ts) in pairs {
        if !out
            .iter()
            .any(|p| p.abstract_syntax == class && p.transfer_syntaxes[0] == ts)
        {
            out.push(Proposal::new(class, &[ts]));
        }
    }
    out
}

/// What a Part-10 file holds, from its file meta group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part10Info {
    /// Media Storage SOP Class UID.
    pub sop_class_uid: String,
    /// Media Storage SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer Syntax UID of the data set.
    pub transfer_syntax_uid: String,
    /// Byte offset where the data set starts (after preamble, magic and meta group).
    pub dataset_offset: usize,
}

impl Part10Info {
    /// Read the file meta group of Part-10 bytes (with or without the 128-byte preamble).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let start = if bytes.get(128..132) == Some(b"DICM") {
            128
        } else if bytes.get(0..4) == Some(b"DICM") {
            0
        } else {
            return Err(DimseError::Part10("no DICM magic code".into()));
        };
        let meta = FileMetaTable::from_reader(&bytes[start..])
            .map_err(|e| DimseError::Part10(format!("bad file meta group: {e}")))?;
        let dataset_offset = start + 4 + meta_group_len(&bytes[start + 4..])?;
        Ok(Part10Info {
            sop_class_uid: trim_uid(meta.media_storage_sop_class_uid()).to_string(),
            sop_instance_uid: trim_uid(meta.media_storage_sop_instance_uid()).to_string(),
            transfer_syntax_uid: trim_uid(meta.transfer_syntax()).to_string(),
            dataset_offset,
        })
    }
}

/// Length of the leading group-0002 elements (Explicit VR Little Endian).
fn meta_group_len(bytes: &[u8]) -> Result<usize> {
    let mut i = 0;
    while i + 8 <= bytes.len() && bytes[i..i + 2] == [2, 0] {
        let vr = &bytes[i + 4..i + 6];
        let long = matches!(
            vr,
            b"OB"
                | b"OW"
                | b"OF"
                | b"OD"
                | b"OL"
                | b"OV"
                | b"SQ"
                | b"UT"
                | b"UN"
                | b"UC"
                | b"UR"
                | b"SV"
                | b"UV"
        );
        let (hdr, len) = if long {
            let b = bytes
                .get(i + 8..i + 12)
                .ok_or_else(|| DimseError::Part10("truncated file meta".into()))?;
            (12, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        } else {
            (8, u16::from_le_bytes([bytes[i + 6], bytes[i + 7]]) as usize)
        };
        i += hdr + len;
    }
    if i > bytes.len() {
        return Err(DimseError::Part10("truncated file meta".into()));
    }
    Ok(i)
}

/// The peer's answer to a C-STORE or C-ECHO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
}

/// An association as requestor, for C-ECHO and C-STORE.
pub struct StoreScu {
    pub(crate) conn: Conn,
    pub(crate) contexts: Vec<AcceptedContext>,
    next_message_id: u16,
    pub(crate) asm: Assembler,
}

impl StoreScu {
    /// Connect and negotiate the proposals (Verification is always proposed too).
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: &ScuConfig,
        proposals: &[Proposal],
    ) -> Result<Self> {
        Self::connect_with_roles(addr, config, proposals, &[]).await
    }

    /// [`connect`](Self::connect), also asking for the SCP role (SCP/SCU role selection)
    /// for `scp_role_classes`: the storage classes to receive C-GET sub-operations for.
    /// A data set received on the association may be up to 1 GiB.
    pub async fn connect_with_roles(
        addr: impl ToSocketAddrs,
        config: &ScuConfig,
        proposals: &[Proposal],
        scp_role_classes: &[&str],
    ) -> Result<Self> {
        let stream = tokio::time::timeout(config.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| DimseError::Timeout("connect"))??;
        let mut conn = Conn::new(stream, config.max_pdu_length, config.timeout);
        let mut all = proposals.to_vec();
        if !all.iter().any(|p| p.abstract_syntax == VERIFICATION) {
            all.push(Proposal::new(
                VERIFICATION,
                &[EXPLICIT_VR_LE, IMPLICIT_VR_LE],
            ));
        }
        if all.len() > 128 {
            return Err(DimseError::Protocol(format!(
                "{} presentation contexts proposed; at most 128 fit an association",
                all.len()
            )));
        }
        let rq = AssociationRQ {
            protocol_version: 1,
            calling_ae_title: config.calling_ae_title.clone(),
            called_ae_title: config.called_ae_title.clone(),
            application_context_name: APPLICATION_CONTEXT.into(),
            presentation_contexts: all
                .iter()
                .enumerate()
                .map(|(i, p)| PresentationContextProposed {
                    id: (2 * i + 1) as u8,
                    abstract_syntax: p.abstract_syntax.clone(),
                    transfer_syntaxes: p.transfer_syntaxes.clone(),
                })
                .collect(),
            user_variables: [
                UserVariableItem::MaxLength(config.max_pdu_length),
                UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.into()),
                UserVariableItem::ImplementationVersionName(IMPLEMENTATION_VERSION_NAME.into()),
            ]
            .into_iter()
            .chain(scp_role_classes.iter().map(|uid| {
                UserVariableItem::ScuScpRoleSelectionSubItem(
                    uid.to_string(),
                    RequestorRoles {
                        scu: false,
                        scp: true,
                    },
                )
            }))
            .collect(),
        };
        conn.send_pdu(&Pdu::AssociationRQ(rq)).await?;
        let ac = match conn.recv().await? {
            Incoming::Other(Pdu::AssociationAC(ac)) => ac,
            Incoming::Other(Pdu::AssociationRJ(rj)) => {
                return Err(DimseError::Rejected(format!(
                    "{:?}, {}",
                    rj.result, rj.source
                )));
            }
            Incoming::Other(Pdu::AbortRQ { .. }) => return Err(DimseError::Aborted),
            other => {
                return Err(DimseError::Protocol(format!(
                    "expected A-ASSOCIATE-AC, got {other:?}"
                )));
            }
        };
        conn.peer_max = ac
            .user_variables
            .iter()
            .find_map(|v| match v {
                UserVariableItem::MaxLength(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0);
        let contexts = ac
            .presentation_contexts
            .iter()
            .filter(|r| r.reason == PresentationContextResultReason::Acceptance)
            .filter_map(|r| {
                let p = all.get((r.id as usize).checked_sub(1)? / 2)?;
                Some(AcceptedContext {
                    id: r.id,
                    abstract_syntax: p.abstract_syntax.clone(),
                    transfer_syntax: trim_uid(&r.transfer_syntax).to_string(),
                })
            })
            .collect::<Vec<_>>();
        debug!(
            accepted = contexts.len(),
            peer_max_pdu = conn.peer_max,
            "association established"
        );
        Ok(StoreScu {
            conn,
            contexts,
            next_message_id: 1,
            asm: Assembler::new(if scp_role_classes.is_empty() {
                1 << 20
            } else {
                1 << 30
            }),
        })
    }

    /// The presentation contexts the peer accepted.
    pub fn accepted_contexts(&self) -> &[AcceptedContext] {
        &self.contexts
    }

    /// The peer's maximum PDU length (0: unlimited).
    pub fn peer_max_pdu_length(&self) -> u32 {
        self.conn.peer_max
    }

    pub(crate) fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// Send a C-ECHO and return the response status.
    pub async fn echo(&mut self) -> Result<u16> {
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.abstract_syntax == VERIFICATION)
            .map(|c| c.id)
            .ok_or_else(|| DimseError::NoPresentationContext {
                sop_class_uid: VERIFICATION.into(),
                transfer_syntax_uid: "any".into(),
            })?;
        let rq = Command::echo_rq(self.message_id());
        self.conn.send_message(ctx, &rq.encode()?, None).await?;
        Ok(self.response(&rq, CommandField::CEchoRsp).await?.status)
    }

    /// Send one data set (encoded in `transfer_syntax_uid`) with C-STORE.
    pub async fn store(
        &mut self,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        dataset: &[u8],
    ) -> Result<Response> {
        self.store_with(
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
            dataset,
            None,
        )
        .await
    }

    /// [`store`](Self::store) as a C-MOVE sub-operation: `originator` is the Move
    /// Originator AE Title and Message ID.
    pub async fn store_with(
        &mut self,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        dataset: &[u8],
        originator: Option<(&str, u16)>,
    ) -> Result<Response> {
        let ctx = self
            .contexts
            .iter()
            .find(|c| {
                c.abstract_syntax == sop_class_uid && c.transfer_syntax == transfer_syntax_uid
            })
            .map(|c| c.id)
            .ok_or_else(|| DimseError::NoPresentationContext {
                sop_class_uid: sop_class_uid.into(),
                transfer_syntax_uid: transfer_syntax_uid.into(),
            })?;
        let id = self.message_id();
        let mut rq = Command::store_rq(id, sop_class_uid, sop_instance_uid, Priority::Medium);
        if let Some((ae, message_id)) = originator {
            rq.move_originator_ae_title = Some(ae.to_string());
            rq.move_originator_message_id = Some(message_id);
        }
        self.conn
            .send_message(ctx, &rq.encode()?, Some(dataset))
            .await?;
        self.response(&rq, CommandField::CStoreRsp).await
    }

    /// Send the data set of Part-10 bytes with C-STORE.
    pub async fn store_part10(&mut self, bytes: &[u8]) -> Result<Response> {
        let info = Part10Info::parse(bytes)?;
        self.store(
            &info.sop_class_uid,
            &info.sop_instance_uid,
            &info.transfer_syntax_uid,
            &bytes[info.dataset_offset..],
        )
        .await
    }

    /// Read a Part-10 file and send it with C-STORE.
    pub async fn store_file(&mut self, path: impl AsRef<Path>) -> Result<Response> {
        let bytes = tokio::fs::read(path).await?;
        self.store_part10(&bytes).await
    }

    async fn response(&mut self, rq: &Command, expected: CommandField) -> Result<Response> {
        let msg = self.next_message().await?;
        let cmd = msg.command;
        if cmd.field != expected || cmd.message_id_being_responded_to != rq.message_id {
            return Err(DimseError::UnexpectedResponse(format!(
                "{:?} to message {:?} while waiting for {expected:?} to {:?}",
                cmd.field, cmd.message_id_being_responded_to, rq.message_id
            )));
        }
        if expected == CommandField::CStoreRsp
            && cmd.affected_sop_instance_uid.is_some()
            && cmd.affected_sop_instance_uid != rq.affected_sop_instance_uid
        {
            return Err(DimseError::UnexpectedResponse(
                "C-STORE-RSP for another SOP instance".into(),
            ));
        }
        Ok(Response {
            status: cmd
                .status
                .ok_or_else(|| DimseError::Command("response without Status".into()))?,
            error_comment: cmd.error_comment,
        })
    }

    pub(crate) async fn next_message(&mut self) -> Result<Message> {
        loop {
            match self.conn.recv().await? {
                Incoming::PData(body) => {
                    for pdv in pdv_items(body)? {
                        if let Some(msg) = self.asm.push(pdv)? {
                            return Ok(msg);
                        }
                    }
                }
                Incoming::Other(Pdu::AbortRQ { .. }) => return Err(DimseError::Aborted),
                Incoming::Other(other) => {
                    return Err(DimseError::Protocol(format!(
                        "unexpected PDU {}",
                        other.short_description()
                    )));
                }
            }
        }
    }

    /// Release the association gracefully.
    pub async fn release(mut self) -> Result<()> {
        self.conn.send_pdu(&Pdu::ReleaseRQ).await?;
        loop {
            match self.conn.recv().await? {
                Incoming::Other(Pdu::ReleaseRP) => break,
                Incoming::Other(Pdu::AbortRQ { .. }) => return Err(DimseError::Aborted),
                // Late data (e.g. a response we stopped waiting for) is discarded.
                Incoming::PData(_) => continue,
                Incoming::Other(other) => {
                    return Err(DimseError::Protocol(format!(
                        "expected A-RELEASE-RP, got {}",
                        other.short_description()
                    )));
                }
            }
        }
        self.conn.shutdown().await;
        Ok(())
    }

    /// Abort the association (A-ABORT) and close the connection.
    pub async fn abort(mut self) {
        let _ = self
            .conn
            .send_pdu(&Pdu::AbortRQ {
                source: dicom_ul::pdu::AbortRQSource::ServiceUser,
            })
            .await;
        self.conn.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_group_walk() {
        // (0002,0000) UL 4, (0002,0001) OB 2, then (0008,0005).
        let mut b = vec![2, 0, 0, 0, b'U', b'L', 4, 0, 10, 0, 0, 0];
        b.extend_from_slice(&[2, 0, 1, 0, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[8, 0, 5, 0]);
        assert_eq!(meta_group_len(&b).unwrap(), 26);
        assert!(meta_group_len(&b[..20]).is_err());
    }

    #[test]
    fn proposals_dedup() {
        let p = proposals_for([
            ("1.2", "1.2.840.10008.1.2"),
            ("1.2", "1.2.840.10008.1.2"),
            ("1.2", "1.2.840.10008.1.2.1"),
        ]);
        assert_eq!(p.len(), 2);
    }
}
