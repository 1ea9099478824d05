//! Crash safety: `kill -9` during a 300-instance C-STORE ingest, restart, and check that
//! every instance whose C-STORE got a success response is present and byte-identical,
//! and that no orphan or partial file remains; with files, and with objects in a bucket
//! on a real Garage (where the restart's sweep removes unindexed uploads).

mod util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag};
use util::*;

const STUDY_UID: &str = "2.25.196540213372510470187632290151236577";
const SERIES_UID: &str = "2.25.196540213372510470187632290151236578";

/// 300 distinct CT instances (the real LIDC slices with new UIDs), as Part-10 bytes.
fn instances(files: &[std::path::PathBuf]) -> Vec<(String, Vec<u8>)> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let put = |obj: &mut DefaultDicomObject, tag: Tag, vr: VR, v: String| {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    };
    (0..300)
        .map(|i| {
            let mut obj = dicom_object::open_file(&files[i % files.len()]).expect("source");
            let sop = format!("2.25.19654021337251047018763229015123{:04}", 6600 + i);
            put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop.clone());
            put(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, STUDY_UID.into());
            put(
                &mut obj,
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                SERIES_UID.into(),
            );
            put(&mut obj, tags::INSTANCE_NUMBER, VR::IS, (i + 1).to_string());
            obj.meta_mut().media_storage_sop_instance_uid = sop.clone();
            obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
            let mut bytes = Vec::new();
            obj.write_all(&mut bytes).expect("encode");
            (sop, bytes)
        })
        .collect()
}

#[test]
fn kill9_during_ingest_loses_nothing_acknowledged() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    kill9_during_ingest(&data, &dir, &[], |_| object_files(&dir));
}

#[test]
fn kill9_during_ingest_to_s3_loses_nothing_acknowledged_and_leaves_no_orphan() {
    let Some(data) = shared_data() else { return };
    let Some(g) = util::garage::Garage::start() else {
        return;
    };
    let bucket = "lumen-crash";
    g.bucket(bucket);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    // Orphans are swept at once at the restart (the real age is an hour).
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(&cfg, g.storage_toml(bucket, Some(0))).expect("config");
    let cfg = cfg.to_str().expect("path");
    kill9_during_ingest(&data, &dir, &["--config", cfg], |indexed| {
        assert_eq!(local_object_files(&dir), (0, 0), "files written in S3 mode");
        // The restarted server sweeps the bucket in the background: wait for it.
        let count = || {
            let keys = g.list(bucket).expect("listing");
            keys.iter()
                .filter(|(k, _)| k.starts_with("objects/"))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while count() != indexed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        (count(), 0)
    });
}

/// Sends 300 instances over one association to a server on `dir` (started with `extra`),
/// kills it mid-ingest, restarts it and checks what was acknowledged; `stored` counts the
/// objects kept and the temporary leftovers (given how many the index lists).
fn kill9_during_ingest(
    data: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
    stored: impl Fn(usize) -> (usize, usize),
) {
    let objects = Arc::new(instances(&lidc_files(data)));
    let mut server = Server::start_in(dir, extra);
    let port = server.dicom_port;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sender = {
        let (acked, objects) = (acked.clone(), objects.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use lumen_dimse::{ScuConfig, StoreScu, proposals_for};
                let cfg = ScuConfig {
                    calling_ae_title: "CRASHTEST".into(),
                    called_ae_title: "LUMEN".into(),
                    ..ScuConfig::default()
                };
                let props = proposals_for([("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")]);
                let mut scu = StoreScu::connect(("127.0.0.1", port), &cfg, &props)
                    .await
                    .expect("associate");
                for (sop, bytes) in objects.iter() {
                    match scu.store_part10(bytes).await {
                        Ok(r) if r.status == 0 => acked.lock().expect("lock").push(sop.clone()),
                        Ok(r) => panic!("unexpected status {:04X}", r.status),
                        Err(_) => return, // the server died mid-exchange
                    }
                }
            });
        })
    };
    // Kill while the ingest is in full flow.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().expect("lock").len() < 100 {
        assert!(Instant::now() < deadline, "ingest too slow");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill9();
    sender.join().expect("sender thread");
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 100 && acked.len() < 300,
        "killed mid-ingest ({} acked)",
        acked.len()
    );

    // Restart on the same data directory.
    let server = Server::start_in(dir, extra);
    let listed = server.get_json(&format!(
        "/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances"
    ));
    let listed: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["00080018"]["Value"][0].as_str().map(str::to_string))
        .collect();
    // At most the one instance in flight may have landed without its response.
    assert!(
        listed.len() >= acked.len() && listed.len() <= acked.len() + 1,
        "{} listed, {} acked",
        listed.len(),
        acked.len()
    );
    let by_uid: std::collections::HashMap<&str, &Vec<u8>> =
        objects.iter().map(|(s, b)| (s.as_str(), b)).collect();
    for sop in &acked {
        assert!(listed.contains(sop), "acknowledged instance {sop} lost");
        let (status, ct, body) = server.get_raw(
            &format!("/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{sop}"),
            Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
        );
        assert_eq!(status, 200);
        let parts = multipart_parts(&ct, &body);
        assert_eq!(
            dataset_bytes(&parts[0]),
            dataset_bytes(by_uid[sop.as_str()]),
            "instance {sop} differs from what was sent"
        );
    }
    // No orphan objects, no temporary leftovers.
    assert_eq!(stored(listed.len()), (listed.len(), 0));
}
