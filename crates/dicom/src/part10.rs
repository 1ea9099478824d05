//! Received DICOM bytes: Part-10 parsing with checks, and file meta for bare data sets.
//!
//! Every ingest path (C-STORE, STOW-RS, import) ends here, so the rules for what the
//! archive accepts live in one place.

use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::scan;

/// Lumen's implementation class UID (a UUID-derived root, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.302952401372104766339389127548203593837";
/// Lumen's implementation version name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("LUMEN_", env!("CARGO_PKG_VERSION"));

/// Why received bytes are not an acceptable DICOM object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Part10Error {
    /// No "DICM" prefix at offset 0 or 128.
    #[error("not a DICOM Part-10 object: no file meta information (missing DICM prefix)")]
    NoMeta,
    /// The meta group or the data set could not be parsed (truncated, wrong VR...).
    #[error("malformed DICOM data: {0}")]
    Malformed(String),
    /// The file meta could not be built.
    #[error("cannot build file meta information: {0}")]
    Meta(String),
    /// The structural pre-scan refused the bytes before parsing (impossible lengths,
    /// bad nesting, encoding not matching the transfer syntax...).
    #[error("malformed DICOM data: {0}")]
    Structure(#[from] crate::scan::ScanError),
    /// Valid DICOM that the parser cannot read correctly, refused rather than misread.
    #[error("unsupported DICOM encoding: {0}")]
    Unsupported(String),
}

/// Where the file meta group starts: after a 128-byte preamble, or at 0 without one.
pub fn meta_offset(bytes: &[u8]) -> Option<usize> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some(128)
    } else if bytes.len() >= 4 && &bytes[..4] == b"DICM" {
        Some(0)
    } else {
        None
    }
}

/// Runs the structural scan ([`crate::scan`]) that must pass before dicom-object sees
/// untrusted bytes: it allocates whatever lengths headers declare.
fn prescan(bytes: &[u8], opts: scan::Options) -> Result<scan::Summary, Part10Error> {
    let summary = scan::check_part10_with(bytes, opts)?;
    if let Some((tag, offset)) = summary.undefined_length_un {
        // dicom-parser 0.10 reads the implicit VR content of such an element as explicit
        // VR, goes astray and then allocates garbage lengths (pydicom's UN_sequence.dcm).
        return Err(Part10Error::Unsupported(format!(
            "element ({:04X},{:04X}) at offset {offset} has VR UN and undefined length \
             (an implicit VR sequence inside an explicit VR data set), which cannot be read",
            tag >> 16,
            tag & 0xFFFF
        )));
    }
    Ok(summary)
}

/// Parses a whole Part-10 object (with or without preamble), reading every element.
///
/// Truncated data, impossible lengths and unparseable values are errors, so an object
/// that parses here can be stored and served back. The bytes pass [`crate::scan`]
/// first, so hostile lengths are refused before anything is allocated for them.
pub fn parse(bytes: &[u8]) -> Result<DefaultDicomObject, Part10Error> {
    let off = meta_offset(bytes).ok_or(Part10Error::NoMeta)?;
    prescan(bytes, scan::Options::default())?;
    let obj = OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&bytes[off..])
        .map_err(|e| Part10Error::Malformed(clean_error(&e.to_string())))?;
    Ok(obj)
}

/// A trailing Pixel Data element that [`parse_for_index`] checked but did not read: its
/// value stays in the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedPixelData {
    /// The element's VR as encoded (OB or OW).
    pub vr: dicom_core::VR,
}

/// Parses an object as the archive indexes it: every element is checked as by [`parse`],
/// but a Pixel Data element that ends the data set (the common case) is not read into
/// memory, only described: ingest never looks at pixel values, and reading them cost a
/// zero-filled buffer and a copy of most of the object per instance. The index record
/// built from the result ([`crate::attrs::index_record_with`]) is the one [`parse`]'s
/// object gives.
pub fn parse_for_index(
    bytes: &[u8],
) -> Result<(DefaultDicomObject, Option<SkippedPixelData>), Part10Error> {
    let off = meta_offset(bytes).ok_or(Part10Error::NoMeta)?;
    let summary = prescan(bytes, scan::Options::default())?;
    // Only where the result is known to equal the full parse's: an explicit VR header
    // (an implicit one leaves the VR to the parser's dictionary) and a value long enough
    // to be served as bulk data (a tiny one is inlined in the metadata).
    // dicom-object gives encapsulated pixel data VR OB whatever the header says.
    let skip = summary.trailing_pixel_data.and_then(|h| {
        let vr = if h.len.is_none() {
            dicom_core::VR::OB
        } else {
            h.vr?
        };
        let len = h.len.map_or(usize::MAX, |l| l as usize);
        crate::json::is_bulk(dicom_dictionary_std::tags::PIXEL_DATA, vr, len)
            .then_some(SkippedPixelData { vr })
    });
    let mut options = OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Never);
    if skip.is_some() {
        options = options.read_until(dicom_dictionary_std::tags::PIXEL_DATA);
    }
    let obj = options
        .from_reader(&bytes[off..])
        .map_err(|e| Part10Error::Malformed(clean_error(&e.to_string())))?;
    Ok((obj, skip))
}

