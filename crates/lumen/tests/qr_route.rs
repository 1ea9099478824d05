//! Routing: a `[[route]]` rule forwards CT from one calling AE to a peer through the
//! outbox in the index; the peer (DCMTK's storescp) is down while the instances arrive and
//! across a server crash, and receives them, byte-identical, once it is up. STOW-RS
//! arrivals are routed by modality rules (not by calling-AE rules), and an instance the peer
//! refuses stays listed by `lumen queue` as failed until it is retried. Every other arrival
//! path routes through the same outbox: the AI's SEG and SR, a signed report's Encapsulated
//! PDF and Basic Text SR, `lumen import` and `lumen retrieve --data`; and a `kill -9` of the
//! server right after STOW-RS and signing, with the peer down, loses no routing.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use serde_json::json;
use util::*;

fn s(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn uid_and_dataset(p: &Path) -> Option<(String, Vec<u8>)> {
    let obj = dicom_object::open_file(p).ok()?;
    let uid = obj
        .element(tags::SOP_INSTANCE_UID)
        .ok()?
        .to_str()
        .ok()?
        .trim_end_matches(['\0', ' '])
        .to_string();
    let bytes = std::fs::read(p).ok()?;
    Some((uid, dataset_bytes(&bytes).to_vec()))
}

fn datasets_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| uid_and_dataset(&e.path()))
        .collect()
}

fn storescu(server: &Server, aet: &str, files: &[PathBuf]) {
    let o = run(Command::new("storescu")
        .args(["-aet", aet, "-aec", "LUMEN", "127.0.0.1"])
        .arg(server.dicom_port.to_string())
        .args(files));
    assert!(o.status.success(), "storescu: {}", s(&o));
}

struct Scp(Child);

impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn qr_route_ct_to_peer_started_later_survives_crash() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "[[route]]\ncalling_ae = \"CTSCANNER\"\nmodality = \"CT\"\ndestination = \"DEST\"\n\n\
         [[route]]\nmodality = \"MR\"\ndestination = \"DEST\"\n",
    )
    .unwrap();
    let port = free_port();
    let dest = format!("DEST=127.0.0.1:{port}");
    let dir = tmp.path().join("d");
    let args = ["--config", cfg.to_str().unwrap(), "--peer", &dest];
    let mut server = Server::start_in(&dir, &args);

    let all = lidc_files(&data);
    let routed: Vec<PathBuf> = all[..4].to_vec();
    let not_routed: Vec<PathBuf> = all[4..6].to_vec();
    storescu(&server, "CTSCANNER", &routed);
    storescu(&server, "OTHER", &not_routed);
    // Queued with the instances, in the index (no outbound.sqlite any more).
    let q = queue_json(&dir, &[]);
    assert_eq!(q["destinations"][0]["destination"], "DEST", "{q}");
    assert_eq!(q["destinations"][0]["pending"], json!(4), "{q}");
    assert!(
        q["entries"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["origin"] == "c-store")),
        "{q}"
    );
    assert!(!dir.join("outbound.sqlite").exists());

    // The peer is down: attempts fail; then the server crashes and comes back.
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    let server = Server::start_in(&dir, &args);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.log().contains("will retry"), "{}", server.log());

    let out = tmp.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let _scp = Scp(Command::new("storescp")
        .args(["-aet", "DEST", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .spawn()
        .expect("storescp"));
    let want: BTreeMap<String, Vec<u8>> =
        routed.iter().filter_map(|p| uid_and_dataset(p)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while datasets_in(&out).len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "not forwarded in time: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(datasets_in(&out), want);
}

/// A copy of a CT file under a private SOP class (and its own instance UID): an archive
/// that accepts unknown classes stores it; DCMTK's storescp accepts no context for it.
fn private_class_copy(src: &Path, dst: &Path) -> String {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let class = "1.2.826.0.1.3680043.8.498.4242.1";
    let uid = "1.2.826.0.1.3680043.8.498.4242.2.1";
    let mut obj = dicom_object::open_file(src).unwrap();
    obj.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(class),
    ));
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(uid),
    ));
    obj.update_meta(|m| {
        m.media_storage_sop_class_uid = class.into();
        m.media_storage_sop_instance_uid = uid.into();
    });
    obj.write_to_file(dst).unwrap();
    uid.to_string()
}

fn stow(server: &Server, files: &[PathBuf]) -> u16 {
    let boundary = "lumen-route-boundary-51c3";
    let mut body = Vec::new();
    for f in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&std::fs::read(f).unwrap());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .post(&format!("{}/studies", server.dicomweb()))
        .header("Authorization", &server.tech_auth())
        .header(
            "Content-Type",
            &format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .send(&body[..])
        .expect("STOW-RS")
        .status()
        .as_u16()
}

