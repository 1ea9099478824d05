//! The walk that applies Table E.1-1 to every data element of an object, nested items
//! included, and adds the attributes that record what was done.

use std::collections::{HashMap, HashSet};

use dicom_core::header::{HasLength, Header};
use dicom_core::smallvec::smallvec;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, mem::InMemElement};

use crate::table::{self, Action, Row, Source};
use crate::{DeidError, Deidentified, Deidentifier, Warning, WarningKind, dates, derive};

/// The dummy text of D.
const DUMMY: &str = "ANONYMIZED";

/// What is done to one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Remove,
    Empty,
    Dummy,
    Keep,
    /// C of the dates option: shift DA and DT.
    CleanDate,
    /// C of Clean Descriptors (and of kept sequences): mask identifying text.
    Clean,
    NewUid,
    /// Free text inside an SR content tree (Content Sequence is D).
    StructuredText,
}

struct Cx<'a> {
    d: &'a Deidentifier,
    pseudonym: String,
    shift_days: i64,
    /// Identifying strings (lower case) that cleaned descriptors must not contain.
    identifying: Vec<String>,
    structured_text: usize,
    document_replaced: bool,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.value().to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

pub(crate) fn run(d: &Deidentifier, part10: &[u8]) -> Result<Deidentified, DeidError> {
    let file = lumen_dicom::part10::parse(part10)
        .map_err(|e| DeidError::Parse(sanitize(&e.to_string())))?;
    let meta = file.meta();
    let ts = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let meta_class = meta
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let meta_instance = meta
        .media_storage_sop_instance_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let obj = file.into_inner();

    let mut sop_instance = text(&obj, tags::SOP_INSTANCE_UID);
    if sop_instance.is_empty() {
        sop_instance = meta_instance;
    }
    if sop_instance.is_empty() {
        return Err(DeidError::NoSopInstanceUid);
    }
    let mut sop_class = text(&obj, tags::SOP_CLASS_UID);
    if sop_class.is_empty() {
        sop_class = meta_class;
    }
    let new_instance = d.replacement_uid(&sop_instance);

    // One patient, one pseudonym and one date shift within the export.
    let patient_key = [
        text(&obj, tags::PATIENT_ID),
        text(&obj, tags::PATIENT_NAME),
        text(&obj, tags::STUDY_INSTANCE_UID),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_default();
    let mut warnings = burned_in(&obj, &sop_class, &new_instance);
    let mut identifying = Vec::new();
    collect_identifying(&obj, &mut identifying);
    identifying.sort_by_key(|s: &String| std::cmp::Reverse(s.len()));
    identifying.dedup();
    let mut cx = Cx {
        d,
        pseudonym: format!("LUMEN-{}", derive::pseudonym(d.secret(), &patient_key)),
        shift_days: derive::shift_days(d.secret(), &patient_key),
        identifying,
        structured_text: 0,
        document_replaced: false,
    };
    let mut out = cx.dataset(obj, false);
    cx.record(&mut out);
    if out.get(tags::SOP_INSTANCE_UID).is_none() {
        out.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(new_instance.as_str()),
        ));
    }
    if cx.structured_text > 0 {
        warnings.push(Warning {
            sop_instance_uid: new_instance.clone(),
            kind: WarningKind::StructuredTextReplaced,
            message: format!(
                "{} text value(s) of the structured report's content were replaced by a \
                 dummy value (Content Sequence is D without the Clean Structured Content \
                 option)",
                cx.structured_text
            ),
        });
    }
    if cx.document_replaced {
        warnings.push(Warning {
            sop_instance_uid: new_instance.clone(),
            kind: WarningKind::DocumentReplaced,
            message: "the encapsulated document was replaced by a dummy value (D)".into(),
        });
    }
    let study = Some(text(&out, tags::STUDY_INSTANCE_UID)).filter(|s| !s.is_empty());
    let series = Some(text(&out, tags::SERIES_INSTANCE_UID)).filter(|s| !s.is_empty());

    let mut builder = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_instance_uid(new_instance.as_str())
        .implementation_class_uid(lumen_dicom::part10::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(lumen_dicom::part10::IMPLEMENTATION_VERSION_NAME);
    if !sop_class.is_empty() {
        builder = builder.media_storage_sop_class_uid(sop_class.as_str());
    }
    let file = out
        .with_meta(builder)
        .map_err(|e| DeidError::Encode(e.to_string()))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| DeidError::Encode(e.to_string()))?;
    Ok(Deidentified {
        bytes,
        sop_instance_uid: new_instance,
        study_instance_uid: study,
        series_instance_uid: series,
        warnings,
    })
}

