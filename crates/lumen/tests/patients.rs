//! The consortium patient index between two real `lumen serve` nodes (issue 13): clinic A
//! shares two studies of a patient with hospital B, where the same person has studies of
//! their own under B's patient ID. B's `[consortium] patient_match = "demographics"` links
//! B's patient whose name, birth date and sex are identical, and only that one; a user
//! links another explicitly. B's radiologist then finds every prior of the patient, its
//! own and those shared by A, each from its own grant; the links are on B's ledger. In
//! Chromium, B's study page shows who shared the study, what arrived and the priors, and,
//! once A is down, that A does not answer.
//! LIDC-IDRI-0001 slices are rewritten with DCMTK's dcmodify into the studies needed.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use util::browser::Browser;
use util::*;

/// Copies `files` into `dir` and rewrites them into one study of `patient` (ID, name,
/// birth date, sex) with the given study UID: new series and instance UIDs.
fn make_study(
    files: &[PathBuf],
    dir: &Path,
    study_uid: &str,
    patient: (&str, &str, &str, &str),
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("dir");
    let copies: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = dir.join(format!("{i}.dcm"));
            std::fs::copy(f, &p).expect("copy");
            p
        })
        .collect();
    let (id, name, birth, sex) = patient;
    let out = run(Command::new("dcmodify")
        .args(["-nb", "-gin"])
        .args(["-m", &format!("(0010,0020)={id}")])
        .args(["-m", &format!("(0010,0010)={name}")])
        .args(["-i", &format!("(0010,0030)={birth}")])
        .args(["-i", &format!("(0010,0040)={sex}")])
        .args(["-m", &format!("(0020,000D)={study_uid}")])
        .args(["-m", &format!("(0020,000E)={study_uid}.1")])
        .args(&copies));
    assert!(
        out.status.success(),
        "dcmodify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    copies
}

