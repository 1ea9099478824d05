//! Routing: a `[[route]]` rule forwards CT from one calling AE to a peer through the
//! persistent outbound queue; the peer (DCMTK's storescp) is down while the instances
//! arrive and across a server crash, and receives them, byte-identical, once it is up.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use util::*;

fn s(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn uid_and_dataset(p: &Path) -> Option<(String, Vec<u8>)> {
    let obj = dicom_object::open_file(p).ok()?;
    let uid = obj
        .element(tags::SOP_INSTANCE_UID)
        .ok()?
        .to_str()
        .ok()?
        .trim_end_matches(['\0', ' '])
        .to_string();
    let bytes = std::fs::read(p).ok()?;
    Some((uid, dataset_bytes(&bytes).to_vec()))
}

fn datasets_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| uid_and_dataset(&e.path()))
        .collect()
}

fn storescu(server: &Server, aet: &str, files: &[PathBuf]) {
    let o = run(Command::new("storescu")
        .args(["-aet", aet, "-aec", "LUMEN", "127.0.0.1"])
        .arg(server.dicom_port.to_string())
        .args(files));
    assert!(o.status.success(), "storescu: {}", s(&o));
}

struct Scp(Child);

impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn qr_route_ct_to_peer_started_later_survives_crash() {
    let Some(data) = shared_data() else { return };
    if !have_tool("storescu") || !have_tool("storescp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("lumen.toml");
    std::fs::write(
        &cfg,
        "[[route]]\ncalling_ae = \"CTSCANNER\"\nmodality = \"CT\"\ndestination = \"DEST\"\n\n\
         [[route]]\nmodality = \"MR\"\ndestination = \"DEST\"\n",
    )
    .unwrap();
    let port = free_port();
    let dest = format!("DEST=127.0.0.1:{port}");
    let dir = tmp.path().join("d");
    let args = ["--config", cfg.to_str().unwrap(), "--peer", &dest];
    let mut server = Server::start_in(&dir, &args);

    let all = lidc_files(&data);
    let routed: Vec<PathBuf> = all[..4].to_vec();
    let not_routed: Vec<PathBuf> = all[4..6].to_vec();
    storescu(&server, "CTSCANNER", &routed);
    storescu(&server, "OTHER", &not_routed);
    assert!(dir.join("outbound.sqlite").exists());

    // The peer is down: attempts fail; then the server crashes and comes back.
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    let server = Server::start_in(&dir, &args);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.log().contains("will retry"), "{}", server.log());

    let out = tmp.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let _scp = Scp(Command::new("storescp")
        .args(["-aet", "DEST", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .spawn()
        .expect("storescp"));
    let want: BTreeMap<String, Vec<u8>> =
        routed.iter().filter_map(|p| uid_and_dataset(p)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while datasets_in(&out).len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "not forwarded in time: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(datasets_in(&out), want);
}
