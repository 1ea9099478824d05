//! The radiologist's web app API end to end on the real `lumen serve`: LIDC-IDRI-0001 arrives
//! over DICOM, the AI reads it; then over HTTP: the worklist, the review (accept, correct with
//! redrawn axes, add a missed nodule), the report draft in English and Chinese, edit, sign,
//! the refusal to change a signed report, an addendum, the PDF's text, the Encapsulated PDF
//! and Basic Text SR in the study over QIDO-RS and WADO-RS, and the SEG overlay.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

const LIDC_STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends `body` (JSON, or nothing) with `method`; returns status and JSON answer.
fn send(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", server.http());
    let a = agent();
    let r = match (method, body) {
        ("POST", Some(b)) => a
            .post(&url)
            .header("Authorization", &server.auth())
            .send_json(&b),
        ("POST", None) => a
            .post(&url)
            .header("Authorization", &server.auth())
            .send_empty(),
        ("PUT", Some(b)) => a
            .put(&url)
            .header("Authorization", &server.auth())
            .send_json(&b),
        _ => panic!("unsupported request"),
    };
    let mut r = r.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let v = r.body_mut().read_json().unwrap_or(Value::Null);
    (status, v)
}

fn ok(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, v) = send(server, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {v}");
    v
}

fn dist(a: &Value, b: [f64; 3]) -> f64 {
    let a: Vec<f64> = a
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if a.len() != 3 {
        return f64::INFINITY;
    }
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn pdftotext(pdf: &[u8]) -> Option<String> {
    if !have_tool("pdftotext") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("report.pdf");
    std::fs::write(&p, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&p)
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(out.status.success(), "pdftotext failed");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn review_report_and_sign_lidc_over_http() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "[ai]\nquiet_period_secs = 1.0\n[web]\ninstitution = \"Lumen Test Hospital\"\n",
    )
    .unwrap();
    let server = Server::start_in(
        &tmp.path().join("data"),
        &["--config", &cfg.to_string_lossy()],
    );
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &server.dicom_port.to_string()])
        .args(lidc_files(&data)));
    assert!(st.status.success());

    // Before the AI has read it, the worklist shows the study queued or running.
    let wl = server.get_json("/api/worklist?q=lidc-idri");
    assert_eq!(wl["total"], 1, "{wl}");
    assert_eq!(wl["items"][0]["report_status"], "unread");

    let deadline = Instant::now() + Duration::from_secs(400);
    loop {
        let v = server.get_json(&format!("/api/studies/{LIDC_STUDY}/ai"));
        let state = v["series"][0]["state"].as_str().unwrap_or("").to_string();
        if state == "done" {
            break;
        }
        assert!(
            state != "failed" && state != "skipped",
            "AI ended as {state}: {v}"
        );
        assert!(
            Instant::now() < deadline,
            "AI did not finish:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Worklist: AI done with a category; filters.
    let wl = server.get_json("/api/worklist?ai=done&modality=CT");
    assert_eq!(wl["total"], 1, "{wl}");
    let row = &wl["items"][0];
    assert_eq!(row["study_uid"], LIDC_STUDY);
    assert_eq!(row["patient_id"], "LIDC-IDRI-0001");
    assert_eq!(row["ai_status"], "done");
    assert!(row["modalities"].as_array().unwrap().contains(&json!("CT")));
    let ai_cat = row["lung_rads"].as_str().expect("lung_rads").to_string();
    assert!(["2", "3", "4A", "4B"].contains(&ai_cat.as_str()), "{row}");
    assert_eq!(server.get_json("/api/worklist?report=signed")["total"], 0);
    assert_eq!(server.get_json("/api/worklist?q=nobody")["total"], 0);
    assert_eq!(server.get_raw("/api/worklist?ai=maybe", None).0, 400);

    // Review: the LUNA16 nodule (world 56.21, 86.34, -115.87; 23.35 mm) is an AI finding.
    let rv = server.get_json(&format!("/api/studies/{LIDC_STUDY}/review"));
    assert_eq!(rv["ai_status"], "done");
    assert!(rv["citation"].as_str().unwrap().contains("LIDC-IDRI"));
    let findings = rv["findings"].as_array().expect("findings").clone();
    let nodule = findings
        .iter()
        .find(|f| dist(&f["ai"]["center_world"], [56.21, 86.34, -115.87]) < 23.35 / 2.0)
        .unwrap_or_else(|| panic!("LUNA16 nodule not among {findings:#?}"))
        .clone();
    assert_eq!(nodule["status"], "pending");
    assert_eq!(nodule["origin"], "ai");
    let id = nodule["id"].as_str().unwrap().to_string();
    let ai = nodule["ai"].clone();
    let sop = ai["sop_instance_uid"].as_str().expect("slice").to_string();
    // The AI's axes are drawn as lines as long as its measurements.
    let len = |l: &Value| {
        let p: Vec<Vec<f64>> = serde_json::from_value(l.clone()).unwrap();
        ((p[1][0] - p[0][0]).powi(2) + (p[1][1] - p[0][1]).powi(2) + (p[1][2] - p[0][2]).powi(2))
            .sqrt()
    };
    assert!((len(&ai["long_axis_line"]) - ai["long_axis_mm"].as_f64().unwrap()).abs() < 0.2);
    assert!((len(&ai["short_axis_line"]) - ai["short_axis_mm"].as_f64().unwrap()).abs() < 0.2);

    let base = format!("/api/studies/{LIDC_STUDY}");
    let f = ok(
        &server,
        "POST",
        &format!("{base}/findings/{id}/accept"),
        None,
    );
    assert_eq!(f["status"], "accepted");
    assert_eq!(f["edited_by"], "Dr Test");

    // Correct it: redraw the axes (20 mm and 16 mm through the centre).
    let c: Vec<f64> = serde_json::from_value(ai["center_world"].clone()).unwrap();
    let long = json!([[c[0] - 10.0, c[1], c[2]], [c[0] + 10.0, c[1], c[2]]]);
    let short = json!([[c[0], c[1] - 8.0, c[2]], [c[0], c[1] + 8.0, c[2]]]);
    let f = ok(
        &server,
        "PUT",
        &format!("{base}/findings/{id}"),
        Some(
            json!({ "type": "solid", "long_axis_line": long, "short_axis_line": short, "note": "redrawn" }),
        ),
    );
    assert_eq!(f["status"], "corrected");
    assert_eq!(f["current"]["long_axis_mm"], 20.0);
    assert_eq!(f["current"]["short_axis_mm"], 16.0);
    assert_eq!(f["current"]["mean_diameter_mm"], 18.0);
    assert_eq!(f["current"]["lung_rads"], "4B", "solid >= 15 mm");
    assert_eq!(
        f["ai"], ai,
        "the AI's original is kept beside the correction"
    );
    let (status, _) = send(
        &server,
        "PUT",
        &format!("{base}/findings/{id}"),
        Some(json!({ "long_axis_line": [[0, 0, 0], [0, 0, 0]] })),
    );
    assert_eq!(status, 400, "a zero-length axis is refused");

    // Part-solid: Lung-RADS grades the solid component (6 to < 8 mm: 4A); it cannot exceed
    // the nodule, and it goes away with the type.
    let f = ok(
        &server,
        "PUT",
        &format!("{base}/findings/{id}"),
        Some(json!({ "type": "part-solid", "solid_component_mm": 7.0 })),
    );
    assert_eq!(f["current"]["solid_component_mm"], 7.0);
    assert_eq!(f["current"]["lung_rads"], "4A", "part-solid, solid 7 mm");
    let (status, _) = send(
        &server,
        "PUT",
        &format!("{base}/findings/{id}"),
        Some(json!({ "solid_component_mm": 30.0 })),
    );
    assert_eq!(
        status, 400,
        "a solid component larger than the nodule is refused"
    );
    let f = ok(
        &server,
        "PUT",
        &format!("{base}/findings/{id}"),
        Some(json!({ "type": "solid" })),
    );
    assert_eq!(f["current"]["lung_rads"], "4B");
    assert!(f["current"].get("solid_component_mm").is_none());

    // Add a nodule the AI missed, on the same slice.
    let z = c[2];
    let added = ok(
        &server,
        "POST",
        &format!("{base}/findings"),
        Some(json!({
            "type": "solid", "sop_instance_uid": sop, "location": "LUL",
            "long_axis_line": [[-60.0, 40.0, z], [-54.0, 40.0, z]],
            "short_axis_line": [[-57.0, 38.0, z], [-57.0, 42.0, z]],
        })),
    );
    assert_eq!(added["id"], "dr-1");
    assert_eq!(added["origin"], "doctor");
    assert_eq!(added["status"], "added");
    assert_eq!(added["current"]["mean_diameter_mm"], 5.0);
    assert_eq!(added["current"]["lung_rads"], "2");
    assert_eq!(added["ai"], Value::Null);
    let rv = server.get_json(&format!("/api/studies/{LIDC_STUDY}/review"));
    assert_eq!(rv["lung_rads"], "4B");
    let wl = server.get_json("/api/worklist?report=draft");
    assert_eq!(wl["total"], 1);
    assert_eq!(wl["items"][0]["lung_rads"], "4B");

    // The draft, in English and in Chinese, describes the reviewed nodules.
    let en = server.get_json(&format!("{base}/report?lang=en"));
    assert_eq!(en["status"], "draft");
    assert_eq!(en["ai_draft"], true);
    let text = en["sections"]["findings"].as_str().unwrap();
    assert!(
        text.contains("20.0 x 16.0 mm (mean diameter 18.0 mm)"),
        "{en}"
    );
    assert!(text.contains("6.0 x 4.0 mm"), "{en}");
    assert!(
        en["sections"]["impression"]
            .as_str()
            .unwrap()
            .contains("Lung-RADS 4B")
    );
    assert!(
        en["sections"]["recommendation"]
            .as_str()
            .unwrap()
            .contains("Fleischner 2017")
    );
    let zh = server.get_json(&format!("{base}/report?lang=zh-CN"));
    assert_eq!(zh["lang"], "zh-CN");
    let text = zh["sections"]["findings"].as_str().unwrap();
    assert!(
        text.contains("结节 1") && text.contains("20.0 × 16.0 mm（平均径 18.0 mm）"),
        "{zh}"
    );
    assert!(text.contains("左肺上叶"), "{zh}");

    // Edit, sign; a signed report is final.
    let mut sections = en["sections"].clone();
    sections["impression"] = json!("The edited sentence 7731: suspicious right lung nodule.");
    let put = ok(
        &server,
        "PUT",
        &format!("{base}/report"),
        Some(json!({ "lang": "en", "sections": sections })),
    );
    assert_eq!(put["ai_draft"], false);
    assert_eq!(put["status"], "draft");
    assert_eq!(server.get_raw(&format!("{base}/report.pdf"), None).0, 404);
    let signed = ok(
        &server,
        "POST",
        &format!("{base}/report/sign"),
        Some(json!({ "lang": "en" })),
    );
    assert_eq!(signed["status"], "signed", "{signed}");
    assert_eq!(signed["signed_by"], "Dr Test");
    assert!(signed["signed_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        signed["sections"]["impression"]
            .as_str()
            .unwrap()
            .contains("7731")
    );
    let (status, v) = send(
        &server,
        "PUT",
        &format!("{base}/report"),
        Some(json!({ "lang": "en", "sections": sections })),
    );
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("addendum"));
    assert_eq!(
        send(
            &server,
            "POST",
            &format!("{base}/findings/{id}/reject"),
            None
        )
        .0,
        409
    );
    assert_eq!(
        send(
            &server,
            "POST",
            &format!("{base}/report/sign"),
            Some(json!({}))
        )
        .0,
        409
    );
    let wl = server.get_json("/api/worklist?report=signed");
    assert_eq!(wl["total"], 1);

    // An addendum with its own signature.
    let rep = ok(
        &server,
        "POST",
        &format!("{base}/report/addenda"),
        Some(json!({ "text": "Addendum 4412: compared with the outside CT, unchanged." })),
    );
    assert_eq!(rep["addenda"].as_array().unwrap().len(), 1);
    assert_eq!(rep["addenda"][0]["signed_by"], "Dr Test");
    assert_eq!(rep["status"], "signed");

    // The PDF of the latest version carries the edited sentence and the addendum.
    let (status, ct, pdf) = server.get_raw(&format!("{base}/report.pdf"), None);
    assert_eq!(status, 200);
    assert_eq!(ct, "application/pdf");
    assert!(pdf.starts_with(b"%PDF"));
    if let Some(text) = pdftotext(&pdf) {
        let flat = squash(&text);
        for want in [
            "Theeditedsentence7731",
            "Addendum4412",
            "SIGNEDbyDrTest",
            "LumenTestHospital",
            "LIDC-IDRI-0001",
            "20.0x16.0mm",
            "LIDC-IDRI(TheLungImageDatabaseConsortium",
        ] {
            assert!(flat.contains(want), "PDF lacks {want}:\n{text}");
        }
    }

    // Other PACS see the report: DOC and SR series in the study, retrievable over WADO-RS.
    let series = server.get_json(&format!("/dicom-web/studies/{LIDC_STUDY}/series"));
    let modality = |s: &Value| s["00080060"]["Value"][0].as_str().unwrap_or("").to_string();
    let uid = |s: &Value| s["0020000E"]["Value"][0].as_str().unwrap_or("").to_string();
    let docs: Vec<&Value> = series
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| modality(s) == "DOC")
        .collect();
    assert_eq!(docs.len(), 2, "report and addendum PDFs: {series}");
    let mut text_srs = 0;
    for s in series
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| modality(s) == "SR")
    {
        let inst = server.get_json(&format!(
            "/dicom-web/studies/{LIDC_STUDY}/series/{}/instances",
            uid(s)
        ));
        if inst[0]["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.88.11" {
            text_srs += 1;
        }
    }
    assert_eq!(text_srs, 2, "one Basic Text SR per signed version");
    for d in &docs {
        let inst = server.get_json(&format!(
            "/dicom-web/studies/{LIDC_STUDY}/series/{}/instances",
            uid(d)
        ));
        assert_eq!(
            inst[0]["00080016"]["Value"][0],
            "1.2.840.10008.5.1.4.1.1.104.1"
        );
        let sop = inst[0]["00080018"]["Value"][0].as_str().unwrap();
        let (status, ct, body) = server.get_raw(
            &format!(
                "/dicom-web/studies/{LIDC_STUDY}/series/{}/instances/{sop}",
                uid(d)
            ),
            Some("multipart/related; type=\"application/dicom\""),
        );
        assert_eq!(status, 200);
        let parts = multipart_parts(&ct, &body);
        assert_eq!(parts.len(), 1);
        assert!(
            parts[0].windows(4).any(|w| w == b"%PDF"),
            "the stored object holds the PDF"
        );
    }

    // The SEG overlay: runs of the nodule's segment on its centre slice.
    let ov = server.get_json(&format!("{base}/seg-overlay"));
    assert_eq!(ov["rows"], 512);
    let seg = ov["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["finding_id"] == json!(id))
        .unwrap_or_else(|| panic!("no segment for {id}: {}", ov["segments"]))
        .clone();
    assert_eq!(seg["kind"], "nodule");
    assert!(
        ov["segments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "lung")
    );
    let on_slice = ov["slices"][&sop]
        .as_array()
        .expect("centre slice in overlay");
    let runs = on_slice
        .iter()
        .find(|e| e["segment"] == seg["number"])
        .expect("nodule on its centre slice")["runs"]
        .as_array()
        .unwrap()
        .clone();
    assert!(runs.len() >= 2 && runs.len() % 2 == 0);
    let pixels: u64 = runs
        .iter()
        .skip(1)
        .step_by(2)
        .filter_map(Value::as_u64)
        .sum();
    // A ~20 mm nodule at ~0.7 mm pixels covers a few hundred pixels on its centre slice.
    assert!((50..5000).contains(&pixels), "{pixels} nodule pixels");
}
