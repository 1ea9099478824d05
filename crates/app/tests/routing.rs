//! The routing worker against a real C-STORE SCP (lumen-dimse's server on loopback): the
//! peer is down at first (retried with backoff, the reason recorded), then up: the routed
//! instances arrive as stored, one the peer refuses stays `failed` with its status, and
//! an instance no rule matches is not sent.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dicom_dictionary_std::tags;
use lumen_app::routing::{Destination, RouteRule, RouteRules, RoutingWorker};
use lumen_dimse::{Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest};
use lumen_store::{Origin, Store, StoreConfig};

const REFUSED: &str = "1.2.826.0.1.3680043.8.498.81.3";

fn sample_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    if !p.exists() {
        assert!(
            std::env::var("LUMEN_REQUIRE_DATA").as_deref() != Ok("1"),
            "../shared/data missing"
        );
        eprintln!("SKIP: ../shared/data not found");
        return None;
    }
    Some(p)
}

/// The sample under another SOP Instance UID and modality.
fn copy(src: &Path, sop: &str, modality: &str) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let mut obj = dicom_object::open_file(src).expect("sample");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop),
    ));
    obj.put(DataElement::new(
        tags::MODALITY,
        VR::CS,
        PrimitiveValue::from(modality),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.into());
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).expect("encode");
    bytes
}

/// Keeps (SOP Instance UID, data set) of what it is sent; refuses [`REFUSED`].
#[derive(Clone, Default)]
struct Peer(Arc<Mutex<Vec<(String, Bytes)>>>);

impl StoreHandler for Peer {
    async fn store(&self, req: StoreRequest) -> StoreOutcome {
        if req.sop_instance_uid == REFUSED {
            return StoreOutcome::Failure {
                status: 0xA700,
                comment: "out of resources".into(),
            };
        }
        if let Ok(mut v) = self.0.lock() {
            v.push((req.sop_instance_uid, req.dataset.bytes()));
        }
        StoreOutcome::Success
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn the_worker_forwards_the_outbox_with_backoff() {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = StoreConfig::new(tmp.path());
    cfg.router = RouteRules::router(&[
        RouteRule {
            calling_ae: None,
            modality: Some("CT".into()),
            destination: "DEST".into(),
        },
        RouteRule {
            calling_ae: None,
            modality: Some("SR".into()),
            destination: "DEST".into(),
        },
    ]);
    let store = Store::open(cfg).await.expect("open");
    let objects = [
        ("1.2.826.0.1.3680043.8.498.81.1", "CT", Origin::StowRs),
        ("1.2.826.0.1.3680043.8.498.81.2", "SR", Origin::Report),
        (REFUSED, "CT", Origin::Ai),
        ("1.2.826.0.1.3680043.8.498.81.4", "MR", Origin::Import),
    ];
    let mut sent = Vec::new();
    for (sop, modality, origin) in objects {
        let bytes = copy(&src, sop, modality);
        let i = store
            .ingest(Bytes::from(bytes.clone()), origin)
            .await
            .expect("ingest");
        assert_eq!(i.routed, usize::from(modality != "MR"), "{sop}");
        sent.push((sop, bytes));
    }

    // The peer is down: every row is retried later, with the reason.
    let port = free_port();
    let worker = RoutingWorker::new(
        store.clone(),
        vec![Destination {
            aet: "DEST".into(),
            host: "127.0.0.1".into(),
            port,
        }],
        "LUMEN",
    );
    let wait = worker.run_once().await.expect("run");
    assert!(wait > Duration::from_millis(500), "{wait:?}");
    let e = store.outbox_entries().await.expect("entries");
    assert_eq!(e.len(), 3);
    for row in &e {
        assert_eq!(
            (row.state.as_str(), row.attempts),
            ("pending", 1),
            "{row:?}"
        );
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|m| m.contains("cannot associate with DEST")),
            "{row:?}"
        );
    }
    assert_eq!(
        e.iter().map(|r| r.origin.as_str()).collect::<Vec<_>>(),
        ["stow-rs", "report", "ai"]
    );
    // Not due yet.
    worker.run_once().await.expect("run");
    assert_eq!(
        store.outbox_entries().await.expect("entries")[0].attempts,
        1
    );

    // The peer comes up; after the backoff the rows go.
    let peer = Peer::default();
    let server = Server::bind(
        ("127.0.0.1", port),
        ServerConfig {
            ae_title: "DEST".into(),
            ..ServerConfig::default()
        },
        peer.clone(),
    )
    .await
    .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scp = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    // The rows fall due one after the other (each was retried a little later than the
    // one before): run the worker until the refused row has failed, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut wait = wait;
    loop {
        tokio::time::sleep(wait).await;
        let next = worker.run_once().await.expect("run");
        let e = store.outbox_entries().await.expect("entries");
        if e.iter().all(|r| r.state == "failed") || std::time::Instant::now() > deadline {
            break;
        }
        wait = next.clamp(Duration::from_millis(10), Duration::from_millis(500));
    }

    let got = peer.0.lock().expect("lock").clone();
    let want: Vec<(&str, &[u8])> = sent[..2]
        .iter()
        .map(|(sop, b)| {
            let off = lumen_dicom::part10::dataset_offset(b).expect("part 10");
            (*sop, &b[off..])
        })
        .collect();
    assert_eq!(
        got.iter()
            .map(|(s, d)| (s.as_str(), &d[..]))
            .collect::<Vec<_>>(),
        want,
        "forwarded as stored"
    );
    let e = store.outbox_entries().await.expect("entries");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].sop_instance_uid, REFUSED);
    assert_eq!((e[0].state.as_str(), e[0].attempts), ("failed", 2));
    assert!(
        e[0].last_error
            .as_deref()
            .is_some_and(|m| m.starts_with("refused with status A700")),
        "{e:?}"
    );
    assert_eq!(store.outbox_next_due().await.expect("due"), None);
    let _ = stop.send(());
    let _ = scp.await;
}
