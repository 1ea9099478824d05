//! Every JPEG process (ISO 10918-1) through libjpeg-turbo 3's TurboJPEG API.
//!
//! Why not dicom-pixeldata's `jpeg-decoder`: it rejects 12-bit DCT data (JPEG Extended,
//! 1.2.840.10008.1.2.4.51), which NEMA's JPLY images and many older CT/MR archives use. libjpeg-turbo
//! 3 decodes 8- and 12-bit DCT data and lossless data of 2 to 16 bits (`tj3Decompress8/12/16`), is
//! fuzzed upstream and maintained; `turbojpeg-sys` compiles the copy it bundles with cmake, with
//! its SIMD code where nasm is installed (`scripts/deps.sh` installs it; without it the build
//! still works, slower). Rendered frames are encoded here too ([`encode`]).
//!
//! Warnings become errors (truncation, "Corrupt JPEG data: ...") except three header-level ones
//! other toolkits also accept: NEMA's 12-bit JPLY images carry non-standard SOS parameters
//! ("Invalid SOS parameters for sequential JPEG"), and unknown Adobe/JFIF versions. An archive must
//! not present a silently damaged image as a good one. TurboJPEG keeps only the last message;
//! the tolerated ones come from headers, before any entropy data, so they cannot hide a later
//! damaging one. Colour comes back as RGB: libjpeg converts
//! YCbCr (JFIF, Adobe transform 1, or component ids 1-2-3 in lossy data) and leaves RGB alone.

use std::ffi::CStr;

use turbojpeg_sys as tj;

use super::{Decoded, PixelError, PixelInfo, Raw};

/// Owns a TurboJPEG decompressor handle.
struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

impl Handle {
    fn error(&self) -> PixelError {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated static or per-handle buffer.
        let msg = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) };
        PixelError::Decode(format!("JPEG: {}", msg.to_string_lossy()))
    }

    /// After a call returned -1: `Ok` for a known harmless warning, else the error.
    ///
    /// Decided on the message, not `tj3GetErrorCode`: once any warning was seen, TurboJPEG reports
    /// later fatal errors as warnings too (its `warning` flag is sticky).
    fn check_warning(&self) -> Result<(), PixelError> {
        let err = self.error();
        let PixelError::Decode(msg) = &err else {
            return Err(err);
        };
        const HARMLESS: [&str; 3] = [
            "Invalid SOS parameters for sequential JPEG",
            "Unknown Adobe color transform code",
            "unknown JFIF revision number",
        ];
        if HARMLESS.iter().any(|h| msg.contains(h)) {
            Ok(())
        } else {
            Err(err)
        }
    }

    fn ok(&self, rc: i32) -> Result<(), PixelError> {
        if rc == 0 {
            Ok(())
        } else {
            self.check_warning()
        }
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: valid handle, known parameter.
        unsafe { tj::tj3Get(self.0, param as i32) }
    }

    fn set(&self, param: tj::TJPARAM, value: i32) -> Result<(), PixelError> {
        // SAFETY: valid handle, known parameter.
        match unsafe { tj::tj3Set(self.0, param as i32, value) } {
            0 => Ok(()),
            _ => Err(self.error()),
        }
    }
}

/// Header facts of a JPEG stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) components: u16,
    pub(crate) precision: u16,
    pub(crate) lossless: bool,
}

fn open(data: &[u8]) -> Result<(Handle, Header), PixelError> {
    // SAFETY: plain constructor; null is checked.
    let raw = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
    if raw.is_null() {
        return Err(PixelError::Decode("JPEG: cannot create decoder".into()));
    }
    let h = Handle(raw);
    h.set(tj::TJPARAM_TJPARAM_STOPONWARNING, 0)?;
    // SAFETY: pointer and length describe `data`, which outlives the call.
    if unsafe { tj::tj3DecompressHeader(h.0, data.as_ptr(), data.len() as _) } != 0 {
        h.check_warning()?;
    }
    let cs = h.get(tj::TJPARAM_TJPARAM_COLORSPACE);
    let components = match cs as u32 {
        tj::TJCS_TJCS_GRAY => 1,
        tj::TJCS_TJCS_RGB | tj::TJCS_TJCS_YCbCr => 3,
        _ => {
            return Err(PixelError::Unsupported("CMYK/YCCK JPEG".into()));
        }
    };
    let header = Header {
        width: h.get(tj::TJPARAM_TJPARAM_JPEGWIDTH).max(0) as u32,
        height: h.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT).max(0) as u32,
        components,
        precision: h.get(tj::TJPARAM_TJPARAM_PRECISION).max(0) as u16,
        lossless: h.get(tj::TJPARAM_TJPARAM_LOSSLESS) == 1,
    };
    Ok((h, header))
}

