//! QR codes (ISO/IEC 18004) of patient links, as a module matrix that the PDF draws as
//! squares and as SVG for the web app. Encoded with the `qrcode` crate at error correction
//! level M (15 % of the code may be damaged, enough for a printed, folded handout).

use qrcode::{Color, EcLevel, QrCode};

use crate::{ReportError, Result};

/// The quiet zone around the code, in modules (the standard asks for 4).
pub const QUIET_ZONE: usize = 4;

/// A QR code's modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Encodes `text` (a URL) at error correction level M.
    ///
    /// # Errors
    ///
    /// The text is too long for any QR code version.
    pub fn encode(text: &str) -> Result<QrMatrix> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(|e| ReportError::Encode(format!("QR code: {e}")))?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(QrMatrix { width, dark })
    }

    /// Modules per side (without the quiet zone).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark (outside: light).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// The code as a standalone SVG image (one path, quiet zone included), `size` pixels
    /// wide.
    pub fn svg(&self, size: u32) -> String {
        let n = self.width + 2 * QUIET_ZONE;
        let mut path = String::new();
        for y in 0..self.width {
            for x in 0..self.width {
                if self.is_dark(x, y) {
                    path.push_str(&format!("M{} {}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE));
                }
            }
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
             viewBox=\"0 0 {n} {n}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{n}\" height=\"{n}\" fill=\"#fff\"/>\
             <path fill=\"#000\" d=\"{path}\"/></svg>"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_encodes_with_finder_patterns_and_as_svg() {
        let url = "https://pacs.example.org/film/3q2-7wEVR6bGq0m7yCqz1Bv5zT3nY4uXh0lK8sQdAaE";
        let m = QrMatrix::encode(url).expect("encode");
        // 62 bytes at level M need version 4 (33 modules) or so.
        assert!((25..=45).contains(&m.width()), "{}", m.width());
        // The three finder patterns: dark 7x7 rings with dark centres.
        for (ox, oy) in [(0, 0), (m.width() - 7, 0), (0, m.width() - 7)] {
            for i in 0..7 {
                assert!(m.is_dark(ox + i, oy) && m.is_dark(ox, oy + i));
                assert!(m.is_dark(ox + i, oy + 6) && m.is_dark(ox + 6, oy + i));
            }
            assert!(!m.is_dark(ox + 1, oy + 1) && m.is_dark(ox + 3, oy + 3));
        }
        assert!(!m.is_dark(m.width(), 0));
        let svg = m.svg(200);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        let n = m.width() + 8;
        assert!(svg.contains(&format!("viewBox=\"0 0 {n} {n}\"")));
        assert_eq!(
            svg.matches("h1v1h-1z").count(),
            (0..m.width())
                .flat_map(|y| (0..m.width()).map(move |x| (x, y)))
                .filter(|&(x, y)| m.is_dark(x, y))
                .count()
        );
        assert!(QrMatrix::encode(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn a_decoder_reads_the_link_back() {
        let url = "http://127.0.0.1:8080/film/uulkBDTijkE_845ANwTkzWXrSvV4w_4QX29gzE9yIhY";
        let m = QrMatrix::encode(url).expect("encode");
        // Rasterised at 4 pixels a module with the quiet zone, as a scanner would see it.
        let (scale, n) = (4, m.width() + 2 * QUIET_ZONE);
        let side = n * scale;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark =
                mx >= QUIET_ZONE && my >= QUIET_ZONE && m.is_dark(mx - QUIET_ZONE, my - QUIET_ZONE);
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, text) = grids[0].decode().expect("decode");
        assert_eq!(text, url);
    }
}
