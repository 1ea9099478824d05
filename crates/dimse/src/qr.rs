//! Query/retrieve as SCP: C-FIND, C-GET and C-MOVE on an accepted association.
//!
//! The handler decides what matches (it parses identifiers; this crate never does).
//! This module runs the exchange: one pending response per match or sub-operation,
//! C-CANCEL honoured between them, C-STORE sub-operations on the same association (C-GET)
//! or on a new association to a configured peer (C-MOVE).

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::assoc::AcceptedContext;
use crate::command::{Command, CommandField, Priority, SubOperations};
use crate::error::DimseError;
use crate::pdata::Message;
use crate::scu::{Proposal, ScuConfig, StoreScu};
use crate::server::{
    Event, Failure, FindOutcome, Peer, QueryRequest, RetrieveItem, Session, StoreHandler,
};
use crate::sop::{EXPLICIT_VR_LE, IMPLICIT_VR_LE, Service, query_retrieve_service};
use crate::status::{self, StatusKind};

/// Sub-operation counts of one C-GET or C-MOVE.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    remaining: usize,
    completed: usize,
    failed: usize,
    warning: usize,
}

impl Counts {
    fn record(&mut self, status: u16) {
        self.remaining = self.remaining.saturating_sub(1);
        match status::kind(status) {
            StatusKind::Success => self.completed += 1,
            StatusKind::Warning => self.warning += 1,
            _ => self.failed += 1,
        }
    }

    fn sub_operations(&self, with_remaining: bool) -> SubOperations {
        let c = |n: usize| Some(u16::try_from(n).unwrap_or(u16::MAX));
        SubOperations {
            remaining: if with_remaining {
                c(self.remaining)
            } else {
                None
            },
            completed: c(self.completed),
            failed: c(self.failed),
            warning: c(self.warning),
        }
    }

    /// The final status: success, or B000 when any sub-operation failed or warned.
    fn final_status(&self) -> u16 {
        if self.failed == 0 && self.warning == 0 {
            status::SUCCESS
        } else {
            status::WARNING_SUB_OPERATIONS_FAILED
        }
    }
}

fn counted(cmd: &Command, status: u16, counts: &Counts, with_remaining: bool) -> Command {
    let mut rsp = cmd.response(status);
    rsp.sub_operations = counts.sub_operations(with_remaining);
    rsp
}

/// Proposals for sending `items` to a C-MOVE destination: each (SOP class, stored
/// transfer syntax) as it is, and per SOP class the little endian syntaxes to fall back to.
fn move_proposals(items: &[RetrieveItem]) -> Vec<Proposal> {
    let mut out: Vec<Proposal> = Vec::new();
    for item in items {
        let class = item.sop_class_uid.as_str();
        let ts = item.transfer_syntax_uid.as_str();
        if !out
            .iter()
            .any(|p| p.abstract_syntax == class && p.transfer_syntaxes == [ts])
        {
            out.push(Proposal::new(class, &[ts]));
        }
    }
    let mut classes: Vec<&str> = items.iter().map(|i| i.sop_class_uid.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        out.push(Proposal::new(class, &[EXPLICIT_VR_LE, IMPLICIT_VR_LE]));
    }
    // An association carries at most 128 contexts; the fallbacks come last.
    out.truncate(127);
    out
}

/// Accepted transfer syntaxes for `item`'s class among `contexts`, the stored one first.
fn accepted_syntaxes(contexts: &[AcceptedContext], item: &RetrieveItem) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in contexts
        .iter()
        .filter(|c| c.abstract_syntax == item.sop_class_uid)
    {
        if !v.contains(&c.transfer_syntax) {
            v.push(c.transfer_syntax.clone());
        }
    }
    if let Some(i) = v.iter().position(|t| *t == item.transfer_syntax_uid) {
        v.swap(0, i);
    }
    v
}