/// Modalities whose images often show identifying text in their pixels.
const BURNED_IN_MODALITIES: &[&str] = &[
    "US", "IVUS", "SC", "OT", "XC", "ES", "GM", "SM", "OP", "DOC", "XA", "RF", "CR", "DX", "MG",
    "IO", "PX",
];

/// SOP classes whose images often show identifying text: secondary capture (…1.7, …1.7.x),
/// ultrasound (…1.6.1, …1.6.2, …1.3.1) and visible light (…1.77.1.x).
fn burned_in_class(class: &str) -> bool {
    let Some(rest) = class.strip_prefix("1.2.840.10008.5.1.4.1.1.") else {
        return false;
    };
    rest == "7"
        || rest.starts_with("7.")
        || matches!(rest, "6.1" | "6.2" | "3.1")
        || rest.starts_with("77.1.")
}

fn burned_in(obj: &InMemDicomObject, class: &str, uid: &str) -> Vec<Warning> {
    let mut out = Vec::new();
    let has_pixels = [
        tags::PIXEL_DATA,
        tags::FLOAT_PIXEL_DATA,
        tags::DOUBLE_FLOAT_PIXEL_DATA,
    ]
    .into_iter()
    .any(|t| obj.get(t).is_some());
    let burned = text(obj, tags::BURNED_IN_ANNOTATION).to_ascii_uppercase();
    let modality = text(obj, tags::MODALITY).to_ascii_uppercase();
    if burned == "YES" {
        out.push(Warning {
            sop_instance_uid: uid.to_string(),
            kind: WarningKind::BurnedInAnnotation,
            message: "Burned In Annotation is YES: the pixel data shows identifying text, \
                      which de-identification does not remove; review or clean the pixels"
                .into(),
        });
    } else if burned != "NO"
        && has_pixels
        && (BURNED_IN_MODALITIES.contains(&modality.as_str()) || burned_in_class(class))
    {
        out.push(Warning {
            sop_instance_uid: uid.to_string(),
            kind: WarningKind::PossibleBurnedInAnnotation,
            message: format!(
                "Burned In Annotation is absent for a {} image (SOP class {class}), a kind \
                 that often shows identifying text in its pixels; review the pixels",
                if modality.is_empty() { "?" } else { &modality }
            ),
        });
    }
    if text(obj, tags::RECOGNIZABLE_VISUAL_FEATURES).eq_ignore_ascii_case("YES") {
        out.push(Warning {
            sop_instance_uid: uid.to_string(),
            kind: WarningKind::RecognizableVisualFeatures,
            message: "Recognizable Visual Features is YES: the image may show the patient's \
                      face or other identifying features"
                .into(),
        });
    }
    out
}

/// Strings of attributes the profile removes or replaces (names, IDs, institution...),
/// which a cleaned descriptor must not repeat.
fn collect_identifying(obj: &InMemDicomObject, out: &mut Vec<String>) {
    for e in obj.iter() {
        let tag = e.tag();
        if let Value::Sequence(seq) = e.value() {
            for item in seq.items() {
                collect_identifying(item, out);
            }
            continue;
        }
        let Some(row) = table::lookup(tag) else {
            continue;
        };
        // Descriptors are what is cleaned, not what is looked for.
        if matches!(row.basic, Action::K | Action::C | Action::U)
            || row.clean_descriptors.is_some()
            || tag.0 % 2 == 1
        {
            continue;
        }
        if !matches!(e.vr(), VR::PN | VR::LO | VR::SH | VR::AE | VR::DA | VR::DT) {
            continue;
        }
        let Value::Primitive(p) = e.value() else {
            continue;
        };
        for v in p.to_multi_str().iter() {
            let v = v.trim().to_lowercase();
            if e.vr() == VR::PN {
                out.extend(
                    v.split(['^', '=', ' ', ','])
                        .filter(|s| s.chars().count() >= 3)
                        .map(str::to_string),
                );
            } else if matches!(e.vr(), VR::LO | VR::SH) {
                // Words of names and places ("Saint Elsewhere Hospital").
                out.extend(
                    v.split(|c: char| !c.is_alphanumeric())
                        .filter(|s| s.chars().count() >= 4)
                        .map(str::to_string),
                );
            }
            if v.chars().count() >= 3 {
                out.push(v);
            }
        }
    }
}

