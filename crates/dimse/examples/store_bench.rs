//! C-STORE throughput over loopback: DCMTK storescu and our StoreScu against our SCP with an
//! in-memory handler, and storescu against DCMTK storescp (`--ignore`) for reference.
//!
//! `cargo run --release -p lumen-dimse --example store_bench [-- DIR [ROUNDS]]`
//! (default DIR: ../shared/data/lidc-idri-0001/ct, ROUNDS: 3).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lumen_dimse::{
    Part10Info, ScuConfig, Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest,
    StoreScu, proposals_for,
};

#[derive(Default)]
struct Counter {
    instances: AtomicU64,
    bytes: AtomicU64,
}

impl StoreHandler for Counter {
    async fn store(&self, req: StoreRequest) -> StoreOutcome {
        self.instances.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(req.dataset.len() as u64, Ordering::Relaxed);
        StoreOutcome::Success
    }
}

fn report(what: &str, n: usize, t: Duration) {
    println!(
        "{what:<48} {n:>5} instances in {:>6.3} s = {:>6.0} inst/s",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/lidc-idri-0001/ct")
    });
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let all: Vec<PathBuf> = (0..rounds).flat_map(|_| files.iter().cloned()).collect();
    println!(
        "{} files x {rounds} rounds from {}",
        files.len(),
        dir.display()
    );

    let handler = Arc::new(Counter::default());
    let server = Server::bind("127.0.0.1:0", ServerConfig::default(), handler.clone())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());

    // DCMTK storescu -> our SCP, one association.
    let storescu = |port: u16| {
        let mut c = Command::new("storescu");
        c.args(["-aec", "LUMEN"]);
        c.arg("127.0.0.1").arg(port.to_string()).args(&all);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    };
    let mut cmd = storescu(addr.port());
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap();
    match out {
        Ok(o) if o.status.success() => report("storescu -> lumen SCP", all.len(), t.elapsed()),
        Ok(o) => println!("storescu failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => println!("storescu not run: {e}"),
    }
    assert_eq!(
        handler.instances.load(Ordering::Relaxed) as usize,
        all.len()
    );

    // Our StoreScu -> our SCP, files preloaded.
    let blobs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let infos: Vec<Part10Info> = blobs
        .iter()
        .map(|b| Part10Info::parse(b).unwrap())
        .collect();
    let proposals = proposals_for(
        infos
            .iter()
            .map(|i| (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str())),
    );
    let cfg = ScuConfig {
        called_ae_title: "LUMEN".into(),
        ..ScuConfig::default()
    };
    let t = Instant::now();
    let mut scu = StoreScu::connect(addr, &cfg, &proposals).await.unwrap();
    for _ in 0..rounds {
        for b in &blobs {
            assert_eq!(scu.store_part10(b).await.unwrap().status, 0);
        }
    }
    scu.release().await.unwrap();
    report("lumen StoreScu -> lumen SCP", all.len(), t.elapsed());

    // Reference: storescu -> DCMTK storescp --ignore (receives, stores nothing), with
    // DCMTK's default (Nagle on) and with TCP_NODELAY=1 on both sides.
    for nodelay in ["0", "1"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let Ok(mut scp) = Command::new("storescp")
            .args(["--ignore", "-aet", "LUMEN", &port.to_string()])
            .env("TCP_NODELAY", nodelay)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            break;
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut cmd = storescu(port);
        cmd.env("TCP_NODELAY", nodelay);
        let t = Instant::now();
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap();
        if out.is_ok_and(|o| o.status.success()) {
            let what = format!("storescu -> DCMTK storescp --ignore, TCP_NODELAY={nodelay}");
            report(&what, all.len(), t.elapsed());
        }
        let _ = scp.kill();
        let _ = scp.wait();
    }
}
