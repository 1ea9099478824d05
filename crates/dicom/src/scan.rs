//! Structural pre-scan of untrusted DICOM bytes, run before any full parse.
//!
//! dicom-object allocates whatever length an element header declares and zero-fills it
//! before finding out the bytes are not there, so 17 bytes of garbage can make it allocate
//! gigabytes. This module walks only the element headers (explicit VR little and big
//! endian, implicit VR little endian, deflated data sets after a bounded inflate) and
//! checks, without allocating per element, that:
//!
//! - the file meta group starts with a sane (0002,0000) group length and names a
//!   transfer syntax;
//! - every defined length fits in what is left of its enclosing item, sequence or file;
//! - sequences, items and encapsulated pixel data fragments are properly delimited;
//! - nesting is at most [`MAX_DEPTH`] levels and the element count is bounded by the
//!   input size ([`MIN_BYTES_PER_ELEMENT`]);
//! - explicit VR headers carry valid VRs (a data set written in another encoding than
//!   its transfer syntax names fails here, at its first element, rather than later at a
//!   garbage length).
//!
//! Errors name tags and byte offsets only, never values.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::io::Read;

/// Deepest nesting of sequences (and encapsulated pixel data) accepted.
pub const MAX_DEPTH: usize = 64;
/// Largest data set a deflated transfer syntax may inflate to.
pub const MAX_INFLATED: usize = 256 << 20;
/// Element budget: at most one element (or item, or delimiter) per this many input
/// bytes, plus [`ELEMENT_ALLOWANCE`]. Every header takes at least 8 bytes, so this
/// only bites on inputs made of nothing but empty elements.
pub const MIN_BYTES_PER_ELEMENT: usize = 12;
/// Elements always allowed, whatever the input size.
pub const ELEMENT_ALLOWANCE: usize = 4096;

const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQ_END: u32 = 0xFFFE_E0DD;
const PIXEL_DATA: u32 = 0x7FE0_0010;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why bytes failed the structural scan. Offsets count from the start of the bytes
/// handed in (for deflated data sets: from the start of the inflated data set).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// No "DICM" at offset 0 or 128.
    #[error("no DICM prefix at offset 0 or 128")]
    NoPrefix,
    /// The file meta group is malformed.
    #[error("file meta group: {0}")]
    Meta(&'static str),
    /// A meta element overruns the group or the file.
    #[error(
        "file meta element {} at offset {offset}: length {len} exceeds the {avail} bytes left",
        fmt_tag(*tag)
    )]
    MetaLength {
        tag: u32,
        offset: usize,
        len: u32,
        avail: usize,
    },
    /// The transfer syntax named in the meta group is not one this build can read.
    #[error("unsupported transfer syntax {0}")]
    UnknownTransferSyntax(String),
    /// The bytes end inside a header.
    #[error("truncated {what} header at offset {offset}")]
    TruncatedHeader { what: &'static str, offset: usize },
    /// A defined length runs past the end of its container.
    #[error(
        "{} at offset {offset}: declared length {len} exceeds the {avail} bytes left in the enclosing {container}",
        fmt_tag(*tag)
    )]
    LengthOverrun {
        tag: u32,
        offset: usize,
        len: u32,
        avail: usize,
        container: &'static str,
    },
    /// A sequence or item was not closed before its container ended.
    #[error("{what} {} opened at offset {offset} is not closed before its container ends", fmt_tag(*tag))]
    Unterminated {
        what: &'static str,
        tag: u32,
        offset: usize,
    },
    /// An item or delimiter where a data element is expected, or the reverse.
    #[error("unexpected {} at offset {offset} in {context}", fmt_tag(*tag))]
    Unexpected {
        tag: u32,
        offset: usize,
        context: &'static str,
    },
    /// Explicit VR header with bytes that are no VR.
    #[error(
        "element {} at offset {offset} has no valid VR: the data set is not encoded in {encoding} as its transfer syntax says, or is corrupt",
        fmt_tag(*tag)
    )]
    InvalidVr {
        tag: u32,
        offset: usize,
        encoding: &'static str,
    },
    /// An encapsulated pixel data fragment with undefined length.
    #[error("pixel data fragment at offset {offset} has undefined length")]
    UndefinedFragment { offset: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("sequences nested deeper than {MAX_DEPTH} levels at offset {offset}")]
    TooDeep { offset: usize },
    /// More elements than the input size allows.
    #[error("more than {max} elements in {size} bytes")]
    TooManyElements { max: usize, size: usize },
    /// A deflated data set that does not inflate, or inflates past [`MAX_INFLATED`].
    #[error("deflated data set: {0}")]
    Inflate(&'static str),
    /// A problem inside a deflated data set (offsets count in the inflated bytes).
    #[error("in the inflated data set: {0}")]
    Deflated(Box<ScanError>),
}

