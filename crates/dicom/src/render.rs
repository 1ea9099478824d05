//! Rendered frames (PS3.18 8.3.5.1): modality LUT, VOI window, MONOCHROME1 inversion, JPEG or PNG.
//!
//! Greyscale goes through one 8-bit lookup table per request, built over the Bits Stored range
//! (at most 65536 entries), so no floating point runs per pixel. Colour passes through (YBR was
//! already converted by [`crate::pixel`]); palette colour is looked up in the object's palette.

use dicom_core::Tag;
use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use crate::pixel::{Frame, Photometric, PixelError, Samples, decode_frame};

/// VOI LUT Function (0028,1056), PS3.3 C.11.2.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VoiFunction {
    /// LINEAR: the classic window, with its half-pixel offsets.
    #[default]
    Linear,
    /// LINEAR_EXACT: the window maps exactly onto `center +- width/2`.
    LinearExact,
    /// SIGMOID: a logistic curve centred on `center`.
    Sigmoid,
}

/// A VOI window: centre and width in modality units (Hounsfield units for CT).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Window Center (0028,1050).
    pub center: f64,
    /// Window Width (0028,1051).
    pub width: f64,
    /// VOI LUT Function (0028,1056).
    pub function: VoiFunction,
}

/// Why a `window=` parameter was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid window {0}: expected center,width[,function] with function linear, linear-exact or sigmoid"
)]
pub struct WindowParseError(String);

/// CT lung window, centre -600 HU, width 1500 HU.
pub const LUNG: Window = Window::new(-600.0, 1500.0);
/// CT mediastinum (soft tissue) window, centre 40 HU, width 400 HU.
pub const MEDIASTINUM: Window = Window::new(40.0, 400.0);
/// CT bone window, centre 400 HU, width 1800 HU (the "bones" window in Radiopaedia's
/// "Windowing (CT)" article; 500/2000 is a common alternative).
pub const BONE: Window = Window::new(400.0, 1800.0);

impl Window {
    /// A LINEAR window.
    pub const fn new(center: f64, width: f64) -> Self {
        Window {
            center,
            width,
            function: VoiFunction::Linear,
        }
    }

    /// Parses PS3.18's `window=center,width,function` value (function optional, default linear;
    /// `linear`, `linear-exact`/`LINEAR_EXACT`, `sigmoid`, any case).
    pub fn parse(s: &str) -> Result<Self, WindowParseError> {
        let bad = |why: &str| WindowParseError(format!("{s:?} ({why})"));
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("need 2 or 3 comma-separated values"));
        }
        let num = |p: &str, what: &str| -> Result<f64, WindowParseError> {
            p.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("{what} is not a number")))
        };
        let center = num(parts[0], "center")?;
        let width = num(parts[1], "width")?;
        let function = match parts
            .get(2)
            .map(|f| f.to_ascii_uppercase().replace('-', "_"))
        {
            None => VoiFunction::Linear,
            Some(f) if f == "LINEAR" => VoiFunction::Linear,
            Some(f) if f == "LINEAR_EXACT" => VoiFunction::LinearExact,
            Some(f) if f == "SIGMOID" => VoiFunction::Sigmoid,
            Some(_) => return Err(bad("unknown function")),
        };
        let min_width = if function == VoiFunction::Linear {
            1.0
        } else {
            f64::MIN_POSITIVE
        };
        if width < min_width {
            return Err(bad("width too small"));
        }
        Ok(Window {
            center,
            width,
            function,
        })
    }

    /// Maps a modality value to 0..=255 (PS3.3 C.11.2.1.2 with y range 0-255), rounded.
    pub fn apply(&self, x: f64) -> u8 {
        let (c, w) = (self.center, self.width);
        let y = match self.function {
            VoiFunction::Linear => {
                let w1 = (w - 1.0).max(f64::MIN_POSITIVE);
                if x <= c - 0.5 - w1 / 2.0 {
                    0.0
                } else if x > c - 0.5 + w1 / 2.0 {
                    255.0
                } else {
                    ((x - (c - 0.5)) / w1 + 0.5) * 255.0
                }
            }
            VoiFunction::LinearExact => {
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    255.0
                } else {
                    ((x - c) / w + 0.5) * 255.0
                }
            }
            VoiFunction::Sigmoid => 255.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        };
        y.round().clamp(0.0, 255.0) as u8
    }
}

