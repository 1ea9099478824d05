//! The ledger's cost on disk: integrating entries into `DATA/ledger/` through
//! `LedgerFiles` (temp file, fsync, rename, fsync of the directory for every tile, bundle
//! and checkpoint written). `cargo run --release -p lumen-store --example ledger_disk --
//! DIR [ENTRIES] [BATCH]` (default 20,000 entries in batches of 100).

use std::time::Instant;

use lumen_ledger::{LedgerEntry, LogSigner, integrate, verify_log};
use lumen_store::LedgerFiles;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: ledger_disk DIR [ENTRIES] [BATCH]");
        std::process::exit(2);
    };
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let signer = LogSigner::from_seed("bench.example/disk", [9; 32]).expect("key");
    let mut files = LedgerFiles::new(std::path::Path::new(&dir));
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let entries: Vec<Vec<u8>> = (done..done + k)
            .map(|i| {
                LedgerEntry {
                    kind: "report.signed".into(),
                    time: 1_790_000_000 + i as i64,
                    commitment: [(i % 251) as u8; 32],
                }
                .to_bytes()
            })
            .collect();
        let t = Instant::now();
        done = integrate(&mut files, &signer, &entries)
            .expect("integrate")
            .size;
        latencies.push(t.elapsed());
    }
    let total = start.elapsed();
    latencies.sort();
    println!(
        "{n} entries in batches of {batch} on disk: {:.0} entries/s; checkpoint latency median {:?}, p99 {:?}",
        n as f64 / total.as_secs_f64(),
        latencies[latencies.len() / 2],
        latencies[(latencies.len() - 1) * 99 / 100]
    );
    let t = Instant::now();
    let v = verify_log(&files, &*signer.verifier()).expect("intact");
    println!(
        "verify_log of {} entries from disk: {:?}",
        v.size,
        t.elapsed()
    );
}