fn fmt_tag(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

/// What a successful scan found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Where the data set starts (after preamble and meta group); 0 for a bare data set.
    pub dataset_offset: usize,
    /// Transfer syntax UID (from the meta group, or as given), without padding.
    pub transfer_syntax: String,
    /// Elements, items and delimiters seen.
    pub elements: usize,
    /// Deepest nesting seen (0: no sequences).
    pub max_depth: usize,
    /// First element with VR UN and undefined length in an explicit VR data set, as
    /// (tag, offset). PS3.5 6.2.2 says its content is implicit VR little endian; the scan
    /// reads it so, but dicom-parser 0.10 reads it as explicit VR and goes astray.
    pub undefined_length_un: Option<(u32, usize)>,
    /// The top-level Pixel Data element when it is the data set's last element (nothing
    /// follows it but fewer than 4 trailing bytes); `None` when there is none, when others
    /// follow it, or in a deflated data set. Lets ingest parse only what precedes it.
    pub trailing_pixel_data: Option<PixelDataHeader>,
}

/// The header of a top-level Pixel Data element, as the scan read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelDataHeader {
    /// Its explicit VR (`None` in an implicit VR data set).
    pub vr: Option<VR>,
    /// Its value length; `None` for undefined length (encapsulated fragments).
    pub len: Option<u32>,
}

/// Options for [`check_part10_with`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Stop at the first top-level element with a tag at or past this one (as
    /// dicom-object's `read_until` does); what follows is not looked at.
    pub stop_at: Option<u32>,
    /// Largest size a deflated data set may inflate to ([`MAX_INFLATED`] by default).
    pub max_inflated: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop_at: None,
            max_inflated: MAX_INFLATED,
        }
    }
}

/// Where the file meta group starts: after a 128-byte preamble, or at 0 without one.
fn prefix_offset(bytes: &[u8]) -> Option<usize> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some(128)
    } else if bytes.len() >= 4 && &bytes[..4] == b"DICM" {
        Some(0)
    } else {
        None
    }
}

/// Scans Part-10 bytes (with or without preamble): meta group, then the whole data set.
pub fn check_part10(bytes: &[u8]) -> Result<Summary, ScanError> {
    check_part10_with(bytes, Options::default())
}

/// [`check_part10`] with options.
pub fn check_part10_with(bytes: &[u8], opts: Options) -> Result<Summary, ScanError> {
    let off = prefix_offset(bytes).ok_or(ScanError::NoPrefix)?;
    let (ds_off, ts) = check_meta(bytes, off + 4)?;
    let mut s = scan_dataset(bytes, ds_off, &ts, opts)?;
    s.dataset_offset = ds_off;
    Ok(s)
}

/// Scans a bare data set (no meta group) encoded in `ts_uid`.
pub fn check(dataset: &[u8], ts_uid: &str) -> Result<Summary, ScanError> {
    let ts = ts_uid.trim_end_matches(['\0', ' ']);
    scan_dataset(dataset, 0, ts, Options::default())
}