/// Output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Baseline JPEG with `quality` 1-100.
    Jpeg {
        /// Quality 1 (smallest) to 100 (best).
        quality: u8,
    },
    /// 8-bit PNG, fast compression.
    Png,
}

/// Default JPEG quality when the request gives none.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;
/// Default thumbnail viewport: the image is fitted into 128 x 128.
pub const THUMBNAIL_SIZE: (u32, u32) = (128, 128);

impl ImageFormat {
    /// The media type of the encoded image.
    pub fn media_type(&self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

impl Default for ImageFormat {
    fn default() -> Self {
        ImageFormat::Jpeg {
            quality: DEFAULT_JPEG_QUALITY,
        }
    }
}

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RenderOptions {
    /// The requested window; else the object's first window; else the frame's min/max.
    pub window: Option<Window>,
    /// Output format.
    pub format: ImageFormat,
    /// Fit the image into (width, height), keeping its aspect ratio.
    pub viewport: Option<(u32, u32)>,
}

impl RenderOptions {
    /// Thumbnail options: default format, fitted into [`THUMBNAIL_SIZE`].
    pub fn thumbnail() -> Self {
        RenderOptions {
            viewport: Some(THUMBNAIL_SIZE),
            ..Default::default()
        }
    }
}

/// Modality LUT (PS3.3 C.11.1): rescale or a table from stored values to modality units.
#[derive(Debug, Clone, PartialEq)]
pub enum ModalityLut {
    /// `value * slope + intercept`.
    Rescale {
        /// Rescale Slope (0028,1053).
        slope: f64,
        /// Rescale Intercept (0028,1052).
        intercept: f64,
    },
    /// Modality LUT Sequence: entries for stored values from `first` on, clamped at both ends.
    Table {
        /// First stored value mapped.
        first: i64,
        /// Output values.
        data: Vec<f64>,
    },
}

impl ModalityLut {
    /// Applies the LUT to one stored value.
    pub fn apply(&self, v: f64) -> f64 {
        match self {
            ModalityLut::Rescale { slope, intercept } => v * slope + intercept,
            ModalityLut::Table { first, data } => {
                let i = (v as i64 - first).clamp(0, data.len() as i64 - 1);
                data.get(i as usize).copied().unwrap_or(v)
            }
        }
    }
}

/// A palette colour LUT (PS3.3 C.7.6.3.1.5): 8-bit RGB for indices from `first`.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    first: i64,
    rgb: Vec<[u8; 3]>,
}

/// The object's display attributes: modality LUT, windows, padding, palette.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayParams {
    /// Modality LUT (identity when absent).
    pub modality: ModalityLut,
    /// Windows from Window Center/Width (first is the default).
    pub windows: Vec<Window>,
    /// Pixel Padding Value (stored units), left out of min/max windows.
    pub padding: Option<i64>,
    /// Palette colour LUT for PALETTE COLOR images.
    pub palette: Option<Palette>,
}

impl DisplayParams {
    /// Reads the display attributes of a data set.
    pub fn from_object(obj: &InMemDicomObject) -> Self {
        let f64s = |tag: Tag| -> Vec<f64> {
            obj.get(tag)
                .and_then(|e| e.to_multi_float64().ok())
                .unwrap_or_default()
        };
        let modality = modality_table(obj).unwrap_or_else(|| ModalityLut::Rescale {
            slope: f64s(tags::RESCALE_SLOPE)
                .first()
                .copied()
                .filter(|s| *s != 0.0)
                .unwrap_or(1.0),
            intercept: f64s(tags::RESCALE_INTERCEPT)
                .first()
                .copied()
                .unwrap_or(0.0),
        });
        let functions: Vec<String> = obj
            .get(tags::VOILUT_FUNCTION)
            .and_then(|e| e.to_multi_str().ok())
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let windows = f64s(tags::WINDOW_CENTER)
            .into_iter()
            .zip(f64s(tags::WINDOW_WIDTH))
            .filter(|(_, w)| *w > 0.0)
            .map(|(center, width)| {
                let function = match functions.first().map(|f| f.trim()) {
                    Some("LINEAR_EXACT") => VoiFunction::LinearExact,
                    Some("SIGMOID") => VoiFunction::Sigmoid,
                    _ => VoiFunction::Linear,
                };
                Window {
                    center,
                    width: if function == VoiFunction::Linear {
                        width.max(1.0)
                    } else {
                        width
                    },
                    function,
                }
            })
            .collect();
        let padding = obj
            .get(tags::PIXEL_PADDING_VALUE)
            .and_then(|e| e.to_int::<i64>().ok());
        DisplayParams {
            modality,
            windows,
            padding,
            palette: palette(obj),
        }
    }
}

