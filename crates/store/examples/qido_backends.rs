//! The index's query latency on SQLite and on PostgreSQL: ingests a generated archive
//! (`tiny_archive`'s folder) into a store and times the QIDO-RS / C-FIND searches and the
//! worklist page that the pushdown serves, in the store itself (no HTTP), with random
//! studies so that no answer repeats the previous one. Every answer's count is checked.
//!
//!     cargo run --release -p lumen-store --example tiny_archive -- GEN 2000 5
//!     cargo run --release -p lumen-store --example qido_backends -- GEN 2000 [postgres://...]
//!
//! Without a URL the index is SQLite in a temporary data directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use lumen_dicom::attrs::Level;
use lumen_dicom::query::Query;
use lumen_store::{Origin, Scope, Store, StoreConfig, WorklistFilter};

/// Queries per kind.
const N: usize = 300;

/// A kind of query: its name, level, parameters for a study number and expected count.
type Kind = (&'static str, Level, fn(u64) -> Vec<(String, String)>, usize);

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let k = ((p / 100.0) * (xs.len() - 1) as f64).round() as usize;
    xs[k.min(xs.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: qido_backends GEN STUDIES [postgres://URL]";
    let gen_dir = PathBuf::from(args.first().ok_or(usage)?);
    let studies: u64 = args.get(1).ok_or(usage)?.parse()?;
    let tmp = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(tmp.path());
    cfg.ai_modalities.clear();
    cfg.database = args.get(2).cloned();
    let backend = if cfg.database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let store = Store::open(cfg).await?;
    let mut all = Vec::new();
    files(&gen_dir, &mut all)?;
    let started = Instant::now();
    // Eight ingests at a time, as several senders would.
    for chunk in all.chunks(8) {
        let mut tasks = Vec::new();
        for f in chunk {
            let (store, bytes) = (store.clone(), Bytes::from(std::fs::read(f)?));
            tasks.push(tokio::spawn(async move {
                store.ingest(bytes, Origin::Import).await
            }));
        }
        for t in tasks {
            t.await??;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend}: ingested {} instances in {secs:.1} s ({:.0}/s)",
        all.len(),
        all.len() as f64 / secs
    );
    let mut rng = 1043u64;
    let mut pick = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % studies
    };
    let kinds: [Kind; 5] = [
        (
            "study by UID",
            Level::Study,
            |s| {
                vec![(
                    "StudyInstanceUID".into(),
                    format!("1.2.826.0.1.3680043.10.1043.1.{s}"),
                )]
            },
            1,
        ),
        (
            "study by PatientID",
            Level::Study,
            |s| vec![("PatientID".into(), format!("SCALE{s:07}"))],
            1,
        ),
        (
            "study by PatientName prefix",
            Level::Study,
            |s| vec![("PatientName".into(), format!("scale^p{s:07}*"))],
            1,
        ),
        (
            "series of a study",
            Level::Series,
            |s| {
                vec![(
                    "StudyInstanceUID".into(),
                    format!("1.2.826.0.1.3680043.10.1043.1.{s}"),
                )]
            },
            1,
        ),
        (
            "studies, first page of 20",
            Level::Study,
            |_| vec![("limit".into(), "20".into())],
            20,
        ),
    ];
    for (name, level, params, expect) in kinds {
        let mut ms = Vec::with_capacity(N);
        for _ in 0..N {
            let q = Query::from_qido(level, &params(pick()))?;
            let t = Instant::now();
            let got = store.search(&q, &Scope::default()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(got.len(), expect, "{name}");
        }
        println!(
            "{backend}: {name}: p50 {:.2} ms, p99 {:.2} ms",
            pct(&mut ms, 50.0),
            pct(&mut ms, 99.0)
        );
    }
    let mut ms = Vec::with_capacity(N);
    for _ in 0..N {
        let f = WorklistFilter {
            limit: 50,
            ..WorklistFilter::default()
        };
        let t = Instant::now();
        let page = store.worklist(&f).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.items.len(), 50usize.min(studies as usize));
    }
    println!(
        "{backend}: worklist first page of 50: p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut ms, 50.0),
        pct(&mut ms, 99.0)
    );
    Ok(())
}