pub(crate) fn decode(data: &[u8], info: &PixelInfo) -> Result<Decoded, PixelError> {
    // Some real files lack EOI (pydicom's JPEG-lossy.dcm). Supply one: complete entropy data then
    // decodes cleanly, while truncated data meets the marker early and gives the damaging
    // "premature end of data segment" warning, the last one libjpeg emits for the scan.
    let end = data.len() - data.iter().rev().take(8).take_while(|&&b| b == 0).count();
    let with_eoi;
    let data = if data[..end].ends_with(&[0xFF, 0xD9]) {
        data
    } else {
        with_eoi = [&data[..end], &[0xFF, 0xD9][..]].concat();
        &with_eoi[..]
    };
    let (h, hd) = open(data)?;
    if hd.width != info.cols || hd.height != info.rows {
        return Err(PixelError::Decode(format!(
            "JPEG is {}x{}, the object says {}x{}",
            hd.width, hd.height, info.cols, info.rows
        )));
    }
    if hd.components != info.samples_per_pixel {
        return Err(PixelError::Decode(format!(
            "JPEG has {} components, the object says {} samples per pixel",
            hd.components, info.samples_per_pixel
        )));
    }
    let pf = if hd.components == 1 {
        tj::TJPF_TJPF_GRAY
    } else {
        tj::TJPF_TJPF_RGB
    };
    let n = info.samples_per_frame() as usize;
    let ptr = data.as_ptr();
    let len = data.len() as _;
    // SAFETY (all three): the destination holds width x height x components samples of the
    // type the function writes (pitch 0 = packed rows), checked against the header above.
    let raw = match hd.precision {
        2..=8 => {
            let mut buf = vec![0u8; n];
            let rc = unsafe { tj::tj3Decompress8(h.0, ptr, len, buf.as_mut_ptr(), 0, pf) };
            h.ok(rc).map(|()| Raw::U8(buf))
        }
        9..=12 => {
            let mut buf = vec![0i16; n];
            let rc = unsafe { tj::tj3Decompress12(h.0, ptr, len, buf.as_mut_ptr(), 0, pf) };
            h.ok(rc)
                .map(|()| Raw::U16(buf.into_iter().map(|v| v as u16).collect()))
        }
        13..=16 if hd.lossless => {
            let mut buf = vec![0u16; n];
            let rc = unsafe { tj::tj3Decompress16(h.0, ptr, len, buf.as_mut_ptr(), 0, pf) };
            h.ok(rc).map(|()| Raw::U16(buf))
        }
        p => {
            return Err(PixelError::Unsupported(format!("{p}-bit JPEG")));
        }
    };
    let raw = raw?;
    // Data wider than Bits Allocated (e.g. 12-bit JPEG in an 8-bit object) cannot be right.
    let raw = match (raw, info.bits_allocated) {
        (Raw::U8(v), 16) => Raw::U16(v.into_iter().map(u16::from).collect()),
        (Raw::U16(_), 8) => {
            return Err(PixelError::Decode(
                "JPEG precision exceeds Bits Allocated".into(),
            ));
        }
        (r, _) => r,
    };
    Ok(Decoded {
        raw,
        rgb: hd.components == 3,
    })
}

/// Encodes 8-bit grey (`channels` 1) or packed RGB (`channels` 3) samples as baseline JPEG
/// with `quality` 1-100 (4:2:0 chroma for RGB). libjpeg-turbo's SIMD forward DCT and Huffman
/// coder make this several times faster than a pure-Rust encoder, and rendered frames are
/// what a viewer asks for most.
pub(crate) fn encode(
    samples: &[u8],
    width: u32,
    height: u32,
    channels: u8,
    quality: u8,
) -> Result<Vec<u8>, PixelError> {
    let err = |m: String| PixelError::Encode(format!("JPEG: {m}"));
    let (pf, subsamp) = match channels {
        1 => (tj::TJPF_TJPF_GRAY, tj::TJSAMP_TJSAMP_GRAY),
        3 => (tj::TJPF_TJPF_RGB, tj::TJSAMP_TJSAMP_420),
        c => return Err(err(format!("{c} channels"))),
    };
    let expected = width as usize * height as usize * channels as usize;
    if samples.len() != expected || width == 0 || height == 0 {
        return Err(err(format!(
            "{} samples for {width}x{height}x{channels}",
            samples.len()
        )));
    }
    let (w, h_) = (
        i32::try_from(width).map_err(|e| err(e.to_string()))?,
        i32::try_from(height).map_err(|e| err(e.to_string()))?,
    );
    // SAFETY: plain constructor; null is checked.
    let raw = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_COMPRESS as i32) };
    if raw.is_null() {
        return Err(err("cannot create encoder".into()));
    }
    let h = Handle(raw);
    let map = |e: PixelError| match e {
        PixelError::Decode(m) => PixelError::Encode(m),
        other => other,
    };
    h.set(
        tj::TJPARAM_TJPARAM_QUALITY,
        i32::from(quality.clamp(1, 100)),
    )
    .map_err(map)?;
    h.set(tj::TJPARAM_TJPARAM_SUBSAMP, subsamp).map_err(map)?;
    // TurboJPEG allocates the output as it goes (a worst-case buffer of our own would be
    // ~10x the JPEG, zeroed and page-faulted in on every call); copied out, then freed.
    let mut ptr: *mut u8 = std::ptr::null_mut();
    let mut size: tj::size_t = 0;
    // SAFETY: `samples` holds width x height x channels bytes (checked above; pitch 0 =
    // packed rows); a null `ptr` with size 0 asks TurboJPEG to allocate the output.
    let rc = unsafe { tj::tj3Compress8(h.0, samples.as_ptr(), w, 0, h_, pf, &mut ptr, &mut size) };
    let out = if rc == 0 && !ptr.is_null() {
        // SAFETY: TurboJPEG wrote `size` bytes at `ptr`.
        Ok(unsafe { std::slice::from_raw_parts(ptr, size as usize) }.to_vec())
    } else {
        Err(map(h.error()))
    };
    if !ptr.is_null() {
        // SAFETY: allocated by TurboJPEG (tj3Alloc), freed once.
        unsafe { tj::tj3Free(ptr.cast()) };
    }
    out
}