fn modality_table(obj: &InMemDicomObject) -> Option<ModalityLut> {
    let item = obj.get(tags::MODALITY_LUT_SEQUENCE)?.items()?.first()?;
    let desc: Vec<i64> = item.get(tags::LUT_DESCRIPTOR)?.to_multi_int::<i64>().ok()?;
    let (first, bits) = (*desc.get(1)?, *desc.get(2)?);
    let data = lut_words(item.get(tags::LUT_DATA)?.value().primitive()?, bits)?;
    Some(ModalityLut::Table {
        first,
        data: data.into_iter().map(f64::from).collect(),
    })
}

/// LUT Data as 16-bit words (8-bit LUTs may be packed two per word or one per word).
fn lut_words(v: &PrimitiveValue, bits: i64) -> Option<Vec<u16>> {
    let words: Vec<u16> = match v {
        PrimitiveValue::U16(w) => w.to_vec(),
        PrimitiveValue::I16(w) => w.iter().map(|&x| x as u16).collect(),
        PrimitiveValue::U8(b) if bits > 8 => b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
        PrimitiveValue::U8(b) => return Some(b.iter().map(|&x| u16::from(x)).collect()),
        _ => return None,
    };
    Some(words).filter(|w| !w.is_empty())
}

fn palette(obj: &InMemDicomObject) -> Option<Palette> {
    let channel = |desc: Tag, data: Tag| -> Option<(i64, Vec<u8>)> {
        let d: Vec<i64> = obj.get(desc)?.to_multi_int::<i64>().ok()?;
        let (entries, first, bits) = (*d.first()?, *d.get(1)?, *d.get(2)?);
        let entries = if entries == 0 { 65536 } else { entries } as usize;
        let words = lut_words(obj.get(data)?.value().primitive()?, bits)?;
        let vals: Vec<u8> = if bits <= 8 && words.len() * 2 == entries {
            // 8-bit entries packed two per word, low byte first.
            words.iter().flat_map(|w| w.to_le_bytes()).collect()
        } else if bits <= 8 {
            words.iter().map(|&w| w as u8).collect()
        } else {
            words.iter().map(|&w| (w >> 8) as u8).collect()
        };
        Some((first, vals))
    };
    let (first, r) = channel(
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, g) = channel(
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, b) = channel(
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let n = r.len().min(g.len()).min(b.len());
    Some(Palette {
        first,
        rgb: (0..n).map(|i| [r[i], g[i], b[i]]).collect(),
    })
}

/// An 8-bit image ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// Row-major samples.
    pub data: Vec<u8>,
}

/// Decodes and renders frame `frame` (0-based) of `obj` as JPEG or PNG bytes.
pub fn render(
    obj: &DefaultDicomObject,
    frame: u32,
    opts: &RenderOptions,
) -> Result<Vec<u8>, PixelError> {
    let decoded = decode_frame(obj, frame)?;
    let params = DisplayParams::from_object(obj);
    render_frame(&decoded, &params, opts)
}

/// Renders an already decoded frame as JPEG or PNG bytes.
pub fn render_frame(
    frame: &Frame,
    params: &DisplayParams,
    opts: &RenderOptions,
) -> Result<Vec<u8>, PixelError> {
    let img = to_display(frame, params, opts.window)?;
    let img = match opts.viewport {
        Some((w, h)) => fit(&img, w, h)?,
        None => img,
    };
    encode(&img, opts.format)
}

