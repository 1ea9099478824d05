//! The ledger's cost on report signing: the transaction that records a signature
//! (`Store::commit_signature`) with its ledger entry, as Lumen signs, and without. The
//! entry's making (a random salt, the commitment, its JSON, as `lumen_app::ledger::record`
//! does) is timed with it. Each iteration signs the report of a new study; the two modes
//! alternate so that drift (the growing index, the disk) falls on both alike.
//!
//! `cargo run --release -p lumen-store --example ledger_sign -- DIR [N]` (DIR a new or empty
//! directory; default 200 signatures in each mode).

use std::time::{Duration, Instant};

use lumen_ledger::Event;
use lumen_store::{NewLedgerEntry, Store, StoreConfig};

/// The entry of a signature, made as `lumen_app::ledger::record` makes it.
fn entry(study: &str, time_ms: i64, objects: &[String]) -> NewLedgerEntry {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).expect("randomness");
    let time = time_ms.to_string();
    let event = Event {
        kind: "report.signed",
        study_uid: study,
        actor: "radiologist",
        org: "local",
        time: &time,
        objects,
    };
    let json = serde_json::json!({
        "kind": "report.signed", "study_uid": study, "actor": "radiologist",
        "org": "local", "time": time, "objects": objects,
    });
    NewLedgerEntry {
        kind: "report.signed".into(),
        time: time_ms.div_euclid(1000),
        commitment: event.commit(&salt),
        salt,
        study_uid: Some(study.to_string()),
        event: json.to_string(),
    }
}

fn summary(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let median = v[v.len() / 2];
    println!(
        "{name}: median {:.3} ms, p90 {:.3} ms ({} signatures)",
        median.as_secs_f64() * 1e3,
        v[(v.len() - 1) * 9 / 10].as_secs_f64() * 1e3,
        v.len()
    );
    median
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: ledger_sign DIR [N]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let store = Store::open(StoreConfig::new(&dir)).await.expect("open");
    let sections = serde_json::json!({
        "findings": "A 6 mm solid nodule in the right upper lobe.",
        "impression": "Lung-RADS 3", "recommendation": "LDCT in 6 months",
    });
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..2 * n {
        let study = format!("1.2.826.0.1.3680043.8.498.99.{i}");
        store
            .save_report_draft(&study, "en", &sections, "Dr Bench")
            .await
            .expect("draft");
        let p = store
            .begin_signature(&study, "report", "en", &sections, "radiologist", "Dr Bench")
            .await
            .expect("begin");
        let objects = [format!("{study}.1"), format!("{study}.2")];
        let t = Instant::now();
        if i % 2 == 0 {
            let e = entry(&study, p.signed_at, &objects);
            store
                .commit_signature(&study, &p, &objects[0], &objects[1], Some(&e))
                .await
                .expect("commit");
            with.push(t.elapsed());
        } else {
            store
                .commit_signature(&study, &p, &objects[0], &objects[1], None)
                .await
                .expect("commit");
            without.push(t.elapsed());
        }
    }
    let a = summary("commit_signature with its ledger entry", with);
    let b = summary("commit_signature without", without);
    println!(
        "the ledger's cost: {:+.3} ms per signature (median difference)",
        (a.as_secs_f64() - b.as_secs_f64()) * 1e3
    );
}
