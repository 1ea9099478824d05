//! Query: the archive searched for QIDO-RS, C-FIND and the worklist, one use case per kind
//! of search for every front door. Who may see which studies is decided here (the next
//! issue's organisation boundary narrows the scope before the store is asked).

use lumen_dicom::query::Query;
use lumen_store::{Scope, Worklist, WorklistFilter};
use serde_json::{Map, Value};

use crate::{Actor, App, AppError};

impl App {
    /// The DICOM JSON records matching `query` within `scope` (QIDO-RS and C-FIND).
    pub async fn search(
        &self,
        actor: &Actor,
        query: &Query,
        scope: &Scope,
    ) -> Result<Vec<Map<String, Value>>, AppError> {
        let _ = actor;
        Ok(self.store.search(query, scope).await?)
    }

    /// The radiologist's worklist page.
    pub async fn worklist(
        &self,
        actor: &Actor,
        filter: &WorklistFilter,
    ) -> Result<Worklist, AppError> {
        let _ = actor;
        Ok(self.store.worklist(filter).await?)
    }
}
