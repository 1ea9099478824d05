//! Query/retrieve over DIMSE on the archive: C-FIND identifiers become a
//! `lumen_dicom::query::Query` run by `Store::search` (the matcher QIDO-RS uses), C-MOVE and
//! C-GET identifiers select stored instances, and instances are loaded as stored or
//! transcoded to a syntax the receiver accepted.
//!
//! Sub-operations run one at a time (each C-STORE waits for its response), so the time of
//! a retrieval is the sum of per-instance latencies. [`RetrieveCache`] takes the index
//! lookup and the disk read off that path: a selection remembers where its instances are,
//! and the next instance is read while the current one is on the wire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_transfer_syntax_registry::{TransferSyntax, TransferSyntaxIndex, TransferSyntaxRegistry};
use lumen_app::App;
use lumen_dicom::attrs::Level;
use lumen_dicom::json::first_string;
use lumen_dicom::query::{Identifier, QueryError};
use lumen_dimse::{Failure, FindOutcome, LoadedInstance, QueryRequest, RetrieveItem, status};
use lumen_store::{Scope, Store, StoredInstance};
use serde_json::Value;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const STUDY_ROOT_PREFIX: &str = "1.2.840.10008.5.1.4.1.2.2.";

fn fail(status: u16, comment: impl Into<String>) -> Failure {
    Failure {
        status,
        comment: comment.into(),
    }
}

fn registry_ts(uid: &str) -> Result<&'static TransferSyntax, Failure> {
    TransferSyntaxRegistry.get(uid).ok_or_else(|| {
        fail(
            status::CANNOT_UNDERSTAND,
            format!("transfer syntax {uid} unknown"),
        )
    })
}

/// Reads the identifier of a C-FIND/C-MOVE/C-GET request.
fn parse_identifier(req: &QueryRequest) -> Result<Identifier, Failure> {
    let ts = registry_ts(&req.transfer_syntax_uid)?;
    let obj = InMemDicomObject::read_dataset_with_ts(&req.identifier[..], ts)
        .map_err(|_| fail(status::CANNOT_UNDERSTAND, "identifier cannot be parsed"))?;
    Identifier::parse(&obj, !req.sop_class_uid.starts_with(STUDY_ROOT_PREFIX)).map_err(
        |e| match e {
            QueryError::InvalidValue { ref attr, .. } if attr == "QueryRetrieveLevel" => {
                fail(status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, e.to_string())
            }
            e => fail(status::CANNOT_UNDERSTAND, e.to_string()),
        },
    )
}

/// Answers a C-FIND with the archive.
pub async fn find(app: &App, aet: &str, req: QueryRequest) -> FindOutcome {
    match find_inner(app, aet, &req).await {
        Ok(m) => FindOutcome::Matches(m),
        Err(f) => FindOutcome::Failure {
            status: f.status,
            comment: f.comment,
        },
    }
}

async fn find_inner(app: &App, aet: &str, req: &QueryRequest) -> Result<Vec<Bytes>, Failure> {
    let id = parse_identifier(req)?;
    let actor = app.dicom_actor(&req.calling_ae, Some(req.peer.ip().to_string()));
    let records = app
        .search(&actor, &id.query, &Scope::default())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "C-FIND search failed");
            fail(status::REFUSED_OUT_OF_RESOURCES, "search failed")
        })?;
    let ts = registry_ts(&req.transfer_syntax_uid)?;
    let mut out = Vec::with_capacity(records.len());
    for record in &records {
        let m = id.response(record, aet);
        let obj: InMemDicomObject = dicom_json::from_value(Value::Object(m)).map_err(|e| {
            tracing::warn!(error = %e, "C-FIND: cannot build a response identifier");
            fail(status::REFUSED_OUT_OF_RESOURCES, "cannot encode a match")
        })?;
        let mut buf = Vec::with_capacity(512);
        obj.write_dataset_with_ts(&mut buf, ts).map_err(|e| {
            tracing::warn!(error = %e, "C-FIND: cannot encode a response identifier");
            fail(status::REFUSED_OUT_OF_RESOURCES, "cannot encode a match")
        })?;
        out.push(Bytes::from(buf));
    }
    tracing::info!(calling_ae = %req.calling_ae, level = id.query.level.dimse_name(), matches = out.len(), "C-FIND");
    Ok(out)
}