/// Walks the meta group from `p` (just after "DICM") the way dicom-object reads it:
/// (0002,0000) UL first, then elements until the group length is used up. Returns the
/// data set offset and the transfer syntax UID.
fn check_meta(bytes: &[u8], p: usize) -> Result<(usize, String), ScanError> {
    let head = bytes
        .get(p..p + 12)
        .ok_or(ScanError::Meta("truncated before the group length element"))?;
    if head[..4] != [0x02, 0x00, 0x00, 0x00] {
        return Err(ScanError::Meta(
            "does not start with (0002,0000) group length",
        ));
    }
    if &head[4..6] != b"UL" || head[6..8] != [4, 0] {
        return Err(ScanError::Meta(
            "(0002,0000) group length is not a 4-byte UL",
        ));
    }
    let glen = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let start = p + 12;
    if glen > bytes.len() - start {
        return Err(ScanError::Meta(
            "group length runs past the end of the data",
        ));
    }
    let mut pos = start;
    let mut ts = None;
    while pos - start < glen {
        let h = bytes.get(pos..pos + 8).ok_or(ScanError::TruncatedHeader {
            what: "file meta element",
            offset: pos,
        })?;
        let tag = (u32::from(u16::from_le_bytes([h[0], h[1]])) << 16)
            | u32::from(u16::from_le_bytes([h[2], h[3]]));
        let (len, hlen) = if tag >> 16 == 0xFFFE {
            (u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 8)
        } else {
            match VR::from_binary([h[4], h[5]]) {
                Some(vr) if short_length(vr) => (u32::from(u16::from_le_bytes([h[6], h[7]])), 8),
                Some(_) => {
                    let l = bytes
                        .get(pos + 8..pos + 12)
                        .ok_or(ScanError::TruncatedHeader {
                            what: "file meta element",
                            offset: pos,
                        })?;
                    (u32::from_le_bytes([l[0], l[1], l[2], l[3]]), 12)
                }
                None => {
                    return Err(ScanError::InvalidVr {
                        tag,
                        offset: pos,
                        encoding: "explicit VR little endian (file meta)",
                    });
                }
            }
        };
        if len == UNDEFINED {
            return Err(ScanError::Meta("element with undefined length"));
        }
        let vstart = pos + hlen;
        let avail = bytes.len().saturating_sub(vstart);
        if len as usize > avail {
            return Err(ScanError::MetaLength {
                tag,
                offset: pos,
                len,
                avail,
            });
        }
        if tag == 0x0002_0010 {
            let v = &bytes[vstart..vstart + len as usize];
            let uid = v
                .iter()
                .rposition(|&b| b != 0 && b != b' ')
                .map_or(&v[..0], |i| &v[..=i]);
            if uid.is_empty()
                || uid.len() > 64
                || !uid.iter().all(|&b| b == b'.' || b.is_ascii_digit())
            {
                return Err(ScanError::Meta(
                    "transfer syntax UID (0002,0010) is empty or not a UID",
                ));
            }
            ts = Some(String::from_utf8_lossy(uid).into_owned());
        }
        pos = vstart + len as usize;
    }
    let ts = ts.ok_or(ScanError::Meta("no transfer syntax UID (0002,0010)"))?;
    Ok((pos, ts))
}

/// VRs with a 2-byte length in explicit VR headers (PS3.5 7.1.2).
fn short_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS
            | AT
            | CS
            | DA
            | DS
            | DT
            | FL
            | FD
            | IS
            | LO
            | LT
            | PN
            | SH
            | SL
            | SS
            | ST
            | TM
            | UI
            | UL
            | US
    )
}

