//! Our own SCU against our own SCP over loopback: round trips, statuses, rejections.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use lumen_dimse::{
    DimseError, Part10Info, Proposal, ScuConfig, ServerConfig, StoreOutcome, StoreScu,
    proposals_for, status,
};

fn scu_config() -> ScuConfig {
    ScuConfig {
        calling_ae_title: "TESTSCU".into(),
        called_ae_title: "LUMEN".into(),
        ..ScuConfig::default()
    }
}

fn proposals(files: &[PathBuf]) -> Vec<Proposal> {
    let infos: Vec<Part10Info> = files
        .iter()
        .map(|f| Part10Info::parse(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    proposals_for(
        infos
            .iter()
            .map(|i| (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str())),
    )
}

fn varied_files() -> Vec<PathBuf> {
    [
        "pydicom-3.0.2-test-files/CT_small.dcm",
        "pydicom-3.0.2-test-files/MR_small.dcm",
        "pydicom-3.0.2-test-files/MR_small_implicit.dcm",
        "pydicom-3.0.2-test-files/MR_small_bigendian.dcm",
        "pydicom-3.0.2-test-files/MR_small_RLE.dcm",
        "pydicom-3.0.2-test-files/MR_small_jp2klossless.dcm",
        "pydicom-3.0.2-test-files/MR_small_jpeg_ls_lossless.dcm",
        "pydicom-3.0.2-test-files/image_dfl.dcm",
        "pydicom-3.0.2-test-files/JPGExtended.dcm",
        "pydicom-3.0.2-test-files/rtplan.dcm",
        "pydicom-3.0.2-test-files/rtdose_rle.dcm",
        "pydicom-3.0.2-test-files/waveform_ecg.dcm",
        "orthanc-tests-picks/lctsc-rth/RT.dcm",
        "orthanc-tests-picks/transfer-syntaxes/1.2.840.10008.1.2.4.57.dcm",
        "pydicom-3.0.2-test-files/test-SR.dcm",
        "nema-wg04-compression/JPLL/CT1_JPLL",
        "nema-wg04-compression/J2KI/CT1_J2KI",
        "nema-wg04-compression/JLSN/CT1_JLSN",
        "orthanc-tests-picks/sample-pdf.dcm",
        "dcmqi-examples/segmentations/liver.dcm",
        "dcmqi-examples/sr-example/sr.dcm",
    ]
    .iter()
    .map(|f| sample(f))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_store_many_transfer_syntaxes_byte_identical() {
    let (addr, h) = start(ServerConfig::default()).await;
    let files = varied_files();
    let mut scu = StoreScu::connect(addr, &scu_config(), &proposals(&files))
        .await
        .unwrap();
    assert_eq!(scu.peer_max_pdu_length(), 256 * 1024);
    assert_eq!(scu.echo().await.unwrap(), status::SUCCESS);
    for f in &files {
        let rsp = scu.store_file(f).await.unwrap();
        assert_eq!(rsp.status, status::SUCCESS, "{}", f.display());
    }
    scu.release().await.unwrap();
    assert_eq!(h.digests(), expected(&files));
    for (r, f) in h.received().iter().zip(&files) {
        let (_, ts, _) = split_part10(f);
        assert_eq!(r.transfer_syntax_uid, ts);
        assert_eq!(r.calling_ae, "TESTSCU");
        assert_eq!(r.called_ae, "LUMEN");
    }
    wait_ended(&h, 1).await;
    let s = &h.ended()[0];
    assert_eq!(
        (s.stored, s.failed, s.aborted),
        (files.len() as u32, 0, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pdus_fragment_and_reassemble() {
    let config = ServerConfig {
        max_pdu_length: 4096,
        ..ServerConfig::default()
    };
    let (addr, h) = start(config).await;
    let files: Vec<_> = lidc_files().into_iter().take(3).collect();
    let scu_cfg = ScuConfig {
        max_pdu_length: 4096,
        ..scu_config()
    };
    let mut scu = StoreScu::connect(addr, &scu_cfg, &proposals(&files))
        .await
        .unwrap();
    assert_eq!(scu.peer_max_pdu_length(), 4096);
    for f in &files {
        assert_eq!(scu.store_file(f).await.unwrap().status, 0);
    }
    scu.release().await.unwrap();
    assert_eq!(h.digests(), expected(&files));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn called_ae_mismatch_is_rejected_unless_any() {
    let (addr, h) = start(ServerConfig::default()).await;
    let cfg = ScuConfig {
        called_ae_title: "NOTLUMEN".into(),
        ..scu_config()
    };
    match StoreScu::connect(addr, &cfg, &[]).await {
        Err(DimseError::Rejected(why)) => {
            assert!(why.contains("Permanent"), "{why}");
            assert!(why.to_lowercase().contains("called"), "{why}");
        }
        other => panic!("expected rejection, got {:?}", other.map(|_| ())),
    }
    // The server keeps serving.
    let mut scu = StoreScu::connect(addr, &scu_config(), &[]).await.unwrap();
    assert_eq!(scu.echo().await.unwrap(), 0);
    scu.release().await.unwrap();
    assert!(h.received().is_empty());

    let (addr, _h) = start(ServerConfig {
        accept_any_called_ae: true,
        ..ServerConfig::default()
    })
    .await;
    let mut scu = StoreScu::connect(addr, &cfg, &[]).await.unwrap();
    assert_eq!(scu.echo().await.unwrap(), 0);
    scu.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sop_class_context_is_rejected() {
    let (addr, _h) = start(ServerConfig::default()).await;
    let p = [
        Proposal::new("1.2.3.4.5.6.7", &["1.2.840.10008.1.2"]),
        Proposal::new("1.2.840.10008.5.1.4.1.1.2", &["1.2.3.999"]),
    ];
    let mut scu = StoreScu::connect(addr, &scu_config(), &p).await.unwrap();
    // Only Verification was accepted.
    assert_eq!(scu.accepted_contexts().len(), 1);
    let err = scu
        .store("1.2.3.4.5.6.7", "1.2.3", "1.2.840.10008.1.2", b"\x08\x00")
        .await
        .unwrap_err();
    assert!(matches!(err, DimseError::NoPresentationContext { .. }));
    assert_eq!(scu.echo().await.unwrap(), 0);
    scu.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_data_set_is_refused_and_drained() {
    let config = ServerConfig {
        max_dataset_size: 10_000,
        max_pdu_length: 4096,
        ..ServerConfig::default()
    };
    let (addr, h) = start(config).await;
    let big = sample("pydicom-3.0.2-test-files/CT_small.dcm"); // ~39 KB data set
    let small = sample("pydicom-3.0.2-test-files/rtplan.dcm");
    let files = [big.clone(), small.clone()];
    let mut scu = StoreScu::connect(addr, &scu_config(), &proposals(&files))
        .await
        .unwrap();
    let rsp = scu.store_file(&big).await.unwrap();
    assert_eq!(rsp.status, status::REFUSED_OUT_OF_RESOURCES);
    assert!(rsp.error_comment.unwrap().contains("size limit"));
    // The association is still usable after draining.
    assert_eq!(scu.store_file(&small).await.unwrap().status, 0);
    scu.release().await.unwrap();
    let got = h.received();
    assert_eq!(got.len(), 1);
    assert_eq!(h.digests(), expected(&[small]));
    wait_ended(&h, 1).await;
    assert_eq!((h.ended()[0].stored, h.ended()[0].failed), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_statuses_and_comments_reach_the_scu() {
    let (addr, h) = start(ServerConfig::default()).await;
    let f = sample("pydicom-3.0.2-test-files/CT_small.dcm");
    let mut scu = StoreScu::connect(addr, &scu_config(), &proposals(std::slice::from_ref(&f)))
        .await
        .unwrap();
    *h.outcome.lock().unwrap() = Some(StoreOutcome::Failure {
        status: status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        comment: "SOP Instance UID of the data set differs from the command ".repeat(3),
    });
    let rsp = scu.store_file(&f).await.unwrap();
    assert_eq!(rsp.status, 0xA900);
    assert_eq!(rsp.error_comment.as_deref().map(str::len), Some(64));
    *h.outcome.lock().unwrap() = Some(StoreOutcome::Warning {
        status: status::WARNING_COERCION,
        comment: "coerced".into(),
    });
    let rsp = scu.store_file(&f).await.unwrap();
    assert_eq!(
        (rsp.status, rsp.error_comment.as_deref()),
        (0xB000, Some("coerced"))
    );
    scu.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_limit_rejects_transiently() {
    let (addr, _h) = start(ServerConfig {
        max_associations: 1,
        ..ServerConfig::default()
    })
    .await;
    let mut first = StoreScu::connect(addr, &scu_config(), &[]).await.unwrap();
    match StoreScu::connect(addr, &scu_config(), &[]).await {
        Err(DimseError::Rejected(why)) => assert!(why.contains("Transient"), "{why}"),
        other => panic!("expected rejection, got {:?}", other.map(|_| ())),
    }
    assert_eq!(first.echo().await.unwrap(), 0);
    first.release().await.unwrap();
    // The slot is free again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = StoreScu::connect(addr, &scu_config(), &[]).await.unwrap();
    second.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_associations() {
    let (addr, h) = start(ServerConfig::default()).await;
    let files = lidc_files();
    let chunks: Vec<Vec<PathBuf>> = files.chunks(34).map(|c| c.to_vec()).collect();
    let mut tasks = vec![];
    for chunk in chunks.clone() {
        tasks.push(tokio::spawn(async move {
            let mut scu = StoreScu::connect(addr, &scu_config(), &proposals(&chunk))
                .await
                .unwrap();
            for f in &chunk {
                assert_eq!(scu.store_file(f).await.unwrap().status, 0);
            }
            scu.release().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sorted(h.digests()), sorted(expected(&files)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_waits_for_associations() {
    init_tracing();
    let handler = std::sync::Arc::new(MemHandler::default());
    let server = lumen_dimse::Server::bind("127.0.0.1:0", ServerConfig::default(), handler)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    let mut scu = StoreScu::connect(addr, &scu_config(), &[]).await.unwrap();
    tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // New connections are refused, the open association still works.
    assert!(StoreScu::connect(addr, &scu_config(), &[]).await.is_err());
    assert!(!running.is_finished());
    assert_eq!(scu.echo().await.unwrap(), 0);
    scu.release().await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .unwrap()
        .unwrap();
}

struct PanicOnce(std::sync::atomic::AtomicBool);

impl lumen_dimse::StoreHandler for PanicOnce {
    async fn store(&self, _req: lumen_dimse::StoreRequest) -> StoreOutcome {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("handler bug (expected by the test)");
        }
        StoreOutcome::Success
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_fails_only_that_instance() {
    init_tracing();
    let server = lumen_dimse::Server::bind(
        "127.0.0.1:0",
        ServerConfig::default(),
        PanicOnce(Default::default()),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    let f = sample("pydicom-3.0.2-test-files/CT_small.dcm");
    let mut scu = StoreScu::connect(addr, &scu_config(), &proposals(std::slice::from_ref(&f)))
        .await
        .unwrap();
    assert_eq!(
        scu.store_file(&f).await.unwrap().status,
        status::PROCESSING_FAILURE
    );
    assert_eq!(scu.store_file(&f).await.unwrap().status, status::SUCCESS);
    scu.release().await.unwrap();
}
