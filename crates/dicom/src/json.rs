//! DICOM JSON (PS3.18 Annex F), with BulkDataURIs for bulk data.
//!
//! dicom-json serialises single elements; this module decides what is bulk data (it
//! never writes BulkDataURI itself) and builds the maps the archive stores and serves.
//! Stored maps carry *relative* BulkDataURIs (`bulkdata/7FE00010`), made absolute
//! per request with [`absolutize_bulk_uris`], so that the archive can move behind a
//! proxy without rewriting its index.

use dicom_core::header::Header;
use dicom_core::{Tag, VR, value::Value as DicomValue};
use dicom_dictionary_std::tags;
use dicom_json::DicomJson;
use dicom_object::InMemDicomObject;
use serde_json::{Map, Value, json};

/// Values of binary VRs longer than this many bytes are served as bulk data.
pub const BULK_THRESHOLD: usize = 1024;

/// The DICOM JSON key of a tag: eight upper-case hexadecimal digits.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// Parses a DICOM JSON key (`"0020000D"`) into a tag.
pub fn parse_tag_key(key: &str) -> Option<Tag> {
    if key.len() != 8 {
        return None;
    }
    let g = u16::from_str_radix(&key[..4], 16).ok()?;
    let e = u16::from_str_radix(&key[4..], 16).ok()?;
    Some(Tag(g, e))
}

fn element_json(elem: &dicom_object::mem::InMemElement) -> Value {
    serde_json::to_value(DicomJson::from(elem))
        .unwrap_or_else(|_| json!({"vr": elem.vr().to_string()}))
}

/// The attributes of `ds` among `wanted` that are present, as a DICOM JSON map.
pub fn select(ds: &InMemDicomObject, wanted: &[Tag]) -> Map<String, Value> {
    let mut out = Map::new();
    for &tag in wanted {
        // `get`, not `element_opt`, which captures a backtrace for each absent attribute.
        if let Some(elem) = ds.get(tag) {
            out.insert(tag_key(tag), element_json(elem));
        }
    }
    out
}

/// Whether an element is served as bulk data rather than inline.
pub fn is_bulk(tag: Tag, vr: VR, len: usize) -> bool {
    if tag == tags::PIXEL_DATA
        || tag == tags::FLOAT_PIXEL_DATA
        || tag == tags::DOUBLE_FLOAT_PIXEL_DATA
        || tag == tags::ENCAPSULATED_DOCUMENT
    {
        return true;
    }
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
    ) && len > BULK_THRESHOLD
}

/// The whole data set as DICOM JSON, with relative BulkDataURIs (`bulkdata/GGGGEEEE`)
/// in place of bulk values at the top level.
pub fn metadata(ds: &InMemDicomObject) -> Map<String, Value> {
    let mut out = Map::new();
    for elem in ds {
        let tag = elem.tag();
        if tag.group() == 0x0002 {
            continue;
        }
        let len = match elem.value() {
            DicomValue::Primitive(p) => p.calculate_byte_len(),
            DicomValue::PixelSequence(_) => usize::MAX,
            DicomValue::Sequence(_) => 0,
        };
        let key = tag_key(tag);
        if is_bulk(tag, elem.vr(), len) {
            out.insert(key, bulk_reference(tag, elem.vr()));
        } else {
            out.insert(key, element_json(elem));
        }
    }
    out
}

/// The metadata entry of a bulk element: its VR and relative BulkDataURI.
pub fn bulk_reference(tag: Tag, vr: VR) -> Value {
    json!({"vr": vr.to_string(), "BulkDataURI": format!("bulkdata/{}", tag_key(tag))})
}

/// Makes the relative BulkDataURIs of a stored metadata map absolute, under `instance_url`
/// (for example `http://host/dicom-web/studies/1/series/2/instances/3`).
pub fn absolutize_bulk_uris(map: &mut Map<String, Value>, instance_url: &str) {
    for v in map.values_mut() {
        if let Some(Value::String(uri)) = v.get_mut("BulkDataURI")
            && !uri.contains("://")
        {
            *uri = format!("{instance_url}/{uri}");
        }
    }
}

/// The string values of an attribute in a DICOM JSON map: text as is, numbers printed,
/// person names as their Alphabetic component group.
pub fn string_values(map: &Map<String, Value>, tag: Tag) -> Vec<String> {
    let Some(Value::Array(values)) = map.get(&tag_key(tag)).and_then(|e| e.get("Value")) else {
        return Vec::new();
    };
    values
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => o
                .get("Alphabetic")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        })
        .collect()
}

/// The component groups of a person name value (PS3.18 F.2.2): alphabetic, ideographic
/// and phonetic, each trimmed, `None` when absent or empty. A Chinese name is usually held
/// in the ideographic group (王^芳) beside its pinyin (Wang^Fang).
pub fn person_name_groups(value: &Value) -> [Option<&str>; 3] {
    let group = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    match value {
        Value::Object(_) => [group("Alphabetic"), group("Ideographic"), group("Phonetic")],
        Value::String(s) => [Some(s.trim()).filter(|s| !s.is_empty()), None, None],
        _ => [None, None, None],
    }
}

/// Every non-empty component group of every value of a person name attribute.
pub fn person_name_values(map: &Map<String, Value>, tag: Tag) -> Vec<String> {
    let Some(Value::Array(values)) = map.get(&tag_key(tag)).and_then(|e| e.get("Value")) else {
        return Vec::new();
    };
    values
        .iter()
        .flat_map(|v| {
            person_name_groups(v)
                .into_iter()
                .flatten()
                .map(str::to_string)
        })
        .collect()
}

/// The first string value of an attribute, if any.
pub fn first_string(map: &Map<String, Value>, tag: Tag) -> Option<String> {
    string_values(map, tag).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};

    #[test]
    fn pixel_data_becomes_bulk_uri() {
        let mut ds = InMemDicomObject::new_empty();
        ds.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^John"),
        ));
        ds.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U8(vec![0u8; 2048].into()),
        ));
        let mut m = metadata(&ds);
        assert_eq!(m["7FE00010"]["BulkDataURI"], "bulkdata/7FE00010");
        assert_eq!(m["00100010"]["Value"][0]["Alphabetic"], "Doe^John");
        absolutize_bulk_uris(&mut m, "http://h/i");
        assert_eq!(m["7FE00010"]["BulkDataURI"], "http://h/i/bulkdata/7FE00010");
        assert_eq!(string_values(&m, tags::PATIENT_NAME), vec!["Doe^John"]);
    }

    #[test]
    fn tag_keys_round_trip() {
        assert_eq!(tag_key(tags::STUDY_INSTANCE_UID), "0020000D");
        assert_eq!(parse_tag_key("0020000D"), Some(tags::STUDY_INSTANCE_UID));
        assert_eq!(parse_tag_key("0020000"), None);
        assert_eq!(parse_tag_key("0020000G"), None);
    }
}
