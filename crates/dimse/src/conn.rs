//! One TCP connection carrying upper layer PDUs: framing, timeouts, single-write sends.
//! The connection is plain TCP or TLS over TCP (PS3.15 Annex B), a [`Transport`].
//!
//! Association PDUs are decoded and encoded with dicom-ul's codecs. P-DATA-TF PDUs take a
//! fast path: their body is handed out as one [`Bytes`] and split into PDVs without copies.
//! Every PDU goes out whole in one `write_all`; consecutive P-DATA PDUs of one message
//! are batched into one write of up to [`WRITE_BATCH`] bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dicom_ul::pdu::{MAXIMUM_PDU_SIZE, Pdu, read_pdu, write_pdu};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{DimseError, Result};
use crate::pdata::{self, PDATA_TF, PDU_HEADER};

/// Write batches of P-DATA PDUs up to this size.
pub const WRITE_BATCH: usize = 256 * 1024;
/// Largest non-P-DATA PDU accepted (association requests with many contexts).
const MAX_CONTROL_PDU: u32 = 1 << 20;
/// Read at least this much per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// A received PDU.
#[derive(Debug)]
pub enum Incoming {
    /// The variable field of a P-DATA-TF PDU.
    PData(Bytes),
    /// Any other PDU, decoded by dicom-ul.
    Other(Pdu),
}

/// The byte stream under a [`Conn`]: an enum rather than a type parameter, so that the
/// session code is compiled once; the plain path costs one predictable branch per poll.
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP, accepted by the SCP (boxed: rustls's state is large).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Tcp(s) => s,
            Transport::Tls(s) => s.get_ref().0,
        }
    }
}

impl From<TcpStream> for Transport {
    fn from(s: TcpStream) -> Self {
        Transport::Tcp(s)
    }
}

