//! Sharing between three real `lumen serve` nodes on loopback (issue 13): clinic A,
//! hospital B and clinic C, each with its own node key (the ledger's) and the same
//! consortium list. DCMTK's storescu sends a CT series to A; A shares it with B with the
//! patient's consent; B's radiologist finds it in the worklist (marked with the sending
//! clinic) and opens it; C, with no grant, gets nothing through any door (QIDO-RS, WADO-RS,
//! the worklist, node requests signed with its own key, or claiming to be another member, or
//! unsigned). B signs while A is down; the signed report reaches A once A is back (the
//! outbox retries) as an SR series in QIDO-RS, and A's worklist names the reading hospital.
//! B crashes before its outbox could send, and the report still arrives once both are up.
//! A revocation whose notice is lost still ends B's access through B's re-check of its grants.
//! A duplicate delivery stores nothing twice; refused node requests are audited. A revokes;
//! B's access ends within a minute and its copies are gone. A rule shares what a
//! consultation AE sends to A, and an emergency share is recorded as such. The three
//! ledgers verify and hold the share events.
//! Over HTTPS, members trust the consortium's private CA (`[consortium] ca`).

mod util;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::*;

/// CT_small.dcm of pydicom's test files (shared by rule).
const CT_SMALL: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

/// How many LIDC-IDRI-0001 slices A receives (two STOW-RS batches of 20 and 10 to B).
const SLICES: usize = 30;

fn agent() -> ureq::Agent {
    https_agent(None)
}

fn write_config(path: &Path, text: &str) -> String {
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    std::fs::write(path, text).expect("config");
    path.to_string_lossy().into_owned()
}

/// `lumen ledger key` (creates the key when the data directory has none).
/// The kinds of the published ledger entries of the node at `base`, once its checkpoint
/// holds at least `at_least` entries.
fn ledger_kinds(base: &str, at_least: u64) -> Vec<String> {
    let size = poll(20, "ledger checkpoint", || {
        let (s, v) = call("GET", &format!("{base}/ledger/checkpoint"), None, None);
        let text = v.as_str().unwrap_or("").to_string();
        let size: u64 = text
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        (s == 200 && size >= at_least).then_some(size)
    });
    (0..size)
        .map(|i| {
            let (s, v) = call(
                "GET",
                &format!("{base}/api/ledger/entries/{i}/proof"),
                None,
                None,
            );
            assert_eq!(s, 200, "{v}");
            let entry = v["entry"].as_str().unwrap_or("").to_string();
            entry.split(' ').nth(1).unwrap_or("").to_string()
        })
        .collect()
}