/// Most instance locations remembered for C-GET/C-MOVE selections (about 300 bytes each).
const MAX_LOCATED: usize = 200_000;
/// Most instances read ahead at once (one per retrieval in progress).
const MAX_PREFETCHED: usize = 32;

type Prefetch = tokio::task::JoinHandle<Result<Bytes, String>>;

/// Where the instances of recent C-GET/C-MOVE selections are stored, and the next instance
/// of each selection read ahead from disk. Shared by every association of a server; an
/// entry is used once (an association that ends early leaves entries behind, bounded by
/// [`MAX_LOCATED`] and [`MAX_PREFETCHED`]).
#[derive(Clone, Default)]
pub struct RetrieveCache {
    inner: Arc<Mutex<CacheInner>>,
}

#[derive(Default)]
struct CacheInner {
    /// SOP Instance UID -> its selection and place in it.
    located: HashMap<String, (Arc<Vec<StoredInstance>>, usize)>,
    /// SOP Instance UID -> the read of its object, in flight or done.
    prefetched: HashMap<String, Prefetch>,
}

impl CacheInner {
    fn prefetch(&mut self, inst: &StoredInstance) {
        if self.prefetched.contains_key(&inst.sop_instance_uid) {
            return;
        }
        if self.prefetched.len() >= MAX_PREFETCHED {
            // Reads nobody took (ended associations): dropped (a running read finishes).
            for (_, h) in self.prefetched.drain() {
                h.abort();
            }
        }
        let i = inst.clone();
        let h = tokio::task::spawn_blocking(move || i.read_blocking().map_err(|e| e.to_string()));
        self.prefetched.insert(inst.sop_instance_uid.clone(), h);
    }
}

impl RetrieveCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a selection and starts reading its first instance.
    fn remember(&self, selection: Vec<StoredInstance>) {
        let sel = Arc::new(selection);
        let mut c = self.lock();
        if c.located.len() + sel.len() > MAX_LOCATED {
            c.located.clear();
        }
        for (i, inst) in sel.iter().enumerate().take(MAX_LOCATED) {
            c.located
                .insert(inst.sop_instance_uid.clone(), (sel.clone(), i));
        }
        if let Some(first) = sel.first() {
            c.prefetch(first);
        }
    }

    /// Takes what is known of an instance (where it is, its bytes if read ahead) and starts
    /// reading the next one of its selection.
    fn take(&self, sop_instance_uid: &str) -> (Option<StoredInstance>, Option<Prefetch>) {
        let mut c = self.lock();
        let located = c.located.remove(sop_instance_uid);
        let read = c.prefetched.remove(sop_instance_uid);
        if let Some((sel, i)) = &located
            && let Some(next) = sel.get(i + 1)
        {
            c.prefetch(next);
        }
        (located.map(|(sel, i)| sel[i].clone()), read)
    }
}

/// The instances a C-MOVE or C-GET identifier selects.
pub async fn retrieve(
    app: &App,
    cache: &RetrieveCache,
    req: QueryRequest,
) -> Result<Vec<RetrieveItem>, Failure> {
    let id = parse_identifier(&req)?;
    if id.query.keys.is_empty() {
        return Err(fail(
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "identifier without a unique key",
        ));
    }
    // Patients are retrieved by their studies.
    let mut query = id.query.clone();
    if query.level == Level::Patient {
        query.level = Level::Study;
    }
    let actor = app.dicom_actor(&req.calling_ae, Some(req.peer.ip().to_string()));
    let records = app
        .search(&actor, &query, &Scope::default())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "retrieve: search failed");
            fail(status::REFUSED_OUT_OF_RESOURCES_MATCHES, "search failed")
        })?;
    let mut scopes: Vec<Scope> = Vec::new();
    let mut wanted_sops: Option<std::collections::HashSet<String>> = None;
    for r in &records {
        let study = first_string(r, tags::STUDY_INSTANCE_UID);
        let series = first_string(r, tags::SERIES_INSTANCE_UID);
        let scope = match query.level {
            Level::Patient | Level::Study => Scope {
                study_uid: study,
                ..Scope::default()
            },
            _ => Scope {
                study_uid: study,
                series_uid: series,
                ..Scope::default()
            },
        };
        if query.level == Level::Instance
            && let Some(sop) = first_string(r, tags::SOP_INSTANCE_UID)
        {
            wanted_sops.get_or_insert_with(Default::default).insert(sop);
        }
        if !scopes
            .iter()
            .any(|s| s.study_uid == scope.study_uid && s.series_uid == scope.series_uid)
        {
            scopes.push(scope);
        }
    }
    let mut items = Vec::new();
    let mut selection = Vec::new();
    let verb = "C-GET/C-MOVE";
    for scope in &scopes {
        // The selection came from the actor's own search; each study's retrieval is
        // authorised and audited by the application layer.
        let found = app.instances(&actor, scope, verb).await.map_err(|e| {
            tracing::error!(error = %e, "retrieve: instances failed");
            fail(status::REFUSED_OUT_OF_RESOURCES_MATCHES, "search failed")
        })?;
        for inst in found {
            if wanted_sops
                .as_ref()
                .is_some_and(|w| !w.contains(&inst.sop_instance_uid))
            {
                continue;
            }
            items.push(RetrieveItem {
                sop_class_uid: inst.sop_class_uid.clone(),
                sop_instance_uid: inst.sop_instance_uid.clone(),
                transfer_syntax_uid: inst.transfer_syntax_uid.clone(),
            });
            selection.push(inst);
        }
    }
    cache.remember(selection);
    tracing::info!(calling_ae = %req.calling_ae, level = id.query.level.dimse_name(), instances = items.len(), "retrieve");
    Ok(items)
}