fn scan_dataset(
    bytes: &[u8],
    start: usize,
    ts_uid: &str,
    opts: Options,
) -> Result<Summary, ScanError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| ScanError::UnknownTransferSyntax(ts_uid.to_string()))?;
    // Implicit VR Little Endian is the only implicit VR transfer syntax (the field is
    // not public on `TransferSyntax`).
    let explicit = ts.uid() != "1.2.840.10008.1.2";
    let big = ts.endianness() == dicom_encoding::Endianness::Big;
    let mut summary = Summary {
        transfer_syntax: ts_uid.to_string(),
        ..Summary::default()
    };
    if let Codec::Dataset(adapter) = ts.codec() {
        let adapter = adapter
            .as_ref()
            .ok_or(ScanError::Inflate("not supported in this build"))?;
        let mut out = Vec::new();
        adapter
            .adapt_reader(Box::new(&bytes[start..]))
            .take(opts.max_inflated as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|_| ScanError::Inflate("corrupt deflate stream"))?;
        if out.len() > opts.max_inflated {
            return Err(ScanError::Inflate("inflates past the size limit"));
        }
        let mut sc = Scanner::new(&out, explicit, big);
        sc.top(0, opts.stop_at)
            .map_err(|e| ScanError::Deflated(Box::new(e)))?;
        summary.elements = sc.elements;
        summary.max_depth = sc.max_depth;
        summary.undefined_length_un = sc.undefined_un;
        return Ok(summary);
    }
    let mut sc = Scanner::new(bytes, explicit, big);
    sc.top(start, opts.stop_at)?;
    summary.elements = sc.elements;
    summary.max_depth = sc.max_depth;
    summary.undefined_length_un = sc.undefined_un;
    if opts.stop_at.is_none() {
        summary.trailing_pixel_data = sc.last_pixel_data;
    }
    Ok(summary)
}

/// A header as read: tag, VR (None for items/delimiters and implicit VR), length,
/// header size.
struct Header {
    tag: u32,
    vr: Option<VR>,
    len: u32,
    hlen: usize,
}

struct Scanner<'a> {
    buf: &'a [u8],
    explicit: bool,
    big: bool,
    elements: usize,
    budget: usize,
    max_depth: usize,
    undefined_un: Option<(u32, usize)>,
    /// The last top-level element read, when it was Pixel Data.
    last_pixel_data: Option<PixelDataHeader>,
}

impl<'a> Scanner<'a> {
    fn new(buf: &'a [u8], explicit: bool, big: bool) -> Self {
        Scanner {
            buf,
            explicit,
            big,
            elements: 0,
            budget: ELEMENT_ALLOWANCE + buf.len() / MIN_BYTES_PER_ELEMENT,
            max_depth: 0,
            undefined_un: None,
            last_pixel_data: None,
        }
    }

