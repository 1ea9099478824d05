//! Times decode + render (JPEG, PNG, thumbnail) of a real 512x512 CT slice.
//!
//! `cargo run --release -p lumen-dicom --example render_bench [FILE.dcm] [ITERATIONS]`
//! (default: the first LIDC-IDRI-0001 slice in ../shared/data). Reports the median per call,
//! from parsed object and from file bytes (parse included), with the lung window.

use std::time::{Duration, Instant};

use lumen_dicom::pixel::decode_frame;
use lumen_dicom::render::{self, ImageFormat, LUNG, RenderOptions};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn time(n: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut size = f(); // warm-up
    let runs = (0..n)
        .map(|_| {
            let t = Instant::now();
            size = f();
            t.elapsed()
        })
        .collect();
    (median(runs), size)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = match args.next() {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let dir = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/lidc-idri-0001/ct"
            );
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| format!("{dir}: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
                .collect();
            files.sort();
            files.into_iter().next().ok_or("no .dcm in LIDC folder")?
        }
    };
    let n: usize = args.next().map_or(Ok(100), |s| s.parse())?;
    let bytes = std::fs::read(&path)?;
    let open = || {
        dicom_object::OpenFileOptions::new()
            .from_reader(&bytes[128..])
            .expect("parse")
    };
    let obj = open();
    let f = decode_frame(&obj, 0)?;
    println!(
        "{}: {}x{}, {} bits stored, transfer syntax {}, {n} runs, median ms",
        path.file_name().unwrap_or_default().to_string_lossy(),
        f.cols,
        f.rows,
        f.bits_stored,
        obj.meta().transfer_syntax()
    );
    let jpeg = RenderOptions {
        window: Some(LUNG),
        format: ImageFormat::Jpeg { quality: 90 },
        viewport: None,
    };
    let png = RenderOptions {
        format: ImageFormat::Png,
        ..jpeg
    };
    let thumb = RenderOptions {
        window: Some(LUNG),
        ..RenderOptions::thumbnail()
    };
    let (t, _) = time(n, || {
        usize::from(open().get(dicom_dictionary_std::tags::ROWS).is_some())
    });
    println!("  parse file bytes                 {t:7.2}");
    let (t, _) = time(n, || {
        decode_frame(&obj, 0).map(|f| f.samples.len()).unwrap_or(0)
    });
    println!("  decode frame                     {t:7.2}");
    for (name, o) in [
        ("JPEG q90", jpeg),
        ("PNG fast", png),
        ("thumbnail JPEG", thumb),
    ] {
        let (t, size) = time(n, || {
            render::render(&obj, 0, &o).map(|v| v.len()).unwrap_or(0)
        });
        println!("  decode + render {name:<16} {t:7.2}  ({size} bytes)");
        let (t, _) = time(n, || {
            let obj = open();
            render::render(&obj, 0, &o).map(|v| v.len()).unwrap_or(0)
        });
        println!("  parse + decode + render {name:<8} {t:7.2}");
    }
    Ok(())
}