fn verify(data: &Path) {
    let out = run(Command::new(lumen_bin())
        .args(["ledger", "verify", "--data"])
        .arg(data));
    assert!(
        out.status.success(),
        "ledger of {}: {}{}",
        data.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node request signed with `data`'s node key as `keyid`, for `to`: status.
#[allow(clippy::too_many_arguments)]
fn node_request(
    data: &Path,
    keyid: &str,
    to: &str,
    method: &str,
    base: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> u16 {
    let skey = std::fs::read_to_string(data.join("ledger.key")).expect("node key");
    let signer = lumen_ledger::LogSigner::from_skey(&skey).expect("key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!(
        "{now}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let h = lumen_share::httpsig::sign(&signer, keyid, to, method, path, body, now, &nonce)
        .expect("sign");
    let url = format!("{base}{path}");
    let a = agent();
    let r = if method == "GET" {
        let mut b = a.get(&url);
        for (k, v) in h.pairs() {
            b = b.header(k, v);
        }
        b.call()
    } else {
        let mut b = a.post(&url).header("Content-Type", content_type);
        for (k, v) in h.pairs() {
            b = b.header(k, v);
        }
        b.send(body)
    };
    r.unwrap_or_else(|e| panic!("{url}: {e}")).status().as_u16()
}

fn study_instances(base: &str, token: &str, study: &str) -> Option<usize> {
    let (s, v) = call(
        "GET",
        &format!("{base}/dicom-web/studies/{study}/metadata"),
        Some(token),
        None,
    );
    (s == 200).then(|| v.as_array().map_or(0, Vec::len))
}

fn worklist_item(base: &str, token: &str, study: &str) -> Option<Value> {
    let (s, v) = call("GET", &format!("{base}/api/worklist"), Some(token), None);
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["study_uid"] == study).cloned())
}

/// Files under `dir` (recursively).
fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() { files_under(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn three_nodes_share_report_back_and_revoke() {
    let Some(shared) = shared_data() else { return };
    if !have_tool("storescu") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let names = ["a", "b", "c"];
    let ids = ["clinic-a", "hospital-b", "clinic-c"];
    let titles = ["Clinic A", "Hospital B", "Clinic C"];
    let data: Vec<_> = names.iter().map(|n| tmp.path().join(n)).collect();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let base_cfg = |i: usize| {
        format!(
            "[node]\nid = \"{}\"\nname = \"{}\"\n[web]\ninstitution = \"{}\"\n\
             [ledger]\norigin = \"lumen.local/{}\"\n[ai]\nenabled = false\n{}",
            ids[i],
            titles[i],
            titles[i],
            names[i],
            // C answers C-FIND from any AE: what it answers about A's study is then its index.
            if i == 2 {
                "[access]\nfind = \"any\"\n"
            } else {
                ""
            }
        )
    };
    // The node keys (`lumen ledger key` creates each), then one member list for all.
    let nodes: Vec<_> = (0..3)
        .map(|i| (data[i].as_path(), ids[i], titles[i], url(i), base_cfg(i)))
        .collect();
    let members = consortium_members(tmp.path(), &nodes);
    // A shares what its consultation AE sends with B, by rule.
    let rule = "[[share.rule]]\ncalling_ae = \"CONSULT_CT\"\nto = \"hospital-b\"\n\
                purpose = \"consultation\"\nconsent = \"recorded-at-registration\"\n";
    let cfgs: Vec<String> = (0..3)
        .map(|i| {
            write_config(
                &tmp.path().join(format!("cfg-{i}.toml")),
                &format!("{}{members}{}", base_cfg(i), if i == 0 { rule } else { "" }),
            )
        })
        .collect();
    let start = |i: usize| {
        Server::start_on(
            &data[i],
            ports[2 * i],
            ports[2 * i + 1],
            &["--config", &cfgs[i]],
        )
    };
    let mut a = start(0);
    let mut b = start(1);
    let c = start(2);
    let (base_a, base_b, base_c) = (url(0), url(1), url(2));

    // A CT series arrives at clinic A over DICOM.
    let files: Vec<_> = lidc_files(&shared).into_iter().take(SLICES).collect();
    let st = run(Command::new("storescu")
        .args(["-aet", "CLINIC_CT", "-aec", "LUMEN", "127.0.0.1"])
        .arg(a.dicom_port.to_string())
        .args(&files));
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (s, v) = call(
        "GET",
        &format!("{base_a}/dicom-web/studies"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let study = v[0]["0020000D"]["Value"][0]
        .as_str()
        .expect("study at A")
        .to_string();

    // Sharing needs the patient's consent (or an emergency) and a member.
    let shares = format!("{base_a}/api/shares");
    let (s, v) = call(
        "POST",
        &shares,
        Some(&a.token),
        Some(json!({"study_uid": study, "to": "hospital-b", "purpose": "second opinion"})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, _) = call(
        "POST",
        &shares,
        Some(&a.token),
        Some(json!({"study_uid": study, "to": "nowhere", "purpose": "x", "consent": true})),
    );
    assert_eq!(s, 400);
    let shared_at = Instant::now();
    let (s, v) = call(
        "POST",
        &shares,
        Some(&a.token),
        Some(json!({"study_uid": study, "to": "hospital-b",
                    "purpose": "second opinion on a nodule", "consent": true})),
    );
    assert_eq!(s, 201, "{v}");
    let share_id = v["id"].as_str().expect("share id").to_string();

    // B: the study is in the radiologist's worklist, marked with the sending clinic, and
    // opens; the first slices are there before the whole series.
    let first = poll(60, "shared study at B", || {
        study_instances(&base_b, &b.token, &study).filter(|n| *n > 0)
    });
    eprintln!(
        "first {first} instances at B after {:?}",
        shared_at.elapsed()
    );
    poll(60, "whole study at B", || {
        study_instances(&base_b, &b.token, &study).filter(|n| *n == SLICES)
    });
    let item = worklist_item(&base_b, &b.token, &study).expect("in B's worklist");
    assert_eq!(item["shared_from"], "Clinic A", "{item}");
    // A's share has nothing left to send.
    poll(30, "A's share fully sent", || {
        let (s, v) = call(
            "GET",
            &format!("{shares}?study={study}"),
            Some(&a.token),
            None,
        );
        (s == 200 && v["shares"][0]["pending"] == 0 && v["shares"][0]["failed"] == 0).then_some(())
    });
    let (s, _) = call(
        "GET",
        &format!("{base_b}/api/studies/{study}/review"),
        Some(&b.token),
        None,
    );
    assert_eq!(s, 200);

    // C (no grant) gets nothing: QIDO-RS, WADO-RS, the worklist.
    let (s, v) = call(
        "GET",
        &format!("{base_c}/dicom-web/studies"),
        Some(&c.token),
        None,
    );
    assert_eq!((s, v.as_array().map_or(0, Vec::len)), (200, 0), "{v}");
    assert_eq!(study_instances(&base_c, &c.token, &study), None);
    assert!(worklist_item(&base_c, &c.token, &study).is_none());
    // ... nor C-FIND.
    if have_tool("findscu") {
        let out = tmp.path().join("cfind-c");
        std::fs::create_dir_all(&out).expect("dir");
        let f = run(Command::new("findscu")
            .args(["-aet", "CLINIC_CT", "-aec", "LUMEN", "-S", "-X", "-od"])
            .arg(&out)
            .args(["-k", "QueryRetrieveLevel=STUDY"])
            .args(["-k", &format!("StudyInstanceUID={study}")])
            .arg("127.0.0.1")
            .arg(c.dicom_port.to_string()));
        assert!(
            f.status.success(),
            "findscu at C: {}",
            String::from_utf8_lossy(&f.stderr)
        );
        assert_eq!(files_under(&out), 0, "C-FIND at C found the study");
    }
    // ... nor A's share status with its own key, nor as B with its key, nor unsigned.
    let status_path = format!("/consortium/shares/{share_id}");
    assert_eq!(
        node_request(
            &data[2],
            "clinic-c",
            "clinic-a",
            "GET",
            &base_a,
            &status_path,
            b"",
            ""
        ),
        404
    );
    assert_eq!(
        node_request(
            &data[2],
            "hospital-b",
            "clinic-a",
            "GET",
            &base_a,
            &status_path,
            b"",
            ""
        ),
        401
    );
    let (s, _) = call("GET", &format!("{base_a}{status_path}"), None, None);
    assert_eq!(s, 401);
    // B itself may ask, once per signature: the same request again is a replay.
    let skey_b = std::fs::read_to_string(data[1].join("ledger.key")).expect("B's key");
    let signer_b = lumen_ledger::LogSigner::from_skey(&skey_b).expect("key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let h = lumen_share::httpsig::sign(
        &signer_b,
        "hospital-b",
        "clinic-a",
        "GET",
        &status_path,
        b"",
        now,
        "replayed-nonce",
    )
    .expect("sign");
    let send = || {
        let mut r = agent().get(&format!("{base_a}{status_path}"));
        for (k, v) in h.pairs() {
            r = r.header(k, v);
        }
        r.call().expect("status request").status().as_u16()
    };
    assert_eq!(send(), 200);
    assert_eq!(send(), 401); // A notice whose images have not come yet shows in B's worklist as arriving; A knows
    // no such share, so B's re-check ends the grant (checked at the end).
    const ANNOUNCED: &str = "1.2.826.0.1.3680043.2.1125.990001";
    let notice = json!({"share_id": "announced-only", "study_uid": ANNOUNCED,
                        "origin": "clinic-a", "to": "hospital-b", "purpose": "pre-read",
                        "consent": "consent", "instances": 3});
    let body = serde_json::to_vec(&notice).expect("json");
    assert_eq!(
        node_request(
            &data[0],
            "clinic-a",
            "hospital-b",
            "POST",
            &base_b,
            "/consortium/shares",
            &body,
            "application/json"
        ),
        204
    );
    let (s, v) = call(
        "GET",
        &format!("{base_b}/api/worklist"),
        Some(&b.token),
        None,
    );
    assert_eq!(s, 200);
    assert!(
        v["incoming"].as_array().is_some_and(|x| x
            .iter()
            .any(|g| g["study_uid"] == ANNOUNCED && g["from"] == "Clinic A")),
        "{v}"
    );

    // Nor read A's study through the consortium door, signed or not.
    let read = format!("/consortium/studies/{study}/metadata");
    assert_eq!(
        node_request(
            &data[2], "clinic-c", "clinic-a", "GET", &base_a, &read, b"", ""
        ),
        404
    );
    let (s, _) = call("GET", &format!("{base_a}{read}"), None, None);
    assert_eq!(s, 401);
    // C cannot push into B's copy, nor announce a share as A.
    // Nor take over B's copy by announcing a share of the same study in its own name.
    let own = json!({"share_id": "c-1", "study_uid": study, "origin": "clinic-c",
                     "to": "hospital-b", "purpose": "x", "consent": "consent", "instances": 1});
    let body = serde_json::to_vec(&own).expect("json");
    assert_eq!(
        node_request(
            &data[2],
            "clinic-c",
            "hospital-b",
            "POST",
            &base_b,
            "/consortium/shares",
            &body,
            "application/json"
        ),
        409
    );
    let bogus = json!({"share_id": "x", "study_uid": study, "origin": "clinic-a",
                       "to": "hospital-b", "purpose": "x", "consent": "consent", "instances": 0});
    let body = serde_json::to_vec(&bogus).expect("json");
    assert_eq!(
        node_request(
            &data[2],
            "clinic-a",
            "hospital-b",
            "POST",
            &base_b,
            "/consortium/shares",
            &body,
            "application/json"
        ),
        401
    );
    assert_eq!(
        node_request(
            &data[2],
            "clinic-c",
            "hospital-b",
            "POST",
            &base_b,
            &format!("/consortium/studies/{study}"),
            b"--x--\r\n",
            "multipart/related; type=\"application/dicom\"; boundary=x"
        ),
        404
    );

    // B signs while A is down: the report reaches A once A is back (within a minute).
    a.stop();
    let (s, v) = call(
        "POST",
        &format!("{base_b}/api/studies/{study}/report/sign"),
        Some(&b.token),
        Some(json!({"lang": "en"})),
    );
    assert_eq!(s, 200, "{v}");
    // B crashes before it could send; its outbox is in its index and survives.
    b.kill9();
    let b = start(1);
    std::thread::sleep(Duration::from_secs(2));
    let mut a = Server::start_on(&data[0], ports[0], ports[1], &["--config", &cfgs[0]]);
    let back = Instant::now();
    let sr_series = format!("{base_a}/dicom-web/studies/{study}/series?Modality=SR");
    poll(60, "B's SR at A", || {
        let (s, v) = call("GET", &sr_series, Some(&a.token), None);
        (s == 200 && v.as_array().is_some_and(|x| !x.is_empty())).then_some(())
    });
    eprintln!("report at A {:?} after A came back", back.elapsed());
    let item = poll(30, "A's worklist names B", || {
        worklist_item(&base_a, &a.token, &study).filter(|i| i["reported_by"] == "Hospital B")
    });
    assert_eq!(item["report_status"], "signed", "{item}");

    // A duplicate delivery stores nothing twice: the SR again, signed by B.
    let count = |base: &str, token: &str| study_instances(base, token, &study).unwrap_or(0);
    let before = count(&base_a, &a.token);
    let (s, v) = call("GET", &sr_series, Some(&a.token), None);
    assert_eq!(s, 200);
    let sr_uid = v[0]["0020000E"]["Value"][0]
        .as_str()
        .expect("sr series")
        .to_string();
    let (_, ct, sr_body) = a.get_raw(
        &format!("/dicom-web/studies/{study}/series/{sr_uid}"),
        Some("multipart/related; type=\"application/dicom\""),
    );
    let dup = node_request(
        &data[1],
        "hospital-b",
        "clinic-a",
        "POST",
        &base_a,
        &format!("/consortium/studies/{study}"),
        &sr_body,
        &ct,
    );
    assert_eq!(dup, 200);
    assert_eq!(count(&base_a, &a.token), before);
    // B may store its report into A's study, never images.
    let (s, v) = call(
        "GET",
        &format!("{base_a}/dicom-web/studies/{study}/series?Modality=CT"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200);
    let ct_uid = v[0]["0020000E"]["Value"][0]
        .as_str()
        .expect("ct series")
        .to_string();
    let (_, ct, ct_body) = a.get_raw(
        &format!("/dicom-web/studies/{study}/series/{ct_uid}"),
        Some("multipart/related; type=\"application/dicom\""),
    );
    let refused = node_request(
        &data[1],
        "hospital-b",
        "clinic-a",
        "POST",
        &base_a,
        &format!("/consortium/studies/{study}"),
        &ct_body,
        &ct,
    );
    assert_eq!(refused, 409);

    // The refused node requests are in A's audit trail (the reason there, not in the answer).
    let (s, v) = call(
        "GET",
        &format!("{base_a}/api/audit?user=node:unverified"),
        Some(&a.admin_token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let refused: Vec<&Value> = v.as_array().map(|x| x.iter().collect()).unwrap_or_default();
    assert!(
        refused.iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("bad signature"))),
        "{v}"
    );
    assert!(
        refused.iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("missing Signature"))),
        "{v}"
    );

    // Revocation: B's access ends within a minute, and its copies are gone.
    assert_eq!(
        study_instances(&base_b, &b.token, &study),
        Some(SLICES + 2),
        "B serves the study and its report until the revocation"
    );
    let (s, v) = call(
        "DELETE",
        &format!("{shares}/{share_id}?reason=consent-withdrawn"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "revoked");
    let revoked = Instant::now();
    poll(60, "B's access ends", || {
        study_instances(&base_b, &b.token, &study)
            .is_none()
            .then_some(())
    });
    eprintln!(
        "B's access ended {:?} after the revocation",
        revoked.elapsed()
    );
    assert!(worklist_item(&base_b, &b.token, &study).is_none());
    // The files go right after the index rows.
    poll(60, "B's copies removed", || {
        (files_under(&data[1].join("objects")) == 0).then_some(())
    });
    // A keeps its study.
    assert!(count(&base_a, &a.token) > SLICES);

    // A rule shares what the consultation AE sends to A; B gets it without a click.
    let ct_small = shared.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    let st = run(Command::new("storescu")
        .args(["-aet", "CONSULT_CT", "-aec", "LUMEN", "127.0.0.1"])
        .arg(a.dicom_port.to_string())
        .arg(&ct_small));
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    poll(60, "the study shared by rule at B", || {
        study_instances(&base_b, &b.token, CT_SMALL).filter(|n| *n == 1)
    });
    let item = worklist_item(&base_b, &b.token, CT_SMALL).expect("in B's worklist");
    assert_eq!(item["shared_from"], "Clinic A", "{item}");
    let (s, v) = call(
        "GET",
        &format!("{base_a}/api/shares?study={CT_SMALL}"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["shares"][0]["consent"], "recorded-at-registration", "{v}");
    let rule_share = v["shares"][0]["id"].as_str().expect("id").to_string();

    // The revocation notice is lost (A restarted with a wrong address for B, so nothing it
    // sends reaches B): B's re-check of its grants with A still ends B's access within a
    // minute.
    a.stop();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let lost = write_config(
        &tmp.path().join("cfg-a-lost.toml"),
        &std::fs::read_to_string(&cfgs[0]).expect("config").replace(
            &format!("url = \"{}\"", url(1)),
            &format!("url = \"{dead}\""),
        ),
    );
    let mut a = Server::start_on(&data[0], ports[0], ports[1], &["--config", &lost]);
    let (s, v) = call(
        "DELETE",
        &format!("{shares}/{rule_share}"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let revoked = Instant::now();
    poll(60, "B's access to the rule share ends", || {
        study_instances(&base_b, &b.token, CT_SMALL)
            .is_none()
            .then_some(())
    });
    eprintln!(
        "B's re-check ended its access {:?} after the revocation",
        revoked.elapsed()
    );

    // An emergency share of the same study (A reachable again): recorded as such, and B
    // holds the study again under the new grant.
    a.stop();
    let a = Server::start_on(&data[0], ports[0], ports[1], &["--config", &cfgs[0]]);
    let (s, v) = call(
        "POST",
        &shares,
        Some(&a.token),
        Some(json!({"study_uid": CT_SMALL, "to": "hospital-b",
                    "purpose": "emergency consultation", "emergency": true})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["consent"], "emergency", "{v}");
    poll(60, "the emergency share at B", || {
        study_instances(&base_b, &b.token, CT_SMALL).filter(|n| *n == 1)
    });

    // The announced-only share: A answers B's re-check with 404, and B ends the grant.
    poll(60, "B's re-check ends a grant A does not know", || {
        let (s, v) = call(
            "GET",
            &format!("{base_b}/api/worklist"),
            Some(&b.token),
            None,
        );
        (s == 200 && v["incoming"].as_array().is_some_and(Vec::is_empty)).then_some(())
    });

    // The three ledgers verify and hold the share events.
    // A: three shares (created, consent), the two report objects received, the first
    // revocation with the consent withdrawn, the second revocation, and the consortium
    // patient IDs assigned to the two patients shared.
    let kinds_a = ledger_kinds(&base_a, 13);
    let consents = kinds_a.iter().filter(|k| *k == "share.consent").count();
    assert_eq!(
        consents, 4,
        "three consents and one withdrawal: {kinds_a:?}"
    );
    assert_eq!(
        kinds_a.iter().filter(|k| *k == "patient.linked").count(),
        2,
        "{kinds_a:?}"
    );
    for k in [
        "share.created",
        "share.consent",
        "share.report-received",
        "share.revoked",
    ] {
        assert!(kinds_a.iter().any(|x| x == k), "A lacks {k}: {kinds_a:?}");
    }
    let kinds_b = ledger_kinds(&base_b, 4);
    for k in [
        "share.granted",
        "share.viewed",
        "report.signed",
        "share.revoked",
    ] {
        assert!(kinds_b.iter().any(|x| x == k), "B lacks {k}: {kinds_b:?}");
    }
    let kinds_c = ledger_kinds(&base_c, 0);
    assert!(kinds_c.is_empty(), "{kinds_c:?}");
    for d in &data {
        verify(d);
    }
}

/// A test CA and a server certificate for 127.0.0.1 (PEM files; key mode 0600): (ca,
/// cert, key).
fn pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    use std::os::unix::fs::PermissionsExt;
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Consortium test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
        .expect("CA certificate");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("signed");
    std::fs::create_dir_all(dir).expect("pki dir");
    let write = |name: &str, text: &str, mode: u32| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    (
        write("ca.pem", &issuer.pem(), 0o644),
        write("server.pem", &cert.pem(), 0o644),
        write("server.key", &key.serialize_pem(), 0o600),
    )
}

/// Two nodes serving HTTPS with certificates of the consortium's private CA (`[consortium]
/// ca`): the share reaches B and B's signed report reaches A, both ways over TLS.
#[test]
fn members_share_over_https_with_a_private_ca() {
    let Some(shared) = shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = pki(&tmp.path().join("pki"));
    let data = [tmp.path().join("a"), tmp.path().join("b")];
    let ids = ["clinic-a", "hospital-b"];
    let titles = ["Clinic A", "Hospital B"];
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let url = |i: usize| format!("https://127.0.0.1:{}", ports[2 * i]);
    let base_cfg = |i: usize| {
        format!(
            "[node]\nid = \"{}\"\nname = \"{}\"\n[ledger]\norigin = \"lumen.local/tls{i}\"\n\
             [ai]\nenabled = false\n[consortium]\nca = \"{}\"\n",
            ids[i],
            titles[i],
            ca.display()
        )
    };
    let nodes: Vec<_> = (0..2)
        .map(|i| (data[i].as_path(), ids[i], titles[i], url(i), base_cfg(i)))
        .collect();
    let members = consortium_members(tmp.path(), &nodes);
    // A shares every CT with B by rule, imports included (queued offline, sent once A runs).
    let rule = "[[share.rule]]\nmodality = \"CT\"\nto = \"hospital-b\"\n\
                purpose = \"import rule\"\nconsent = \"recorded-at-registration\"\n";
    let cfgs: Vec<String> = (0..2)
        .map(|i| {
            write_config(
                &tmp.path().join(format!("cfg-{i}.toml")),
                &format!("{}{members}{}", base_cfg(i), if i == 0 { rule } else { "" }),
            )
        })
        .collect();
    let ct = shared.join("dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    let out = run(Command::new(lumen_bin())
        .args(["import", "--data"])
        .arg(&data[0])
        .args(["--config", &cfgs[0]])
        .arg(&ct));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    let start = |i: usize| {
        Server::start_tls_on(
            &data[i],
            ports[2 * i],
            ports[2 * i + 1],
            &ca,
            &["--config", &cfgs[i], "--tls-cert", &cert, "--tls-key", &key],
        )
    };
    let (a, b) = (start(0), start(1));
    let agent = https_agent(Some(&ca));
    let send = |method: &str, url: &str, token: &str, body: Option<Value>| {
        let auth = format!("Bearer {token}");
        let mut r = match body {
            Some(b) => agent.post(url).header("Authorization", &auth).send_json(b),
            None if method == "GET" => agent.get(url).header("Authorization", &auth).call(),
            None => agent
                .post(url)
                .header("Authorization", &auth)
                .send_json(json!({})),
        }
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    // The import's rule share reaches B without anyone asking.
    poll(60, "the imported study at B by rule", || {
        let (s, v) = send(
            "GET",
            &format!("{}/dicom-web/studies/{CT_SMALL}/metadata", url(1)),
            &b.token,
            None,
        );
        (s == 200 && v.as_array().is_some_and(|x| x.len() == 1)).then_some(())
    });
    let (s, v) = send("GET", &format!("{}/api/shares", url(0)), &a.token, None);
    assert_eq!(s, 200);
    assert_eq!(v["shares"][0]["created_by"], "rule", "{v}");
    // A second share of the same study to the same member is taken too.
    let (s, v) = send(
        "POST",
        &format!("{}/api/shares", url(0)),
        &a.token,
        Some(
            json!({"study_uid": CT_SMALL, "to": "hospital-b", "purpose": "second opinion",
                    "consent": true}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    poll(60, "the study at B over HTTPS", || {
        let (s, v) = send(
            "GET",
            &format!("{}/dicom-web/studies/{CT_SMALL}/metadata", url(1)),
            &b.token,
            None,
        );
        (s == 200 && v.as_array().is_some_and(|x| x.len() == 1)).then_some(())
    });
    let (s, v) = send(
        "POST",
        &format!("{}/api/studies/{CT_SMALL}/report/sign", url(1)),
        &b.token,
        Some(json!({"lang": "en"})),
    );
    if s != 200 {
        eprintln!("B's log:\n{}", b.log());
    }
    assert_eq!(s, 200, "{v}");
    poll(60, "B's SR at A over HTTPS", || {
        let (s, v) = send(
            "GET",
            &format!("{}/dicom-web/studies/{CT_SMALL}/series?Modality=SR", url(0)),
            &a.token,
            None,
        );
        (s == 200 && v.as_array().is_some_and(|x| !x.is_empty())).then_some(())
    });
}
