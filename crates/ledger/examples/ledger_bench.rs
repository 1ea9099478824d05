//! Ledger figures at scale, in memory (no disk): appends per second and checkpoint
//! latency when integrating in batches, proof sizes and times, and `verify_log` of the
//! whole log. `cargo run --release -p lumen-ledger --example ledger_bench [ENTRIES] [BATCH]`
//! (default 1,000,000 entries in batches of 1,000).

use std::time::{Duration, Instant};

use lumen_ledger::log::{verify_consistency, verify_inclusion};
use lumen_ledger::{
    Algorithms, LedgerEntry, LogSigner, MemoryStore, consistency_proof, inclusion_proof, integrate,
    verify_log,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let signer = LogSigner::from_seed("bench.example/log", [42; 32]).expect("key");
    let mut store = MemoryStore::default();
    let entry = |i: u64| {
        let mut commitment = [0u8; 32];
        commitment[..8].copy_from_slice(&i.to_be_bytes());
        LedgerEntry {
            kind: "report.signed".into(),
            time: 1_790_000_000 + i as i64,
            commitment,
        }
        .to_bytes()
    };

    let mut latencies = Vec::new();
    let mut sizes_roots = Vec::new();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let entries: Vec<Vec<u8>> = (done..done + k).map(entry).collect();
        let t = Instant::now();
        let out = integrate(&mut store, &signer, &entries).expect("integrate");
        latencies.push(t.elapsed());
        done = out.size;
        if sizes_roots.len() < 8 || done == n {
            sizes_roots.push((out.size, out.root));
        }
    }
    let total = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "entries: {n}, batches of {batch} ({} checkpoints)",
        latencies.len()
    );
    println!(
        "append: {:.0} entries/s ({:.1} s in all); checkpoint latency per batch: median {:?}, p99 {:?}, max {:?}",
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );

    let (size, root) = *sizes_roots.last().expect("a checkpoint");
    let mut generate = Duration::ZERO;
    let mut ver = Duration::ZERO;
    let mut hashes = 0;
    let probes = 1_000u64;
    for p in 0..probes {
        let index = (p * 7_919_993) % size;
        let t = Instant::now();
        let proof = inclusion_proof(&store, size, index).expect("proof");
        generate += t.elapsed();
        hashes = hashes.max(proof.len());
        let leaf = Algorithms::default().leaf_hash(&entry(index));
        let t = Instant::now();
        verify_inclusion(leaf, index, size, root, &proof).expect("verifies");
        ver += t.elapsed();
    }
    println!(
        "inclusion proof at {size}: up to {hashes} hashes ({} bytes); from the tiles {:?}, verification {:?} (mean of {probes})",
        hashes * 32,
        generate / probes as u32,
        ver / probes as u32
    );
    let (old, old_root) = sizes_roots[3];
    let t = Instant::now();
    let proof = consistency_proof(&store, old, size).expect("proof");
    let g = t.elapsed();
    let t = Instant::now();
    verify_consistency(old, old_root, size, root, &proof).expect("consistent");
    println!(
        "consistency proof {old} -> {size}: {} hashes ({} bytes); from the tiles {g:?}, verification {:?}",
        proof.len(),
        proof.len() * 32,
        t.elapsed()
    );
    let t = Instant::now();
    let v = verify_log(&store, &*signer.verifier()).expect("intact");
    println!(
        "verify_log of {} entries (every bundle, tile and the root): {:.2} s",
        v.size,
        t.elapsed().as_secs_f64()
    );
}
