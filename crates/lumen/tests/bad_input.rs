//! Bad input over STOW-RS and QIDO-RS: clear 4xx answers with reasons, nothing partial
//! stored, and the server keeps serving.

mod util;

use serde_json::Value;
use util::*;

fn stow(server: &Server, parts: &[(&str, Vec<u8>)], path: &str) -> (u16, Value) {
    let boundary = "lumen-test-boundary-7d2f";
    let mut body = Vec::new();
    for (ct, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    post(
        server,
        path,
        &format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        body,
    )
}

fn post(server: &Server, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("{}{path}", server.http()))
        .header("Authorization", &server.tech_auth())
        .header("Content-Type", content_type)
        .send(&body[..])
        .expect("request sent");
    let status = r.status().as_u16();
    let v = r.body_mut().read_json().unwrap_or(Value::Null);
    (status, v)
}

fn failure_reasons(v: &Value) -> Vec<u64> {
    v["00081198"]["Value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["00081197"]["Value"][0].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn broken_files_are_refused_with_reasons() {
    let Some(data) = shared_data() else { return };
    let pyd = data.join("dicom-samples/pydicom-3.0.2-test-files");
    let read = |n: &str| std::fs::read(pyd.join(n)).expect("sample");
    let server = Server::start();

    // Truncated, no meta, missing transfer syntax, non-DICOM bytes: each refused.
    for name in [
        "MR_truncated.dcm",
        "rtplan_truncated.dcm",
        "no_meta.dcm",
        "meta_missing_tsyntax.dcm",
        "ExplVR_LitEndNoMeta.dcm",
        "crayons.icc",
    ] {
        let (status, v) = stow(
            &server,
            &[("application/dicom", read(name))],
            "/dicom-web/studies",
        );
        assert_eq!(status, 409, "{name}: {v}");
        assert_eq!(failure_reasons(&v), vec![0xC000], "{name}: {v}");
        let comment = v["00081198"]["Value"][0]["00000902"]["Value"][0]
            .as_str()
            .unwrap_or("");
        assert!(!comment.is_empty(), "{name}: a reason is given");
    }
    // A good and a bad instance in one request: 202, one stored, one failed.
    let good = read("CT_small.dcm");
    let (status, v) = stow(
        &server,
        &[
            ("application/dicom", good.clone()),
            ("application/dicom", read("MR_truncated.dcm")),
        ],
        "/dicom-web/studies",
    );
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["00081199"]["Value"].as_array().map(Vec::len), Some(1));
    assert_eq!(failure_reasons(&v), vec![0xC000]);

    // Identical re-send succeeds; same UID with different content is refused as duplicate.
    let (status, _) = stow(
        &server,
        &[("application/dicom", good.clone())],
        "/dicom-web/studies",
    );
    assert_eq!(status, 200);
    let mut changed = good.clone();
    let n = changed.len();
    changed[n - 1] ^= 0x55; // last pixel byte
    let (status, v) = stow(
        &server,
        &[("application/dicom", changed)],
        "/dicom-web/studies",
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(failure_reasons(&v), vec![0x0111]);

    // Unknown SOP class (a DICOMDIR is not a storage object).
    let dicomdir = std::fs::read(pyd.join("dicomdirtests/DICOMDIR")).expect("dicomdir");
    let (status, v) = stow(
        &server,
        &[("application/dicom", dicomdir)],
        "/dicom-web/studies",
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(failure_reasons(&v), vec![0x0122], "{v}");

    // Wrong media types and malformed bodies.
    let (status, _) = post(
        &server,
        "/dicom-web/studies",
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(status, 415);
    let (status, _) = post(
        &server,
        "/dicom-web/studies",
        "multipart/related; type=\"application/dicom\"; boundary=x",
        b"garbage".to_vec(),
    );
    assert!(status == 400 || status == 409, "status {status}");

    // Only the one good instance is stored, with no partial files.
    let studies = server.get_json("/dicom-web/studies");
    assert_eq!(studies.as_array().map(Vec::len), Some(1));
    assert_eq!(object_files(&server.data), (1, 0));
}

/// POSTs with a raw socket: the server may answer and close before the body is all sent,
/// which HTTP clients report as a broken pipe instead of the answer.
fn raw_post(server: &Server, framing: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    let head = format!(
        "POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: multipart/related; type=\"application/dicom\"; boundary=b\r\n{framing}\r\n\r\n",
        server.tech_auth()
    );
    sock.write_all(head.as_bytes()).expect("headers");
    let _ = sock.write_all(body);
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn oversized_request_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "max_request_bytes = 100000\nmax_object_bytes = 50000\n",
    )
    .expect("cfg");
    let server = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().expect("utf8")],
    );
    // Declared too large: refused before reading the body.
    let body = vec![0u8; 200_000];
    let answer = raw_post(&server, &format!("Content-Length: {}", body.len()), &body);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limit"), "{answer}");
    // Chunked, no length: the streaming limit stops it.
    let mut chunked = Vec::new();
    let mut part = b"--b\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    part.extend(vec![0u8; 150_000]);
    for c in part.chunks(8192) {
        chunked.extend(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend(c);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let answer = raw_post(&server, "Transfer-Encoding: chunked", &chunked);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(object_files(&server.data), (0, 0));
    assert_eq!(server.get_raw("/health", None).0, 200);
}

#[test]
fn malformed_queries_get_400_with_reason() {
    let server = Server::start();
    for (q, needle) in [
        ("/dicom-web/studies?NoSuchAttribute=1", "unknown attribute"),
        ("/dicom-web/studies?StudyDate=2024-13", "StudyDate"),
        ("/dicom-web/studies?limit=abc", "limit"),
        ("/dicom-web/studies?includefield=Bogus", "Bogus"),
        ("/dicom-web/studies?SOPInstanceUID=1.2", "cannot be matched"),
        ("/dicom-web/studies?fuzzymatching=maybe", "fuzzymatching"),
        ("/dicom-web/studies/not-a-uid/series", "StudyInstanceUID"),
    ] {
        let (status, _, body) = server.get_raw(q, None);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{q}: {text}");
        assert!(text.contains(needle), "{q}: {text}");
    }
    let (status, _, _) = server.get_raw("/dicom-web/studies", Some("application/dicom+xml"));
    assert_eq!(status, 406);
    let (status, _, _) = server.get_raw("/dicom-web/studies/1.2.3", None);
    assert_eq!(status, 404);
    assert_eq!(server.get_raw("/health", None).0, 200);
}

#[test]
fn a_worker_on_postgresql_without_a_bucket_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("worker.toml");
    std::fs::write(
        &cfg,
        "database = \"postgres://lumen:pw@127.0.0.1:1/lumen\"\n",
    )
    .expect("cfg");
    let out = std::process::Command::new(lumen_bin())
        .args(["worker", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(tmp.path().join("data"))
        .output()
        .expect("run lumen worker");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("[storage] kind = \"s3\""), "{err}");
    assert!(!err.contains("pw@"), "{err}");
}
