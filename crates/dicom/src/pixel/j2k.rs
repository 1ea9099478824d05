//! JPEG 2000 and HTJ2K through OpenJPEG's Rust port (`openjp2`, via `jpeg2k`).
//!
//! OpenJPEG undoes the multi-component transform (YBR_RCT / YBR_ICT), so colour comes back as RGB.
//! Samples are kept as bit patterns of Bits Allocated width; masking and sign extension by the
//! object's Pixel Representation happen afterwards, which also covers streams whose signedness
//! disagrees with the object's (pydicom's `J2K_pixelrep_mismatch.dcm`).

use super::{Decoded, PixelError, PixelInfo, Raw};

pub(crate) fn decode(data: &[u8], info: &PixelInfo) -> Result<Decoded, PixelError> {
    let img = jpeg2k::Image::from_bytes(data)
        .map_err(|e| PixelError::Decode(format!("JPEG 2000: {e}")))?;
    let comps = img.components();
    let spp = usize::from(info.samples_per_pixel);
    if comps.len() < spp {
        return Err(PixelError::Decode(format!(
            "JPEG 2000 has {} components, the object says {spp} samples per pixel",
            comps.len()
        )));
    }
    let comps = &comps[..spp];
    if comps
        .iter()
        .any(|c| c.width() != info.cols || c.height() != info.rows)
    {
        return Err(PixelError::Decode(format!(
            "JPEG 2000 is {}x{} (or subsampled), the object says {}x{}",
            img.width(),
            img.height(),
            info.cols,
            info.rows
        )));
    }
    let pixels = info.rows as usize * info.cols as usize;
    let planes: Vec<&[i32]> = comps.iter().map(|c| c.data()).collect();
    if planes.iter().any(|p| p.len() != pixels) {
        return Err(PixelError::Decode(
            "JPEG 2000 component size mismatch".into(),
        ));
    }
    let sample = |i: usize| planes[i % spp][i / spp];
    let n = pixels * spp;
    let raw = match info.bits_allocated {
        8 => Raw::U8((0..n).map(|i| sample(i) as u8).collect()),
        16 => Raw::U16((0..n).map(|i| sample(i) as u16).collect()),
        32 => Raw::U32((0..n).map(|i| sample(i) as u32).collect()),
        b => {
            return Err(PixelError::Unsupported(format!(
                "JPEG 2000 with {b} bits allocated"
            )));
        }
    };
    Ok(Decoded {
        raw,
        rgb: spp == 3 && info.photometric != super::Photometric::YbrFull,
    })
}