impl Cx<'_> {
    /// The operation `row` asks for under the options: K or C of an applied option
    /// before the Basic Profile.
    fn op_for(&self, row: &Row, vr: VR) -> Op {
        let o = &self.d.options;
        // Rows added after 2024b carry no option columns: the options' own rules apply
        // (Retain UIDs keeps every UID, the dates option covers every date and time).
        let later = row.source == Source::Basic2026c;
        if o.retain_uids
            && (row.retain_uids == Some(Action::K) || (later && row.basic == Action::U))
        {
            return Op::Keep;
        }
        if o.retain_longitudinal_modified_dates
            && (row.retain_long_modified_dates == Some(Action::C)
                || (later && matches!(vr, VR::DA | VR::DT | VR::TM)))
        {
            return Op::CleanDate;
        }
        if o.clean_descriptors && row.clean_descriptors == Some(Action::C) {
            return Op::Clean;
        }
        match row.basic {
            Action::X => Op::Remove,
            Action::Z | Action::XZ => Op::Empty,
            // The last choice is valid whatever the attribute's type in the IOD.
            Action::D | Action::ZD | Action::XD | Action::XZD => Op::Dummy,
            Action::K => Op::Keep,
            Action::C => Op::Clean,
            Action::U => Op::NewUid,
            // Keep the referencing sequence; its UIDs are U rows of their own.
            Action::XZUStar => Op::Keep,
        }
    }

    fn op(&self, tag: Tag, vr: VR, in_content: bool) -> Op {
        match table::lookup(tag) {
            Some(row) => self.op_for(row, vr),
            None if in_content && tag == tags::TEXT_VALUE => Op::StructuredText,
            None => Op::Keep,
        }
    }

    fn dataset(&mut self, obj: InMemDicomObject, in_content: bool) -> InMemDicomObject {
        // Private blocks of this item: (group, block) -> creator, and the blocks kept.
        let mut creators: HashMap<(u16, u8), String> = HashMap::new();
        for e in obj.iter() {
            let t = e.tag();
            if t.0 % 2 == 1 && (0x10..=0xFF).contains(&t.1) {
                creators.insert((t.0, t.1 as u8), element_text(e));
            }
        }
        let safe = &self.d.options.safe_private;
        let kept = |t: Tag| -> bool {
            let block = (t.1 >> 8) as u8;
            let Some(creator) = creators.get(&(t.0, block)) else {
                return false;
            };
            safe.iter()
                .any(|s| s.group == t.0 && s.element == (t.1 & 0xFF) as u8 && s.creator == *creator)
        };
        let kept_blocks: HashSet<(u16, u8)> = obj
            .iter()
            .map(|e| e.tag())
            .filter(|t| t.0 % 2 == 1 && t.1 >= 0x1000 && kept(*t))
            .map(|t| (t.0, (t.1 >> 8) as u8))
            .collect();

        let mut out = InMemDicomObject::new_empty();
        for e in obj {
            let t = e.tag();
            if t.1 == 0 || t.0 == 0x0002 || t.0 == 0xFFFE {
                continue; // group lengths (stale once values change), stray meta
            }
            if t.0 % 2 == 1 {
                let keep = if t.1 < 0x0010 {
                    false
                } else if t.1 <= 0x00FF {
                    kept_blocks.contains(&(t.0, t.1 as u8))
                } else {
                    t.1 >= 0x1000 && kept(t)
                };
                if keep {
                    let e = self.keep(e, in_content);
                    out.put(e);
                }
                continue;
            }
            let vr = e.vr();
            let op = self.op(t, vr, in_content);
            if let Some(e) = self.apply(e, op, in_content) {
                out.put(e);
            }
        }
        out
    }

    /// Keeps an element; a sequence's items are cleaned by the table all the same.
    fn keep(&mut self, e: InMemElement, in_content: bool) -> InMemElement {
        let (header, value) = e.into_parts();
        match value {
            Value::Sequence(seq) => {
                let nested = in_content || header.tag == tags::CONTENT_SEQUENCE;
                let items: Vec<InMemDicomObject> = seq
                    .into_items()
                    .into_iter()
                    .map(|i| self.dataset(i, nested))
                    .collect();
                DataElement::new(
                    header.tag,
                    VR::SQ,
                    DataSetSequence::new(items, Length::UNDEFINED),
                )
            }
            v => DataElement::new_with_len(header.tag, header.vr, header.len, v),
        }
    }

    fn apply(&mut self, e: InMemElement, op: Op, in_content: bool) -> Option<InMemElement> {
        let tag = e.tag();
        let vr = e.vr();
        let is_seq = matches!(e.value(), Value::Sequence(_));
        // Patient's Name and Patient ID: the pseudonym (allowed by Z and D alike).
        if matches!(op, Op::Empty | Op::Dummy)
            && (tag == tags::PATIENT_NAME || tag == tags::PATIENT_ID)
        {
            return Some(DataElement::new(
                tag,
                vr,
                PrimitiveValue::from(self.pseudonym.as_str()),
            ));
        }
        match op {
            Op::Remove => None,
            Op::Keep => Some(self.keep(e, in_content)),
            Op::Empty if is_seq => Some(DataElement::new(
                tag,
                VR::SQ,
                DataSetSequence::<InMemDicomObject>::new(Vec::new(), Length::UNDEFINED),
            )),
            Op::Empty => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            // A sequence to "replace" keeps its items, cleaned (Content Sequence...).
            Op::Dummy | Op::Clean | Op::CleanDate if is_seq => Some(self.keep(e, in_content)),
            Op::Dummy if vr == VR::UI => self.new_uids(e),
            Op::Dummy => {
                if tag == tags::ENCAPSULATED_DOCUMENT {
                    self.document_replaced = true;
                }
                Some(DataElement::new(tag, vr, dummy(vr)))
            }
            Op::NewUid if vr == VR::UI => self.new_uids(e),
            // A UID that cannot be read as one (VR UN...) cannot be mapped: removed.
            Op::NewUid => None,
            Op::StructuredText => {
                self.structured_text += 1;
                Some(DataElement::new(tag, vr, PrimitiveValue::from(DUMMY)))
            }
            Op::Clean => self.clean(e),
            Op::CleanDate => self.shift(e),
        }
    }

    fn new_uids(&self, e: InMemElement) -> Option<InMemElement> {
        let tag = e.tag();
        let Value::Primitive(p) = e.value() else {
            return None;
        };
        if p.is_empty() {
            return Some(DataElement::new(tag, VR::UI, PrimitiveValue::Empty));
        }
        let uids: Vec<String> = p
            .to_multi_str()
            .iter()
            .map(|u| derive::uid(self.d.secret(), u.trim_end_matches(['\0', ' '])))
            .collect();
        Some(DataElement::new(
            tag,
            VR::UI,
            PrimitiveValue::Strs(uids.into()),
        ))
    }

    fn clean(&self, e: InMemElement) -> Option<InMemElement> {
        let tag = e.tag();
        let vr = e.vr();
        let Value::Primitive(p) = e.value() else {
            return None;
        };
        if p.is_empty() {
            return Some(e);
        }
        match vr {
            VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC | VR::PN | VR::CS => {
                let cleaned: Vec<String> = p
                    .to_multi_str()
                    .iter()
                    .map(|v| mask(v, &self.identifying))
                    .collect();
                Some(DataElement::new(
                    tag,
                    vr,
                    PrimitiveValue::Strs(cleaned.into()),
                ))
            }
            // Values of other VRs have no text to clean and are kept.
            _ => Some(e),
        }
    }

    /// Shifts DA and DT values by the patient's offset; times of day and values of other
    /// VRs (a time zone) are unchanged by whole-day shifts.
    fn shift(&self, e: InMemElement) -> Option<InMemElement> {
        let tag = e.tag();
        let vr = e.vr();
        if !matches!(vr, VR::DA | VR::DT) {
            return Some(e);
        }
        let Value::Primitive(p) = e.value() else {
            return None;
        };
        let mut shifted = Vec::new();
        for v in p.to_multi_str().iter() {
            // A date that cannot be shifted is not kept.
            shifted.push(dates::shift(v, self.shift_days)?);
        }
        Some(DataElement::new(
            tag,
            vr,
            PrimitiveValue::Strs(shifted.into()),
        ))
    }

    /// Adds Patient Identity Removed, De-identification Method (and its code sequence)
    /// and Longitudinal Temporal Information Modified.
    fn record(&self, out: &mut InMemDicomObject) {
        let o = &self.d.options;
        let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
        if o.retain_longitudinal_modified_dates {
            codes.push((
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ));
        }
        if o.retain_uids {
            codes.push(("113110", "Retain UIDs Option"));
        }
        if o.clean_descriptors {
            codes.push(("113105", "Clean Descriptors Option"));
        }
        if !o.safe_private.is_empty() {
            codes.push(("113111", "Retain Safe Private Option"));
        }
        out.put(DataElement::new(
            tags::PATIENT_IDENTITY_REMOVED,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
        // Earlier de-identification (a data set that came de-identified) stays recorded.
        let mut methods: Vec<String> = out
            .get(tags::DEIDENTIFICATION_METHOD)
            .and_then(|e| e.value().to_multi_str().ok().map(|v| v.to_vec()))
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        methods.push(format!("Lumen {}", env!("CARGO_PKG_VERSION")));
        methods.extend(codes.iter().map(|(_, m)| m.to_string()));
        out.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            PrimitiveValue::Strs(methods.into()),
        ));
        let mut items: Vec<InMemDicomObject> = out
            .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
            .and_then(|e| e.items().map(|i| i.to_vec()))
            .unwrap_or_default();
        for (value, meaning) in codes {
            let dup = items.iter().any(|i| {
                text(i, tags::CODE_VALUE) == value
                    && text(i, tags::CODING_SCHEME_DESIGNATOR) == "DCM"
            });
            if dup {
                continue;
            }
            items.push(InMemDicomObject::from_element_iter([
                DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
                DataElement::new(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    PrimitiveValue::from("DCM"),
                ),
                DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
            ]));
        }
        out.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(items, Length::UNDEFINED),
        ));
        out.put(DataElement::new(
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from(if o.retain_longitudinal_modified_dates {
                "MODIFIED"
            } else {
                "REMOVED"
            }),
        ));
    }
}

