//! P-DATA-TF fragmentation and reassembly of DIMSE messages (PS3.8 9.3.5, PS3.7 Annex E).
//!
//! Pure functions over bytes: [`encode_fragment`] appends one P-DATA-TF PDU holding one
//! presentation data value, [`pdv_items`] splits a received P-DATA-TF body into values
//! without copying, and [`Assembler`] rebuilds a command and its data set from them.

use bytes::{Bytes, BytesMut};

use crate::command::Command;
use crate::error::{DimseError, Result};

/// PDU type of P-DATA-TF.
pub const PDATA_TF: u8 = 0x04;
/// Bytes of a PDU header (type, reserved, length).
pub const PDU_HEADER: usize = 6;
/// Bytes of a PDV item header (length, context ID, message control header).
pub const PDV_HEADER: usize = 6;

/// One presentation data value: a fragment of a command or data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    /// Presentation context ID.
    pub context_id: u8,
    /// Command (true) or data set (false) fragment.
    pub is_command: bool,
    /// Last fragment of its command or data set.
    pub is_last: bool,
    /// The fragment bytes (a slice of the received PDU, not a copy).
    pub data: Bytes,
}

/// Append one P-DATA-TF PDU with a single PDV to `out`.
pub fn encode_fragment(
    out: &mut Vec<u8>,
    context_id: u8,
    is_command: bool,
    is_last: bool,
    chunk: &[u8],
) {
    let pdv_len = (chunk.len() + 2) as u32;
    let pdu_len = pdv_len + 4;
    out.reserve(PDU_HEADER + PDV_HEADER + chunk.len());
    out.extend_from_slice(&[PDATA_TF, 0]);
    out.extend_from_slice(&pdu_len.to_be_bytes());
    out.extend_from_slice(&pdv_len.to_be_bytes());
    let mch = u8::from(is_command) | (u8::from(is_last) << 1);
    out.extend_from_slice(&[context_id, mch]);
    out.extend_from_slice(chunk);
}

/// The largest fragment that fits a P-DATA-TF PDU whose variable field may hold
/// `max_pdu_length` bytes (the peer's announced maximum; 0 means unlimited).
pub fn max_fragment(max_pdu_length: u32) -> usize {
    const UNLIMITED: usize = 1 << 20;
    match max_pdu_length as usize {
        0 => UNLIMITED,
        n => n.saturating_sub(PDV_HEADER).clamp(2, UNLIMITED),
    }
}

/// Append a whole command or data set as P-DATA-TF PDUs of at most `max_pdu_length`.
///
/// An empty value still yields one (last) fragment.
pub fn encode_value(
    out: &mut Vec<u8>,
    context_id: u8,
    is_command: bool,
    value: &[u8],
    max_pdu_length: u32,
) {
    let max = max_fragment(max_pdu_length);
    if value.is_empty() {
        encode_fragment(out, context_id, is_command, true, value);
        return;
    }
    let mut chunks = value.chunks(max).peekable();
    while let Some(chunk) = chunks.next() {
        encode_fragment(out, context_id, is_command, chunks.peek().is_none(), chunk);
    }
}

/// Split the variable field of a P-DATA-TF PDU into its PDV items (zero-copy).
pub fn pdv_items(mut body: Bytes) -> Result<Vec<Pdv>> {
    let mut out = Vec::with_capacity(1);
    if body.is_empty() {
        return Err(DimseError::Protocol("P-DATA-TF without PDV items".into()));
    }
    while !body.is_empty() {
        if body.len() < PDV_HEADER {
            return Err(DimseError::Protocol("truncated PDV item header".into()));
        }
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        if len < 2 || len > body.len() - 4 {
            return Err(DimseError::Protocol(format!(
                "PDV item length {len} does not fit its PDU"
            )));
        }
        let context_id = body[4];
        let mch = body[5];
        let item = body.split_to(4 + len);
        out.push(Pdv {
            context_id,
            is_command: mch & 1 != 0,
            is_last: mch & 2 != 0,
            data: item.slice(PDV_HEADER..),
        });
    }
    Ok(out)
}

