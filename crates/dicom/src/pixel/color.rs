//! Colour helpers: plane interleaving, 4:2:2 expansion and YCbCr to RGB (PS3.3 C.7.6.3.1.2).

use super::{Photometric, PixelError, PixelInfo, Raw};

/// Whether native data of this object stores chroma at half horizontal resolution.
pub(crate) fn is_subsampled_422(info: &PixelInfo) -> bool {
    matches!(
        info.photometric,
        Photometric::YbrFull422 | Photometric::YbrPartial422
    )
}

fn map_raw(raw: Raw, f: impl Fn(&[u32], &mut Vec<u32>)) -> Raw {
    // Generic over widths through u32; only used on colour data, which is small.
    match raw {
        Raw::U8(v) => {
            let src: Vec<u32> = v.into_iter().map(u32::from).collect();
            let mut out = Vec::with_capacity(src.len() * 3 / 2);
            f(&src, &mut out);
            Raw::U8(out.into_iter().map(|x| x as u8).collect())
        }
        Raw::U16(v) => {
            let src: Vec<u32> = v.into_iter().map(u32::from).collect();
            let mut out = Vec::with_capacity(src.len() * 3 / 2);
            f(&src, &mut out);
            Raw::U16(out.into_iter().map(|x| x as u16).collect())
        }
        Raw::U32(v) => {
            let mut out = Vec::with_capacity(v.len() * 3 / 2);
            f(&v, &mut out);
            Raw::U32(out)
        }
    }
}

/// RRR..GGG..BBB to RGBRGB.
pub(crate) fn interleave_planes(raw: Raw) -> Raw {
    map_raw(raw, |src, out| {
        let n = src.len() / 3;
        for i in 0..n {
            out.extend_from_slice(&[src[i], src[n + i], src[2 * n + i]]);
        }
    })
}

/// Y1 Y2 Cb Cr (two pixels) to Y1 Cb Cr Y2 Cb Cr.
pub(crate) fn expand_422(raw: Raw) -> Raw {
    map_raw(raw, |src, out| {
        for c in src.chunks_exact(4) {
            out.extend_from_slice(&[c[0], c[2], c[3], c[1], c[2], c[3]]);
        }
    })
}

/// Converts interleaved YCbCr samples to RGB in place when the photometric interpretation is a
/// YBR one the codec left alone; returns the new interpretation, or `None` when nothing changed.
pub(crate) fn ybr_to_rgb(
    raw: &mut Raw,
    info: &PixelInfo,
) -> Result<Option<Photometric>, PixelError> {
    let full = match info.photometric {
        Photometric::YbrFull | Photometric::YbrFull422 => true,
        Photometric::YbrPartial422 | Photometric::YbrPartial420 => false,
        _ => return Ok(None),
    };
    let bits = u32::from(info.bits_stored).min(16);
    let max = ((1u32 << bits) - 1) as f32;
    let half = (1u32 << (bits - 1)) as f32;
    // Partial range (ITU-R BT.601) offsets scale with the bit depth: 16 and 128 at 8 bits.
    let y_off = if full { 0.0 } else { 16.0 * max / 255.0 };
    let convert = |y: u32, cb: u32, cr: u32| -> [u32; 3] {
        let (y, cb, cr) = (y as f32 - y_off, cb as f32 - half, cr as f32 - half);
        let (r, g, b) = if full {
            (
                y + 1.402 * cr,
                y - 0.344_136 * cb - 0.714_136 * cr,
                y + 1.772 * cb,
            )
        } else {
            let y = 1.164_383 * y;
            (
                y + 1.596_027 * cr,
                y - 0.391_762 * cb - 0.812_968 * cr,
                y + 2.017_232 * cb,
            )
        };
        [r, g, b].map(|v| v.round().clamp(0.0, max) as u32)
    };
    match raw {
        Raw::U8(v) => {
            for p in v.chunks_exact_mut(3) {
                let [r, g, b] = convert(p[0].into(), p[1].into(), p[2].into());
                p.copy_from_slice(&[r as u8, g as u8, b as u8]);
            }
        }
        Raw::U16(v) => {
            for p in v.chunks_exact_mut(3) {
                let [r, g, b] = convert(p[0].into(), p[1].into(), p[2].into());
                p.copy_from_slice(&[r as u16, g as u16, b as u16]);
            }
        }
        Raw::U32(_) => {
            return Err(PixelError::Unsupported("32-bit YCbCr colour".into()));
        }
    }
    Ok(Some(Photometric::Rgb))
}