/// Applies modality LUT, window and photometric handling, giving 8-bit grey or RGB.
pub fn to_display(
    frame: &Frame,
    params: &DisplayParams,
    window: Option<Window>,
) -> Result<Rendered, PixelError> {
    let (width, height) = (frame.cols, frame.rows);
    let pixels = width as usize * height as usize;
    let channels = if frame.samples_per_pixel == 3 || frame.photometric == Photometric::PaletteColor
    {
        3
    } else {
        1
    };
    let expected = pixels * usize::from(frame.samples_per_pixel);
    if frame.samples.len() != expected {
        return Err(PixelError::Decode(
            "frame size does not match its dimensions".into(),
        ));
    }
    let data = if frame.samples_per_pixel == 3 {
        colour_to_8bit(&frame.samples, frame.bits_stored)
    } else if frame.photometric == Photometric::PaletteColor {
        let pal = params
            .palette
            .as_ref()
            .ok_or_else(|| PixelError::Attribute("palette colour LUT missing".into()))?;
        (0..pixels)
            .flat_map(|i| {
                let v = frame.samples.get(i).unwrap_or(0) - pal.first;
                let idx = v.clamp(0, pal.rgb.len() as i64 - 1) as usize;
                pal.rgb.get(idx).copied().unwrap_or([0, 0, 0])
            })
            .collect()
    } else {
        grey(frame, params, window)
    };
    Ok(Rendered {
        width,
        height,
        channels,
        data,
    })
}

/// Stored value range of greyscale samples: (min, number of values) for a LUT, if small enough.
fn lut_range(samples: &Samples, bits_stored: u16) -> Option<(i64, usize)> {
    let bs = u32::from(bits_stored.min(16));
    match samples {
        Samples::U8(_) | Samples::U16(_) => Some((0, 1 << bs)),
        Samples::I16(_) => Some((-(1 << (bs - 1)), 1 << bs)),
        _ => None,
    }
}

fn grey(frame: &Frame, params: &DisplayParams, window: Option<Window>) -> Vec<u8> {
    let s = &frame.samples;
    let window = window
        .or_else(|| params.windows.first().copied())
        .unwrap_or_else(|| min_max_window(s, params));
    let invert = frame.photometric == Photometric::Monochrome1;
    let map = |v: f64| {
        let y = window.apply(params.modality.apply(v));
        if invert { 255 - y } else { y }
    };
    match lut_range(s, frame.bits_stored) {
        Some((lo, n)) => {
            // The table covers the values present, not every value Bits Stored allows
            // (65536 window evaluations cost more than a 512x512 frame's one pass).
            let (lo, n) = match s.min_max() {
                Some((a, b)) => (a, (b - a + 1) as usize),
                None => (lo, n),
            };
            let lut: Vec<u8> = (0..n as i64).map(|i| map((lo + i) as f64)).collect();
            // Samples are masked to Bits Stored, so every index is in range; `get` keeps it total.
            let at = |v: i64| lut.get((v - lo) as usize).copied().unwrap_or(0);
            match s {
                Samples::U8(v) => v.iter().map(|&x| at(i64::from(x))).collect(),
                Samples::U16(v) => v.iter().map(|&x| at(i64::from(x))).collect(),
                Samples::I16(v) => v.iter().map(|&x| at(i64::from(x))).collect(),
                _ => Vec::new(),
            }
        }
        None => (0..s.len())
            .map(|i| map(s.get(i).unwrap_or(0) as f64))
            .collect(),
    }
}

/// A LINEAR_EXACT window over the frame's modality values, padding left out.
fn min_max_window(s: &Samples, params: &DisplayParams) -> Window {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for i in 0..s.len() {
        let v = s.get(i).unwrap_or(0);
        if Some(v) == params.padding {
            continue;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0, 0);
    }
    let (a, b) = (
        params.modality.apply(lo as f64),
        params.modality.apply(hi as f64),
    );
    let (a, b) = (a.min(b), a.max(b));
    Window {
        center: (a + b) / 2.0,
        width: (b - a).max(1.0),
        function: VoiFunction::LinearExact,
    }
}

fn colour_to_8bit(s: &Samples, bits_stored: u16) -> Vec<u8> {
    let shift = u32::from(bits_stored.saturating_sub(8));
    match s {
        Samples::U8(v) => v.clone(),
        Samples::U16(v) => v.iter().map(|&x| (x >> shift).min(255) as u8).collect(),
        _ => (0..s.len())
            .map(|i| (s.get(i).unwrap_or(0).max(0) >> shift).min(255) as u8)
            .collect(),
    }
}