/// A reassembled DIMSE message.
#[derive(Debug)]
pub struct Message {
    /// Presentation context it arrived on.
    pub context_id: u8,
    /// Its command set.
    pub command: Command,
    /// Its data set, if the command announced one and it fit the size limit.
    pub data: Option<DataSet>,
    /// Size of the data set received, also when it was discarded for exceeding the limit.
    pub data_len: usize,
    /// The data set exceeded the limit and was drained, not kept.
    pub oversized: bool,
}

/// Free bytes kept in front of a data set received in several fragments: room for a Part-10
/// preamble and file meta group (at most about 500 bytes with the longest UIDs), so that a
/// stored instance becomes a file without its data set being copied.
pub const DATA_SET_HEADROOM: usize = 1024;

/// A received data set. It may sit behind free bytes of its buffer
/// ([`DATA_SET_HEADROOM`]), where [`with_header`](Self::with_header) writes a header.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// The whole buffer: free bytes, then the data set.
    buf: Bytes,
    /// Where the data set starts in `buf`.
    start: usize,
}

impl DataSet {
    /// A data set with no free bytes in front.
    pub fn new(bytes: Bytes) -> Self {
        DataSet {
            buf: bytes,
            start: 0,
        }
    }

    /// The data set's bytes (shares the buffer).
    pub fn bytes(&self) -> Bytes {
        self.buf.slice(self.start..)
    }

    /// `header` followed by the data set. Written into the free bytes when they are enough
    /// and the buffer is not shared (no copy of the data set); otherwise copied.
    pub fn with_header(self, header: &[u8]) -> Bytes {
        let start = self.start;
        if header.len() <= start {
            match self.buf.try_into_mut() {
                Ok(mut buf) => {
                    let at = start - header.len();
                    buf[at..start].copy_from_slice(header);
                    return buf.freeze().slice(at..);
                }
                Err(buf) => return joined(header, &buf[start..]),
            }
        }
        joined(header, &self.buf[start..])
    }
}

fn joined(header: &[u8], data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(header.len() + data.len());
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out.into()
}

