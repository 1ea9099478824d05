//! End-to-end tests of the archive: a real `lumen serve` driven by clients nobody here
//! wrote (DCMTK, pynetdicom, dicomweb-client) and by plain HTTP.

mod util;

use std::process::Command;

use serde_json::Value;
use util::*;

fn first(v: &Value, key: &str) -> Value {
    v[key]["Value"][0].clone()
}

fn read_obj(p: &std::path::Path) -> dicom_object::DefaultDicomObject {
    dicom_object::open_file(p).expect("source file")
}

fn attr(obj: &dicom_object::DefaultDicomObject, tag: dicom_object::Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// DCMTK storescu sends the real LIDC-IDRI-0001 series; QIDO shows one study, one series,
/// 133 instances with the source's attributes; WADO returns the bytes sent; a lung-window
/// rendered frame is a valid 512x512 JPEG; a re-send stores nothing new.
#[test]
fn lidc_over_storescu_then_qido_wado_rendered() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("echoscu") {
        return;
    }
    use dicom_dictionary_std::tags;
    let files = lidc_files(&data);
    assert_eq!(files.len(), 133);
    let server = Server::start();
    let port = server.dicom_port.to_string();

    let echo = run(Command::new("echoscu").args(["-aec", "LUMEN", "127.0.0.1", &port]));
    assert!(
        echo.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&echo.stderr)
    );
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &port])
        .args(&files));
    assert!(
        st.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&st.stderr)
    );

    let src = read_obj(&files[0]);
    let studies = server.get_json("/dicom-web/studies");
    let studies = studies.as_array().expect("array");
    assert_eq!(studies.len(), 1);
    let s = &studies[0];
    assert_eq!(first(s, "0020000D"), attr(&src, tags::STUDY_INSTANCE_UID));
    assert_eq!(first(s, "00100020"), attr(&src, tags::PATIENT_ID));
    assert_eq!(first(s, "00080020"), attr(&src, tags::STUDY_DATE));
    assert_eq!(first(s, "00080050"), attr(&src, tags::ACCESSION_NUMBER));
    assert_eq!(first(s, "00201208"), 133);
    assert_eq!(first(s, "00201206"), 1);
    assert_eq!(first(s, "00080061"), "CT");
    let study_uid = attr(&src, tags::STUDY_INSTANCE_UID);
    let series_uid = attr(&src, tags::SERIES_INSTANCE_UID);

    let series = server.get_json(&format!("/dicom-web/studies/{study_uid}/series"));
    assert_eq!(series.as_array().map(Vec::len), Some(1));
    assert_eq!(first(&series[0], "0020000E"), series_uid.as_str());
    assert_eq!(first(&series[0], "00201209"), 133);
    assert_eq!(first(&series[0], "00080060"), "CT");
    let inst = server.get_json(&format!(
        "/dicom-web/studies/{study_uid}/series/{series_uid}/instances"
    ));
    assert_eq!(inst.as_array().map(Vec::len), Some(133));
    let all = server.get_json("/dicom-web/instances?PatientID=LIDC-IDRI-0001");
    assert_eq!(all.as_array().map(Vec::len), Some(133));

    // Byte-identical retrieval of every instance's data set.
    let (status, ct, body) = server.get_raw(
        &format!("/dicom-web/studies/{study_uid}/series/{series_uid}"),
        Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*"),
    );
    assert_eq!(status, 200);
    let parts = multipart_parts(&ct, &body);
    assert_eq!(parts.len(), 133);
    let mut sent: Vec<Vec<u8>> = files
        .iter()
        .map(|f| dataset_bytes(&std::fs::read(f).expect("read")).to_vec())
        .collect();
    let mut got: Vec<Vec<u8>> = parts.iter().map(|p| dataset_bytes(p).to_vec()).collect();
    sent.sort();
    got.sort();
    assert!(sent == got, "retrieved data sets differ from those sent");

    // Rendered lung-window frame.
    let sop = attr(&src, tags::SOP_INSTANCE_UID);
    let (status, ct, jpeg) = server.get_raw(
        &format!(
            "/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop}/frames/1/rendered?window=-600,1500,LINEAR"
        ),
        Some("image/jpeg"),
    );
    assert_eq!(status, 200);
    assert_eq!(ct, "image/jpeg");
    let mut dec = jpeg_decoder::Decoder::new(&jpeg[..]);
    let pixels = dec.decode().expect("valid JPEG");
    let info = dec.info().expect("jpeg info");
    assert_eq!((info.width, info.height), (512, 512));
    assert!(
        pixels.iter().any(|&p| p > 200) && pixels.iter().any(|&p| p < 30),
        "window applied"
    );

    // Re-sending the same series stores nothing new.
    let again = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &port])
        .args(&files[..10]));
    assert!(again.status.success());
    let s2 = server.get_json("/dicom-web/studies");
    assert_eq!(first(&s2[0], "00201208"), 133);
    assert_eq!(object_files(&server.data), (133, 0));
}

