//! Pixel data decoding: one frame of any common transfer syntax to native samples, and original frames.
//!
//! Who decodes what (`decode_frame`):
//!
//! | transfer syntax | decoder |
//! |---|---|
//! | implicit/explicit VR little endian, explicit big endian, deflated | this module ([`native`]), on values dicom-object parsed (and inflated) |
//! | encapsulated uncompressed (1.2.840.10008.1.2.1.98) | this module |
//! | RLE Lossless | this module ([`rle`]); dicom-pixeldata's adapter fails on 32-bit samples |
//! | JPEG baseline, extended 12-bit, lossless (processes 1, 2/4, 14, SV1) | libjpeg-turbo 3 ([`jpeg`]) |
//! | JPEG-LS lossless and near-lossless | CharLS ([`jpegls`]) |
//! | JPEG 2000 lossless/lossy, HTJ2K | OpenJPEG's Rust port, `openjp2` via `jpeg2k` ([`j2k`]) |
//!
//! The 12-bit gap: dicom-pixeldata's JPEG codec, `jpeg-decoder`, rejects 12-bit DCT data (process 4),
//! and Debian's libjpeg-turbo 2.1 has no 12-bit API. libjpeg-turbo 3 does (`tj3Decompress12`, and
//! `tj3Decompress16` for lossless data up to 16 bits), and `turbojpeg-sys` builds it from the
//! source it bundles (with cmake, no system library), so every JPEG process goes through it.
//!
//! After the codec, samples are masked to Bits Stored (shifted down when High Bit is not
//! Bits Stored - 1), sign-extended when Pixel Representation is 1, interleaved when Planar
//! Configuration is 1, and YBR colour is converted to RGB. Bad data gives a [`PixelError`], never a
//! panic: codec calls run under `catch_unwind` as a last guard.

mod color;
mod fragments;
mod j2k;
mod jpeg;
pub(crate) use jpeg::encode as encode_jpeg;
mod jpegls;
mod native;
mod rle;

use std::borrow::Cow;

use dicom_core::Tag;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

/// Decoded samples of one frame, in the stored (pre-modality-LUT) representation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Samples {
    /// 8-bit unsigned samples (also colour images, interleaved RGB, and 1-bit data as 0/1).
    U8(Vec<u8>),
    /// Unsigned samples with 9 to 16 bits allocated.
    U16(Vec<u16>),
    /// Signed samples with up to 16 bits allocated (Pixel Representation 1).
    I16(Vec<i16>),
    /// Unsigned samples with 32 bits allocated.
    U32(Vec<u32>),
    /// Signed samples with 32 bits allocated.
    I32(Vec<i32>),
}

