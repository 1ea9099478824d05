//! Native (uncompressed) pixel data: one frame's bytes in little-endian order, and their samples.
//!
//! dicom-object has already parsed the value with the transfer syntax's byte order: OW data is
//! held as `u16` words, OB as bytes, so writing the words back little endian restores the
//! little-endian layout for 1-, 8- and 16-bit data in either byte order. 32-bit data read as OW
//! words from a big-endian file needs its word pairs swapped, and byte (OB/UN) values from a
//! big-endian file need their samples byte-swapped; both are handled here.

use std::borrow::Cow;

use dicom_core::value::{PrimitiveValue, Value};
use dicom_object::InMemDicomObject;

use super::{Decoded, PixelError, PixelInfo, Raw, color};

/// Bytes per frame of native data, or bits for 1-bit data.
fn frame_len(info: &PixelInfo) -> Result<u64, PixelError> {
    let pixels = u64::from(info.rows) * u64::from(info.cols);
    let samples = if info.samples_per_pixel == 3 && color::is_subsampled_422(info) {
        if !info.cols.is_multiple_of(2) {
            return Err(PixelError::Unsupported(
                "4:2:2 colour with an odd number of columns".into(),
            ));
        }
        pixels * 2
    } else {
        pixels * u64::from(info.samples_per_pixel)
    };
    Ok(samples * u64::from(info.bits_allocated))
}

/// The stored bytes of frame `frame`, little endian; 1-bit frames are repacked to start at bit 0.
pub(crate) fn frame_le_bytes<'a>(
    value: &'a Value<InMemDicomObject>,
    info: &PixelInfo,
    frame: u32,
    big_endian: bool,
) -> Result<Cow<'a, [u8]>, PixelError> {
    let prim = value.primitive().ok_or_else(|| {
        PixelError::Decode("Pixel Data is encapsulated but the transfer syntax is native".into())
    })?;
    let bits = frame_len(info)?;
    let start_bit = bits * u64::from(frame);
    let end_bit = start_bit + bits;
    let total_bytes = value_byte_len(prim)?;
    if end_bit.div_ceil(8) > total_bytes as u64 {
        return Err(PixelError::Decode(format!(
            "Pixel Data holds {total_bytes} bytes, too short for frame {frame}"
        )));
    }
    if info.bits_allocated == 1 {
        let all = le_bytes(prim, 0, total_bytes, info, big_endian);
        return Ok(Cow::Owned(extract_bits(&all, start_bit, bits)));
    }
    // Both bounds are whole samples, so whole words for OW and whole u32s for OL.
    Ok(le_bytes(
        prim,
        (start_bit / 8) as usize,
        (end_bit / 8) as usize,
        info,
        big_endian,
    ))
}

fn value_byte_len(prim: &PrimitiveValue) -> Result<usize, PixelError> {
    Ok(match prim {
        PrimitiveValue::U8(v) => v.len(),
        PrimitiveValue::U16(v) => v.len() * 2,
        PrimitiveValue::I16(v) => v.len() * 2,
        PrimitiveValue::U32(v) => v.len() * 4,
        PrimitiveValue::I32(v) => v.len() * 4,
        PrimitiveValue::F32(v) => v.len() * 4,
        PrimitiveValue::Empty => 0,
        _ => {
            return Err(PixelError::Attribute(
                "Pixel Data has an unexpected VR".into(),
            ));
        }
    })
}

/// Bytes `start..end` of the value written little endian, with big-endian fix-ups (see module doc).
fn le_bytes<'a>(
    prim: &'a PrimitiveValue,
    start: usize,
    end: usize,
    info: &PixelInfo,
    big_endian: bool,
) -> Cow<'a, [u8]> {
    let ba = info.bits_allocated;
    match prim {
        PrimitiveValue::U8(v) => {
            let b = &v[start..end];
            match (big_endian, ba) {
                (true, 16) => Cow::Owned(b.chunks_exact(2).flat_map(|c| [c[1], c[0]]).collect()),
                (true, 32) => Cow::Owned(
                    b.chunks_exact(4)
                        .flat_map(|c| [c[3], c[2], c[1], c[0]])
                        .collect(),
                ),
                _ => Cow::Borrowed(b),
            }
        }
        PrimitiveValue::U16(_) if cfg!(target_endian = "little") && !(ba == 32 && big_endian) => {
            // In-memory words are already little endian: borrow them as bytes.
            match prim.to_bytes() {
                Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
                Cow::Owned(b) => Cow::Owned(b[start..end].to_vec()),
            }
        }
        PrimitiveValue::U16(v) => words_le(&v[start / 2..end / 2], ba, big_endian),
        PrimitiveValue::I16(v) => {
            let w: Vec<u16> = v[start / 2..end / 2].iter().map(|&x| x as u16).collect();
            Cow::Owned(words_le(&w, ba, big_endian).into_owned())
        }
        PrimitiveValue::U32(v) => Cow::Owned(
            v[start / 4..end / 4]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        PrimitiveValue::I32(v) => Cow::Owned(
            v[start / 4..end / 4]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        PrimitiveValue::F32(v) => Cow::Owned(
            v[start / 4..end / 4]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        _ => Cow::Borrowed(&[]),
    }
}

fn words_le(w: &[u16], ba: u16, big_endian: bool) -> Cow<'_, [u8]> {
    if ba == 32 && big_endian {
        // A big-endian u32 read as two big-endian words: high word first.
        return Cow::Owned(
            w.chunks_exact(2)
                .flat_map(|c| ((u32::from(c[0]) << 16) | u32::from(c[1])).to_le_bytes())
                .collect(),
        );
    }
    Cow::Owned(w.iter().flat_map(|x| x.to_le_bytes()).collect())
}

/// Copies `bits` bits starting at bit `start` (LSB-first packing) into bytes starting at bit 0.
fn extract_bits(all: &[u8], start: u64, bits: u64) -> Vec<u8> {
    if start.is_multiple_of(8) {
        let s = (start / 8) as usize;
        return all[s..s + bits.div_ceil(8) as usize].to_vec();
    }
    let mut out = vec![0u8; bits.div_ceil(8) as usize];
    for i in 0..bits {
        let src = start + i;
        if all[(src / 8) as usize] >> (src % 8) & 1 == 1 {
            out[(i / 8) as usize] |= 1 << (i % 8);
        }
    }
    out
}

/// Parses one frame's little-endian bytes into samples, interleaving planes and expanding 4:2:2.
pub(crate) fn decode_le(bytes: &[u8], info: &PixelInfo) -> Result<Decoded, PixelError> {
    let need = frame_len(info)?.div_ceil(8) as usize;
    if bytes.len() < need {
        return Err(PixelError::Decode(format!(
            "frame holds {} bytes, expected {need}",
            bytes.len()
        )));
    }
    let bytes = &bytes[..need];
    let n_stored = (frame_len(info)? / u64::from(info.bits_allocated)) as usize;
    let raw = match info.bits_allocated {
        1 => Raw::U8(
            (0..n_stored)
                .map(|i| (bytes[i / 8] >> (i % 8)) & 1)
                .collect(),
        ),
        8 => Raw::U8(bytes.to_vec()),
        16 => Raw::U16(
            bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        _ => Raw::U32(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    };
    let raw = if info.samples_per_pixel == 3 && color::is_subsampled_422(info) {
        color::expand_422(raw)
    } else if info.samples_per_pixel == 3 && info.planar_configuration == 1 {
        color::interleave_planes(raw)
    } else {
        raw
    };
    Ok(Decoded { raw, rgb: false })
}
