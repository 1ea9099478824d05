//! Crafted hostile inputs: each must be refused fast (well under 10 ms in a release
//! build; the bound asserted here is looser for debug builds), with a message naming tags
//! and offsets but never values, and without allocating what the input declares.

use std::time::{Duration, Instant};

use lumen_dicom::part10::{self, Part10Error};
use lumen_dicom::scan::{self, ScanError};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
/// A patient name planted in inputs; no error message may contain it.
const SECRET: &[u8] = b"DOE^JANE";

/// Explicit VR LE element with a 2-byte length.
fn short(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&elem.to_le_bytes());
    v.extend_from_slice(vr);
    v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// Explicit VR LE header with a 4-byte length (OB, SQ, UN...), value not included.
fn long_header(group: u16, elem: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&elem.to_le_bytes());
    v.extend_from_slice(vr);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// Item, item delimiter or sequence delimiter header.
fn item(elem: u16, len: u32) -> Vec<u8> {
    let mut v = vec![0xFE, 0xFF];
    v.extend_from_slice(&elem.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// The start of an ordinary data set: SOP class, SOP instance, patient name.
fn preface() -> Vec<u8> {
    let mut v = short(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    v.extend(short(0x0008, 0x0018, b"UI", b"1.2.3.4\0"));
    v.extend(short(0x0010, 0x0010, b"PN", SECRET));
    v
}

fn wrap(dataset: &[u8], ts: &str) -> Vec<u8> {
    part10::wrap_dataset(dataset, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", ts, None).unwrap()
}

/// Parses `bytes`, expecting a refusal, from `parse_header` too; returns the message.
fn refused(bytes: &[u8], what: &str) -> String {
    refusal(bytes, what, true, 1)
}

/// Parses `bytes`, expecting a refusal within 10 ms (release) or 50 ms times
/// `debug_factor` (debug: lumen-dicom itself is built unoptimised); returns the message.
fn refusal(bytes: &[u8], what: &str, header_too: bool, debug_factor: u32) -> String {
    let limit = if cfg!(debug_assertions) {
        Duration::from_millis(50) * debug_factor
    } else {
        Duration::from_millis(10)
    };
    let t = Instant::now();
    let r = part10::parse(bytes);
    let took = t.elapsed();
    let e = match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e.to_string(),
    };
    eprintln!("{what}: refused in {took:?}: {e}");
    assert!(took < limit, "{what}: took {took:?}");
    let secret = std::str::from_utf8(SECRET).unwrap();
    assert!(!e.contains(secret), "{what}: message leaks a value: {e}");
    let t = Instant::now();
    assert_eq!(
        part10::parse_header(bytes).is_err(),
        header_too,
        "{what}: parse_header result"
    );
    assert!(
        t.elapsed() < limit,
        "{what}: header parse took {:?}",
        t.elapsed()
    );
    e
}

#[test]
fn a_well_formed_object_passes() {
    let mut ds = preface();
    ds.extend(long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 0xFFFF_FFFF));
    ds.extend(short(0x0008, 0x1150, b"UI", b"1.2.3\0"));
    ds.extend(item(0xE00D, 0));
    ds.extend(item(0xE0DD, 0));
    ds.extend(long_header(0x7FE0, 0x0010, b"OB", 4));
    ds.extend([1, 2, 3, 4]);
    let bytes = wrap(&ds, EXPLICIT_LE);
    let s = scan::check_part10(&bytes).unwrap();
    assert_eq!(s.transfer_syntax, EXPLICIT_LE);
    assert_eq!(s.max_depth, 1);
    part10::parse(&bytes).unwrap();
    part10::parse_header(&bytes).unwrap();
    // parse_header does not look past the Pixel Data header.
    let cut = &bytes[..bytes.len() - 2];
    assert!(part10::parse(cut).is_err());
    part10::parse_header(cut).unwrap();
    assert_eq!(scan::check(&ds, EXPLICIT_LE).unwrap().elements, s.elements);
}

#[test]
fn element_declaring_4_gib_is_refused() {
    let mut ds = preface();
    ds.extend(long_header(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    ds.extend([0u8; 16]);
    let e = refused(&wrap(&ds, EXPLICIT_LE), "OB of 0xFFFFFFF0 bytes");
    assert!(e.contains("(0009,1010)") && e.contains("4294967280"), "{e}");
}

#[test]
fn seventeen_bytes_of_garbage_are_refused() {
    // "DICM", then a group length element declaring ~1.8 GB and nothing behind it.
    let mut b = b"DICM".to_vec();
    b.extend([
        0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0, 0x00, 0x00, 0x00, 0x6C, 0x00,
    ]);
    assert_eq!(b.len(), 17);
    let e = refused(&b, "17-byte garbage");
    assert!(e.contains("file meta"), "{e}");
    // A meta element that declares more than is there.
    let mut b = b"DICM".to_vec();
    b.extend([0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0, 20, 0, 0, 0]);
    b.extend(long_header(0x0002, 0x0001, b"OB", 0x6C00_0000));
    b.extend([0u8; 8]);
    let e = refused(&b, "meta element of 1.8 GB");
    assert!(e.contains("(0002,0001)"), "{e}");
}

#[test]
fn meta_group_problems_have_clear_messages() {
    let good = wrap(&preface(), EXPLICIT_LE);
    // No group length: the meta starts with (0002,0001).
    let mut b = good[..132].to_vec();
    b.extend_from_slice(&good[144..]);
    let e = refused(&b, "no group length");
    assert!(e.contains("(0002,0000)"), "{e}");
    // Group length larger than the file.
    let mut b = good.clone();
    b[140..144].copy_from_slice(&0x7FFF_0000u32.to_le_bytes());
    let e = refused(&b, "huge group length");
    assert!(e.contains("group length"), "{e}");
    // No transfer syntax: rebuild the meta without (0002,0010).
    let mut meta = short(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    meta.extend(short(0x0002, 0x0003, b"UI", b"1.2.3.4\0"));
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    b.extend(short(
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    ));
    b.extend(meta);
    b.extend(preface());
    let e = refused(&b, "no transfer syntax");
    assert!(e.contains("transfer syntax"), "{e}");
    // An unknown transfer syntax.
    let e = refused(&wrap(&preface(), "1.2.3.999"), "unknown transfer syntax");
    assert!(e.contains("unsupported transfer syntax"), "{e}");
}

#[test]
fn item_longer_than_its_sequence_is_refused() {
    let mut ds = preface();
    ds.extend(long_header(0x0008, 0x1115, b"SQ", 16));
    ds.extend(item(0xE000, 0x0100_0000));
    ds.extend(short(0x0008, 0x1150, b"UI", b"1.2.3\0"));
    ds.extend([0u8; 64]);
    let e = refused(&wrap(&ds, EXPLICIT_LE), "item longer than sequence");
    assert!(e.contains("(FFFE,E000)") && e.contains("sequence"), "{e}");
    // An element longer than its (defined-length) item.
    let mut ds = preface();
    ds.extend(long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 12));
    ds.extend(long_header(0x0009, 0x1001, b"OB", 0x10_0000));
    ds.extend([0u8; 64]);
    let e = refused(&wrap(&ds, EXPLICIT_LE), "element longer than item");
    assert!(e.contains("(0009,1001)") && e.contains("item"), "{e}");
}

#[test]
fn ten_thousand_nested_sequences_are_refused() {
    let mut ds = preface();
    for _ in 0..10_000 {
        ds.extend(long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF));
        ds.extend(item(0xE000, 0xFFFF_FFFF));
    }
    for _ in 0..10_000 {
        ds.extend(item(0xE00D, 0));
        ds.extend(item(0xE0DD, 0));
    }
    let e = refused(&wrap(&ds, EXPLICIT_LE), "10,000 nested sequences");
    assert!(e.contains("nested deeper than 64"), "{e}");
    // The same in implicit VR, where sequences are known from the dictionary.
    let mut ds = Vec::new();
    for _ in 0..10_000 {
        ds.extend([0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend(item(0xE000, 0xFFFF_FFFF));
    }
    let e = refused(
        &wrap(&ds, IMPLICIT_LE),
        "10,000 nested sequences, implicit VR",
    );
    assert!(e.contains("nested deeper than 64"), "{e}");
    // 60 levels are fine.
    let mut ds = preface();
    for _ in 0..60 {
        ds.extend(long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF));
        ds.extend(item(0xE000, 0xFFFF_FFFF));
    }
    for _ in 0..60 {
        ds.extend(item(0xE00D, 0));
        ds.extend(item(0xE0DD, 0));
    }
    part10::parse(&wrap(&ds, EXPLICIT_LE)).unwrap();
}

#[test]
fn truncated_headers_and_unclosed_sequences_are_refused() {
    let mut ds = preface();
    ds.extend(long_header(0x0009, 0x1010, b"OB", 8));
    let full = wrap(&ds, EXPLICIT_LE);
    // Cut inside the 12-byte OB header (leaving 4..11 bytes of it).
    for cut in 4..12 {
        let e = refused(&full[..full.len() - 12 + cut], "truncated header");
        assert!(e.contains("truncated") || e.contains("exceeds"), "{e}");
    }
    // An undefined-length sequence whose item never ends.
    let mut ds = preface();
    ds.extend(long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 0xFFFF_FFFF));
    ds.extend(short(0x0008, 0x1150, b"UI", b"1.2.3\0"));
    let e = refused(&wrap(&ds, EXPLICIT_LE), "unclosed item");
    assert!(e.contains("not closed"), "{e}");
    // A fragment with undefined length.
    let mut ds = preface();
    ds.extend(long_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 0));
    ds.extend(item(0xE000, 0xFFFF_FFFF));
    ds.extend([0u8; 32]);
    let e = refusal(
        &wrap(&ds, "1.2.840.10008.1.2.4.50"),
        "undefined-length fragment",
        false,
        1,
    );
    assert!(e.contains("fragment"), "{e}");
    // A fragment longer than the file.
    let mut ds = preface();
    ds.extend(long_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 0));
    ds.extend(item(0xE000, 0x7000_0000));
    ds.extend([0u8; 32]);
    let e = refusal(
        &wrap(&ds, "1.2.840.10008.1.2.4.50"),
        "fragment longer than file",
        false,
        1,
    );
    assert!(e.contains("pixel data"), "{e}");
}

#[test]
fn wrong_encoding_for_the_transfer_syntax_is_refused() {
    // An implicit VR data set labelled explicit VR (pydicom's SC_rgb_jpeg.dcm is one).
    let mut ds = Vec::new();
    ds.extend([0x08, 0x00, 0x16, 0x00, 26, 0, 0, 0]);
    ds.extend(b"1.2.840.10008.5.1.4.1.1.2\0");
    ds.extend([0x10, 0x00, 0x10, 0x00, 8, 0, 0, 0]);
    ds.extend(SECRET);
    let e = refused(&wrap(&ds, EXPLICIT_LE), "implicit VR labelled explicit");
    assert!(
        e.contains("no valid VR") && e.contains("(0008,0016)"),
        "{e}"
    );
}

#[test]
fn undefined_length_un_is_refused_with_a_reason() {
    let mut ds = preface();
    ds.extend(long_header(0x0009, 0x1010, b"UN", 0xFFFF_FFFF));
    ds.extend(item(0xE000, 0xFFFF_FFFF));
    ds.extend([0x08, 0x00, 0x50, 0x11, 6, 0, 0, 0]);
    ds.extend(b"1.2.3\0");
    ds.extend(item(0xE00D, 0));
    ds.extend(item(0xE0DD, 0));
    let bytes = wrap(&ds, EXPLICIT_LE);
    let s = scan::check_part10(&bytes).unwrap();
    assert_eq!(s.undefined_length_un.map(|u| u.0), Some(0x0009_1010));
    let e = refused(&bytes, "UN with undefined length");
    assert!(e.contains("(0009,1010)") && e.contains("UN"), "{e}");
}

#[test]
fn element_count_is_bounded_by_size() {
    // 200,000 empty elements: 8 bytes each, denser than any real object.
    let mut ds = preface();
    for i in 0..200_000u32 {
        ds.extend(short(0x0009, 0x1000 | (i % 0xF00) as u16, b"LO", b""));
    }
    // 1.6 MB of headers: about 1 ms in release, tens in an unoptimised build.
    let e = refusal(&wrap(&ds, EXPLICIT_LE), "200,000 empty elements", true, 10);
    assert!(e.contains("more than"), "{e}");
}

#[test]
fn deflate_bombs_are_bounded() {
    use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    use std::io::Write;
    let ts = TransferSyntaxRegistry.get(DEFLATED).unwrap();
    let Codec::Dataset(Some(adapter)) = ts.codec() else {
        panic!("no deflate adapter")
    };
    let deflate = |raw: &[u8]| {
        let mut out = Vec::new();
        {
            let mut w = adapter.adapt_writer(Box::new(&mut out));
            w.write_all(raw).unwrap();
            w.flush().unwrap();
        }
        out
    };
    // 4 MiB of zeros in an OB: inflates past a 1 MiB limit.
    let mut ds = preface();
    ds.extend(long_header(0x0009, 0x1010, b"OB", 4 << 20));
    ds.resize(ds.len() + (4 << 20), 0);
    let bytes = wrap(&deflate(&ds), DEFLATED);
    let opts = scan::Options {
        max_inflated: 1 << 20,
        ..Default::default()
    };
    let t = Instant::now();
    let e = scan::check_part10_with(&bytes, opts).unwrap_err();
    eprintln!("deflate bomb: {e} in {:?}", t.elapsed());
    assert_eq!(e, ScanError::Inflate("inflates past the size limit"));
    // Within the default limit it is fine, and parses.
    scan::check_part10(&bytes).unwrap();
    part10::parse(&bytes).unwrap();
    // A hostile length inside the deflated stream is caught after inflating.
    let mut ds = preface();
    ds.extend(long_header(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    ds.extend([0u8; 16]);
    let bomb = wrap(&deflate(&ds), DEFLATED);
    for _ in 0..3 {
        let e = refused(&bomb, "deflated 4 GiB OB");
        assert!(e.contains("inflated data set: (0009,1010)"), "{e}");
    }
    // Garbage that does not inflate.
    let e = refused(&wrap(&[0xFFu8; 64], DEFLATED), "not deflate");
    assert!(e.contains("deflate"), "{e}");
}

#[test]
fn non_dicom_bytes_are_refused() {
    assert!(matches!(part10::parse(b"hello"), Err(Part10Error::NoMeta)));
    assert_eq!(scan::check_part10(b"hello"), Err(ScanError::NoPrefix));
}