impl Samples {
    /// Number of samples (pixels times samples per pixel).
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::I16(v) => v.len(),
            Samples::U32(v) => v.len(),
            Samples::I32(v) => v.len(),
        }
    }

    /// Whether there are no samples.
    /// The smallest and largest sample (8- and 16-bit samples; `None` for others or none).
    pub fn min_max(&self) -> Option<(i64, i64)> {
        fn mm<T: Copy + Ord + Into<i64>>(v: &[T]) -> Option<(i64, i64)> {
            let first = *v.first()?;
            let (lo, hi) = v
                .iter()
                .fold((first, first), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            Some((lo.into(), hi.into()))
        }
        match self {
            Samples::U8(v) => mm(v),
            Samples::U16(v) => mm(v),
            Samples::I16(v) => mm(v),
            Samples::U32(_) | Samples::I32(_) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i` widened to `i64` (for tests and slow paths), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            Samples::U8(v) => v.get(i).map(|&x| i64::from(x)),
            Samples::U16(v) => v.get(i).map(|&x| i64::from(x)),
            Samples::I16(v) => v.get(i).map(|&x| i64::from(x)),
            Samples::U32(v) => v.get(i).map(|&x| i64::from(x)),
            Samples::I32(v) => v.get(i).map(|&x| i64::from(x)),
        }
    }

    /// The samples as little-endian bytes, each in its own width (1, 2 or 4 bytes).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// Photometric Interpretation (0028,0004).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Photometric {
    /// Greyscale, minimum sample displayed white.
    Monochrome1,
    /// Greyscale, minimum sample displayed black.
    Monochrome2,
    /// Indices into the Red/Green/Blue Palette Colour LUTs.
    PaletteColor,
    /// Red, green, blue.
    Rgb,
    /// Full-range YCbCr.
    YbrFull,
    /// Full-range YCbCr, chroma halved horizontally.
    YbrFull422,
    /// Partial-range YCbCr, chroma halved horizontally (retired for native data).
    YbrPartial422,
    /// Partial-range YCbCr, chroma halved both ways.
    YbrPartial420,
    /// Irreversible colour transform (JPEG 2000; the codec returns RGB).
    YbrIct,
    /// Reversible colour transform (JPEG 2000; the codec returns RGB).
    YbrRct,
    /// Any other value, as written.
    Other(String),
}

impl Photometric {
    /// Parses the attribute value (surrounding spaces ignored).
    pub fn parse(s: &str) -> Self {
        match s.trim_matches(|c: char| c == ' ' || c == '\0') {
            "MONOCHROME1" => Self::Monochrome1,
            "MONOCHROME2" => Self::Monochrome2,
            "PALETTE COLOR" => Self::PaletteColor,
            "RGB" => Self::Rgb,
            "YBR_FULL" => Self::YbrFull,
            "YBR_FULL_422" => Self::YbrFull422,
            "YBR_PARTIAL_422" => Self::YbrPartial422,
            "YBR_PARTIAL_420" => Self::YbrPartial420,
            "YBR_ICT" => Self::YbrIct,
            "YBR_RCT" => Self::YbrRct,
            other => Self::Other(other.to_string()),
        }
    }

    /// Whether this is MONOCHROME1 or MONOCHROME2.
    pub fn is_monochrome(&self) -> bool {
        matches!(self, Self::Monochrome1 | Self::Monochrome2)
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Number of rows (height).
    pub rows: u32,
    /// Number of columns (width).
    pub cols: u32,
    /// Samples per pixel: 1 for greyscale and palette, 3 for colour (always interleaved here).
    pub samples_per_pixel: u16,
    /// Bits stored per sample (samples are masked to it and sign-extended).
    pub bits_stored: u16,
    /// The samples, row-major, interleaved for colour.
    pub samples: Samples,
    /// Photometric interpretation of `samples`: YBR input is returned as [`Photometric::Rgb`].
    pub photometric: Photometric,
}

/// Why pixel data could not be decoded or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PixelError {
    /// The object has no pixel data or lacks an attribute needed to decode it.
    #[error("missing or invalid image attribute: {0}")]
    Attribute(String),
    /// The requested frame does not exist.
    #[error("frame {frame} out of range (object has {count} frames)")]
    FrameOutOfRange {
        /// The requested frame, 0-based.
        frame: u32,
        /// How many frames the object has.
        count: u32,
    },
    /// The transfer syntax (or this combination of attributes) is not supported for decoding.
    #[error("transfer syntax {0} cannot be decoded")]
    Unsupported(String),
    /// The codec failed on this data, or the data is shorter than the attributes say.
    #[error("pixel data could not be decoded: {0}")]
    Decode(String),
    /// A rendered image could not be encoded.
    #[error("rendered image could not be encoded: {0}")]
    Encode(String),
}

/// Image Pixel module attributes that decoding depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PixelInfo {
    /// Rows (0028,0010).
    pub rows: u32,
    /// Columns (0028,0011).
    pub cols: u32,
    /// Samples per Pixel (0028,0002).
    pub samples_per_pixel: u16,
    /// Bits Allocated (0028,0100): 1, 8, 16 or 32.
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101).
    pub bits_stored: u16,
    /// High Bit (0028,0102).
    pub high_bit: u16,
    /// Pixel Representation (0028,0103) is 1: two's complement samples.
    pub signed: bool,
    /// Planar Configuration (0028,0006): 1 is colour-by-plane.
    pub planar_configuration: u16,
    /// Photometric Interpretation (0028,0004).
    pub photometric: Photometric,
    /// Number of Frames (0028,0008), 1 when absent.
    pub number_of_frames: u32,
}

impl PixelInfo {
    /// Reads and checks the attributes from a data set.
    pub fn from_object(obj: &InMemDicomObject) -> Result<Self, PixelError> {
        let rows = req_int(obj, tags::ROWS, "Rows")?;
        let cols = req_int(obj, tags::COLUMNS, "Columns")?;
        let samples_per_pixel = opt_int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let bits_allocated: u16 = req_int(obj, tags::BITS_ALLOCATED, "BitsAllocated")?;
        let bits_stored = opt_int(obj, tags::BITS_STORED).unwrap_or(bits_allocated);
        let high_bit = opt_int(obj, tags::HIGH_BIT).unwrap_or(bits_stored.saturating_sub(1));
        let signed = opt_int::<u16>(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
        let planar_configuration = opt_int(obj, tags::PLANAR_CONFIGURATION).unwrap_or(0);
        let photometric = obj
            .get(tags::PHOTOMETRIC_INTERPRETATION)
            .and_then(|e| e.to_str().ok())
            .map(|s| Photometric::parse(&s))
            .unwrap_or(if samples_per_pixel == 3 {
                Photometric::Rgb
            } else {
                Photometric::Monochrome2
            });
        // Number of Frames is IS and may carry a sign or spaces; 0 or absent means one frame.
        let number_of_frames = obj
            .get(tags::NUMBER_OF_FRAMES)
            .and_then(|e| e.to_int::<i64>().ok())
            .filter(|&n| n > 0)
            .map_or(Ok(1), u32::try_from)
            .map_err(|_| PixelError::Attribute("NumberOfFrames too large".into()))?;
        let info = PixelInfo {
            rows,
            cols,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
            planar_configuration,
            photometric,
            number_of_frames,
        };
        info.check()?;
        Ok(info)
    }

    fn check(&self) -> Result<(), PixelError> {
        let bad = |what: &str| Err(PixelError::Attribute(what.to_string()));
        if self.rows == 0 || self.cols == 0 {
            return bad("Rows and Columns must be positive");
        }
        if !matches!(self.samples_per_pixel, 1 | 3) {
            return bad("SamplesPerPixel must be 1 or 3");
        }
        if !matches!(self.bits_allocated, 1 | 8 | 16 | 32) {
            return bad("BitsAllocated must be 1, 8, 16 or 32");
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return bad("BitsStored must be 1 to BitsAllocated");
        }
        if self.high_bit >= self.bits_allocated || self.high_bit + 1 < self.bits_stored {
            return bad("HighBit inconsistent with BitsStored/BitsAllocated");
        }
        // Refuse absurd sizes before allocating: 2^31 samples per frame is far beyond any real image.
        if self.samples_per_frame() > (1 << 31) {
            return bad("frame too large");
        }
        Ok(())
    }

    /// Samples in one decoded frame (rows x columns x samples per pixel).
    pub fn samples_per_frame(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.cols) * u64::from(self.samples_per_pixel)
    }
}

fn opt_int<T: TryFrom<i64>>(obj: &InMemDicomObject, tag: Tag) -> Option<T> {
    obj.get(tag)
        .and_then(|e| e.to_int::<i64>().ok())
        .and_then(|v| T::try_from(v).ok())
}

fn req_int<T: TryFrom<i64>>(obj: &InMemDicomObject, tag: Tag, name: &str) -> Result<T, PixelError> {
    opt_int(obj, tag).ok_or_else(|| PixelError::Attribute(format!("{name} missing or invalid")))
}

/// How a transfer syntax stores pixel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Native (uncompressed) little endian, including deflated data sets.
    NativeLittleEndian,
    /// Native big endian (retired Explicit VR Big Endian).
    NativeBigEndian,
    /// Encapsulated, uncompressed frames (1.2.840.10008.1.2.1.98).
    EncapsulatedUncompressed,
    /// RLE Lossless.
    Rle,
    /// Any JPEG process (ISO 10918-1).
    Jpeg,
    /// JPEG-LS lossless or near-lossless.
    JpegLs,
    /// JPEG 2000 (Part 1 and 2) and High-Throughput JPEG 2000.
    Jpeg2000,
    /// Encapsulated with a codec this module does not have (MPEG, HEVC, JPEG XL, ...).
    OtherEncapsulated,
}

impl Encoding {
    /// Classifies a transfer syntax UID; `None` for unknown UIDs.
    pub fn of(ts_uid: &str) -> Option<Self> {
        let ts = ts_uid.trim_end_matches(['\0', ' ']);
        Some(match ts {
            "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.1.99" => {
                Self::NativeLittleEndian
            }
            "1.2.840.10008.1.2.2" => Self::NativeBigEndian,
            "1.2.840.10008.1.2.1.98" => Self::EncapsulatedUncompressed,
            "1.2.840.10008.1.2.5" => Self::Rle,
            "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Self::JpegLs,
            "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.92"
            | "1.2.840.10008.1.2.4.93"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203" => Self::Jpeg2000,
            _ => match ts.strip_prefix("1.2.840.10008.1.2.4.") {
                // 50-66 and 70: the ISO 10918-1 processes (baseline, extended, lossless, SV1...).
                Some(n)
                    if n.parse::<u32>()
                        .is_ok_and(|n| (50..=66).contains(&n) || n == 70) =>
                {
                    Self::Jpeg
                }
                // 94/95 JPIP referenced, 100-108 MPEG/HEVC, 110-112 JPEG XL.
                Some(_) => Self::OtherEncapsulated,
                None => return None,
            },
        })
    }

    /// Whether pixel data of this encoding is an encapsulated fragment sequence.
    pub fn is_encapsulated(self) -> bool {
        !matches!(self, Self::NativeLittleEndian | Self::NativeBigEndian)
    }
}

/// The media type PS3.18 (table 8.7.3-2) gives frames of this transfer syntax, as stored.
///
/// Native syntaxes give `application/octet-stream`; RLE gives `image/dicom-rle` (registered
/// with IANA; older PS3.18 editions used `image/x-dicom-rle`). `None` for unknown UIDs.
pub fn media_type(ts_uid: &str) -> Option<&'static str> {
    let ts = ts_uid.trim_end_matches(['\0', ' ']);
    Some(match ts {
        "1.2.840.10008.1.2"
        | "1.2.840.10008.1.2.1"
        | "1.2.840.10008.1.2.1.99"
        | "1.2.840.10008.1.2.2"
        | "1.2.840.10008.1.2.1.98" => "application/octet-stream",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.4.100"
        | "1.2.840.10008.1.2.4.100.1"
        | "1.2.840.10008.1.2.4.101"
        | "1.2.840.10008.1.2.4.101.1" => "video/mpeg",
        "1.2.840.10008.1.2.4.102"
        | "1.2.840.10008.1.2.4.102.1"
        | "1.2.840.10008.1.2.4.103"
        | "1.2.840.10008.1.2.4.103.1"
        | "1.2.840.10008.1.2.4.104"
        | "1.2.840.10008.1.2.4.104.1"
        | "1.2.840.10008.1.2.4.105"
        | "1.2.840.10008.1.2.4.105.1"
        | "1.2.840.10008.1.2.4.106"
        | "1.2.840.10008.1.2.4.106.1" => "video/mp4",
        "1.2.840.10008.1.2.4.107" | "1.2.840.10008.1.2.4.108" => "video/H265",
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => {
            "image/jxl"
        }
        _ if Encoding::of(ts) == Some(Encoding::Jpeg) => "image/jpeg",
        _ => return None,
    })
}

/// Number of frames in the object (Number of Frames, 1 when absent).
pub fn frame_count(obj: &InMemDicomObject) -> u32 {
    obj.get(tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<i64>().ok())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Decodes frame `frame` (0-based) of a Part-10 object to native samples.
pub fn decode_frame(obj: &DefaultDicomObject, frame: u32) -> Result<Frame, PixelError> {
    decode_frame_ts(obj, obj.meta().transfer_syntax(), frame)
}

/// Decodes frame `frame` (0-based) of a data set whose transfer syntax is `ts_uid`
/// (for data sets without file meta, such as those received over DIMSE).
pub fn decode_frame_ts(
    obj: &InMemDicomObject,
    ts_uid: &str,
    frame: u32,
) -> Result<Frame, PixelError> {
    let info = PixelInfo::from_object(obj)?;
    check_frame(&info, frame)?;
    let encoding =
        Encoding::of(ts_uid).ok_or_else(|| PixelError::Unsupported(ts_uid.to_string()))?;
    let value = pixel_value(obj)?;
    let decoded = match encoding {
        Encoding::NativeLittleEndian | Encoding::NativeBigEndian => {
            let bytes =
                native::frame_le_bytes(value, &info, frame, encoding == Encoding::NativeBigEndian)?;
            native::decode_le(&bytes, &info)?
        }
        Encoding::OtherEncapsulated => return Err(PixelError::Unsupported(ts_uid.to_string())),
        _ => {
            let data = encapsulated_frame_in(obj, value, &info, frame)?;
            guard(|| match encoding {
                Encoding::EncapsulatedUncompressed => native::decode_le(&data, &info),
                Encoding::Rle => rle::decode(&data, &info),
                Encoding::Jpeg => jpeg::decode(&data, &info),
                Encoding::JpegLs => jpegls::decode(&data, &info),
                _ => j2k::decode(&data, &info),
            })?
        }
    };
    finish(decoded, &info)
}

/// The decompressed frame as little-endian bytes, for `application/octet-stream` frames.
///
/// Native objects give their stored frame bytes unchanged (converted to little endian, 1-bit
/// frames repacked to start at bit 0). Encapsulated objects give the decoded samples: masked to
/// Bits Stored, colour interleaved and YBR converted to RGB, as a decompressing archive stores them.
pub fn native_frame_bytes(obj: &DefaultDicomObject, frame: u32) -> Result<Vec<u8>, PixelError> {
    let ts = obj.meta().transfer_syntax();
    match Encoding::of(ts) {
        Some(e @ (Encoding::NativeLittleEndian | Encoding::NativeBigEndian)) => {
            let info = PixelInfo::from_object(obj)?;
            check_frame(&info, frame)?;
            let value = pixel_value(obj)?;
            let bytes =
                native::frame_le_bytes(value, &info, frame, e == Encoding::NativeBigEndian)?;
            Ok(bytes.into_owned())
        }
        _ => Ok(decode_frame(obj, frame)?.samples.to_le_bytes()),
    }
}

/// The original compressed bytes of frame `frame` of an encapsulated object.
///
/// Frames are found with the Extended Offset Table, else the Basic Offset Table, else one
/// fragment per frame, else by JPEG/JPEG-LS/JPEG 2000 start and end markers.
pub fn encapsulated_frame(
    obj: &DefaultDicomObject,
    frame: u32,
) -> Result<Cow<'_, [u8]>, PixelError> {
    let info = PixelInfo::from_object(obj)?;
    check_frame(&info, frame)?;
    let value = pixel_value(obj)?;
    encapsulated_frame_in(obj, value, &info, frame)
}

/// The original compressed bytes of every frame of an encapsulated object, in order.
pub fn encapsulated_frames(obj: &DefaultDicomObject) -> Result<Vec<Cow<'_, [u8]>>, PixelError> {
    let info = PixelInfo::from_object(obj)?;
    let value = pixel_value(obj)?;
    let (fragments, ranges) = frame_ranges(obj, value, &info)?;
    Ok(ranges
        .into_iter()
        .map(|r| fragments::join(fragments, r))
        .collect())
}

fn check_frame(info: &PixelInfo, frame: u32) -> Result<(), PixelError> {
    if frame >= info.number_of_frames {
        return Err(PixelError::FrameOutOfRange {
            frame,
            count: info.number_of_frames,
        });
    }
    Ok(())
}

fn pixel_value(obj: &InMemDicomObject) -> Result<&Value<InMemDicomObject>, PixelError> {
    obj.get(tags::PIXEL_DATA)
        .map(|e| e.value())
        .ok_or_else(|| PixelError::Attribute("no Pixel Data".into()))
}

type FrameRanges<'a> = (&'a [Vec<u8>], Vec<fragments::FrameSpan>);

fn frame_ranges<'a>(
    obj: &InMemDicomObject,
    value: &'a Value<InMemDicomObject>,
    info: &PixelInfo,
) -> Result<FrameRanges<'a>, PixelError> {
    let Value::PixelSequence(seq) = value else {
        return Err(PixelError::Attribute(
            "Pixel Data is not encapsulated".into(),
        ));
    };
    let fragments = seq.fragments();
    let eot = u64_values(obj, tags::EXTENDED_OFFSET_TABLE);
    let eot_lengths = u64_values(obj, tags::EXTENDED_OFFSET_TABLE_LENGTHS);
    let ranges = fragments::frame_spans(
        fragments,
        seq.offset_table(),
        eot.as_deref(),
        eot_lengths.as_deref(),
        info.number_of_frames,
    )?;
    Ok((fragments, ranges))
}

fn encapsulated_frame_in<'a>(
    obj: &InMemDicomObject,
    value: &'a Value<InMemDicomObject>,
    info: &PixelInfo,
    frame: u32,
) -> Result<Cow<'a, [u8]>, PixelError> {
    let (fragments, mut ranges) = frame_ranges(obj, value, info)?;
    let idx = frame as usize;
    if idx >= ranges.len() {
        return Err(PixelError::FrameOutOfRange {
            frame,
            count: ranges.len() as u32,
        });
    }
    Ok(fragments::join(fragments, ranges.swap_remove(idx)))
}

/// Reads an OV attribute (Extended Offset Table and its lengths) as u64 values.
fn u64_values(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<u64>> {
    let v = obj.get(tag)?.value().primitive()?;
    match v {
        PrimitiveValue::U64(v) => Some(v.to_vec()),
        PrimitiveValue::I64(v) => Some(v.iter().map(|&x| x as u64).collect()),
        PrimitiveValue::U8(b) if b.len() % 8 == 0 => Some(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        PrimitiveValue::Empty => None,
        _ => None,
    }
    .filter(|v| !v.is_empty())
}

/// Runs a codec, turning a panic inside it into an error (a last guard against bad data).
fn guard<T>(f: impl FnOnce() -> Result<T, PixelError>) -> Result<T, PixelError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(PixelError::Decode("codec failed on malformed data".into())))
}

/// Codec output: raw stored bit patterns, one buffer width per Bits Allocated class.
#[derive(Debug)]
pub(crate) enum Raw {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Raw {
    fn len(&self) -> usize {
        match self {
            Raw::U8(v) => v.len(),
            Raw::U16(v) => v.len(),
            Raw::U32(v) => v.len(),
        }
    }
}

/// What a codec produced: interleaved samples, and whether colour is already RGB.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) raw: Raw,
    /// The codec converted colour to RGB (JPEG, JPEG 2000 with a colour transform).
    pub(crate) rgb: bool,
}

/// Masks, sign-extends, converts colour, and checks the sample count.
fn finish(decoded: Decoded, info: &PixelInfo) -> Result<Frame, PixelError> {
    let expected = info.samples_per_frame() as usize;
    if decoded.raw.len() != expected {
        return Err(PixelError::Decode(format!(
            "decoded {} samples, expected {expected}",
            decoded.raw.len()
        )));
    }
    let spp = info.samples_per_pixel;
    let mut photometric = info.photometric.clone();
    let mut raw = decoded.raw;
    if spp == 3 {
        if decoded.rgb {
            photometric = Photometric::Rgb;
        } else if let Some(converted) = color::ybr_to_rgb(&mut raw, info)? {
            photometric = converted;
        }
    }
    let samples = normalize(raw, info);
    Ok(Frame {
        rows: info.rows,
        cols: info.cols,
        samples_per_pixel: spp,
        bits_stored: info.bits_stored,
        samples,
        photometric,
    })
}

/// Applies High Bit, Bits Stored and Pixel Representation to raw bit patterns.
fn normalize(raw: Raw, info: &PixelInfo) -> Samples {
    let bs = u32::from(info.bits_stored);
    let shift = u32::from(info.high_bit) + 1 - bs;
    let mask: u32 = if bs >= 32 { u32::MAX } else { (1 << bs) - 1 };
    let sign_bit: u32 = 1 << (bs - 1);
    // Two's complement sign extension of a bs-bit value held in a u32.
    let ext = move |v: u32| -> i32 {
        let v = (v >> shift) & mask;
        if bs < 32 && v & sign_bit != 0 {
            (v | !mask) as i32
        } else {
            v as i32
        }
    };
    let unsigned = move |v: u32| (v >> shift) & mask;
    match (raw, info.signed, info.bits_allocated) {
        (Raw::U8(v), false, _) if bs == 8 => Samples::U8(v),
        (Raw::U8(v), false, _) => {
            Samples::U8(v.into_iter().map(|x| unsigned(x.into()) as u8).collect())
        }
        (Raw::U8(v), true, _) => {
            Samples::I16(v.into_iter().map(|x| ext(x.into()) as i16).collect())
        }
        (Raw::U16(v), false, _) if bs == 16 => Samples::U16(v),
        (Raw::U16(v), false, _) => {
            Samples::U16(v.into_iter().map(|x| unsigned(x.into()) as u16).collect())
        }
        (Raw::U16(v), true, _) if bs == 16 => {
            Samples::I16(v.into_iter().map(|x| x as i16).collect())
        }
        (Raw::U16(v), true, _) => {
            Samples::I16(v.into_iter().map(|x| ext(x.into()) as i16).collect())
        }
        (Raw::U32(v), false, _) => Samples::U32(v.into_iter().map(unsigned).collect()),
        (Raw::U32(v), true, _) => Samples::I32(v.into_iter().map(ext).collect()),
    }
}
