//! Rendering real images: a LIDC CT slice with CT windows, thumbnails, colour; outputs read back.

use std::path::PathBuf;

use lumen_dicom::pixel::decode_frame;
use lumen_dicom::render::{
    DisplayParams, ImageFormat, LUNG, MEDIASTINUM, RenderOptions, Window, render,
};

fn data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("LUMEN_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("shared data folder {} is missing", p.display());
    }
    eprintln!("SKIPPED: shared data folder {} is missing", p.display());
    None
}

fn lidc_slice(dir: &std::path::Path) -> dicom_object::DefaultDicomObject {
    let ct = dir.join("lidc-idri-0001/ct");
    let mut files: Vec<_> = std::fs::read_dir(&ct)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    dicom_object::open_file(&files[files.len() / 2]).unwrap()
}

fn read_png(bytes: &[u8]) -> (u32, u32, png::ColorType, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type, buf)
}

fn read_jpeg(bytes: &[u8]) -> (u16, u16, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    (info.width, info.height, px)
}

#[test]
fn lung_window_maps_minus_600_hu_to_128() {
    let Some(dir) = data_dir() else { return };
    let obj = lidc_slice(&dir);
    let frame = decode_frame(&obj, 0).unwrap();
    let params = DisplayParams::from_object(&obj);
    // Find a pixel at exactly -600 HU.
    let idx = (0..frame.samples.len())
        .find(|&i| params.modality.apply(frame.samples.get(i).unwrap() as f64) == -600.0)
        .expect("a -600 HU pixel");
    let opts = RenderOptions {
        window: Some(LUNG),
        format: ImageFormat::Png,
        viewport: None,
    };
    let (w, h, colour, px) = read_png(&render(&obj, 0, &opts).unwrap());
    assert_eq!((w, h, colour), (512, 512, png::ColorType::Grayscale));
    assert_eq!(px[idx], 128);
    // Air (-1000 HU and below) is black in the mediastinum window, and so is padding.
    let opts = RenderOptions {
        window: Some(MEDIASTINUM),
        ..opts
    };
    let (_, _, _, px) = read_png(&render(&obj, 0, &opts).unwrap());
    assert_eq!(px[0], 0);
}

#[test]
fn jpeg_quality_and_parsed_window() {
    let Some(dir) = data_dir() else { return };
    let obj = lidc_slice(&dir);
    let png = RenderOptions {
        window: Some(Window::parse("-600,1500,LINEAR").unwrap()),
        format: ImageFormat::Png,
        viewport: None,
    };
    let (_, _, _, exact) = read_png(&render(&obj, 0, &png).unwrap());
    let mut sizes = vec![];
    for quality in [50, 90] {
        let bytes = render(
            &obj,
            0,
            &RenderOptions {
                format: ImageFormat::Jpeg { quality },
                ..png
            },
        )
        .unwrap();
        let (w, h, px) = read_jpeg(&bytes);
        assert_eq!((w, h, px.len()), (512, 512, 512 * 512));
        let mean_err = px
            .iter()
            .zip(&exact)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .sum::<i32>() as f64
            / px.len() as f64;
        assert!(mean_err < 3.0, "q{quality}: mean error {mean_err}");
        sizes.push(bytes.len());
    }
    assert!(
        sizes[0] < sizes[1],
        "higher quality should be larger: {sizes:?}"
    );
}

#[test]
fn default_window_and_thumbnails() {
    let Some(dir) = data_dir() else { return };
    let obj = lidc_slice(&dir);
    // No window requested: the object's Window Center/Width is used.
    let bytes = render(&obj, 0, &RenderOptions::default()).unwrap();
    assert_eq!(read_jpeg(&bytes).0, 512);
    let (w, h, _) = read_jpeg(&render(&obj, 0, &RenderOptions::thumbnail()).unwrap());
    assert_eq!((w, h), (128, 128));
    let opts = RenderOptions {
        viewport: Some((100, 40)),
        format: ImageFormat::Png,
        ..Default::default()
    };
    let (w, h, _, _) = read_png(&render(&obj, 0, &opts).unwrap());
    assert_eq!((w, h), (40, 40));
}

#[test]
fn colour_and_palette_render_as_rgb() {
    let Some(dir) = data_dir() else { return };
    let samples = dir.join("dicom-samples");
    let opts = RenderOptions {
        format: ImageFormat::Png,
        ..Default::default()
    };
    let rgb = dicom_object::open_file(samples.join("pydicom-data-1.0.0/SC_rgb.dcm")).unwrap();
    let (w, h, colour, px) = read_png(&render(&rgb, 0, &opts).unwrap());
    assert_eq!((w, h, colour), (100, 100, png::ColorType::Rgb));
    let frame = decode_frame(&rgb, 0).unwrap();
    assert_eq!(px, frame.samples.to_le_bytes());
    // YBR_FULL_422 JPEG renders like the RGB original, within lossy error.
    let ybr = dicom_object::open_file(
        samples.join("pydicom-3.0.2-test-files/SC_rgb_dcmtk_+eb+cy+s2.dcm"),
    )
    .unwrap();
    let (_, _, _, px2) = read_png(&render(&ybr, 0, &opts).unwrap());
    let mean = px
        .iter()
        .zip(&px2)
        .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
        .sum::<i32>() as f64
        / px.len() as f64;
    assert!(mean < 3.0, "mean error {mean}");
    let pal =
        dicom_object::open_file(samples.join("pydicom-3.0.2-test-files/examples_palette.dcm"))
            .unwrap();
    let (w, h, colour, _) = read_png(&render(&pal, 0, &opts).unwrap());
    assert_eq!((w, h, colour), (800, 350, png::ColorType::Rgb));
}