/// Resizes to fit `(vw, vh)` keeping the aspect ratio: box average when shrinking, nearest
/// neighbour when enlarging.
pub fn fit(img: &Rendered, vw: u32, vh: u32) -> Result<Rendered, PixelError> {
    if vw == 0 || vh == 0 {
        return Err(PixelError::Attribute(
            "viewport must be at least 1x1".into(),
        ));
    }
    let scale = (f64::from(vw) / f64::from(img.width)).min(f64::from(vh) / f64::from(img.height));
    let w = ((f64::from(img.width) * scale).round() as u32).clamp(1, vw);
    let h = ((f64::from(img.height) * scale).round() as u32).clamp(1, vh);
    if (w, h) == (img.width, img.height) {
        return Ok(img.clone());
    }
    let c = usize::from(img.channels);
    let span = |i: u32, out: u32, inp: u32| -> (usize, usize) {
        let a = (u64::from(i) * u64::from(inp) / u64::from(out)) as usize;
        let b = ((u64::from(i) + 1) * u64::from(inp) / u64::from(out)) as usize;
        (a, b.max(a + 1).min(inp as usize))
    };
    let src_w = img.width as usize;
    let mut data = Vec::with_capacity(w as usize * h as usize * c);
    for y in 0..h {
        let (y0, y1) = span(y, h, img.height);
        for x in 0..w {
            let (x0, x1) = span(x, w, img.width);
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            for ch in 0..c {
                let mut sum = 0u32;
                for yy in y0..y1 {
                    let row = &img.data[(yy * src_w) * c..];
                    for xx in x0..x1 {
                        sum += u32::from(row[xx * c + ch]);
                    }
                }
                data.push(((sum + n / 2) / n) as u8);
            }
        }
    }
    Ok(Rendered {
        width: w,
        height: h,
        channels: img.channels,
        data,
    })
}