    fn u16(&self, p: usize, big: bool) -> u16 {
        let b = [self.buf[p], self.buf[p + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, p: usize, big: bool) -> u32 {
        let b = [
            self.buf[p],
            self.buf[p + 1],
            self.buf[p + 2],
            self.buf[p + 3],
        ];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Reads a header at `pos`, which must lie before `end`.
    fn header(
        &mut self,
        pos: usize,
        end: usize,
        explicit: bool,
        big: bool,
    ) -> Result<Header, ScanError> {
        self.elements += 1;
        if self.elements > self.budget {
            return Err(ScanError::TooManyElements {
                max: self.budget,
                size: self.buf.len(),
            });
        }
        let trunc = ScanError::TruncatedHeader {
            what: "element",
            offset: pos,
        };
        if end - pos < 8 {
            return Err(trunc);
        }
        let tag = (u32::from(self.u16(pos, big)) << 16) | u32::from(self.u16(pos + 2, big));
        if tag >> 16 == 0xFFFE {
            // Items and delimiters: no VR, always a 4-byte length.
            return Ok(Header {
                tag,
                vr: None,
                len: self.u32(pos + 4, big),
                hlen: 8,
            });
        }
        if !explicit {
            return Ok(Header {
                tag,
                vr: None,
                len: self.u32(pos + 4, big),
                hlen: 8,
            });
        }
        let vr = VR::from_binary([self.buf[pos + 4], self.buf[pos + 5]]).ok_or(
            ScanError::InvalidVr {
                tag,
                offset: pos,
                encoding: if big {
                    "explicit VR big endian"
                } else {
                    "explicit VR little endian"
                },
            },
        )?;
        if short_length(vr) {
            Ok(Header {
                tag,
                vr: Some(vr),
                len: u32::from(self.u16(pos + 6, big)),
                hlen: 8,
            })
        } else {
            if end - pos < 12 {
                return Err(trunc);
            }
            Ok(Header {
                tag,
                vr: Some(vr),
                len: self.u32(pos + 8, big),
                hlen: 12,
            })
        }
    }

    fn top(&mut self, start: usize, stop_at: Option<u32>) -> Result<(), ScanError> {
        let end = self.buf.len();
        let mut pos = start;
        // Fewer than 4 trailing bytes are ignored, as dicom-parser does (EOF in a tag).
        while end - pos >= 4 {
            if let Some(stop) = stop_at {
                let tag = (u32::from(self.u16(pos, self.big)) << 16)
                    | u32::from(self.u16(pos + 2, self.big));
                if tag >= stop && tag >> 16 != 0xFFFE {
                    return Ok(());
                }
            }
            let h = self.header(pos, end, self.explicit, self.big)?;
            match h.tag {
                // A stray item delimiter at top level is skipped by dicom-parser.
                ITEM_END => pos += 8,
                ITEM | SEQ_END => {
                    return Err(ScanError::Unexpected {
                        tag: h.tag,
                        offset: pos,
                        context: "the top-level data set",
                    });
                }
                _ => {
                    self.last_pixel_data = (h.tag == PIXEL_DATA).then_some(PixelDataHeader {
                        vr: h.vr,
                        len: (h.len != UNDEFINED).then_some(h.len),
                    });
                    pos = self.element(pos, h, end, 0, self.explicit, self.big, "file")?;
                }
            }
        }
        Ok(())
    }

    /// Checks the element whose header `h` is at `pos`; returns the offset after it.
    #[allow(clippy::too_many_arguments)]
    fn element(
        &mut self,
        pos: usize,
        h: Header,
        end: usize,
        depth: usize,
        explicit: bool,
        big: bool,
        container: &'static str,
    ) -> Result<usize, ScanError> {
        let vstart = pos + h.hlen;
        let avail = end - vstart;
        let is_sq = match h.vr {
            Some(vr) => vr == VR::SQ,
            None => implicit_is_sq(h.tag),
        };
        if h.len == UNDEFINED {
            if h.tag == PIXEL_DATA {
                return self.fragments(vstart, end, depth + 1, big);
            }
            if h.vr == Some(VR::UN) {
                self.undefined_un.get_or_insert((h.tag, pos));
                // PS3.5 6.2.2: the content is implicit VR little endian.
                return self.sequence(vstart, None, end, depth + 1, false, false, h.tag, pos);
            }
            // Sequences, and (as dicom-parser reads them) any other undefined length.
            return self.sequence(vstart, None, end, depth + 1, explicit, big, h.tag, pos);
        }
        let len = h.len as usize;
        if len > avail {
            return Err(ScanError::LengthOverrun {
                tag: h.tag,
                offset: pos,
                len: h.len,
                avail,
                container,
            });
        }
        if is_sq {
            self.sequence(
                vstart,
                Some(vstart + len),
                end,
                depth + 1,
                explicit,
                big,
                h.tag,
                pos,
            )?;
        }
        Ok(vstart + len)
    }

    /// Items of a sequence starting at `pos`, up to `seq_end` (defined length) or a
    /// sequence delimiter before `end`.
    #[allow(clippy::too_many_arguments)]
    fn sequence(
        &mut self,
        mut pos: usize,
        seq_end: Option<usize>,
        end: usize,
        depth: usize,
        explicit: bool,
        big: bool,
        tag: u32,
        opened: usize,
    ) -> Result<usize, ScanError> {
        self.enter(depth, pos)?;
        let limit = seq_end.unwrap_or(end);
        loop {
            if seq_end == Some(pos) {
                return Ok(pos);
            }
            if pos >= limit {
                return Err(ScanError::Unterminated {
                    what: "sequence",
                    tag,
                    offset: opened,
                });
            }
            let h = self.header(pos, limit, explicit, big)?;
            match h.tag {
                SEQ_END if seq_end.is_none() => return Ok(pos + 8),
                ITEM => {
                    let vstart = pos + 8;
                    if h.len == UNDEFINED {
                        pos = self.item(vstart, None, limit, depth, explicit, big, pos)?;
                    } else {
                        let avail = limit - vstart;
                        if h.len as usize > avail {
                            return Err(ScanError::LengthOverrun {
                                tag: h.tag,
                                offset: pos,
                                len: h.len,
                                avail,
                                container: "sequence",
                            });
                        }
                        let iend = vstart + h.len as usize;
                        pos = self.item(vstart, Some(iend), iend, depth, explicit, big, pos)?;
                    }
                }
                _ => {
                    return Err(ScanError::Unexpected {
                        tag: h.tag,
                        offset: pos,
                        context: "a sequence (expected an item)",
                    });
                }
            }
        }
    }

    /// Elements of an item starting at `pos`, up to `item_end` or an item delimiter.
    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        mut pos: usize,
        item_end: Option<usize>,
        end: usize,
        depth: usize,
        explicit: bool,
        big: bool,
        opened: usize,
    ) -> Result<usize, ScanError> {
        self.enter(depth, pos)?;
        loop {
            if item_end == Some(pos) {
                return Ok(pos);
            }
            if pos >= end {
                return Err(ScanError::Unterminated {
                    what: "item",
                    tag: ITEM,
                    offset: opened,
                });
            }
            let h = self.header(pos, end, explicit, big)?;
            match h.tag {
                ITEM_END if item_end.is_none() => return Ok(pos + 8),
                ITEM | SEQ_END | ITEM_END => {
                    return Err(ScanError::Unexpected {
                        tag: h.tag,
                        offset: pos,
                        context: "an item (expected an element)",
                    });
                }
                _ => pos = self.element(pos, h, end, depth, explicit, big, "item")?,
            }
        }
    }

    /// Encapsulated pixel data: defined-length items up to a sequence delimiter.
    fn fragments(
        &mut self,
        mut pos: usize,
        end: usize,
        depth: usize,
        big: bool,
    ) -> Result<usize, ScanError> {
        self.enter(depth, pos)?;
        let opened = pos;
        loop {
            if end - pos < 8 && end == self.buf.len() {
                // dicom-parser ends the object gracefully when the bytes end inside
                // encapsulated pixel data at a fragment boundary (a missing delimiter).
                return Ok(end);
            }
            if pos >= end {
                return Err(ScanError::Unterminated {
                    what: "encapsulated pixel data",
                    tag: PIXEL_DATA,
                    offset: opened,
                });
            }
            let h = self.header(pos, end, false, big)?;
            match h.tag {
                SEQ_END => return Ok(pos + 8),
                ITEM if h.len == UNDEFINED => {
                    return Err(ScanError::UndefinedFragment { offset: pos });
                }
                ITEM => {
                    let avail = end - (pos + 8);
                    if h.len as usize > avail {
                        return Err(ScanError::LengthOverrun {
                            tag: h.tag,
                            offset: pos,
                            len: h.len,
                            avail,
                            container: "pixel data",
                        });
                    }
                    pos += 8 + h.len as usize;
                }
                _ => {
                    return Err(ScanError::Unexpected {
                        tag: h.tag,
                        offset: pos,
                        context: "encapsulated pixel data (expected a fragment)",
                    });
                }
            }
        }
    }

    fn enter(&mut self, depth: usize, pos: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError::TooDeep { offset: pos });
        }
        self.max_depth = self.max_depth.max(depth);
        Ok(())
    }
}

/// Whether dicom-parser reads this tag as a sequence in implicit VR (dictionary VR SQ).
fn implicit_is_sq(tag: u32) -> bool {
    let t = Tag((tag >> 16) as u16, tag as u16);
    StandardDataDictionary
        .by_tag(t)
        .is_some_and(|e| e.vr().relaxed() == VR::SQ)
}