impl std::ops::Deref for DataSet {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Rebuilds DIMSE messages from PDVs, one message at a time (no asynchronous operations).
///
/// All fragments of a message must use the same presentation context; command fragments
/// come first. A data set larger than the limit is counted but dropped as it arrives.
#[derive(Debug)]
pub struct Assembler {
    limit: usize,
    context_id: Option<u8>,
    command_buf: BytesMut,
    command: Option<Command>,
    data: BytesMut,
    whole: Option<Bytes>,
    data_len: usize,
    size_hint: usize,
}

impl Assembler {
    /// An assembler keeping data sets of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Assembler {
            limit,
            context_id: None,
            command_buf: BytesMut::new(),
            command: None,
            data: BytesMut::new(),
            whole: None,
            data_len: 0,
            size_hint: 0,
        }
    }

    /// Whether a message is partly received.
    pub fn in_progress(&self) -> bool {
        self.context_id.is_some()
    }

    /// The command of the message in progress, once its command set is complete.
    pub fn pending_command(&self) -> Option<&Command> {
        self.command.as_ref()
    }

    /// Feed one PDV; returns the message when it is complete.
    pub fn push(&mut self, pdv: Pdv) -> Result<Option<Message>> {
        match self.context_id {
            None => self.context_id = Some(pdv.context_id),
            Some(id) if id != pdv.context_id => {
                return Err(DimseError::Protocol(format!(
                    "fragment on presentation context {} inside a message on context {id}",
                    pdv.context_id
                )));
            }
            Some(_) => {}
        }
        if pdv.is_command {
            if self.command.is_some() {
                return Err(DimseError::Protocol(
                    "command fragment after a complete command set".into(),
                ));
            }
            if self.command_buf.len() + pdv.data.len() > 64 * 1024 {
                return Err(DimseError::Protocol(
                    "command set larger than 64 KiB".into(),
                ));
            }
            self.command_buf.extend_from_slice(&pdv.data);
            if !pdv.is_last {
                return Ok(None);
            }
            let command = Command::decode(&self.command_buf)?;
            self.command_buf.clear();
            if command.has_data_set {
                self.command = Some(command);
                return Ok(None);
            }
            return Ok(Some(self.finish(command, None, false)));
        }
        if self.command.is_none() {
            return Err(DimseError::Protocol(
                "data fragment before its command".into(),
            ));
        }
        let first = self.data_len == 0 && self.whole.is_none();
        self.data_len += pdv.data.len();
        let oversized = self.data_len > self.limit;
        if oversized {
            // Drain: drop what we had and everything still to come.
            self.data = BytesMut::new();
            self.whole = None;
        } else if first && pdv.is_last {
            // A data set in one fragment: hand out the received bytes without a copy.
            self.whole = Some(pdv.data);
        } else {
            if self.data.is_empty() {
                // A new buffer per data set (the last one's size as a guess), so that the
                // message owns it alone and a header can be written in front.
                self.data
                    .reserve(DATA_SET_HEADROOM + self.size_hint.max(pdv.data.len()));
                self.data.resize(DATA_SET_HEADROOM, 0);
            }
            if let Some(w) = self.whole.take() {
                self.data.extend_from_slice(&w);
            }
            self.data.extend_from_slice(&pdv.data);
        }
        if !pdv.is_last {
            return Ok(None);
        }
        let Some(command) = self.command.take() else {
            return Err(DimseError::Protocol(
                "data fragment before its command".into(),
            ));
        };
        let data = if oversized {
            None
        } else {
            Some(match self.whole.take() {
                Some(w) => DataSet::new(w),
                None => DataSet {
                    buf: std::mem::take(&mut self.data).freeze(),
                    start: DATA_SET_HEADROOM,
                },
            })
        };
        Ok(Some(self.finish(command, data, oversized)))
    }

    fn finish(&mut self, command: Command, data: Option<DataSet>, oversized: bool) -> Message {
        let msg = Message {
            context_id: self.context_id.take().unwrap_or_default(),
            command,
            data,
            data_len: self.data_len,
            oversized,
        };
        if !oversized && self.data_len > 0 {
            self.size_hint = self.data_len;
        }
        self.data_len = 0;
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Priority};

    /// Split a byte stream of P-DATA-TF PDUs and return their PDVs.
    fn parse_pdus(mut stream: &[u8], max_pdu: u32) -> Vec<Pdv> {
        let mut out = vec![];
        while !stream.is_empty() {
            assert_eq!(stream[0], PDATA_TF);
            let len = u32::from_be_bytes(stream[2..6].try_into().unwrap()) as usize;
            assert!(len <= max_pdu as usize, "PDU of {len} exceeds {max_pdu}");
            let body = Bytes::copy_from_slice(&stream[6..6 + len]);
            out.extend(pdv_items(body).unwrap());
            stream = &stream[6 + len..];
        }
        out
    }

    #[test]
    fn a_shared_or_headerless_data_set_is_copied_behind_its_header() {
        let data = Bytes::from_static(b"data set");
        let whole = DataSet::new(data.clone());
        assert_eq!(&whole.with_header(b"H")[..], b"Hdata set");
        let shared = DataSet {
            buf: Bytes::from(
                vec![0u8; 4]
                    .into_iter()
                    .chain(*b"data")
                    .collect::<Vec<u8>>(),
            ),
            start: 4,
        };
        let keep = shared.clone();
        assert_eq!(&shared.with_header(b"HEAD")[..], b"HEADdata");
        assert_eq!(&keep[..], b"data", "the other owner's view is unchanged");
        let small = DataSet {
            buf: Bytes::from(b"..data".to_vec()),
            start: 2,
        };
        assert_eq!(&small.with_header(b"HEAD")[..], b"HEADdata");
    }

    #[test]
    fn fragments_respect_max_pdu_and_reassemble() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        for max_pdu in [4096u32, 16384, 16385, 100_006, 0] {
            let cmd = Command::store_rq(1, "1.2.3", "4.5.6", Priority::Medium);
            let mut out = vec![];
            encode_value(&mut out, 3, true, &cmd.encode().unwrap(), max_pdu);
            encode_value(&mut out, 3, false, &data, max_pdu);
            let limit = if max_pdu == 0 { u32::MAX } else { max_pdu };
            let pdvs = parse_pdus(&out, limit);
            if max_pdu == 16384 {
                // ceil(100000 / 16378) data fragments plus one command fragment
                assert_eq!(pdvs.len(), 1 + 100_000usize.div_ceil(16378));
            }
            let mut asm = Assembler::new(usize::MAX);
            let mut done = None;
            for pdv in pdvs {
                assert!(done.is_none());
                done = asm.push(pdv).unwrap();
            }
            let msg = done.expect("complete message");
            assert_eq!(msg.context_id, 3);
            assert_eq!(msg.command, cmd);
            let got = msg.data.unwrap();
            assert_eq!(&got[..], &data[..]);
            // Reassembled from fragments, it takes a header in front in place: the data
            // set is not copied (one fragment is handed out as received, and copied).
            let at = got.as_ptr();
            let file = got.with_header(b"HEADER");
            assert_eq!(&file[..6], b"HEADER");
            assert_eq!(&file[6..], &data[..]);
            let fragmented = max_pdu != 0 && (max_pdu as usize) < data.len();
            assert_eq!(file[6..].as_ptr() == at, fragmented, "max PDU {max_pdu}");
            assert!(!asm.in_progress());
        }
    }

    #[test]
    fn oversized_data_is_drained() {
        let cmd = Command::store_rq(1, "1.2.3", "4.5.6", Priority::Medium);
        let mut out = vec![];
        encode_value(&mut out, 1, true, &cmd.encode().unwrap(), 1024);
        encode_value(&mut out, 1, false, &[0u8; 10_000], 1024);
        let mut asm = Assembler::new(5000);
        let msg = parse_pdus(&out, 1024)
            .into_iter()
            .find_map(|p| asm.push(p).unwrap())
            .unwrap();
        assert!(msg.oversized);
        assert!(msg.data.is_none());
        assert_eq!(msg.data_len, 10_000);
        // Next message works normally.
        let mut out = vec![];
        encode_value(
            &mut out,
            1,
            true,
            &Command::echo_rq(2).encode().unwrap(),
            1024,
        );
        let msg = parse_pdus(&out, 1024)
            .into_iter()
            .find_map(|p| asm.push(p).unwrap())
            .unwrap();
        assert_eq!(msg.command.message_id, Some(2));
        assert!(msg.data.is_none() && !msg.oversized);
    }

    #[test]
    fn protocol_violations() {
        let pdv = |ctx, cmd, last, data: &'static [u8]| Pdv {
            context_id: ctx,
            is_command: cmd,
            is_last: last,
            data: Bytes::from_static(data),
        };
        let mut asm = Assembler::new(100);
        assert!(asm.push(pdv(1, false, true, b"xx")).is_err());
        let mut asm = Assembler::new(100);
        asm.push(pdv(1, true, false, b"ab")).unwrap();
        assert!(asm.push(pdv(3, true, true, b"cd")).is_err());
        assert!(pdv_items(Bytes::from_static(&[0, 0, 0, 1, 1, 3])).is_err());
        assert!(pdv_items(Bytes::from_static(&[0, 0, 0, 9, 1, 3, 0])).is_err());
        assert!(pdv_items(Bytes::new()).is_err());
        let two = pdv_items(Bytes::from_static(&[0, 0, 0, 3, 1, 3, 7, 0, 0, 0, 2, 5, 0])).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(&two[0].data[..], &[7]);
        assert!(two[0].is_command && two[0].is_last);
        assert_eq!(two[1].context_id, 5);
        assert!(two[1].data.is_empty() && !two[1].is_command && !two[1].is_last);
    }
}
