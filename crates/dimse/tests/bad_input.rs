//! Misbehaving peers over raw TCP: garbage, truncated transfers, resets, stalls.
//! The handler must never see partial data, and the server must keep serving.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use dicom_ul::pdu::{
    AssociationRQ, Pdu, PresentationContextProposed, UserVariableItem, read_pdu, write_pdu,
};
use lumen_dimse::command::{Command, Priority};
use lumen_dimse::pdata::encode_fragment;
use lumen_dimse::{ScuConfig, ServerConfig, StoreScu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

struct Raw(TcpStream);

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw(TcpStream::connect(addr).await.unwrap())
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
    }

    /// Next PDU as (type, whole PDU bytes), or None at EOF / reset.
    async fn read_pdu(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut hdr = [0u8; 6];
        self.0.read_exact(&mut hdr).await.ok()?;
        let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]) as usize;
        let mut pdu = hdr.to_vec();
        pdu.resize(6 + len, 0);
        self.0.read_exact(&mut pdu[6..]).await.ok()?;
        Some((hdr[0], pdu))
    }

    /// Whether the server closes the connection within `within` (EOF or reset).
    async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.0.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// Associate with one CT context (ID 1) and Verification (ID 3).
    async fn associated(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect(addr).await;
        let rq = Pdu::AssociationRQ(AssociationRQ {
            protocol_version: 1,
            calling_ae_title: "RAW".into(),
            called_ae_title: "LUMEN".into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: vec![
                PresentationContextProposed {
                    id: 1,
                    abstract_syntax: CT.into(),
                    transfer_syntaxes: vec![EXPLICIT_LE.into()],
                },
                PresentationContextProposed {
                    id: 3,
                    abstract_syntax: "1.2.840.10008.1.1".into(),
                    transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
                },
            ],
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        });
        let mut buf = vec![];
        write_pdu(&mut buf, &rq).unwrap();
        raw.send(&buf).await;
        let (ty, pdu) = raw.read_pdu().await.expect("A-ASSOCIATE-AC");
        assert_eq!(ty, 0x02, "expected A-ASSOCIATE-AC");
        assert!(matches!(
            read_pdu(&pdu[..], 1 << 20, false),
            Ok(Some(Pdu::AssociationAC(_)))
        ));
        raw
    }

    /// Send a C-STORE-RQ command and the first `n` bytes of a data set (not last).
    async fn partial_store(&mut self, n: usize) {
        let cmd = Command::store_rq(1, CT, "1.2.3.4.5", Priority::Medium)
            .encode()
            .unwrap();
        let mut buf = vec![];
        encode_fragment(&mut buf, 1, true, true, &cmd);
        encode_fragment(&mut buf, 1, false, false, &vec![0u8; n]);
        self.send(&buf).await;
    }
}

