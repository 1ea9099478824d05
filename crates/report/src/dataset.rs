//! Small helpers to build data sets with dicom-rs: typed element puts, code items, DS strings,
//! Part-10 encoding.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::source::{SeriesInfo, StudyContext};
use crate::{Code, ReportError, Result, uid};

/// Explicit VR Little Endian.
pub(crate) const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Extension methods that keep the writers terse.
pub(crate) trait Put {
    /// Puts a string value (multiple values joined with `\`).
    fn str(&mut self, tag: Tag, vr: VR, value: impl Into<String>);
    /// Puts a US value.
    fn us(&mut self, tag: Tag, value: u16);
    /// Puts a sequence.
    fn seq(&mut self, tag: Tag, items: Vec<InMemDicomObject>);
    /// Puts a sequence holding one code item.
    fn code(&mut self, tag: Tag, code: &Code);
    /// Puts a primitive value.
    fn prim(&mut self, tag: Tag, vr: VR, value: PrimitiveValue);
}

impl Put for InMemDicomObject {
    fn str(&mut self, tag: Tag, vr: VR, value: impl Into<String>) {
        let value: String = value.into();
        if value.is_empty() {
            self.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        } else {
            self.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
    }
    fn us(&mut self, tag: Tag, value: u16) {
        self.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    fn seq(&mut self, tag: Tag, items: Vec<InMemDicomObject>) {
        self.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
    }
    fn code(&mut self, tag: Tag, code: &Code) {
        self.seq(tag, vec![code_item(code)]);
    }
    fn prim(&mut self, tag: Tag, vr: VR, value: PrimitiveValue) {
        self.put(DataElement::new(tag, vr, value));
    }
}

/// A Code Sequence Macro item.
pub(crate) fn code_item(code: &Code) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    o.str(tags::CODE_VALUE, VR::SH, code.value.clone());
    o.str(tags::CODING_SCHEME_DESIGNATOR, VR::SH, code.scheme.clone());
    o.str(tags::CODE_MEANING, VR::LO, code.meaning.clone());
    o
}

/// Formats a number as a Decimal String of at most 16 characters.
pub(crate) fn ds(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return plain;
    }
    // Pick the fitting fixed or scientific form that round-trips best.
    let mut best: Option<(f64, String)> = None;
    for precision in 0..=15 {
        let fixed = format!("{v:.precision$}");
        let fixed = if fixed.contains('.') {
            fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            fixed
        };
        for candidate in [fixed, format!("{v:.precision$e}")] {
            if candidate.len() > 16 {
                continue;
            }
            let err = candidate
                .parse::<f64>()
                .map_or(f64::INFINITY, |b| (b - v).abs());
            if best.as_ref().is_none_or(|(e, _)| err < *e) {
                best = Some((err, candidate));
            }
        }
    }
    best.map_or_else(|| "0".to_owned(), |(_, s)| s)
}

/// Formats several numbers as a multi-valued Decimal String.
pub(crate) fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// Today's date and time as DA and TM strings (UTC).
pub(crate) fn now_da_tm() -> (String, String) {
    let c = crate::time::Civil::from_ms(crate::time::now_ms());
    (c.da(), c.tm())
}

/// Encodes a data set as a Part-10 file in Explicit VR Little Endian.
pub(crate) fn to_part10(obj: InMemDicomObject) -> Result<Vec<u8>> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .implementation_version_name("LUMEN"),
        )
        .map_err(|e| ReportError::Encode(e.to_string()))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| ReportError::Encode(e.to_string()))?;
    Ok(out)
}

/// The identity of a new object in a new series: its UIDs and creation date and time.
pub(crate) struct NewObject {
    pub(crate) sop_instance_uid: String,
    pub(crate) series_instance_uid: String,
    pub(crate) date: String,
    pub(crate) time: String,
}

/// Starts an object of `sop_class` in a new series of `study`: SOP Common (UTF-8), Patient,
/// General Study and General Series (modality, UID, number, date, time, description), with
/// the UIDs and date the caller fixed in `series`, or new ones.
pub(crate) fn new_object(
    study: &StudyContext,
    series: &SeriesInfo,
    sop_class: &str,
    modality: &str,
) -> Result<(InMemDicomObject, NewObject)> {
    let (date, time) = series.date_time.clone().unwrap_or_else(now_da_tm);
    let id = NewObject {
        sop_instance_uid: series.sop_instance_uid.clone().unwrap_or_else(uid::new_uid),
        series_instance_uid: series
            .series_instance_uid
            .clone()
            .unwrap_or_else(uid::new_uid),
        date,
        time,
    };
    let mut o = InMemDicomObject::new_empty();
    o.str(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    o.str(tags::SOP_CLASS_UID, VR::UI, sop_class);
    o.str(tags::SOP_INSTANCE_UID, VR::UI, id.sop_instance_uid.clone());
    o.str(tags::INSTANCE_CREATION_DATE, VR::DA, id.date.clone());
    o.str(tags::INSTANCE_CREATION_TIME, VR::TM, id.time.clone());
    study.put_patient_study(&mut o)?;
    o.str(tags::MODALITY, VR::CS, modality);
    o.str(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        id.series_instance_uid.clone(),
    );
    o.str(
        tags::SERIES_NUMBER,
        VR::IS,
        series.series_number.to_string(),
    );
    o.str(tags::SERIES_DATE, VR::DA, id.date.clone());
    o.str(tags::SERIES_TIME, VR::TM, id.time.clone());
    if !series.series_description.is_empty() {
        o.str(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            series.series_description.clone(),
        );
    }
    Ok((o, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_fits_sixteen_characters() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -235.199997,
            0.810547,
            1.0 / 3.0,
            -123456.789012345,
            1e-20,
            -9.87654321e22,
            std::f64::consts::PI * 1e5,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{v} -> {s}");
            let back: f64 = s.parse().unwrap();
            assert!((back - v).abs() <= v.abs() * 1e-9 + 1e-12, "{v} -> {s}");
        }
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(-235.199997), "-235.199997");
    }

    #[test]
    fn date_is_plausible() {
        let (da, tm) = now_da_tm();
        assert_eq!(da.len(), 8);
        assert!(da.as_str() > "20240101");
        assert_eq!(tm.len(), 6);
    }
}