/// Checks that each routed data set is the one the server stores; returns their SOP Class
/// UIDs.
fn routed_as_stored(server: &Server, study: &str, got: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut classes = Vec::new();
    for (uid, dataset) in got {
        let (status, _, body) = server.get_raw(
            &format!("/dicom-web/studies/{study}/instances?SOPInstanceUID={uid}"),
            Some("application/dicom+json"),
        );
        assert_eq!(status, 200, "QIDO {uid}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let series = v[0]["0020000E"]["Value"][0]
            .as_str()
            .expect("series")
            .to_string();
        classes.push(
            v[0]["00080016"]["Value"][0]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        let (status, ct, body) = server.get_raw(
            &format!("/dicom-web/studies/{study}/series/{series}/instances/{uid}"),
            Some("multipart/related; type=\"application/dicom\""),
        );
        assert_eq!(status, 200);
        let parts = multipart_parts(&ct, &body);
        assert!(
            dataset_bytes(&parts[0]) == &dataset[..],
            "{uid}: the routed data set differs from the stored one"
        );
    }
    classes.sort();
    classes
}

fn queue_json(data: &Path, extra: &[&str]) -> serde_json::Value {
    let o = run(Command::new(lumen_bin())
        .args([
            "queue",
            "--data",
            data.to_str().unwrap(),
            "--json",
            "--entries",
        ])
        .args(extra));
    assert!(o.status.success(), "lumen queue: {}", s(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", s(&o)))
}

#[test]
fn qr_route_stow_by_modality_and_refused_entries_listed() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = tmp.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let _scp = Scp(Command::new("storescp")
        .args(["-aet", "DEST", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .spawn()
        .expect("storescp"));
    // A calling-AE rule names a peer nobody listens for: STOW-RS has no calling AE, so
    // nothing may be queued for it.
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        format!(
            "accept_unknown_sop_classes = true\npeers = [\"DEST=127.0.0.1:{port}\", \"NOWHERE=127.0.0.1:1\"]\n\n\
             [[route]]\nmodality = \"CT\"\ndestination = \"DEST\"\n\n\
             [[route]]\ncalling_ae = \"CTSCANNER\"\ndestination = \"NOWHERE\"\n"
        ),
    )
    .unwrap();
    let dir = tmp.path().join("d");
    let server = Server::start_in(&dir, &["--config", cfg.to_str().unwrap()]);
    assert!(!dir.join("outbound.sqlite").exists() || queue_json(&dir, &[])["entries"] == json!([]));

    let all = lidc_files(&data);
    let private = tmp.path().join("private.dcm");
    let private_uid = private_class_copy(&all[10], &private);
    let mut files: Vec<PathBuf> = all[..3].to_vec();
    files.push(private.clone());
    assert_eq!(stow(&server, &files), 200, "{}", server.log());

    // The three CT images arrive as sent; the private class is refused by the peer and
    // stays listed as failed, with the reason.
    let want: BTreeMap<String, Vec<u8>> =
        all[..3].iter().filter_map(|p| uid_and_dataset(p)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let q = queue_json(&dir, &[]);
        let entries = q["entries"].as_array().cloned().unwrap_or_default();
        if datasets_in(&out).len() == want.len()
            && entries.len() == 1
            && entries[0]["state"] == "failed"
        {
            break q;
        }
        assert!(
            Instant::now() < deadline,
            "STOW-RS arrivals not routed: {q}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(datasets_in(&out), want);
    let e = &failed["entries"][0];
    assert_eq!(e["destination"], "DEST", "{failed}");
    assert_eq!(e["sop_instance_uid"], json!(private_uid), "{failed}");
    assert_eq!(e["attempts"], json!(1), "{failed}");
    assert!(
        e["last_error"]
            .as_str()
            .is_some_and(|m| m.contains("presentation context")),
        "{failed}"
    );
    let d = &failed["destinations"];
    assert_eq!(d.as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(
        (&d[0]["pending"], &d[0]["failed"]),
        (&json!(0), &json!(1)),
        "{failed}"
    );

    // Put back in line, it is tried again (and refused again).
    let retried = queue_json(&dir, &["--retry-failed", "--destination", "DEST"]);
    assert_eq!(retried["destinations"][0]["pending"], json!(1), "{retried}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = queue_json(&dir, &[]);
        if q["entries"][0]["state"] == "failed" && q["entries"][0]["attempts"] == json!(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not retried: {q}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        server
            .log()
            .matches("routing: no presentation context")
            .count(),
        2,
        "{}",
        server.log()
    );
}

/// The AI's results are an ingest path too: with rules on SEG and SR (and none on CT), the
/// SEG and SR written for an arriving chest CT go to the peer, as stored.
#[test]
fn qr_route_ai_results_by_modality() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = tmp.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let _scp = Scp(Command::new("storescp")
        // +B: written exactly as received (storescp re-encodes sequence lengths
        // otherwise, and the SR's are undefined)
        .args(["-aet", "DEST", "+B", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .spawn()
        .expect("storescp"));
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        format!(
            "peers = [\"DEST=127.0.0.1:{port}\"]\n\n[ai]\nquiet_period_secs = 1.0\n\n\
             [[route]]\nmodality = \"SEG\"\ndestination = \"DEST\"\n\n\
             [[route]]\nmodality = \"SR\"\ndestination = \"DEST\"\n"
        ),
    )
    .unwrap();
    let server = Server::start_in(&tmp.path().join("d"), &["--config", cfg.to_str().unwrap()]);
    let files = lidc_files(&data);
    storescu(&server, "CTSCANNER", &files);
    let study = {
        let obj = dicom_object::open_file(&files[0]).unwrap();
        obj.element(tags::STUDY_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_string()
    };

    // SEG and SR arrive; no CT does.
    let deadline = Instant::now() + Duration::from_secs(300);
    while datasets_in(&out).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "AI results not routed: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = datasets_in(&out);
    assert_eq!(got.len(), 2, "{:?}", got.keys().collect::<Vec<_>>());
    let classes = routed_as_stored(&server, &study, &got);
    assert_eq!(
        classes,
        [
            "1.2.840.10008.5.1.4.1.1.66.4",
            "1.2.840.10008.5.1.4.1.1.88.34"
        ],
        "a SEG and a Comprehensive 3D SR"
    );
}

const LIDC_STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const BASIC_TEXT_SR: &str = "1.2.840.10008.5.1.4.1.1.88.11";

/// A storescp as DEST on `port`, writing what it receives (as received) into `out`.
fn storescp(port: u16, out: &Path) -> Scp {
    std::fs::create_dir_all(out).unwrap();
    Scp(Command::new("storescp")
        .args(["-aet", "DEST", "+B", "-od"])
        .arg(out)
        .arg(port.to_string())
        .spawn()
        .expect("storescp"))
}

/// A configuration routing `modalities` to DEST on `port`, with the AI off.
fn route_config(dir: &Path, port: u16, modalities: &[&str]) -> PathBuf {
    let mut cfg = format!("peers = [\"DEST=127.0.0.1:{port}\"]\n\n[ai]\nenabled = false\n");
    for m in modalities {
        cfg.push_str(&format!(
            "\n[[route]]\nmodality = \"{m}\"\ndestination = \"DEST\"\n"
        ));
    }
    let p = dir.join("lumen.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// Signs the study's report over the web app's API.
fn sign(server: &Server, study: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!(
            "{}/api/studies/{study}/report/sign",
            server.http()
        ))
        .header("Authorization", &server.auth())
        .send_json(json!({ "lang": "en" }))
        .expect("sign");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
    assert_eq!(status, 200, "sign: {v}\n{}", server.log());
    assert_eq!(v["status"], "signed", "{v}");
}

/// Waits until `n` objects arrived in `out`.
fn wait_received(out: &Path, n: usize, server: &Server) -> BTreeMap<String, Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while datasets_in(out).len() < n {
        assert!(
            Instant::now() < deadline,
            "not routed in time ({} of {n}): {}",
            datasets_in(out).len(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = datasets_in(out);
    assert_eq!(got.len(), n, "{:?}", got.keys().collect::<Vec<_>>());
    got
}

/// The signed report is an ingest path too: with rules on DOC and SR (none on CT), its
/// Encapsulated PDF and Basic Text SR go to the peer as stored, and so do an addendum's.
#[test]
fn qr_route_signed_report_pdf_and_sr() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = tmp.path().join("received");
    let _scp = storescp(port, &out);
    let cfg = route_config(tmp.path(), port, &["DOC", "SR"]);
    let server = Server::start_in(&tmp.path().join("d"), &["--config", cfg.to_str().unwrap()]);
    storescu(&server, "CTSCANNER", &lidc_files(&data)[..3]);
    sign(&server, LIDC_STUDY);

    let got = wait_received(&out, 2, &server);
    assert_eq!(
        routed_as_stored(&server, LIDC_STUDY, &got),
        [ENCAPSULATED_PDF, BASIC_TEXT_SR],
        "the report's Encapsulated PDF and Basic Text SR"
    );
    assert!(
        queue_json(&server.data, &[])["entries"] == json!([]),
        "all sent"
    );
}

/// `kill -9` between ingest and routing loses no routing: with the peer down, CT arrives
/// over STOW-RS and the report is signed; the server is killed at once. Its outbox lists
/// every object; once the peer is up and the server restarted, they all arrive.
#[test]
fn qr_route_kill9_between_ingest_and_routing() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = route_config(tmp.path(), port, &["CT", "DOC", "SR"]);
    let dir = tmp.path().join("d");
    let args = ["--config", cfg.to_str().unwrap()];
    let mut server = Server::start_in(&dir, &args);
    let files = lidc_files(&data)[..3].to_vec();
    assert_eq!(stow(&server, &files), 200, "{}", server.log());
    sign(&server, LIDC_STUDY);
    server.kill9();

    let q = queue_json(&dir, &[]);
    let mut origins: Vec<&str> = q["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["origin"].as_str()).collect())
        .unwrap_or_default();
    origins.sort();
    assert_eq!(
        origins,
        ["report", "report", "stow-rs", "stow-rs", "stow-rs"],
        "{q}"
    );
    assert_eq!(q["destinations"][0]["pending"], json!(5), "{q}");

    let out = tmp.path().join("received");
    let _scp = storescp(port, &out);
    let server = Server::start_in(&dir, &args);
    let got = wait_received(&out, 5, &server);
    let want: BTreeMap<String, Vec<u8>> = files.iter().filter_map(|p| uid_and_dataset(p)).collect();
    for (uid, dataset) in &want {
        assert_eq!(got.get(uid), Some(dataset), "{uid} arrived as sent");
    }
    let mut classes = routed_as_stored(&server, LIDC_STUDY, &got);
    classes.retain(|c| c != "1.2.840.10008.5.1.4.1.1.2");
    assert_eq!(classes, [ENCAPSULATED_PDF, BASIC_TEXT_SR]);
    assert!(queue_json(&dir, &[])["entries"] == json!([]), "all sent");
}

/// `lumen import` and `lumen retrieve --get --data` route by the configuration's rules:
/// their instances are queued in the archive's outbox (beside no server) and sent once
/// `lumen serve` runs on the data directory.
#[test]
fn qr_route_import_and_retrieve_are_queued() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let all = lidc_files(&data);
    // The node retrieved from: another Lumen that knows us as a peer.
    let source = Server::start_in(&tmp.path().join("src"), &["--peer", "QRSCU=127.0.0.1:104"]);
    storescu(&source, "CTSCANNER", &all[..3]);

    let port = free_port();
    let cfg = route_config(tmp.path(), port, &["CT"]);
    let dir = tmp.path().join("d");
    let mut import = Command::new(lumen_bin());
    import
        .args(["import", "--config", cfg.to_str().unwrap(), "--data"])
        .arg(&dir)
        .args(&all[3..5]);
    let o = run(&mut import);
    assert!(o.status.success(), "lumen import: {}", s(&o));
    assert!(s(&o).contains("queued for routing: 2"), "{}", s(&o));
    let o = run(Command::new(lumen_bin())
        .args(["retrieve", "--from"])
        .arg(format!("LUMEN@127.0.0.1:{}", source.dicom_port))
        .args(["--aet", "QRSCU", "--study", LIDC_STUDY, "--get", "--data"])
        .arg(&dir)
        .args(["--config", cfg.to_str().unwrap()]));
    assert!(o.status.success(), "lumen retrieve: {}", s(&o));
    assert!(
        s(&o).contains("3 instance(s) queued for routing"),
        "{}",
        s(&o)
    );
    // Importing without the rules queues nothing more.
    let o = run(Command::new(lumen_bin())
        .args(["import", "--data"])
        .arg(&dir)
        .args(&all[5..6]));
    assert!(o.status.success(), "lumen import: {}", s(&o));
    assert!(!s(&o).contains("queued for routing"), "{}", s(&o));

    let q = queue_json(&dir, &[]);
    let mut origins: Vec<&str> = q["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["origin"].as_str()).collect())
        .unwrap_or_default();
    origins.sort();
    assert_eq!(
        origins,
        ["import", "import", "retrieve", "retrieve", "retrieve"],
        "{q}"
    );

    let out = tmp.path().join("received");
    let _scp = storescp(port, &out);
    let server = Server::start_in(&dir, &["--config", cfg.to_str().unwrap()]);
    let got = wait_received(&out, 5, &server);
    let want: BTreeMap<String, Vec<u8>> =
        all[..5].iter().filter_map(|p| uid_and_dataset(p)).collect();
    assert_eq!(got, want);
}