/// Parses only the file meta and the data set up to (not including) Pixel Data.
///
/// The scan stops where parsing stops, so the bytes may end anywhere after the Pixel
/// Data header.
pub fn parse_header(bytes: &[u8]) -> Result<DefaultDicomObject, Part10Error> {
    let off = meta_offset(bytes).ok_or(Part10Error::NoMeta)?;
    prescan(
        bytes,
        scan::Options {
            stop_at: Some(0x7FE0_0010),
            ..Default::default()
        },
    )?;
    OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .from_reader(&bytes[off..])
        .map_err(|e| Part10Error::Malformed(clean_error(&e.to_string())))
}

/// Library errors can quote values they failed on; keep only the first line and cap it,
/// which keeps patient data out of responses and logs in practice.
fn clean_error(e: &str) -> String {
    let line = e.lines().next().unwrap_or("parse error");
    line.chars().take(200).collect()
}

/// Builds Part-10 bytes (preamble, meta group, then `dataset` unchanged) for a data set
/// received over the network in `transfer_syntax_uid`.
pub fn wrap_dataset(
    dataset: &[u8],
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    source_ae: Option<&str>,
) -> Result<Vec<u8>, Part10Error> {
    let mut out = file_header(
        sop_class_uid,
        sop_instance_uid,
        transfer_syntax_uid,
        source_ae,
    )?;
    out.reserve_exact(dataset.len());
    out.extend_from_slice(dataset);
    Ok(out)
}

/// What [`wrap_dataset`] puts in front of the data set: the 128-byte preamble, `DICM` and
/// the file meta group.
pub fn file_header(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    source_ae: Option<&str>,
) -> Result<Vec<u8>, Part10Error> {
    let mut builder = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(transfer_syntax_uid)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
    if let Some(ae) = source_ae.filter(|a| !a.trim().is_empty()) {
        builder = builder.source_application_entity_title(ae.trim());
    }
    let meta = builder
        .build()
        .map_err(|e| Part10Error::Meta(e.to_string()))?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    meta.write(&mut out)
        .map_err(|e| Part10Error::Meta(e.to_string()))?;
    Ok(out)
}

/// Where the data set starts in Part-10 bytes (after preamble and meta group).
pub fn dataset_offset(bytes: &[u8]) -> Result<usize, Part10Error> {
    let off = meta_offset(bytes).ok_or(Part10Error::NoMeta)?;
    // (0002,0000) UL group length: "DICM" + tag(4) + "UL"(2) + len(2) + value(4).
    let p = off + 4;
    let head = bytes.get(p..p + 12).ok_or(Part10Error::NoMeta)?;
    if head[..4] != [0x02, 0x00, 0x00, 0x00] || &head[4..6] != b"UL" {
        return Err(Part10Error::Malformed(
            "file meta does not start with (0002,0000) group length".into(),
        ));
    }
    let glen = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let end = p + 12 + glen;
    if end > bytes.len() {
        return Err(Part10Error::Malformed(
            "file meta group length too large".into(),
        ));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_dicom_bytes_are_refused() {
        assert!(matches!(parse(b"hello world"), Err(Part10Error::NoMeta)));
        assert!(matches!(parse(&[0u8; 300]), Err(Part10Error::NoMeta)));
    }

    #[test]
    fn wrapped_dataset_parses_back() {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_dictionary_std::tags;
        use dicom_object::InMemDicomObject;
        let mut ds = InMemDicomObject::new_empty();
        ds.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7"),
        ));
        ds.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        let mut body = Vec::new();
        let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
        ds.write_dataset_with_ts(&mut body, &ts).unwrap();
        let bytes = wrap_dataset(
            &body,
            "1.2.840.10008.5.1.4.1.1.7",
            "1.2.3.4",
            "1.2.840.10008.1.2.1",
            Some("SCANNER"),
        )
        .unwrap();
        let obj = parse(&bytes).unwrap();
        assert_eq!(
            obj.meta()
                .media_storage_sop_instance_uid()
                .trim_end_matches('\0'),
            "1.2.3.4"
        );
        assert_eq!(&bytes[dataset_offset(&bytes).unwrap()..], &body[..]);
        let truncated = &bytes[..bytes.len() - 3];
        assert!(parse(truncated).is_err());
    }
}