/// Finds a stored instance in the index and reads it.
async fn lookup_and_read(store: &Store, uid: &str) -> Result<(StoredInstance, Bytes), String> {
    let scope = Scope {
        sop_instance_uid: Some(uid.to_string()),
        ..Scope::default()
    };
    let inst = store
        .instances(&scope)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("instance {uid} is gone"))?;
    let bytes = inst.read().await.map_err(|e| e.to_string())?;
    Ok((inst, bytes))
}

/// One stored instance as a data set in one of `accepted` transfer syntaxes.
pub async fn load(
    store: &Store,
    cache: &RetrieveCache,
    item: RetrieveItem,
    accepted: Vec<String>,
) -> Result<LoadedInstance, String> {
    let uid = item.sop_instance_uid.as_str();
    let (located, read) = cache.take(uid);
    let ahead = match (located, read) {
        (Some(inst), Some(read)) => match read.await {
            Ok(Ok(bytes)) => Some((inst, bytes)),
            _ => None,
        },
        (Some(inst), None) => inst.read().await.ok().map(|b| (inst, b)),
        _ => None,
    };
    // Not selected here, or replaced or removed since: as the index says now.
    let (inst, bytes) = match ahead {
        Some(x) => x,
        None => lookup_and_read(store, uid).await?,
    };
    if accepted.contains(&inst.transfer_syntax_uid) {
        let off = lumen_dicom::part10::dataset_offset(&bytes).map_err(|e| e.to_string())?;
        return Ok(LoadedInstance {
            transfer_syntax_uid: inst.transfer_syntax_uid,
            dataset: bytes.slice(off..),
        });
    }
    let target = if accepted.iter().any(|t| t == EXPLICIT_LE) {
        EXPLICIT_LE
    } else if accepted.iter().any(|t| t == IMPLICIT_LE) {
        IMPLICIT_LE
    } else {
        return Err(format!(
            "stored in {}; receiver accepts neither it nor little endian",
            inst.transfer_syntax_uid
        ));
    };
    let uid = item.sop_instance_uid.clone();
    tokio::task::spawn_blocking(move || transcode(&bytes, target))
        .await
        .map_err(|e| e.to_string())?
        .map(|dataset| {
            tracing::debug!(sop_instance = %uid, to = target, "transcoded for the receiver");
            LoadedInstance {
                transfer_syntax_uid: target.to_string(),
                dataset: dataset.into(),
            }
        })
}

/// Re-encodes a stored Part-10 object's data set in Explicit or Implicit VR Little Endian
/// (lumen-dicom's transcoder, shared with WADO-RS), for the wire.
fn transcode(part10: &[u8], target: &str) -> Result<Vec<u8>, String> {
    let ds = lumen_dicom::transcode::transcode(part10, target).map_err(|e| e.to_string())?;
    let ts = if target == EXPLICIT_LE {
        EXPLICIT_VR_LITTLE_ENDIAN.erased()
    } else {
        IMPLICIT_VR_LITTLE_ENDIAN.erased()
    };
    let mut out = Vec::with_capacity(part10.len());
    ds.write_dataset_with_ts(&mut out, &ts)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