/// A parser's message without what it quotes (a value it could not read may be a name).
pub(crate) fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    let mut prev = ' ';
    for c in message.chars() {
        // An apostrophe inside a word ("can't") opens nothing.
        let quote = matches!(c, '`' | '"') || (c == '\'' && (prev.is_whitespace() || prev == '('));
        prev = c;
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if quote => {
                out.push(c);
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

fn element_text(e: &InMemElement) -> String {
    match e.value() {
        Value::Primitive(p) => p.to_str().trim_matches(['\0', ' ']).to_string(),
        _ => String::new(),
    }
}

/// A dummy value of `vr` (D).
fn dummy(vr: VR) -> PrimitiveValue {
    match vr {
        VR::DA => PrimitiveValue::from("19000101"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::AS => PrimitiveValue::from("000Y"),
        VR::IS | VR::DS => PrimitiveValue::from("0"),
        VR::UR => PrimitiveValue::from("urn:x-lumen:anonymized"),
        VR::US => PrimitiveValue::U16(smallvec![0]),
        VR::SS => PrimitiveValue::I16(smallvec![0]),
        VR::UL => PrimitiveValue::U32(smallvec![0]),
        VR::SL => PrimitiveValue::I32(smallvec![0]),
        VR::UV => PrimitiveValue::U64(smallvec![0]),
        VR::SV => PrimitiveValue::I64(smallvec![0]),
        VR::FL | VR::OF => PrimitiveValue::F32(smallvec![0.0]),
        VR::FD | VR::OD => PrimitiveValue::F64(smallvec![0.0]),
        VR::AT => PrimitiveValue::Tags(smallvec![Tag(0, 0)]),
        VR::OB | VR::OW | VR::OL | VR::OV | VR::UN => PrimitiveValue::U8(smallvec![0, 0]),
        _ => PrimitiveValue::from(DUMMY),
    }
}

/// Masks every identifying string in `value` with `*` (case-insensitive).
fn mask(value: &str, identifying: &[String]) -> String {
    let mut v = value.to_string();
    for id in identifying {
        if id.is_empty() {
            continue;
        }
        loop {
            let lower = v.to_lowercase();
            // to_lowercase may change byte lengths outside ASCII: only mask where the
            // lower-cased text lines up with the original.
            if lower.len() != v.len() {
                if lower.contains(id.as_str()) {
                    return "*".repeat(value.chars().count().max(1));
                }
                break;
            }
            let Some(at) = lower.find(id.as_str()) else {
                break;
            };
            let n = v[at..at + id.len()].chars().count();
            v.replace_range(at..at + id.len(), &"*".repeat(n));
        }
    }
    v
}
