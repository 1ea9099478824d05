//! RLE Lossless (PS3.5 Annex G), written here: dicom-pixeldata's RLE adapter fails on 32-bit data.
//!
//! A frame is a 64-byte header (segment count, then 15 little-endian offsets) and one PackBits
//! segment per byte plane: for each sample, its most significant byte first.

use super::{Decoded, PixelError, PixelInfo, Raw};

pub(crate) fn decode(data: &[u8], info: &PixelInfo) -> Result<Decoded, PixelError> {
    let err = |m: &str| PixelError::Decode(format!("RLE: {m}"));
    if data.len() < 64 {
        return Err(err("frame shorter than its header"));
    }
    let header: Vec<usize> = data[..64]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let bytes_per_sample = usize::from(info.bits_allocated.div_ceil(8));
    let spp = usize::from(info.samples_per_pixel);
    let segments = bytes_per_sample * spp;
    if header[0] != segments {
        return Err(err(&format!("{} segments, expected {segments}", header[0])));
    }
    let pixels = info.rows as usize * info.cols as usize;
    let mut planes = vec![0u8; pixels * segments];
    for s in 0..segments {
        let start = header[1 + s];
        let end = if s + 1 < segments {
            header[2 + s]
        } else {
            data.len()
        };
        if start < 64 || start > end || end > data.len() {
            return Err(err("segment offsets out of range"));
        }
        unpack_bits(&data[start..end], &mut planes[s * pixels..(s + 1) * pixels]).map_err(&err)?;
    }
    // Segment order: sample 0 MSB..LSB, sample 1 MSB..LSB, ...; output interleaved by pixel.
    let plane = |sample: usize, byte: usize| {
        &planes[(sample * bytes_per_sample + byte) * pixels..][..pixels]
    };
    let raw = match bytes_per_sample {
        1 => {
            let mut out = vec![0u8; pixels * spp];
            for s in 0..spp {
                for (i, &b) in plane(s, 0).iter().enumerate() {
                    out[i * spp + s] = b;
                }
            }
            Raw::U8(out)
        }
        2 => {
            let mut out = vec![0u16; pixels * spp];
            for s in 0..spp {
                let (hi, lo) = (plane(s, 0), plane(s, 1));
                for i in 0..pixels {
                    out[i * spp + s] = u16::from_be_bytes([hi[i], lo[i]]);
                }
            }
            Raw::U16(out)
        }
        _ => {
            let mut out = vec![0u32; pixels * spp];
            for s in 0..spp {
                let p = [plane(s, 0), plane(s, 1), plane(s, 2), plane(s, 3)];
                for i in 0..pixels {
                    out[i * spp + s] = u32::from_be_bytes([p[0][i], p[1][i], p[2][i], p[3][i]]);
                }
            }
            Raw::U32(out)
        }
    };
    Ok(Decoded { raw, rgb: false })
}

/// PackBits into exactly `out.len()` bytes; extra decoded bytes (encoder padding) are dropped.
fn unpack_bits(src: &[u8], out: &mut [u8]) -> Result<(), &'static str> {
    let (mut i, mut o) = (0usize, 0usize);
    while o < out.len() && i < src.len() {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let len = n as usize + 1;
            let lit = src
                .get(i..i + len)
                .ok_or("literal run past end of segment")?;
            let take = len.min(out.len() - o);
            out[o..o + take].copy_from_slice(&lit[..take]);
            o += take;
            i += len;
        } else if n != -128 {
            let len = (1 - n as isize) as usize;
            let b = *src.get(i).ok_or("replicate run past end of segment")?;
            let take = len.min(out.len() - o);
            out[o..o + take].fill(b);
            o += take;
            i += 1;
        }
    }
    if o < out.len() {
        return Err("segment decodes to fewer bytes than the image needs");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unpack_bits;

    #[test]
    fn packbits_literal_and_replicate() {
        let mut out = [0u8; 6];
        unpack_bits(&[1, 9, 8, 0xFD, 5, 0x80], &mut out).unwrap();
        assert_eq!(out, [9, 8, 5, 5, 5, 5]);
    }

    #[test]
    fn truncated_segment_is_an_error() {
        let mut out = [0u8; 4];
        assert!(unpack_bits(&[3, 1, 2], &mut out).is_err());
        assert!(unpack_bits(&[0xFF], &mut out).is_err());
    }
}