/// After the bad peer, a well-behaved SCU still gets service.
async fn still_serving(addr: SocketAddr) {
    let cfg = ScuConfig {
        called_ae_title: "LUMEN".into(),
        ..ScuConfig::default()
    };
    let mut scu = StoreScu::connect(addr, &cfg, &[]).await.unwrap();
    assert_eq!(scu.echo().await.unwrap(), 0);
    scu.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_associate_rq_is_aborted() {
    let (addr, h) = start(ServerConfig::default()).await;
    let mut raw = Raw::connect(addr).await;
    raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    assert!(raw.closed_within(Duration::from_secs(2)).await);

    // A valid PDU type with a malformed body.
    let mut raw = Raw::connect(addr).await;
    raw.send(&[0x01, 0, 0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        .await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    assert!(raw.closed_within(Duration::from_secs(2)).await);

    still_serving(addr).await;
    assert!(h.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_pdata_then_close_never_reaches_handler() {
    let (addr, h) = start(ServerConfig::default()).await;
    let mut raw = Raw::associated(addr).await;
    raw.partial_store(5000).await;
    // Half a PDU more, then hang up.
    raw.send(&[0x04, 0, 0, 0, 0x10, 0, 0, 0]).await;
    drop(raw);
    wait_ended(&h, 1).await;
    assert!(h.ended()[0].aborted);
    still_serving(addr).await;
    assert!(h.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reset_mid_transfer_never_reaches_handler() {
    let (addr, h) = start(ServerConfig::default()).await;
    let raw = Raw::associated(addr).await;
    let mut raw = raw;
    raw.partial_store(10_000).await;
    // Zero linger makes the drop send RST; it cannot block with no data left to send.
    #[allow(deprecated)]
    raw.0.set_linger(Some(Duration::ZERO)).unwrap();
    drop(raw); // RST
    wait_ended(&h, 1).await;
    assert!(h.ended()[0].aborted);
    still_serving(addr).await;
    assert!(h.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_abort_mid_transfer_never_reaches_handler() {
    let (addr, h) = start(ServerConfig::default()).await;
    let mut raw = Raw::associated(addr).await;
    raw.partial_store(3000).await;
    raw.send(&[0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]).await;
    assert!(raw.closed_within(Duration::from_secs(2)).await);
    wait_ended(&h, 1).await;
    assert!(h.ended()[0].aborted);
    assert!(h.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pdata_is_aborted() {
    let (addr, h) = start(ServerConfig::default()).await;
    // PDV length larger than its PDU.
    let mut raw = Raw::associated(addr).await;
    raw.send(&[0x04, 0, 0, 0, 0, 8, 0, 0, 0, 99, 1, 3, 0, 0])
        .await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    // PDV on a context that was never proposed.
    let mut raw = Raw::associated(addr).await;
    let mut buf = vec![];
    encode_fragment(
        &mut buf,
        9,
        true,
        true,
        &Command::echo_rq(1).encode().unwrap(),
    );
    raw.send(&buf).await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    // A command set that does not parse.
    let mut raw = Raw::associated(addr).await;
    let mut buf = vec![];
    encode_fragment(&mut buf, 3, true, true, b"not a command set");
    raw.send(&buf).await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    // A P-DATA-TF over our maximum PDU length.
    let mut raw = Raw::associated(addr).await;
    raw.send(&[0x04, 0, 0x7f, 0xff, 0xff, 0xff]).await;
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    still_serving(addr).await;
    assert!(h.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artim_closes_silent_connections() {
    let (addr, _h) = start(ServerConfig {
        artim_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut raw = Raw::connect(addr).await;
    assert!(raw.closed_within(Duration::from_secs(3)).await);
    // Half an association request, then silence.
    let mut raw = Raw::connect(addr).await;
    raw.send(&[0x01, 0, 0, 0, 1, 0]).await;
    assert!(raw.closed_within(Duration::from_secs(3)).await);
    still_serving(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_aborts_stuck_associations() {
    let (addr, h) = start(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let mut raw = Raw::associated(addr).await;
    raw.partial_store(1000).await;
    let started = std::time::Instant::now();
    let (ty, _) = raw.read_pdu().await.expect("an A-ABORT");
    assert_eq!(ty, 0x07);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(raw.closed_within(Duration::from_secs(2)).await);
    wait_ended(&h, 1).await;
    assert!(h.ended()[0].aborted);
    assert!(h.received().is_empty());
    still_serving(addr).await;
}

/// Read one DIMSE response command from the raw connection.
async fn read_response(raw: &mut Raw) -> Command {
    let (ty, pdu) = raw.read_pdu().await.expect("a P-DATA-TF");
    assert_eq!(ty, 0x04);
    let pdvs = lumen_dimse::pdata::pdv_items(bytes::Bytes::from(pdu).slice(6..)).unwrap();
    assert!(pdvs[0].is_command && pdvs[0].is_last);
    Command::decode(&pdvs[0].data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_class_and_unknown_operations_get_failure_statuses() {
    let (addr, h) = start(ServerConfig::default()).await;
    let mut raw = Raw::associated(addr).await;
    // C-STORE of an MR instance on the CT context.
    let cmd = Command::store_rq(5, "1.2.840.10008.5.1.4.1.1.4", "1.2.3", Priority::Medium);
    let mut buf = vec![];
    encode_fragment(&mut buf, 1, true, true, &cmd.encode().unwrap());
    encode_fragment(&mut buf, 1, false, true, &[8, 0, 0x16, 0, 0, 0, 0, 0]);
    raw.send(&buf).await;
    let rsp = read_response(&mut raw).await;
    assert_eq!(rsp.field, lumen_dimse::CommandField::CStoreRsp);
    assert_eq!(rsp.message_id_being_responded_to, Some(5));
    assert_eq!(
        rsp.status,
        Some(lumen_dimse::status::SOP_CLASS_NOT_SUPPORTED)
    );
    assert_eq!(rsp.affected_sop_instance_uid.as_deref(), Some("1.2.3"));
    // C-FIND on the CT context: not an operation this SCP offers.
    let mut find = Command::new(lumen_dimse::CommandField::CFindRq);
    find.message_id = Some(6);
    find.affected_sop_class_uid = Some(CT.into());
    find.has_data_set = true;
    let mut buf = vec![];
    encode_fragment(&mut buf, 1, true, true, &find.encode().unwrap());
    encode_fragment(&mut buf, 1, false, true, &[]);
    raw.send(&buf).await;
    let rsp = read_response(&mut raw).await;
    assert_eq!(rsp.field, lumen_dimse::CommandField::CFindRsp);
    assert_eq!(
        rsp.status,
        Some(lumen_dimse::status::UNRECOGNIZED_OPERATION)
    );
    // Still associated: C-ECHO on context 3, then release.
    let mut buf = vec![];
    encode_fragment(
        &mut buf,
        3,
        true,
        true,
        &Command::echo_rq(7).encode().unwrap(),
    );
    raw.send(&buf).await;
    assert_eq!(read_response(&mut raw).await.status, Some(0));
    raw.send(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]).await;
    let (ty, _) = raw.read_pdu().await.expect("A-RELEASE-RP");
    assert_eq!(ty, 0x06);
    assert!(h.received().is_empty());
}