fn store(files: &[PathBuf], port: u16) {
    let st = run(Command::new("storescu")
        .args(["-aec", "LUMEN", "127.0.0.1", &port.to_string()])
        .args(files));
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// The study UIDs of `study`'s priors at `base`.
/// `study`'s priors at `base` (study UID, member it was shared by); `None` while the study
/// is not there.
fn try_priors(base: &str, token: &str, study: &str) -> Option<Vec<(String, Option<String>)>> {
    let (s, v) = call(
        "GET",
        &format!("{base}/api/studies/{study}/priors"),
        Some(token),
        None,
    );
    if s == 404 {
        return None;
    }
    assert_eq!(s, 200, "{v}");
    Some(
        v["priors"]
            .as_array()
            .expect("priors")
            .iter()
            .map(|p| {
                (
                    p["study_uid"].as_str().unwrap_or("").to_string(),
                    p["shared_from"].as_str().map(str::to_string),
                )
            })
            .collect(),
    )
}

fn priors(base: &str, token: &str, study: &str) -> Vec<(String, Option<String>)> {
    try_priors(base, token, study).unwrap_or_else(|| panic!("{study} absent at {base}"))
}

#[test]
fn priors_across_members_through_the_consortium_patient_index() {
    let Some(shared) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("dcmodify") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let lidc = lidc_files(&shared);
    let root = "1.2.826.0.1.3680043.8.498.77";
    let (a_now, a_old, b_own, b_other) = (
        format!("{root}.1"),
        format!("{root}.2"),
        format!("{root}.3"),
        format!("{root}.4"),
    );
    let person = ("A-12345", "Wang^Fang", "19580312", "F");
    let a_files = make_study(&lidc[..3], &tmp.path().join("a-now"), &a_now, person);
    let a_old_files = make_study(&lidc[3..5], &tmp.path().join("a-old"), &a_old, person);
    // At B the same person is B-0042; B-0099 shares the name, not the birth date.
    let b_files = make_study(
        &lidc[5..7],
        &tmp.path().join("b-own"),
        &b_own,
        ("B-0042", "WANG^FANG", "19580312", "F"),
    );
    let b_other_files = make_study(
        &lidc[7..9],
        &tmp.path().join("b-other"),
        &b_other,
        ("B-0099", "Wang^Fang", "19611105", "F"),
    );

    let ids = ["clinic-a", "hospital-b"];
    let data: Vec<_> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let base_cfg = |i: usize| {
        format!(
            "[node]\nid = \"{}\"\nname = \"{}\"\n[ledger]\norigin = \"lumen.local/{}\"\n\
             [ai]\nenabled = false\n",
            ids[i], ids[i], ids[i]
        )
    };
    let cfg_path = |i: usize| tmp.path().join(format!("cfg-{i}.toml"));
    let nodes: Vec<_> = (0..2)
        .map(|i| (data[i].as_path(), ids[i], ids[i], url(i), base_cfg(i)))
        .collect();
    let members = consortium_members(tmp.path(), &nodes);
    for i in 0..2 {
        let rule = if i == 1 {
            "patient_match = \"demographics\"\n"
        } else {
            ""
        };
        std::fs::write(
            cfg_path(i),
            format!("{}[consortium]\n{rule}{members}", base_cfg(i)),
        )
        .expect("config");
    }
    let start = |i: usize| {
        let cfg = cfg_path(i).to_string_lossy().into_owned();
        Server::start_on(
            &data[i],
            ports[2 * i],
            ports[2 * i + 1],
            &["--config", &cfg],
        )
    };
    let mut a = start(0);
    let b = start(1);
    let (base_a, base_b) = (url(0), url(1));
    store(&[a_files, a_old_files].concat(), a.dicom_port);
    store(&[b_files, b_other_files].concat(), b.dicom_port);

    // Without sharing, B's priors are B's own studies under the same patient ID: none.
    assert!(priors(&base_b, &b.token, &b_own).is_empty());

    // A shares the current study with B; once it is there, B's patient B-0042 (identical
    // name, birth date and sex) is linked by the rule and is the only prior.
    let share = |study: &str| {
        let (s, v) = call(
            "POST",
            &format!("{base_a}/api/shares"),
            Some(&a.token),
            Some(json!({"study_uid": study, "to": "hospital-b",
                        "purpose": "comparison with priors", "consent": true})),
        );
        assert_eq!(s, 201, "{v}");
    };
    share(&a_now);
    let got = poll(60, "B's own prior linked by the rule", || {
        try_priors(&base_b, &b.token, &a_now).filter(|p| !p.is_empty())
    });
    assert_eq!(got, vec![(b_own.clone(), None)], "B-0099 is not linked");
    // And the other way round: A's study is a prior of B's own, from clinic A.
    assert_eq!(
        priors(&base_b, &b.token, &b_own),
        vec![(a_now.clone(), Some("clinic-a".to_string()))]
    );

    // A's older study of the patient, shared on its own grant, joins the priors at B.
    share(&a_old);
    let got = poll(60, "A's older study among B's priors", || {
        let p = priors(&base_b, &b.token, &a_now);
        (p.len() == 2).then_some(p)
    });
    assert!(
        got.contains(&(a_old.clone(), Some("clinic-a".to_string()))),
        "{got:?}"
    );

    // A user links B-0099 explicitly (the rule did not): its study joins the priors.
    let (s, v) = call(
        "POST",
        &format!("{base_b}/api/studies/{a_now}/consortium-patient"),
        Some(&b.token),
        Some(json!({"patient_id": "B-0099"})),
    );
    assert_eq!(s, 200, "{v}");
    let cid = v["consortium_id"]
        .as_str()
        .expect("consortium id")
        .to_string();
    assert!(cid.starts_with("cpi-"), "{cid}");
    let got = priors(&base_b, &b.token, &a_now);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().any(|(u, _)| *u == b_other));
    // An unknown patient is refused, and so is relinking to another consortium patient.
    let (s, _) = call(
        "POST",
        &format!("{base_b}/api/studies/{a_now}/consortium-patient"),
        Some(&b.token),
        Some(json!({"patient_id": "NOBODY-1"})),
    );
    assert_eq!(s, 404);

    // The patient's consortium ID is a pseudonym: A's patient ID is not in it, and A
    // knows the patient by the same one.
    assert!(!cid.contains("A-12345"));
    let (s, v) = call(
        "GET",
        &format!("{base_a}/api/studies/{a_now}/priors"),
        Some(&a.token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["priors"][0]["study_uid"],
        a_old.as_str(),
        "A's own prior: {v}"
    );

    // The links are on B's ledger.
    let kinds = poll(20, "patient links on B's ledger", || {
        let (s, v) = call(
            "GET",
            &format!("{base_b}/ledger/checkpoint"),
            Some(&b.token),
            None,
        );
        let size: u64 = v
            .as_str()
            .and_then(|t| t.lines().nth(1))
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if s != 200 || size == 0 {
            return None;
        }
        let kinds: Vec<String> = (0..size)
            .map(|i| {
                let (_, v) = call(
                    "GET",
                    &format!("{base_b}/api/ledger/entries/{i}/proof"),
                    Some(&b.token),
                    None,
                );
                v["entry"]
                    .as_str()
                    .and_then(|e| e.split(' ').nth(1))
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        (kinds.iter().filter(|k| *k == "patient.linked").count() >= 3).then_some(kinds)
    });
    eprintln!("B's ledger: {kinds:?}");

    // What B has of A's study, and whether A answers.
    let shared = |study: &str| {
        let (s, v) = call(
            "GET",
            &format!("{base_b}/api/studies/{study}/shared"),
            Some(&b.token),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v["shared"].clone()
    };
    let st = shared(&a_now);
    assert_eq!(st["origin_name"], "clinic-a", "{st}");
    assert_eq!(
        (st["expected"].as_i64(), st["received"].as_i64()),
        (Some(3), Some(3)),
        "{st}"
    );
    assert_eq!(st["missing"], 0);
    assert_eq!(st["origin_reachable"], true, "{st}");
    assert!(shared(&b_own).is_null(), "B's own study is not shared");

    // B's radiologist sees it under the study header in the web app: who shared the study
    // and what of it arrived, and the patient's priors, each linked to its study.
    let browser = (have_tool("chromium") && have_tool("chromedriver"))
        .then(|| tokio::runtime::Runtime::new().expect("runtime"));
    let open_study = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let br = Browser::start("en", "patients").await;
            br.login(&b, TEST_USERS[0].0, TEST_USERS[0].2).await;
            br.c()
                .goto(&format!("{base_b}/#/study/{a_now}"))
                .await
                .expect("open the study");
            br
        })
    };
    if let Some(rt) = &browser {
        let br = open_study(rt);
        let (status, links) = rt.block_on(async {
            let status = br
                .wait_js(
                    "const s = document.querySelector('.study-notes .shared-status');
                     return s ? s.textContent : null",
                    "the shared-study note",
                )
                .await;
            let links = br
                .wait_js(
                    "const p = document.querySelector('.study-notes .priors');
                     return p ? [...p.querySelectorAll('a')].map(a =>
                       [decodeURIComponent(a.getAttribute('href')), a.title]) : null",
                    "the priors",
                )
                .await;
            br.screenshot("b-study-notes.png").await;
            (status, links)
        });
        let status = status.as_str().unwrap_or_default().to_string();
        assert!(
            status.contains("Shared by clinic-a") && status.contains("3 of 3 instances"),
            "{status}"
        );
        let links: Vec<(String, String)> = serde_json::from_value(links).expect("priors links");
        let href = |uid: &str| format!("#/study/{uid}");
        for (uid, title) in [
            (&b_own, "this hospital"),
            (&a_old, "clinic-a"),
            (&b_other, "this hospital"),
        ] {
            assert!(
                links
                    .iter()
                    .any(|(h, t)| *h == href(uid) && t.to_lowercase().contains(title)),
                "{uid} ({title}) not among {links:?}"
            );
        }
        rt.block_on(br.close());
    }

    // A goes down while B reads: B keeps serving what it has, and says that A does not
    // answer once the re-checks go unanswered.
    a.kill9();
    let (s, v) = call(
        "GET",
        &format!("{base_b}/dicom-web/studies/{a_now}/metadata"),
        Some(&b.token),
        None,
    );
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(3)));
    let st = poll(90, "B saying that A does not answer", || {
        let st = shared(&a_now);
        (st["origin_reachable"] == false).then_some(st)
    });
    assert_eq!(st["received"], 3, "{st}");
    // ...and the study page says so too.
    if let Some(rt) = &browser {
        let br = open_study(rt);
        let warn = rt.block_on(async {
            let w = br
                .wait_js(
                    "const s = document.querySelector('.study-notes .shared-status.warn');
                     return s ? s.textContent : null",
                    "the warning that the origin does not answer",
                )
                .await;
            br.screenshot("b-origin-down.png").await;
            br.close().await;
            w
        });
        assert!(
            warn.as_str()
                .is_some_and(|w| w.contains("clinic-a has not answered since")),
            "{warn}"
        );
    }
}