impl From<tokio_rustls::server::TlsStream<TcpStream>> for Transport {
    fn from(s: tokio_rustls::server::TlsStream<TcpStream>) -> Self {
        Transport::Tls(Box::new(s))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TCP (or TLS) stream with PDU framing.
pub struct Conn {
    stream: Transport,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// Largest P-DATA-TF variable field we accept.
    pub max_recv: u32,
    /// Largest P-DATA-TF variable field the peer accepts (0: unlimited).
    pub peer_max: u32,
    /// Timeout for each read of a PDU and each write.
    pub timeout: Duration,
}

impl Conn {
    /// Wrap a connected stream (sets TCP_NODELAY).
    pub(crate) fn new(stream: impl Into<Transport>, max_recv: u32, timeout: Duration) -> Self {
        let stream = stream.into();
        // Failing to set NODELAY only costs latency; never fatal.
        let _ = stream.tcp().set_nodelay(true);
        Conn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(READ_CHUNK),
            max_recv,
            peer_max: 0,
            timeout,
        }
    }

    /// Acknowledge received data at once instead of delaying the ACK. Peers that leave
    /// Nagle's algorithm on (DCMTK does unless `TCP_NODELAY=1` is set) otherwise hold the
    /// tail of every message until our delayed ACK fires (up to 40 ms per message).
    /// Linux clears the flag again by itself, so it is re-armed after every read.
    fn quickack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let _ = socket2::SockRef::from(self.stream.tcp()).set_tcp_quickack(true);
        }
    }

    async fn fill(&mut self, want: usize) -> Result<()> {
        while self.rbuf.len() < want {
            let missing = want - self.rbuf.len();
            self.rbuf.reserve(missing.max(READ_CHUNK));
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(DimseError::Closed);
            }
            self.quickack();
        }
        Ok(())
    }

    /// Receive the next PDU, waiting at most `timeout` for it to arrive completely.
    pub async fn recv_within(&mut self, timeout: Duration, what: &'static str) -> Result<Incoming> {
        tokio::time::timeout(timeout, self.recv_inner())
            .await
            .map_err(|_| DimseError::Timeout(what))?
    }

    /// Receive a PDU only if one has arrived completely (or arrives without waiting).
    /// Safe to call between other operations: partial input stays buffered.
    pub async fn try_recv(&mut self) -> Result<Option<Incoming>> {
        // Polled once: `tokio::time::timeout(Duration::ZERO, ..)` would instead wait for the
        // timer's next 1 ms tick whenever nothing has arrived, and this runs before every
        // C-FIND match and C-GET/C-MOVE sub-operation (C-CANCEL check).
        let recv = self.recv_inner();
        tokio::pin!(recv);
        std::future::poll_fn(|cx| match recv.as_mut().poll(cx) {
            std::task::Poll::Ready(r) => std::task::Poll::Ready(r.map(Some)),
            std::task::Poll::Pending => std::task::Poll::Ready(Ok(None)),
        })
        .await
    }

    /// Receive the next PDU within the connection's timeout.
    pub async fn recv(&mut self) -> Result<Incoming> {
        self.recv_within(self.timeout, "PDU").await
    }

    async fn recv_inner(&mut self) -> Result<Incoming> {
        self.fill(1).await?;
        let pdu_type = self.rbuf[0];
        if !(1..=7).contains(&pdu_type) {
            return Err(DimseError::Protocol(format!(
                "unrecognized PDU type 0x{pdu_type:02x}"
            )));
        }
        self.fill(PDU_HEADER).await?;
        let len = u32::from_be_bytes([self.rbuf[2], self.rbuf[3], self.rbuf[4], self.rbuf[5]]);
        let max = if pdu_type == PDATA_TF {
            self.max_recv
        } else {
            MAX_CONTROL_PDU
        };
        if len > max {
            return Err(DimseError::PduTooLarge { len, max });
        }
        let total = PDU_HEADER + len as usize;
        self.fill(total).await?;
        let frame = self.rbuf.split_to(total);
        if pdu_type == PDATA_TF {
            return Ok(Incoming::PData(frame.freeze().slice(PDU_HEADER..)));
        }
        match read_pdu(&frame[..], MAXIMUM_PDU_SIZE, false) {
            Ok(Some(pdu)) => Ok(Incoming::Other(pdu)),
            Ok(None) => Err(DimseError::Protocol("incomplete PDU".into())),
            Err(e) => Err(DimseError::Protocol(format!("malformed PDU: {e}"))),
        }
    }

    /// Send one PDU in a single write.
    pub async fn send_pdu(&mut self, pdu: &Pdu) -> Result<()> {
        self.wbuf.clear();
        write_pdu(&mut self.wbuf, pdu)
            .map_err(|e| DimseError::Protocol(format!("cannot encode PDU: {e}")))?;
        self.flush_wbuf().await
    }

    async fn flush_wbuf(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // The flush is free on TCP; TLS may keep the last records buffered without it.
        let stream = &mut self.stream;
        let wbuf = &self.wbuf;
        let write = async move {
            stream.write_all(wbuf).await?;
            stream.flush().await
        };
        let res = tokio::time::timeout(self.timeout, write).await;
        self.wbuf.clear();
        match res {
            Ok(r) => Ok(r?),
            Err(_) => Err(DimseError::Timeout("write")),
        }
    }

    /// Send a DIMSE message: the command set, then the data set if any, fragmented to the
    /// peer's maximum PDU length. Whole PDUs only, batched into few writes.
    pub async fn send_message(
        &mut self,
        context_id: u8,
        command: &[u8],
        data: Option<&[u8]>,
    ) -> Result<()> {
        self.wbuf.clear();
        pdata::encode_value(&mut self.wbuf, context_id, true, command, self.peer_max);
        if let Some(data) = data {
            let max = pdata::max_fragment(self.peer_max);
            if data.is_empty() {
                pdata::encode_fragment(&mut self.wbuf, context_id, false, true, data);
            }
            let mut chunks = data.chunks(max).peekable();
            while let Some(chunk) = chunks.next() {
                pdata::encode_fragment(
                    &mut self.wbuf,
                    context_id,
                    false,
                    chunks.peek().is_none(),
                    chunk,
                );
                if self.wbuf.len() >= WRITE_BATCH {
                    self.flush_wbuf().await?;
                }
            }
        }
        self.flush_wbuf().await
    }

    /// Shut down the write side, ignoring errors (the peer may be gone).
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}
