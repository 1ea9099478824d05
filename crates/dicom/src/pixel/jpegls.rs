//! JPEG-LS (ISO 14495-1) through CharLS.
//!
//! CharLS returns samples in the stream's interleave order: by plane when each component has its
//! own scan (ILV none), by pixel otherwise. The scan header is read here to know which.

use super::{Decoded, PixelError, PixelInfo, Raw, color};

/// Facts from the first SOS segment: components in the scan, NEAR, and interleave mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) components: u8,
    pub(crate) near: u8,
    pub(crate) interleave: u8,
}

/// Finds the first start-of-scan segment of a JPEG-LS stream.
pub(crate) fn first_scan(data: &[u8]) -> Option<Scan> {
    let mut i = 2; // after SOI
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if marker == 0xDA {
            let seg = data.get(i + 4..i + 2 + len)?;
            let ns = *seg.first()?;
            let rest = seg.get(1 + 2 * usize::from(ns)..)?;
            return Some(Scan {
                components: ns,
                near: *rest.first()?,
                interleave: *rest.get(1)?,
            });
        }
        i += 2 + len;
    }
    None
}

pub(crate) fn decode(data: &[u8], info: &PixelInfo) -> Result<Decoded, PixelError> {
    let err = |e: charls::Error| PixelError::Decode(format!("JPEG-LS: {e}"));
    let fi = charls::CharLS::default()
        .get_frame_info(data)
        .map_err(err)?;
    if fi.width != info.cols || fi.height != info.rows {
        return Err(PixelError::Decode(format!(
            "JPEG-LS is {}x{}, the object says {}x{}",
            fi.width, fi.height, info.cols, info.rows
        )));
    }
    if fi.component_count != i32::from(info.samples_per_pixel) {
        return Err(PixelError::Decode(
            "JPEG-LS component count differs from Samples per Pixel".into(),
        ));
    }
    if !(2..=16).contains(&fi.bits_per_sample) {
        return Err(PixelError::Unsupported(format!(
            "{}-bit JPEG-LS",
            fi.bits_per_sample
        )));
    }
    // A fresh codec: CharLS refuses to read the header twice on one decoder.
    let out = match charls::CharLS::default().decode(data) {
        Ok(out) => out,
        Err(e) => match without_zeros_before_eoi(data) {
            Some(fixed) => charls::CharLS::default().decode(&fixed).map_err(err)?,
            None => return Err(err(e)),
        },
    };
    let n = info.samples_per_frame() as usize;
    let raw = if fi.bits_per_sample <= 8 {
        Raw::U8(out)
    } else {
        Raw::U16(
            out.chunks_exact(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                .collect(),
        )
    };
    if raw_len(&raw) != n {
        return Err(PixelError::Decode(
            "JPEG-LS output size differs from the image".into(),
        ));
    }
    let raw = match (raw, info.bits_allocated) {
        (Raw::U8(v), 16) => Raw::U16(v.into_iter().map(u16::from).collect()),
        (Raw::U16(_), 8) => {
            return Err(PixelError::Decode(
                "JPEG-LS precision exceeds Bits Allocated".into(),
            ));
        }
        (r, _) => r,
    };
    let by_plane = info.samples_per_pixel == 3
        && first_scan(data).is_some_and(|s| s.interleave == 0 && s.components == 1);
    let raw = if by_plane {
        color::interleave_planes(raw)
    } else {
        raw
    };
    Ok(Decoded { raw, rgb: false })
}

/// The stream with zero bytes between the entropy-coded data and the final EOI removed, if any.
///
/// CharLS 2.3+ rejects them ("the leading start byte (0xFF) for a JPEG marker was not found"),
/// but some encoders wrote one: NEMA WG04's `MR1_JLSL` ends `2B 00 FF D9`, and without the `00` it
/// decodes to `MR1_UNC` exactly (CharLS issue #437; DCMTK's older CharLS fork reads it as is).
/// Only tried after a failed decode.
fn without_zeros_before_eoi(data: &[u8]) -> Option<Vec<u8>> {
    let eoi = data.windows(2).rposition(|w| w == [0xFF, 0xD9])?;
    let zeros = data[..eoi].iter().rev().take_while(|&&b| b == 0).count();
    if zeros == 0 {
        return None;
    }
    let mut fixed = Vec::with_capacity(data.len());
    fixed.extend_from_slice(&data[..eoi - zeros]);
    fixed.extend_from_slice(&data[eoi..]);
    Some(fixed)
}

fn raw_len(r: &Raw) -> usize {
    match r {
        Raw::U8(v) => v.len(),
        Raw::U16(v) => v.len(),
        Raw::U32(v) => v.len(),
    }
}