impl<H: StoreHandler> Session<'_, H> {
    async fn reply(&mut self, context_id: u8, rsp: &Command) -> Result<(), DimseError> {
        self.conn
            .send_message(context_id, &rsp.encode()?, None)
            .await
    }

    /// Checks a Q/R request against its context; `Err` holds the failure response.
    fn qr_request(
        &self,
        ctx: &AcceptedContext,
        msg: &Message,
        service: Service,
    ) -> Result<QueryRequest, Box<Command>> {
        let cmd = &msg.command;
        if query_retrieve_service(&ctx.abstract_syntax) != Some(service) {
            return Err(Box::new(
                cmd.response(status::UNRECOGNIZED_OPERATION)
                    .with_error_comment("operation not offered on this presentation context"),
            ));
        }
        if cmd.message_id.is_none() {
            return Err(Box::new(
                cmd.response(status::CANNOT_UNDERSTAND)
                    .with_error_comment("missing Message ID"),
            ));
        }
        if cmd
            .affected_sop_class_uid
            .as_deref()
            .is_some_and(|c| c != ctx.abstract_syntax)
        {
            return Err(Box::new(
                cmd.response(status::SOP_CLASS_NOT_SUPPORTED)
                    .with_error_comment("SOP class differs from the presentation context"),
            ));
        }
        let identifier = match &msg.data {
            Some(d) if !msg.oversized => d.bytes(),
            _ => {
                return Err(Box::new(
                    cmd.response(status::CANNOT_UNDERSTAND)
                        .with_error_comment("request without an identifier"),
                ));
            }
        };
        Ok(QueryRequest {
            calling_ae: self.calling_ae.clone(),
            peer: self.peer,
            sop_class_uid: ctx.abstract_syntax.clone(),
            transfer_syntax_uid: ctx.transfer_syntax.clone(),
            identifier,
        })
    }

    /// C-FIND: one pending response per match, then success; FE00 after a C-CANCEL.
    pub(crate) async fn c_find(
        &mut self,
        ctx: &AcceptedContext,
        msg: Message,
    ) -> Result<(), DimseError> {
        let cmd = msg.command.clone();
        let req = match self.qr_request(ctx, &msg, Service::Find) {
            Ok(r) => r,
            Err(rsp) => return self.reply(ctx.id, &rsp).await,
        };
        let handler = self.handler.clone();
        let outcome = match tokio::spawn(async move { handler.find(req).await }).await {
            Ok(o) => o,
            Err(e) => {
                warn!(peer = %self.peer, error = %e, "find handler failed");
                FindOutcome::Failure {
                    status: status::CANNOT_UNDERSTAND,
                    comment: "internal error while searching".into(),
                }
            }
        };
        let matches = match outcome {
            FindOutcome::Matches(m) => m,
            FindOutcome::Failure { status, comment } => {
                debug!(peer = %self.peer, status, "C-FIND failed");
                let rsp = cmd.response(status).with_error_comment(&comment);
                return self.reply(ctx.id, &rsp).await;
            }
        };
        let total = matches.len();
        for (i, m) in matches.into_iter().enumerate() {
            if self.cancelled(cmd.message_id).await? {
                info!(peer = %self.peer, calling_ae = %self.calling_ae, sent = i, total, "C-FIND cancelled");
                return self.reply(ctx.id, &cmd.response(status::CANCEL)).await;
            }
            let mut rsp = cmd.response(status::PENDING);
            rsp.has_data_set = true;
            self.conn
                .send_message(ctx.id, &rsp.encode()?, Some(&m))
                .await?;
            self.found += 1;
        }
        debug!(peer = %self.peer, matches = total, "C-FIND done");
        self.reply(ctx.id, &cmd.response(status::SUCCESS)).await
    }

    /// The instances a C-GET/C-MOVE selects, or the failure response.
    async fn retrieve_items(&mut self, req: QueryRequest) -> Result<Vec<RetrieveItem>, Failure> {
        let handler = self.handler.clone();
        match tokio::spawn(async move { handler.retrieve(req).await }).await {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %self.peer, error = %e, "retrieve handler failed");
                Err(Failure {
                    status: status::CANNOT_UNDERSTAND,
                    comment: "internal error while selecting instances".into(),
                })
            }
        }
    }

    /// Loads one instance in one of `accepted`, as the handler decides.
    async fn load(
        &self,
        item: &RetrieveItem,
        accepted: Vec<String>,
    ) -> Result<(String, Bytes), String> {
        let handler = self.handler.clone();
        let it = item.clone();
        match tokio::spawn(async move { handler.load(it, accepted).await }).await {
            Ok(Ok(l)) => Ok((l.transfer_syntax_uid, l.dataset)),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("load failed: {e}")),
        }
    }

    /// C-GET: C-STORE sub-operations on this association, a pending response after each.
    pub(crate) async fn c_get(
        &mut self,
        ctx: &AcceptedContext,
        msg: Message,
    ) -> Result<(), DimseError> {
        let cmd = msg.command.clone();
        let req = match self.qr_request(ctx, &msg, Service::Get) {
            Ok(r) => r,
            Err(rsp) => return self.reply(ctx.id, &rsp).await,
        };
        let items = match self.retrieve_items(req).await {
            Ok(i) => i,
            Err(f) => {
                let rsp = cmd.response(f.status).with_error_comment(&f.comment);
                return self.reply(ctx.id, &rsp).await;
            }
        };
        let mut counts = Counts {
            remaining: items.len(),
            ..Counts::default()
        };
        info!(peer = %self.peer, calling_ae = %self.calling_ae, instances = items.len(), "C-GET");
        for item in &items {
            if self.cancelled(cmd.message_id).await? {
                info!(peer = %self.peer, "C-GET cancelled");
                let rsp = counted(&cmd, status::CANCEL, &counts, true);
                return self.reply(ctx.id, &rsp).await;
            }
            let st = self.get_sub_operation(item).await?;
            counts.record(st);
            if counts.remaining > 0 {
                let rsp = counted(&cmd, status::PENDING, &counts, true);
                self.reply(ctx.id, &rsp).await?;
            }
        }
        let rsp = counted(&cmd, counts.final_status(), &counts, false);
        self.reply(ctx.id, &rsp).await
    }

    /// One C-STORE to the C-GET requestor; returns its status (a local failure counts as
    /// 0110).
    async fn get_sub_operation(&mut self, item: &RetrieveItem) -> Result<u16, DimseError> {
        let contexts: Vec<AcceptedContext> = self
            .contexts
            .iter()
            .filter(|c| {
                c.abstract_syntax == item.sop_class_uid
                    && (self.scp_role_classes.is_empty()
                        || self.scp_role_classes.contains(&c.abstract_syntax))
            })
            .cloned()
            .collect();
        let accepted = accepted_syntaxes(&contexts, item);
        if accepted.is_empty() {
            warn!(peer = %self.peer, sop_class = %item.sop_class_uid, "C-GET: no storage context for this SOP class");
            return Ok(status::SOP_CLASS_NOT_SUPPORTED);
        }
        let (ts, dataset) = match self.load(item, accepted).await {
            Ok(x) => x,
            Err(e) => {
                warn!(peer = %self.peer, sop_instance = %item.sop_instance_uid, error = %e, "C-GET: cannot load");
                return Ok(status::PROCESSING_FAILURE);
            }
        };
        let Some(ctx_id) = contexts
            .iter()
            .find(|c| c.transfer_syntax == ts)
            .map(|c| c.id)
        else {
            return Ok(status::PROCESSING_FAILURE);
        };
        let id = self.next_sub_id;
        self.next_sub_id = self.next_sub_id.wrapping_add(1).max(1);
        let rq = Command::store_rq(
            id,
            &item.sop_class_uid,
            &item.sop_instance_uid,
            Priority::Medium,
        );
        self.conn
            .send_message(ctx_id, &rq.encode()?, Some(&dataset))
            .await?;
        self.sent += 1;
        loop {
            let pos = self.queue.iter().position(|e| {
                matches!(e, Event::Message(m) if m.command.field == CommandField::CStoreRsp
                    && m.command.message_id_being_responded_to == Some(id))
            });
            if let Some(pos) = pos {
                let Some(Event::Message(m)) = self.queue.remove(pos) else {
                    unreachable!("position found a message")
                };
                return Ok(m.command.status.unwrap_or(status::PROCESSING_FAILURE));
            }
            self.read_pdu(true).await?;
        }
    }

    /// C-MOVE: C-STORE sub-operations on a new association to the destination peer.
    pub(crate) async fn c_move(
        &mut self,
        ctx: &AcceptedContext,
        msg: Message,
    ) -> Result<(), DimseError> {
        let cmd = msg.command.clone();
        let req = match self.qr_request(ctx, &msg, Service::Move) {
            Ok(r) => r,
            Err(rsp) => return self.reply(ctx.id, &rsp).await,
        };
        let dest = cmd.move_destination.clone().unwrap_or_default();
        let Some(peer) = self.config.peer(&dest).cloned() else {
            warn!(peer = %self.peer, calling_ae = %self.calling_ae, destination = %dest, "C-MOVE to an unknown destination");
            let rsp = cmd
                .response(status::REFUSED_MOVE_DESTINATION_UNKNOWN)
                .with_error_comment("move destination unknown");
            return self.reply(ctx.id, &rsp).await;
        };
        let items = match self.retrieve_items(req).await {
            Ok(i) => i,
            Err(f) => {
                let rsp = cmd.response(f.status).with_error_comment(&f.comment);
                return self.reply(ctx.id, &rsp).await;
            }
        };
        let mut counts = Counts {
            remaining: items.len(),
            ..Counts::default()
        };
        info!(peer = %self.peer, calling_ae = %self.calling_ae, destination = %dest, instances = items.len(), "C-MOVE");
        if items.is_empty() {
            return self
                .reply(ctx.id, &counted(&cmd, status::SUCCESS, &counts, false))
                .await;
        }
        let mut scu = match self.connect_destination(&peer, &items).await {
            Ok(s) => s,
            Err(e) => {
                warn!(destination = %dest, host = %peer.host, port = peer.port, error = %e, "C-MOVE: cannot associate with the destination");
                counts.failed = counts.remaining;
                counts.remaining = 0;
                let rsp = counted(
                    &cmd,
                    status::REFUSED_OUT_OF_RESOURCES_SUB_OPERATIONS,
                    &counts,
                    false,
                )
                .with_error_comment(&format!("cannot associate with {dest}"));
                return self.reply(ctx.id, &rsp).await;
            }
        };
        let originator = (self.calling_ae.clone(), cmd.message_id.unwrap_or_default());
        let mut broken = false;
        for item in &items {
            if self.cancelled(cmd.message_id).await? {
                info!(peer = %self.peer, "C-MOVE cancelled");
                let _ = scu.release().await;
                let rsp = counted(&cmd, status::CANCEL, &counts, true);
                return self.reply(ctx.id, &rsp).await;
            }
            let st = if broken {
                status::PROCESSING_FAILURE
            } else {
                let accepted = accepted_syntaxes(scu.accepted_contexts(), item);
                if accepted.is_empty() {
                    warn!(destination = %dest, sop_class = %item.sop_class_uid, "C-MOVE: destination accepts no context for this SOP class");
                    status::SOP_CLASS_NOT_SUPPORTED
                } else {
                    match self.load(item, accepted).await {
                        Err(e) => {
                            warn!(sop_instance = %item.sop_instance_uid, error = %e, "C-MOVE: cannot load");
                            status::PROCESSING_FAILURE
                        }
                        Ok((ts, dataset)) => match scu
                            .store_with(
                                &item.sop_class_uid,
                                &item.sop_instance_uid,
                                &ts,
                                &dataset,
                                Some((&originator.0, originator.1)),
                            )
                            .await
                        {
                            Ok(r) => {
                                self.sent += 1;
                                r.status
                            }
                            Err(e) => {
                                warn!(destination = %dest, error = %e, "C-MOVE: sub-operation failed; association to the destination lost");
                                broken = true;
                                status::PROCESSING_FAILURE
                            }
                        },
                    }
                }
            };
            counts.record(st);
            if counts.remaining > 0 {
                let rsp = counted(&cmd, status::PENDING, &counts, true);
                self.reply(ctx.id, &rsp).await?;
            }
        }
        if broken {
            scu.abort().await;
        } else if let Err(e) = scu.release().await {
            debug!(destination = %dest, error = %e, "C-MOVE: release of the destination association failed");
        }
        let rsp = counted(&cmd, counts.final_status(), &counts, false);
        self.reply(ctx.id, &rsp).await
    }

    async fn connect_destination(
        &self,
        peer: &Peer,
        items: &[RetrieveItem],
    ) -> Result<StoreScu, DimseError> {
        let config = ScuConfig {
            calling_ae_title: self.config.ae_title.clone(),
            called_ae_title: peer.ae_title.clone(),
            max_pdu_length: self.config.max_pdu_length,
            timeout: self.config.idle_timeout,
        };
        StoreScu::connect(
            (peer.host.as_str(), peer.port),
            &config,
            &move_proposals(items),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(class: &str, ts: &str) -> RetrieveItem {
        RetrieveItem {
            sop_class_uid: class.into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax_uid: ts.into(),
        }
    }

    #[test]
    fn proposals_keep_stored_syntax_and_fall_back() {
        let items = [
            item("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.70"),
            item("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.70"),
            item("1.2.840.10008.5.1.4.1.1.2", IMPLICIT_VR_LE),
        ];
        let p = move_proposals(&items);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].transfer_syntaxes, ["1.2.840.10008.1.2.4.70"]);
        assert_eq!(p[2].transfer_syntaxes, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    }

    #[test]
    fn counts_and_final_status() {
        let mut c = Counts {
            remaining: 3,
            ..Counts::default()
        };
        c.record(status::SUCCESS);
        c.record(0xB000);
        assert_eq!(c.final_status(), status::WARNING_SUB_OPERATIONS_FAILED);
        c.record(0xA700);
        let s = c.sub_operations(true);
        assert_eq!(
            (s.remaining, s.completed, s.failed, s.warning),
            (Some(0), Some(1), Some(1), Some(1))
        );
    }

    #[test]
    fn stored_syntax_first() {
        let ctx = |id, ts: &str| AcceptedContext {
            id,
            abstract_syntax: "1.2".into(),
            transfer_syntax: ts.into(),
        };
        let contexts = [ctx(1, EXPLICIT_VR_LE), ctx(3, IMPLICIT_VR_LE)];
        let v = accepted_syntaxes(&contexts, &item("1.2", IMPLICIT_VR_LE));
        assert_eq!(v, [IMPLICIT_VR_LE, EXPLICIT_VR_LE]);
    }
}