/// Encodes an 8-bit image as JPEG or PNG.
pub fn encode(img: &Rendered, format: ImageFormat) -> Result<Vec<u8>, PixelError> {
    let enc_err = |e: &dyn std::fmt::Display| PixelError::Encode(e.to_string());
    let mut out = Vec::with_capacity(img.data.len() / 4 + 1024);
    match format {
        ImageFormat::Jpeg { quality } => {
            out =
                crate::pixel::encode_jpeg(&img.data, img.width, img.height, img.channels, quality)?;
        }
        ImageFormat::Png => {
            let mut enc = png::Encoder::new(&mut out, img.width, img.height);
            enc.set_color(if img.channels == 3 {
                png::ColorType::Rgb
            } else {
                png::ColorType::Grayscale
            });
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(|e| enc_err(&e))?;
            writer
                .write_image_data(&img.data)
                .map_err(|e| enc_err(&e))?;
            writer.finish().map_err(|e| enc_err(&e))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_windows() {
        assert_eq!(Window::parse("40,400").unwrap(), MEDIASTINUM);
        let w = Window::parse(" -600 , 1500 , linear-exact ").unwrap();
        assert_eq!(
            (w.center, w.width, w.function),
            (-600.0, 1500.0, VoiFunction::LinearExact)
        );
        assert_eq!(
            Window::parse("1,2,SIGMOID").unwrap().function,
            VoiFunction::Sigmoid
        );
        for bad in [
            "",
            "40",
            "40,400,cubic",
            "a,400",
            "40,0",
            "40,0.5,LINEAR",
            "1,2,3,4",
            "40,inf",
        ] {
            let e = Window::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid window"), "{bad}: {e}");
        }
    }

    #[test]
    fn voi_functions_follow_ps3_3() {
        // LINEAR: -600 HU in the lung window is 127.59 -> 128.
        assert_eq!(LUNG.apply(-600.0), 128);
        assert_eq!(LUNG.apply(-1350.0), 0);
        assert_eq!(LUNG.apply(150.0), 255);
        let exact = Window {
            function: VoiFunction::LinearExact,
            ..MEDIASTINUM
        };
        assert_eq!(exact.apply(-160.0), 0);
        assert_eq!(exact.apply(40.0), 128); // 127.5 rounds up
        assert_eq!(exact.apply(240.0), 255);
        let sig = Window {
            function: VoiFunction::Sigmoid,
            ..MEDIASTINUM
        };
        assert_eq!(sig.apply(40.0), 128);
        // 255 / (1 + e^-2) = 224.6 at centre + width/2.
        assert_eq!((sig.apply(240.0), sig.apply(-160.0)), (225, 30));
    }

    fn frame(samples: Samples, photometric: Photometric) -> Frame {
        Frame {
            rows: 2,
            cols: 2,
            samples_per_pixel: 1,
            bits_stored: 16,
            samples,
            photometric,
        }
    }

    #[test]
    fn modality_window_and_monochrome1() {
        let params = DisplayParams {
            modality: ModalityLut::Rescale {
                slope: 1.0,
                intercept: -1024.0,
            },
            windows: vec![],
            padding: None,
            palette: None,
        };
        let f = frame(
            Samples::I16(vec![424, 0, 2000, 1024]),
            Photometric::Monochrome2,
        );
        let img = to_display(&f, &params, Some(LUNG)).unwrap();
        // -600, -1024, 976 and 0 HU.
        assert_eq!(img.data, vec![128, 55, 255, 230]);
        let f1 = Frame {
            photometric: Photometric::Monochrome1,
            ..f
        };
        let img = to_display(&f1, &params, Some(LUNG)).unwrap();
        assert_eq!(img.data, vec![127, 200, 0, 25]);
    }

    #[test]
    fn min_max_window_skips_padding() {
        let params = DisplayParams {
            modality: ModalityLut::Rescale {
                slope: 1.0,
                intercept: 0.0,
            },
            windows: vec![],
            padding: Some(0),
            palette: None,
        };
        let f = frame(
            Samples::U16(vec![0, 100, 200, 300]),
            Photometric::Monochrome2,
        );
        let img = to_display(&f, &params, None).unwrap();
        assert_eq!(img.data, vec![0, 0, 128, 255]);
    }

    #[test]
    fn fit_keeps_aspect_and_averages() {
        let img = Rendered {
            width: 4,
            height: 2,
            channels: 1,
            data: vec![0, 10, 20, 30, 40, 50, 60, 70],
        };
        let out = fit(&img, 2, 2).unwrap();
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.data, vec![25, 45]);
    }

    /// JPEG output decodes (with an independent decoder) to the rendered image, grey and RGB,
    /// and higher quality means smaller error; nonsense dimensions give an error.
    #[test]
    fn jpeg_round_trips_through_another_decoder() {
        for channels in [1u8, 3] {
            let (w, h) = (67u32, 45u32);
            let data: Vec<u8> = (0..w * h * u32::from(channels))
                .map(|i| ((i % w) * 3 + (i / w) % 7) as u8)
                .collect();
            let img = Rendered {
                width: w,
                height: h,
                channels,
                data: data.clone(),
            };
            let mut errors = vec![];
            for quality in [50u8, 95] {
                let bytes = encode(&img, ImageFormat::Jpeg { quality }).unwrap();
                let mut dec = jpeg_decoder::Decoder::new(&bytes[..]);
                let back = dec.decode().unwrap();
                let info = dec.info().unwrap();
                assert_eq!((u32::from(info.width), u32::from(info.height)), (w, h));
                assert_eq!(back.len(), data.len());
                let mae = back
                    .iter()
                    .zip(&data)
                    .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs() as f64)
                    .sum::<f64>()
                    / data.len() as f64;
                errors.push(mae);
            }
            assert!(errors[1] < errors[0], "{channels} channels: {errors:?}");
            // 4:2:0 chroma costs the (deliberately busy) RGB pattern some more.
            let limit = if channels == 1 { 2.0 } else { 4.0 };
            assert!(errors[1] < limit, "{channels} channels: {errors:?}");
        }
        let bad = Rendered {
            width: 10,
            height: 10,
            channels: 1,
            data: vec![0; 7],
        };
        assert!(encode(&bad, ImageFormat::Jpeg { quality: 90 }).is_err());
    }
}