/// Several DCMTK associations at once all land.
#[test]
fn storescu_four_associations() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let files = lidc_files(&data);
    let server = Server::start();
    let port = server.dicom_port.to_string();
    let children: Vec<_> = files
        .chunks(files.len().div_ceil(4))
        .map(|chunk| {
            Command::new("storescu")
                .args(["-aec", "LUMEN", "127.0.0.1", &port])
                .args(chunk)
                .output()
        })
        .collect();
    for c in children {
        let o = c.expect("storescu runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let studies = server.get_json("/dicom-web/studies");
    assert_eq!(first(&studies[0], "00201208"), 133);
}

/// `lumen import` walks the folder, reports a summary, and a second import finds
/// everything already present; the imported series then serves like a sent one.
#[test]
fn import_lidc_folder() {
    let Some(data) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("archive");
    let out = run(lumen_for(&dir)
        .arg("import")
        .arg("--data")
        .arg(&dir)
        .arg(data.join("lidc-idri-0001/ct")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("133 stored, 0 already present"), "{text}");
    let again = run(lumen_for(&dir)
        .arg("import")
        .arg("--data")
        .arg(&dir)
        .arg(data.join("lidc-idri-0001/ct")));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("0 stored, 133 already present"), "{text}");

    // Rejections are reported with reasons and make the exit code non-zero.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(bad.join("notes.txt"), b"not an image").expect("write");
    std::fs::copy(
        data.join("dicom-samples/pydicom-3.0.2-test-files/MR_truncated.dcm"),
        bad.join("truncated.dcm"),
    )
    .expect("copy");
    let out = run(lumen_for(&dir)
        .arg("import")
        .arg("--data")
        .arg(&dir)
        .arg(&bad));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 rejected"), "{text}");
    assert!(text.contains("not a DICOM Part-10 object"), "{text}");

    let server = Server::start_in(&dir, &[]);
    let studies = server.get_json("/dicom-web/studies?PatientID=LIDC-IDRI-0001");
    assert_eq!(first(&studies[0], "00201208"), 133);
    assert_eq!(object_files(&dir), (133, 0));
}

/// pynetdicom and dicomweb-client against the running server (C-ECHO, C-STORE, STOW,
/// QIDO, WADO instance/metadata/frames/rendered).
#[test]
fn python_clients() {
    let Some(data) = shared_data() else { return };
    let Some(py) = python() else { return };
    let files: Vec<_> = lidc_files(&data).into_iter().take(20).collect();
    let server = Server::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients.py");
    let out = run(server
        .python(&py)
        .arg(script)
        .arg(server.dicomweb())
        .arg(server.dicom_port.to_string())
        .args(&files));
    assert!(
        out.status.success(),
        "clients.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["echo_status"], 0);
    assert_eq!(r["store_statuses"], serde_json::json!(vec![0; 10]));
    assert_eq!(r["stow_referenced"], 10);
    assert_eq!(r["stow_failed"], 0);
    assert_eq!(r["studies"], 1);
    assert_eq!(r["study_instances"], 20);
    assert_eq!(r["series"], 1);
    assert_eq!(r["instances"], 20);
    assert_eq!(r["limit2"], 2);
    assert_eq!(r["wildcard"], 1);
    assert_eq!(r["retrieved_pixels_equal"], true);
    assert_eq!(r["retrieved_sop"], true);
    assert_eq!(r["metadata_items"], 20);
    assert_eq!(r["metadata_has_bulk_uri"], true);
    assert_eq!(r["frame_bytes"], 512 * 512 * 2);
    assert_eq!(r["frame_equal"], true);
    assert_eq!(r["bulkdata_equal"], true);
    assert_eq!(r["rendered_jpeg"], true);
    assert_eq!(r["rendered_png"], true);
    assert_eq!(r["series_retrieved"], 20);
}
