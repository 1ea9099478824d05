//! The store on a real S3-compatible server (Garage, started here): objects are uploaded
//! whole before the index commits and read back from the bucket, large ones in parts;
//! replaced ones are deleted; orphans old enough are swept, young ones and known objects
//! stay;
//! readiness follows the bucket. Nothing is written under the data directory's `objects/`
//! or `tmp/`.

#[path = "../../lumen/tests/util/garage.rs"]
mod garage;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use garage::Garage;
use lumen_store::{
    ConflictPolicy, IngestStatus, ObjectStorage, Origin, S3Config, Scope, Store, StoreConfig,
};
use support::{files_under, sample};

/// `sample` with a new SOP Instance UID and `rows` x `rows` 16-bit pixels.
fn big(sample: &[u8], rows: u16) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let tmp = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(tmp.path(), sample).expect("write");
    let mut obj = dicom_object::open_file(tmp.path()).expect("parse sample");
    let sop = "2.25.123456789012345678901234567890".to_string();
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop.clone()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    let n = usize::from(rows) * usize::from(rows) * 2;
    let pixels: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(pixels),
    ));
    let mut out = Vec::new();
    obj.write_all(&mut out).expect("encode");
    out
}

fn config(data: &Path, g: &Garage, bucket: &str, age: Duration) -> StoreConfig {
    let mut s3 = S3Config::new(bucket);
    s3.endpoint = Some(g.endpoint.clone());
    s3.region = Some(garage::REGION.into());
    s3.access_key_id = Some(g.key_id.clone());
    s3.secret_access_key = Some(lumen_store::SecretString::new(g.secret.clone()));
    s3.orphan_min_age = age;
    let mut cfg = StoreConfig::new(data);
    cfg.storage = ObjectStorage::S3(s3);
    cfg
}

fn keys(g: &Garage, bucket: &str) -> Vec<String> {
    let mut k: Vec<String> = g
        .list(bucket)
        .expect("listing")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    k.sort();
    k
}

#[test]
fn objects_live_in_the_bucket_and_orphans_are_swept() {
    let Some(original) = sample() else { return };
    let Some(mut g) = Garage::start() else { return };
    let bucket = "lumen-store-test";
    g.bucket(bucket);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut changed = original.clone();
    let n = changed.len();
    changed[n - 2] ^= 0x0F;
    let large = big(&original, 2100);
    assert!(large.len() > lumen_store::MULTIPART_THRESHOLD);

    // An upload that a crash left unindexed, and a key outside the objects.
    let orphan = "objects/00/0000000000000000/1.2.3-0000000000000000.dcm";
    g.put(bucket, orphan, b"left by a crash".to_vec());
    g.put(bucket, "elsewhere/keep.txt", b"not ours".to_vec());

    // With the real orphan age, the young orphan stays.
    rt.block_on(async {
        let store = Store::open(config(&data, &g, bucket, lumen_store::ORPHAN_MIN_AGE))
            .await
            .expect("open");
        store.check_ready().await.expect("ready");
        let a = store
            .ingest(Bytes::from(original.clone()), Origin::Import)
            .await
            .expect("ingest");
        assert_eq!(a.status, IngestStatus::Stored);
        let again = store
            .ingest(Bytes::from(original.clone()), Origin::Import)
            .await
            .expect("again");
        assert_eq!(again.status, IngestStatus::AlreadyPresent);
        // Larger than the multipart threshold: uploaded in parts, read back whole.
        let l = store
            .ingest(Bytes::from(large.clone()), Origin::Import)
            .await
            .expect("large ingest");
        assert_eq!(l.status, IngestStatus::Stored);
        let mut read = Vec::new();
        for inst in store.instances(&Scope::default()).await.expect("list") {
            let bytes = inst.read().await.expect("read");
            let blocking = tokio::task::spawn_blocking(move || inst.read_blocking())
                .await
                .expect("join")
                .expect("read_blocking");
            assert_eq!(bytes, blocking);
            read.push(bytes);
        }
        read.sort_by_key(|b| b.len());
        assert_eq!(&read[0][..], &original[..]);
        assert_eq!(&read[1][..], &large[..]);
        assert_eq!(store.sweep_orphans().await.expect("sweep"), 0);
    });
    // The two objects under their keys (named like the file store's paths), the young
    // orphan and the foreign key.
    let listed = keys(&g, bucket);
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.contains(&orphan.to_string()) && listed.contains(&"elsewhere/keep.txt".into()));
    let large_key = listed
        .iter()
        .find(|k| k.contains("/2.25.123456789012345678901234567890-"))
        .expect("large object's key")
        .clone();
    let stored_key = listed
        .iter()
        .find(|k| k.starts_with("objects/") && **k != large_key && k.as_str() != orphan)
        .expect("object's key")
        .clone();
    assert_eq!(files_under(&data.join("objects")).len(), 0);
    assert_eq!(files_under(&data.join("tmp")).len(), 0);

    // Wait until every key is older than a one-second orphan age, then reopen with it:
    // the orphan goes, the indexed objects and the foreign key stay.
    let deadline = Instant::now() + Duration::from_secs(30);
    while g
        .list(bucket)
        .expect("listing")
        .iter()
        .any(|(_, t)| now_ms() - t < 1500)
    {
        assert!(Instant::now() < deadline, "keys never aged");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(async {
        let mut cfg = config(&data, &g, bucket, Duration::from_secs(1));
        cfg.on_conflict = ConflictPolicy::Replace;
        let store = Store::open(cfg).await.expect("reopen");
        assert_eq!(
            store
                .instances(&Scope::default())
                .await
                .expect("list")
                .len(),
            2
        );
        assert_eq!(store.sweep_orphans().await.expect("sweep"), 1);
        // Replacing deletes the replaced object's key.
        let r = store
            .ingest(Bytes::from(changed.clone()), Origin::Import)
            .await
            .expect("replace");
        assert_eq!(r.status, IngestStatus::Replaced);
    });
    let after = keys(&g, bucket);
    assert!(!after.contains(&orphan.to_string()), "{after:?}");
    assert!(!after.contains(&stored_key), "replaced key kept: {after:?}");
    assert!(after.contains(&large_key) && after.contains(&"elsewhere/keep.txt".to_string()));
    assert_eq!(
        after.iter().filter(|k| k.starts_with("objects/")).count(),
        2
    );

    // Readiness follows the bucket.
    rt.block_on(async {
        let store = Store::open(config(&data, &g, bucket, lumen_store::ORPHAN_MIN_AGE))
            .await
            .expect("reopen");
        store.check_ready().await.expect("ready");
        let inst = store.instances(&Scope::default()).await.expect("list");
        let changed_back = inst
            .iter()
            .find(|i| i.size == changed.len() as u64)
            .expect("replacement listed");
        assert_eq!(&changed_back.read().await.expect("read")[..], &changed[..]);
        tokio::task::block_in_place(|| g.stop());
        let e = store.check_ready().await.expect_err("bucket gone");
        assert!(e.to_string().contains("bucket"), "{e}");
        assert!(!e.to_string().contains(&g.secret), "{e}");
        assert!(store.gauges().await.expect("gauges").object_store_errors > 0);
    });
    assert_eq!(files_under(&data.join("objects")).len(), 0);
    assert_eq!(files_under(&data.join("tmp")).len(), 0);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
