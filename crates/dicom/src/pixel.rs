//! Pixel data decoding: one frame of any supported transfer syntax to native samples.

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

/// Decoded samples of one frame, in the stored (pre-modality-LUT) representation.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// 8-bit unsigned samples (also colour images, interleaved RGB).
    U8(Vec<u8>),
    /// Unsigned samples with 9 to 16 bits allocated.
    U16(Vec<u16>),
    /// Signed samples with 9 to 16 bits allocated (Pixel Representation 1).
    I16(Vec<i16>),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Number of rows (height).
    pub rows: u32,
    /// Number of columns (width).
    pub cols: u32,
    /// Samples per pixel: 1 for greyscale, 3 for colour (always interleaved here).
    pub samples_per_pixel: u16,
    /// Bits stored per sample.
    pub bits_stored: u16,
    /// The samples, row-major, interleaved for colour.
    pub samples: Samples,
}

/// Why pixel data could not be decoded.
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
    /// The transfer syntax is not supported for decoding.
    #[error("transfer syntax {0} cannot be decoded")]
    Unsupported(String),
    /// The codec failed on this data.
    #[error("pixel data could not be decoded: {0}")]
    Decode(String),
}

/// Decodes frame `frame` (0-based) of `obj` to native samples.
pub fn decode_frame(obj: &DefaultDicomObject, frame: u32) -> Result<Frame, PixelError> {
    let px = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| PixelError::Decode(e.to_string()))?;
    let rows = px.rows();
    let cols = px.columns();
    let spp = px.samples_per_pixel();
    let bits_stored = px.bits_stored();
    let samples = match (px.bits_allocated(), px.pixel_representation()) {
        (8, _) => Samples::U8(px.data().to_vec()),
        (16, dicom_pixeldata::PixelRepresentation::Signed) => Samples::I16(
            px.data()
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        (16, _) => Samples::U16(
            px.data()
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        (b, _) => return Err(PixelError::Unsupported(format!("{b} bits allocated"))),
    };
    Ok(Frame {
        rows,
        cols,
        samples_per_pixel: spp,
        bits_stored,
        samples,
    })
}
