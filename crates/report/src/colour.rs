//! Display colours of segments as DICOM wants them: Recommended Display CIELab Value
//! (PS3.3 C.10.7.1.1), CIE L*a*b* scaled to 0..=65535, converted from sRGB with the D65
//! white point (as highdicom and dcmqi do), so that every viewer shows Lumen's lungs and
//! nodules in the colours Lumen's own viewer uses.

/// An sRGB colour (8 bits per channel).
pub type Rgb = [u8; 3];

/// The lungs (a pale blue, right and left alike) and the nodules (distinct warm colours,
/// repeating after the last).
pub const RIGHT_LUNG: Rgb = [128, 174, 255];
/// See [`RIGHT_LUNG`].
pub const LEFT_LUNG: Rgb = [90, 140, 235];
/// Nodule colours, by rank.
pub const NODULES: &[Rgb] = &[
    [255, 80, 40],
    [255, 200, 0],
    [230, 40, 160],
    [40, 220, 120],
    [255, 140, 0],
    [170, 90, 255],
];

/// The colour of the `index`-th nodule (0-based).
pub fn nodule(index: usize) -> Rgb {
    NODULES[index % NODULES.len()]
}

/// sRGB to DICOM-scaled CIELab: L* 0..100 and a*, b* -128..127 mapped onto 0..=65535.
pub fn srgb_to_dicom_lab(rgb: Rgb) -> [u16; 3] {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    // sRGB to XYZ (D65), then relative to the D65 white.
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    let l = 116.0 * fy - 16.0;
    let a = 500.0 * (fx - fy);
    let bb = 200.0 * (fy - fz);
    let scale =
        |v: f64, lo: f64, span: f64| ((v - lo) / span * 65535.0).round().clamp(0.0, 65535.0) as u16;
    [
        scale(l, 0.0, 100.0),
        scale(a, -128.0, 255.0),
        scale(bb, -128.0, 255.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours() {
        // White is L*=100, a*=b*=0; black is L*=0.
        assert_eq!(srgb_to_dicom_lab([255, 255, 255]), [65535, 32896, 32896]);
        assert_eq!(srgb_to_dicom_lab([0, 0, 0]), [0, 32896, 32896]);
        // Pure sRGB red: L* 53.24, a* 80.09, b* 67.20 (Bruce Lindbloom's calculator).
        let [l, a, b] = srgb_to_dicom_lab([255, 0, 0]);
        let back = |v: u16, lo: f64, span: f64| f64::from(v) / 65535.0 * span + lo;
        assert!((back(l, 0.0, 100.0) - 53.24).abs() < 0.05, "{l}");
        assert!((back(a, -128.0, 255.0) - 80.09).abs() < 0.05, "{a}");
        assert!((back(b, -128.0, 255.0) - 67.20).abs() < 0.05, "{b}");
        assert_eq!(nodule(0), nodule(NODULES.len()));
        assert_ne!(nodule(0), nodule(1));
    }
}
