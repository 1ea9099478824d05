//! Transcoding a stored object for a receiver that does not accept its transfer syntax:
//! the one transcoder behind WADO-RS (`Accept: ...; transfer-syntax=`) and C-GET/C-MOVE
//! (the presentation contexts the receiver accepted).
//!
//! To a native (uncompressed) syntax, encapsulated pixel data is decoded with this crate's
//! codecs ([`crate::pixel`]), which read what dicom-pixeldata cannot (12-bit and lossless
//! JPEG among them); to an encapsulated syntax, dicom-pixeldata's `Transcode` encodes it.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::pixel::{self, Encoding};

/// Why an object could not be transcoded; never quotes attribute values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The target is not a transfer syntax this build knows.
    #[error("unknown transfer syntax {0}")]
    UnknownSyntax(String),
    /// The stored object could not be read or its pixel data not converted.
    #[error("cannot transcode to {target}: {reason}")]
    Failed {
        /// The target transfer syntax.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

/// Re-encodes Part-10 bytes in the transfer syntax `target` (file meta updated).
pub fn transcode(part10: &[u8], target: &str) -> Result<DefaultDicomObject, TranscodeError> {
    let fail = |reason: String| TranscodeError::Failed {
        target: target.to_string(),
        reason,
    };
    let ts = TransferSyntaxRegistry
        .get(target)
        .ok_or_else(|| TranscodeError::UnknownSyntax(target.to_string()))?;
    let obj = crate::part10::parse(part10).map_err(|e| fail(e.to_string()))?;
    let source_encapsulated = Encoding::of(obj.meta().transfer_syntax().trim_end_matches('\0'))
        .is_some_and(Encoding::is_encapsulated);
    if ts.is_codec_free() {
        let mut ds: InMemDicomObject = (*obj).clone();
        if source_encapsulated {
            put_native_pixels(&obj, &mut ds).map_err(fail)?;
        }
        let mut meta = obj.meta().clone();
        meta.set_transfer_syntax(ts);
        return Ok(ds.with_exact_meta(meta));
    }
    use dicom_pixeldata::Transcode;
    let mut obj = obj;
    obj.transcode(ts).map_err(|e| fail(e.to_string()))?;
    Ok(obj)
}

/// Replaces encapsulated pixel data by the decoded frames, native and interleaved.
fn put_native_pixels(obj: &DefaultDicomObject, ds: &mut InMemDicomObject) -> Result<(), String> {
    let frames = pixel::frame_count(ds).max(1);
    let mut pixels = Vec::new();
    for f in 0..frames {
        pixels.extend(pixel::native_frame_bytes(obj, f).map_err(|e| e.to_string())?);
    }
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    let int = |tag| ds.get(tag).and_then(|e| e.to_int::<u16>().ok());
    let vr = if int(tags::BITS_ALLOCATED).unwrap_or(16) > 8 {
        VR::OW
    } else {
        VR::OB
    };
    if int(tags::SAMPLES_PER_PIXEL).unwrap_or(1) == 3 {
        // The decoders deliver colour as interleaved RGB.
        ds.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from("RGB"),
        ));
        ds.put(DataElement::new(
            tags::PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    ds.put(DataElement::new(
        tags::PIXEL_DATA,
        vr,
        PrimitiveValue::from(pixels),
    ));
    Ok(())
}
