//! Validates the audit messages of every action, outcome and channel against the DICOM Audit
//! Message Schema (PS3.15 A.5.1, `schema/audit-message.rng`) with `xmllint --relaxng`.
//!
//! Skips with a message when xmllint (Debian package libxml2-utils) is absent, unless
//! `LUMEN_REQUIRE_TOOLS=1`, which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use lumen_audit::{AuditSource, audit_message};
use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};

fn xmllint_available() -> bool {
    let found = Command::new("xmllint")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("xmllint not found and LUMEN_REQUIRE_TOOLS=1 (apt-get install libxml2-utils)");
        }
        eprintln!("skipping: xmllint not found (apt-get install libxml2-utils)");
    }
    found
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/audit-message.rng")
}

fn event(
    action: AuditAction,
    outcome: AuditOutcome,
    channel: AuditChannel,
    n: usize,
) -> AuditEvent {
    AuditEvent {
        seq: n as i64,
        time: "2026-12-02T17:03:04.123Z".into(),
        user: if channel == AuditChannel::Dicom {
            "ae:CT_SCANNER".into()
        } else {
            "dr-li <admin> & \"co\"".into()
        },
        role: if n.is_multiple_of(2) {
            "radiologist".into()
        } else {
            String::new()
        },
        org: if n.is_multiple_of(3) {
            String::new()
        } else {
            "org-1".into()
        },
        action,
        outcome,
        channel,
        source: match n % 3 {
            0 => Some("192.0.2.7".into()),
            1 => Some("workstation-3.example".into()),
            _ => None,
        },
        study_uid: (n % 4 != 3).then(|| "1.2.826.0.1.3680043.8.498.1".into()),
        series_uid: n
            .is_multiple_of(2)
            .then(|| "1.2.826.0.1.3680043.8.498.1.2".into()),
        patient_id: (n % 5 != 4).then(|| "P<42>&".into()),
        patient_name: (n % 7 != 6).then(|| "Doe^Jane 李雷 <b>&\u{0}\u{1b}\n\t\"'".into()),
        detail: match n % 3 {
            0 => "GET /dicom-web/studies?PatientName=Doe*&limit=10".into(),
            1 => "user dr-wang role admin\u{0}<x>".into(),
            _ => String::new(),
        },
    }
}

fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(schema())
        .args(files)
        .output()
        .expect("run xmllint");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}

#[test]
fn every_action_outcome_and_channel_validates() {
    if !xmllint_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = [
        AuditSource::new("LUMEN"),
        AuditSource {
            source_id: "LUMEN_PACS".into(),
            enterprise_site_id: Some("Hospital & Co".into()),
            host: Some("10.0.0.5".into()),
        },
    ];
    let mut files = Vec::new();
    let mut n = 0;
    for action in AuditAction::ALL {
        for outcome in [
            AuditOutcome::Success,
            AuditOutcome::Denied,
            AuditOutcome::Failure,
        ] {
            for channel in [
                AuditChannel::Http,
                AuditChannel::Dicom,
                AuditChannel::Cli,
                AuditChannel::System,
            ] {
                let e = event(action, outcome, channel, n);
                let xml = audit_message(&e, &sources[n % 2]);
                let path = dir.path().join(format!(
                    "{n:03}-{}-{}-{}.xml",
                    action.as_str(),
                    outcome.as_str(),
                    channel.as_str()
                ));
                std::fs::write(&path, xml).expect("write");
                files.push(path);
                n += 1;
            }
        }
    }
    assert_eq!(files.len(), AuditAction::ALL.len() * 3 * 4);
    let (ok, text) = validate(&files);
    assert!(ok, "xmllint rejected messages:\n{text}");
    assert_eq!(text.matches(" validates").count(), files.len(), "{text}");
}

/// The check is real: a message without its AuditSourceIdentification is refused.
#[test]
fn schema_rejects_a_broken_message() {
    if !xmllint_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let e = event(
        AuditAction::View,
        AuditOutcome::Success,
        AuditChannel::Http,
        0,
    );
    let xml = audit_message(&e, &AuditSource::new("LUMEN"));
    let start = xml
        .find("<AuditSourceIdentification")
        .expect("has a source");
    let end = xml.find("</AuditSourceIdentification>").expect("closes")
        + "</AuditSourceIdentification>".len();
    let broken = format!("{}{}", &xml[..start], &xml[end..]);
    let path = dir.path().join("broken.xml");
    std::fs::write(&path, broken).expect("write");
    let (ok, text) = validate(&[path]);
    assert!(
        !ok,
        "xmllint accepted a message without AuditSourceIdentification:\n{text}"
    );
}
