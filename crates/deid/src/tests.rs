//! Unit tests on synthetic objects, and the conformance walk over Table E.1-1.

use dicom_core::header::Header;
use dicom_core::smallvec::smallvec;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::{DefaultDicomObject, InMemDicomObject, mem::InMemElement};

use crate::table::{self, Action, Source, TagPattern};
use crate::*;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const SC: &str = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn secret() -> Secret {
    Secret::from_bytes([42; 32])
}

fn el(tag: Tag, vr: VR, v: &str) -> InMemElement {
    DataElement::new(tag, vr, PrimitiveValue::from(v))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

fn item(elems: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elems)
}

/// A CT image of patient `pid` in `study`/`series`, with identifying attributes, nested
/// references and private tags.
fn ct(pid: &str, study: &str, series: &str, sop: &str) -> InMemDicomObject {
    item(vec![
        el(tags::SOP_CLASS_UID, VR::UI, CT),
        el(tags::SOP_INSTANCE_UID, VR::UI, sop),
        el(tags::STUDY_DATE, VR::DA, "20210315"),
        el(tags::STUDY_TIME, VR::TM, "101500"),
        el(tags::ACQUISITION_DATE_TIME, VR::DT, "20210315101600.5"),
        el(tags::ACCESSION_NUMBER, VR::SH, "ACC12345"),
        el(tags::MODALITY, VR::CS, "CT"),
        el(tags::INSTITUTION_NAME, VR::LO, "Saint Elsewhere Hospital"),
        el(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "House^Gregory"),
        el(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            "CT CHEST for Doe at Saint Elsewhere",
        ),
        el(tags::SERIES_DESCRIPTION, VR::LO, "AXIAL 1mm"),
        el(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        el(tags::PATIENT_ID, VR::LO, pid),
        el(tags::PATIENT_BIRTH_DATE, VR::DA, "19600102"),
        el(tags::PATIENT_SEX, VR::CS, "F"),
        el(tags::PATIENT_AGE, VR::AS, "061Y"),
        el(tags::STUDY_INSTANCE_UID, VR::UI, study),
        el(tags::SERIES_INSTANCE_UID, VR::UI, series),
        el(tags::FRAME_OF_REFERENCE_UID, VR::UI, &format!("{study}.9")),
        el(tags::IMAGE_COMMENTS, VR::LT, "Jane Doe, call 555-0100"),
        seq(
            tags::REFERENCED_IMAGE_SEQUENCE,
            vec![item(vec![
                el(tags::REFERENCED_SOP_CLASS_UID, VR::UI, CT),
                el(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6.7.1"),
            ])],
        ),
        seq(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            vec![item(vec![el(tags::REQUESTED_PROCEDURE_ID, VR::SH, "RP1")])],
        ),
        seq(
            tags::PROCEDURE_CODE_SEQUENCE,
            vec![item(vec![
                el(tags::CODE_VALUE, VR::SH, "CTCHEST"),
                el(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "99LOCAL"),
                el(tags::CODE_MEANING, VR::LO, "CT chest"),
                // An identifying attribute nested in a kept sequence.
                el(tags::OPERATORS_NAME, VR::PN, "Tech^Tom"),
            ])],
        ),
        el(Tag(0x0009, 0x0010), VR::LO, "ACME 1.0"),
        el(Tag(0x0009, 0x1001), VR::LO, "private secret Doe"),
        el(Tag(0x0009, 0x1002), VR::DS, "1.5"),
        el(Tag(0x0011, 0x0010), VR::LO, "OTHER"),
        el(Tag(0x0011, 0x1001), VR::LO, "other"),
        el(tags::BURNED_IN_ANNOTATION, VR::CS, "NO"),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U8(vec![1, 2, 3, 4, 5, 6, 7, 8].into()),
        ),
    ])
}

fn part10(obj: InMemDicomObject) -> Vec<u8> {
    let file = obj
        .with_meta(dicom_object::FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_LE))
        .expect("meta");
    let mut out = Vec::new();
    file.write_all(&mut out).expect("write");
    out
}

fn parse(bytes: &[u8]) -> DefaultDicomObject {
    lumen_dicom::part10::parse(bytes).expect("output parses")
}

fn s(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag).map(|e| {
        e.value()
            .to_str()
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    })
}

fn run(options: Options, obj: InMemDicomObject) -> (Deidentified, DefaultDicomObject) {
    let d = Deidentifier::new(options, secret());
    let out = d.deidentify(&part10(obj)).expect("deidentify");
    let parsed = parse(&out.bytes);
    (out, parsed)
}

/// Every string value anywhere in the object (nested items included).
fn all_strings(obj: &InMemDicomObject, out: &mut Vec<String>) {
    for e in obj.iter() {
        match e.value() {
            Value::Sequence(sq) => sq.items().iter().for_each(|i| all_strings(i, out)),
            Value::Primitive(p) => out.extend(p.to_multi_str().iter().cloned()),
            Value::PixelSequence(_) => {}
        }
    }
}

#[test]
fn basic_profile_removes_replaces_and_records() {
    let (out, o) = run(
        Options::default(),
        ct("PID-1", "1.2.3.1", "1.2.3.1.1", "1.2.3.1.1.1"),
    );
    assert_eq!(
        s(&o, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
        Some("YES")
    );
    let pid = s(&o, tags::PATIENT_ID).expect("pseudonym");
    assert!(pid.starts_with("LUMEN-") && pid.len() == 18, "{pid}");
    assert_eq!(s(&o, tags::PATIENT_NAME), Some(pid));
    for gone in [
        tags::IMAGE_COMMENTS,
        tags::STUDY_DESCRIPTION,
        tags::SERIES_DESCRIPTION,
        tags::PATIENT_AGE,
        tags::REQUEST_ATTRIBUTES_SEQUENCE,
    ] {
        assert!(o.get(gone).is_none(), "{gone} should be removed");
    }
    assert_eq!(s(&o, tags::STUDY_DATE).as_deref(), Some(""), "Z");
    assert_eq!(s(&o, tags::ACCESSION_NUMBER).as_deref(), Some(""), "Z");
    assert_eq!(s(&o, tags::PATIENT_SEX).as_deref(), Some(""), "Z");
    assert_eq!(
        s(&o, tags::INSTITUTION_NAME).as_deref(),
        Some("ANONYMIZED"),
        "X/Z/D"
    );
    assert_eq!(
        s(&o, tags::ACQUISITION_DATE_TIME).as_deref(),
        Some("19000101000000")
    );
    assert_eq!(
        s(&o, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
        Some("REMOVED")
    );
    // UIDs replaced, meta follows.
    let study = s(&o, tags::STUDY_INSTANCE_UID).expect("study");
    assert!(study.starts_with("2.25.") && study != "1.2.3.1");
    assert_eq!(out.study_instance_uid.as_deref(), Some(study.as_str()));
    assert_eq!(
        o.meta()
            .media_storage_sop_instance_uid()
            .trim_end_matches('\0'),
        out.sop_instance_uid
    );
    assert_eq!(
        s(&o, tags::SOP_INSTANCE_UID),
        Some(out.sop_instance_uid.clone())
    );
    assert_eq!(
        s(&o, tags::SOP_CLASS_UID).as_deref(),
        Some(CT),
        "not in the table: kept"
    );
    // Nested: referenced UID mapped, identifying attribute in a kept sequence treated.
    let r = o
        .get(tags::REFERENCED_IMAGE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("kept");
    let d = Deidentifier::new(Options::default(), secret());
    assert_eq!(
        s(&r[0], tags::REFERENCED_SOP_INSTANCE_UID),
        Some(d.replacement_uid("1.2.3.4.5.6.7.1"))
    );
    assert_eq!(
        s(&r[0], tags::REFERENCED_SOP_CLASS_UID).as_deref(),
        Some(CT)
    );
    let p = o
        .get(tags::PROCEDURE_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("X? kept");
    let _ = p;
    // Private attributes removed, creators too.
    assert!(o.iter().all(|e| e.tag().0 % 2 == 0), "no private tag left");
    // Method code sequence.
    let codes = o
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes");
    assert_eq!(codes.len(), 1);
    assert_eq!(s(&codes[0], tags::CODE_VALUE).as_deref(), Some("113100"));
    assert_eq!(
        s(&codes[0], tags::CODING_SCHEME_DESIGNATOR).as_deref(),
        Some("DCM")
    );
    // Pixel data byte for byte.
    let px = o
        .get(tags::PIXEL_DATA)
        .expect("pixels")
        .value()
        .to_bytes()
        .expect("bytes");
    assert_eq!(&px[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // Nothing identifying anywhere.
    let mut strings = Vec::new();
    all_strings(&o, &mut strings);
    for bad in [
        "Doe", "PID-1", "House", "Tech^Tom", "20210315", "19600102", "ACC12345", "1.2.3.1",
    ] {
        assert!(
            !strings.iter().any(|v| v.contains(bad)),
            "{bad} left in {strings:?}"
        );
    }
}

#[test]
fn uids_consistent_across_instances_and_references() {
    let d = Deidentifier::new(Options::default(), secret());
    let a = d
        .deidentify(&part10(ct("P", "1.9.1", "1.9.1.1", "1.2.3.4.5.6.7.1")))
        .expect("a");
    let mut b_obj = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.2");
    b_obj.put(seq(
        tags::REFERENCED_IMAGE_SEQUENCE,
        vec![item(vec![
            el(tags::REFERENCED_SOP_CLASS_UID, VR::UI, CT),
            el(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6.7.1"),
        ])],
    ));
    let b = d.deidentify(&part10(b_obj)).expect("b");
    assert_eq!(a.study_instance_uid, b.study_instance_uid);
    assert_eq!(a.series_instance_uid, b.series_instance_uid);
    assert_ne!(a.sop_instance_uid, b.sop_instance_uid);
    let bo = parse(&b.bytes);
    let r = bo
        .get(tags::REFERENCED_IMAGE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("refs");
    assert_eq!(
        s(&r[0], tags::REFERENCED_SOP_INSTANCE_UID),
        Some(a.sop_instance_uid.clone())
    );
    let ao = parse(&a.bytes);
    assert_eq!(
        s(&ao, tags::FRAME_OF_REFERENCE_UID),
        s(&bo, tags::FRAME_OF_REFERENCE_UID)
    );
    assert_eq!(s(&ao, tags::PATIENT_ID), s(&bo, tags::PATIENT_ID));
    // Another export (another secret): other UIDs and pseudonym.
    let other = Deidentifier::new(Options::default(), Secret::from_bytes([7; 32]));
    let c = other
        .deidentify(&part10(ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.3")))
        .expect("c");
    assert_ne!(c.study_instance_uid, a.study_instance_uid);
    assert_ne!(
        s(&parse(&c.bytes), tags::PATIENT_ID),
        s(&ao, tags::PATIENT_ID)
    );
    // Another patient: another pseudonym.
    let e = d
        .deidentify(&part10(ct("Q", "1.9.2", "1.9.2.1", "1.9.2.1.1")))
        .expect("e");
    assert_ne!(
        s(&parse(&e.bytes), tags::PATIENT_ID),
        s(&ao, tags::PATIENT_ID)
    );
}

#[test]
fn retain_dates_shifts_consistently_per_patient() {
    let opts = Options {
        retain_longitudinal_modified_dates: true,
        ..Options::default()
    };
    let (_, o) = run(opts.clone(), ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1"));
    let study_date = s(&o, tags::STUDY_DATE).expect("date");
    assert_eq!(study_date.len(), 8);
    assert_ne!(study_date, "20210315");
    assert_eq!(
        s(&o, tags::STUDY_TIME).as_deref(),
        Some("101500"),
        "times kept"
    );
    let dt = s(&o, tags::ACQUISITION_DATE_TIME).expect("dt");
    assert_eq!(&dt[..8], study_date, "same shift for DA and DT");
    assert_eq!(&dt[8..], "101600.5");
    // Birth date is Z in every column but Retain Patient Characteristics... not shifted.
    assert_eq!(s(&o, tags::PATIENT_BIRTH_DATE).as_deref(), Some(""));
    assert_eq!(
        s(&o, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
        Some("MODIFIED")
    );
    let codes = o
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes");
    let values: Vec<_> = codes
        .iter()
        .filter_map(|i| s(i, tags::CODE_VALUE))
        .collect();
    assert_eq!(values, ["113100", "113107"]);
    // Same patient, other study: the same shift.
    let mut other = ct("P", "1.9.5", "1.9.5.1", "1.9.5.1.1");
    other.put(el(tags::STUDY_DATE, VR::DA, "20210316"));
    let (_, o2) = run(opts, other);
    let a = s(&o, tags::STUDY_DATE).expect("a");
    let b = s(&o2, tags::STUDY_DATE).expect("b");
    let (a, b) = (crate::dates::shift(&a, 1).expect("a+1"), b);
    assert_eq!(a, b, "one day apart before and after");
}

#[test]
fn retain_uids_keeps_uids() {
    let opts = Options {
        retain_uids: true,
        ..Options::default()
    };
    let (out, o) = run(opts, ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1"));
    assert_eq!(out.sop_instance_uid, "1.9.1.1.1");
    assert_eq!(s(&o, tags::STUDY_INSTANCE_UID).as_deref(), Some("1.9.1"));
    assert_eq!(
        s(&o, tags::FRAME_OF_REFERENCE_UID).as_deref(),
        Some("1.9.1.9")
    );
    let codes = o
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes");
    assert!(
        codes
            .iter()
            .any(|i| s(i, tags::CODE_VALUE).as_deref() == Some("113110"))
    );
}

#[test]
fn clean_descriptors_keeps_descriptions_without_identifying_text() {
    let opts = Options {
        clean_descriptors: true,
        ..Options::default()
    };
    let (_, o) = run(opts, ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1"));
    assert_eq!(
        s(&o, tags::SERIES_DESCRIPTION).as_deref(),
        Some("AXIAL 1mm")
    );
    let desc = s(&o, tags::STUDY_DESCRIPTION).expect("kept, cleaned");
    assert!(desc.starts_with("CT CHEST for "), "{desc}");
    assert!(
        !desc.contains("Doe") && !desc.contains("Elsewhere"),
        "{desc}"
    );
    let comments = s(&o, tags::IMAGE_COMMENTS).expect("kept, cleaned");
    assert!(
        !comments.contains("Jane") && !comments.contains("Doe"),
        "{comments}"
    );
    let codes = o
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes");
    assert!(
        codes
            .iter()
            .any(|i| s(i, tags::CODE_VALUE).as_deref() == Some("113105"))
    );
}

#[test]
fn safelisted_private_attributes_are_kept_with_their_creator() {
    let opts = Options {
        safe_private: vec!["0009,ACME 1.0,02".parse().expect("entry")],
        ..Options::default()
    };
    let (_, o) = run(opts, ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1"));
    assert_eq!(s(&o, Tag(0x0009, 0x0010)).as_deref(), Some("ACME 1.0"));
    assert_eq!(s(&o, Tag(0x0009, 0x1002)).as_deref(), Some("1.5"));
    assert!(o.get(Tag(0x0009, 0x1001)).is_none(), "not safelisted");
    assert!(o.get(Tag(0x0011, 0x0010)).is_none() && o.get(Tag(0x0011, 0x1001)).is_none());
    // The same element under another creator is not safe.
    let mut other = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.2");
    other.put(el(Tag(0x0009, 0x0010), VR::LO, "EVIL"));
    let opts = Options {
        safe_private: vec!["0009,ACME 1.0,1002".parse().expect("entry")],
        ..Options::default()
    };
    let (_, o) = run(opts, other);
    assert!(o.iter().all(|e| e.tag().0 % 2 == 0));
    for bad in [
        "0008,ACME,01",
        "0009,,01",
        "0009,ACME",
        "zz,ACME,01",
        "0009,ACME,1G",
    ] {
        assert!(bad.parse::<SafePrivate>().is_err(), "{bad}");
    }
}

#[test]
fn nested_private_and_identifying_attributes_are_treated() {
    let mut obj = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    obj.put(seq(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![item(vec![
            el(tags::SERIES_INSTANCE_UID, VR::UI, "1.9.1.1"),
            el(Tag(0x0029, 0x0010), VR::LO, "SIEMENS CSA HEADER"),
            el(Tag(0x0029, 0x1010), VR::OB, "xx"),
            seq(
                tags::REFERENCED_INSTANCE_SEQUENCE,
                vec![item(vec![
                    el(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.9.1.1.7"),
                    el(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
                    el(tags::PERFORMING_PHYSICIAN_NAME, VR::PN, "Who^Doctor"),
                ])],
            ),
        ])],
    ));
    let d = Deidentifier::new(Options::default(), secret());
    let (_, o) = run(Options::default(), obj);
    let series = o
        .get(tags::REFERENCED_SERIES_SEQUENCE)
        .and_then(|e| e.items())
        .expect("kept");
    assert_eq!(
        s(&series[0], tags::SERIES_INSTANCE_UID),
        s(&o, tags::SERIES_INSTANCE_UID)
    );
    assert!(
        series[0].iter().all(|e| e.tag().0 % 2 == 0),
        "nested private removed"
    );
    let inst = series[0]
        .get(tags::REFERENCED_INSTANCE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("inst");
    assert_eq!(
        s(&inst[0], tags::REFERENCED_SOP_INSTANCE_UID),
        Some(d.replacement_uid("1.9.1.1.7"))
    );
    assert_eq!(
        s(&inst[0], tags::PATIENT_NAME),
        s(&o, tags::PATIENT_NAME),
        "pseudonym"
    );
    assert!(
        inst[0].get(tags::PERFORMING_PHYSICIAN_NAME).is_none(),
        "X nested"
    );
}

#[test]
fn burned_in_annotation_is_flagged() {
    let mut yes = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    yes.put(el(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"));
    let (out, o) = run(Options::default(), yes);
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].kind, WarningKind::BurnedInAnnotation);
    assert_eq!(out.warnings[0].sop_instance_uid, out.sop_instance_uid);
    assert_eq!(
        s(&o, tags::BURNED_IN_ANNOTATION).as_deref(),
        Some("YES"),
        "kept"
    );
    // Secondary capture without the attribute: may have it.
    let mut sc = ct("P", "1.9.1", "1.9.1.2", "1.9.1.2.1");
    sc.remove_element(tags::BURNED_IN_ANNOTATION);
    sc.put(el(tags::SOP_CLASS_UID, VR::UI, SC));
    sc.put(el(tags::MODALITY, VR::CS, "OT"));
    let (out, _) = run(Options::default(), sc);
    assert_eq!(
        out.warnings.iter().map(|w| w.kind).collect::<Vec<_>>(),
        [WarningKind::PossibleBurnedInAnnotation]
    );
    let mut us = ct("P", "1.9.1", "1.9.1.3", "1.9.1.3.1");
    us.remove_element(tags::BURNED_IN_ANNOTATION);
    us.put(el(tags::MODALITY, VR::CS, "US"));
    let (out, _) = run(Options::default(), us);
    assert_eq!(out.warnings.len(), 1);
    // CT without the attribute: not flagged.
    let mut plain = ct("P", "1.9.1", "1.9.1.4", "1.9.1.4.1");
    plain.remove_element(tags::BURNED_IN_ANNOTATION);
    let (out, _) = run(Options::default(), plain);
    assert!(out.warnings.is_empty());
}

#[test]
fn structured_report_text_is_replaced_and_codes_kept() {
    let mut obj = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    obj.put(seq(
        tags::CONTENT_SEQUENCE,
        vec![item(vec![
            el(tags::VALUE_TYPE, VR::CS, "TEXT"),
            seq(
                tags::CONCEPT_NAME_CODE_SEQUENCE,
                vec![item(vec![
                    el(tags::CODE_VALUE, VR::SH, "121071"),
                    el(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM"),
                    el(tags::CODE_MEANING, VR::LO, "Finding"),
                ])],
            ),
            el(tags::TEXT_VALUE, VR::UT, "Jane Doe has a nodule"),
            el(tags::PERSON_NAME, VR::PN, "Observer^Olga"),
        ])],
    ));
    let (out, o) = run(Options::default(), obj);
    let c = o
        .get(tags::CONTENT_SEQUENCE)
        .and_then(|e| e.items())
        .expect("content kept");
    assert_eq!(s(&c[0], tags::TEXT_VALUE).as_deref(), Some("ANONYMIZED"));
    assert_eq!(s(&c[0], tags::PERSON_NAME).as_deref(), Some("ANONYMIZED"));
    let cn = c[0]
        .get(tags::CONCEPT_NAME_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("code");
    assert_eq!(s(&cn[0], tags::CODE_VALUE).as_deref(), Some("121071"));
    assert!(
        out.warnings
            .iter()
            .any(|w| w.kind == WarningKind::StructuredTextReplaced)
    );
}

#[test]
fn previous_deidentification_is_kept_in_the_record() {
    let mut obj = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    obj.put(el(tags::DEIDENTIFICATION_METHOD, VR::LO, "TCIA"));
    obj.put(seq(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        vec![item(vec![
            el(tags::CODE_VALUE, VR::SH, "113100"),
            el(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM"),
            el(
                tags::CODE_MEANING,
                VR::LO,
                "Basic Application Confidentiality Profile",
            ),
        ])],
    ));
    let (_, o) = run(Options::default(), obj);
    let m = o
        .get(tags::DEIDENTIFICATION_METHOD)
        .expect("method")
        .value()
        .to_multi_str()
        .expect("strs")
        .to_vec();
    assert_eq!(m[0], "TCIA");
    assert!(m.len() >= 3);
    let codes = o
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("codes");
    assert_eq!(codes.len(), 1, "113100 not repeated");
}

#[test]
fn bad_input_is_an_error_without_patient_data() {
    let d = Deidentifier::new(Options::default(), secret());
    for bad in [
        &b""[..],
        b"DICM",
        &[0u8; 200][..],
        b"not dicom at all, Doe^Jane",
    ] {
        let e = d.deidentify(bad).expect_err("refused");
        assert!(matches!(e, DeidError::Parse(_)), "{e}");
        assert!(!e.to_string().contains("Doe"));
    }
    let good = part10(ct("PID-SECRET", "1.9.1", "1.9.1.1", "1.9.1.1.1"));
    for n in [140, 300, good.len() / 2, good.len() - 3] {
        if let Err(e) = d.deidentify(&good[..n]) {
            assert!(
                !e.to_string().contains("PID-SECRET") && !e.to_string().contains("Doe"),
                "{e}"
            );
        }
    }
    // A value the parser refuses (a name where a date belongs) is not quoted back.
    let mut bad_date = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    bad_date.put(el(tags::PATIENT_BIRTH_DATE, VR::DA, "DOEJANE1"));
    match d.deidentify(&part10(bad_date)) {
        Ok(out) => assert!(!out.bytes.windows(3).any(|w| w == b"DOE"), "Z applies"),
        Err(e) => assert!(!e.to_string().contains("DOE"), "{e}"),
    }
    assert_eq!(
        crate::engine::sanitize("invalid date value `DOEJANE1` at 12, name \"Doe\" 'x'"),
        "invalid date value `…` at 12, name \"…\" '…'"
    );
    assert_eq!(crate::engine::sanitize("can't read"), "can't read");
    let mut no_uid = ct("P", "1.9.1", "1.9.1.1", "1.9.1.1.1");
    no_uid.remove_element(tags::SOP_INSTANCE_UID);
    let file = no_uid
        .with_meta(
            dicom_object::FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_LE)
                .media_storage_sop_class_uid(CT)
                .media_storage_sop_instance_uid(""),
        )
        .expect("meta");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("write");
    assert!(matches!(
        d.deidentify(&bytes),
        Err(DeidError::NoSopInstanceUid | DeidError::Parse(_))
    ));
}

// --- Conformance: every attribute of Table E.1-1 the dictionary knows ----------------------

/// A value of `vr` for a populated attribute, distinctive enough to be recognised.
fn sample(tag: Tag, vr: VR) -> Option<InMemElement> {
    let v = match vr {
        VR::DA => PrimitiveValue::from("20200102"),
        VR::DT => PrimitiveValue::from("20200102030405"),
        VR::TM => PrimitiveValue::from("030405"),
        VR::UI => PrimitiveValue::from(format!("1.2.826.0.1.99.{}.{}", tag.0, tag.1).as_str()),
        VR::PN => PrimitiveValue::from("Orig^Name"),
        VR::AS => PrimitiveValue::from("042Y"),
        VR::IS => PrimitiveValue::from("7"),
        VR::DS => PrimitiveValue::from("7.5"),
        VR::CS => PrimitiveValue::from(format!("C{:04X}{:04X}", tag.0, tag.1).as_str()),
        VR::AE | VR::SH => PrimitiveValue::from(format!("V{:04X}{:04X}", tag.0, tag.1).as_str()),
        VR::LO | VR::LT | VR::ST | VR::UT | VR::UC => {
            PrimitiveValue::from(format!("text{:04x}{:04x}", tag.0, tag.1).as_str())
        }
        VR::UR => PrimitiveValue::from("http://example.invalid/orig"),
        VR::US => PrimitiveValue::U16(smallvec![7]),
        VR::SS => PrimitiveValue::I16(smallvec![7]),
        VR::UL => PrimitiveValue::U32(smallvec![7]),
        VR::SL => PrimitiveValue::I32(smallvec![7]),
        VR::FL => PrimitiveValue::F32(smallvec![7.0]),
        VR::FD => PrimitiveValue::F64(smallvec![7.0]),
        VR::UV => PrimitiveValue::U64(smallvec![7]),
        VR::SV => PrimitiveValue::I64(smallvec![7]),
        VR::AT => PrimitiveValue::Tags(smallvec![Tag(0x0008, 0x0016)]),
        VR::OB | VR::OW | VR::UN => PrimitiveValue::U8(smallvec![7, 7]),
        VR::SQ => {
            // One item holding a code (not in the table: kept) and a name (X).
            return Some(seq(
                tag,
                vec![item(vec![
                    el(tags::CODE_VALUE, VR::SH, "C1"),
                    el(tags::PERFORMING_PHYSICIAN_NAME, VR::PN, "Nested^Name"),
                ])],
            ));
        }
        _ => return None,
    };
    Some(DataElement::new(tag, vr, v))
}

/// Which option sets the conformance walk checks.
fn option_sets() -> Vec<Options> {
    let mut v = Vec::new();
    for bits in 0..8u8 {
        v.push(Options {
            retain_longitudinal_modified_dates: bits & 1 != 0,
            retain_uids: bits & 2 != 0,
            clean_descriptors: bits & 4 != 0,
            safe_private: Vec::new(),
        });
    }
    v
}

/// The action the standard requires for `row` under `o` (K and C of an applied option
/// before the Basic Profile), as the conformance test reads the table on its own.
fn expected(row: &table::Row, o: &Options, vr: VR) -> Action {
    let later = row.source == Source::Basic2026c;
    if o.retain_uids && (row.retain_uids == Some(Action::K) || (later && row.basic == Action::U)) {
        return Action::K;
    }
    if o.retain_longitudinal_modified_dates
        && (row.retain_long_modified_dates == Some(Action::C)
            || (later && matches!(vr, VR::DA | VR::DT | VR::TM)))
    {
        return Action::C;
    }
    if o.clean_descriptors && row.clean_descriptors == Some(Action::C) {
        return Action::C;
    }
    row.basic
}

#[test]
fn conformance_every_table_attribute_under_every_option_set() {
    use dicom_core::dictionary::DataDictionary;
    let dict = StandardDataDictionary;
    // Build one object with every attribute of the table that the dictionary knows.
    let mut obj = item(vec![
        el(tags::SOP_CLASS_UID, VR::UI, CT),
        el(tags::PATIENT_ID, VR::LO, "PID"),
    ]);
    let mut populated = Vec::new();
    for row in table::rows() {
        let TagPattern::Exact(tag) = row.tag else {
            continue;
        };
        if tag.0 <= 0x0002 || tag.0 >= 0xFFFA || tag == tags::PIXEL_DATA {
            continue; // command and meta groups, signatures and padding: below
        }
        let Some(entry) = dict.by_tag(tag) else {
            continue;
        };
        let vr = entry.vr.relaxed();
        let Some(e) = sample(tag, vr) else {
            continue;
        };
        obj.put(e);
        populated.push((row, vr));
    }
    obj.put(el(tags::PATIENT_ID, VR::LO, "PID"));
    // SOP Instance UID must be present for the meta.
    if obj.get(tags::SOP_INSTANCE_UID).is_none() {
        obj.put(el(tags::SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.99.8.24"));
    }
    // Overlay, curve and private rows.
    obj.put(DataElement::new(
        Tag(0x6000, 0x3000),
        VR::OW,
        PrimitiveValue::U8(smallvec![1, 1]),
    ));
    obj.put(el(Tag(0x6000, 0x4000), VR::LT, "overlay comment"));
    obj.put(el(Tag(0x5000, 0x0010), VR::US, "1"));
    obj.put(el(Tag(0x0019, 0x0010), VR::LO, "ACME"));
    obj.put(el(Tag(0x0019, 0x1001), VR::LO, "private"));
    assert!(
        populated.len() > 500,
        "{} attributes populated",
        populated.len()
    );
    let input = part10(obj.clone());

    let mut checked = 0;
    for o in option_sets() {
        let d = Deidentifier::new(o.clone(), secret());
        let out = d.deidentify(&input).expect("deidentify");
        let parsed = parse(&out.bytes);
        let shift = derive::shift_days(&secret(), "PID");
        for &(row, vr) in &populated {
            let TagPattern::Exact(tag) = row.tag else {
                unreachable!()
            };
            let got = parsed.get(tag);
            let orig = obj.get(tag).expect("populated");
            let exp = expected(row, &o, vr);
            let what = format!("{} {} ({}) under {o:?}", row.name, tag, exp.code());
            let is_pn_id = tag == tags::PATIENT_NAME || tag == tags::PATIENT_ID;
            let value = |e: &InMemElement| {
                e.value()
                    .to_multi_str()
                    .map(|v| v.join("\\"))
                    .unwrap_or_default()
            };
            match exp {
                Action::X => assert!(got.is_none(), "{what}: present"),
                Action::Z | Action::XZ if is_pn_id => {
                    assert!(
                        value(got.expect("pseudonym")).starts_with("LUMEN-"),
                        "{what}"
                    )
                }
                Action::Z | Action::XZ => {
                    let g = got.unwrap_or_else(|| panic!("{what}: absent"));
                    match g.value() {
                        Value::Sequence(sq) => assert!(sq.items().is_empty(), "{what}"),
                        _ => assert!(
                            g.value().to_bytes().map(|b| b.is_empty()).unwrap_or(true),
                            "{what}: not empty"
                        ),
                    }
                }
                Action::D | Action::ZD | Action::XD | Action::XZD => {
                    let g = got.unwrap_or_else(|| panic!("{what}: absent"));
                    if vr == VR::SQ {
                        let items = g.items().expect("items");
                        assert_eq!(items.len(), 1, "{what}");
                        assert!(
                            items[0].get(tags::PERFORMING_PHYSICIAN_NAME).is_none(),
                            "{what}: nested X"
                        );
                    } else if is_pn_id {
                        assert!(value(g).starts_with("LUMEN-"), "{what}");
                    } else {
                        let v = value(g);
                        assert!(!v.is_empty(), "{what}: empty");
                        if !matches!(
                            vr,
                            VR::US
                                | VR::SS
                                | VR::UL
                                | VR::SL
                                | VR::FL
                                | VR::FD
                                | VR::UV
                                | VR::SV
                                | VR::AT
                                | VR::OB
                                | VR::OW
                                | VR::UN
                        ) {
                            assert_ne!(v, value(orig), "{what}: unchanged");
                        }
                        if vr == VR::UI {
                            assert_eq!(v, derive::uid(&secret(), &value(orig)), "{what}");
                        }
                    }
                }
                Action::U => {
                    let g = got.unwrap_or_else(|| panic!("{what}: absent"));
                    assert_eq!(value(g), derive::uid(&secret(), &value(orig)), "{what}");
                    assert!(value(g).starts_with("2.25."), "{what}");
                }
                Action::XZUStar | Action::K => {
                    let g = got.unwrap_or_else(|| panic!("{what}: absent"));
                    if vr == VR::SQ {
                        let items = g.items().expect("items");
                        assert_eq!(
                            s(&items[0], tags::CODE_VALUE).as_deref(),
                            Some("C1"),
                            "{what}"
                        );
                        assert!(
                            items[0].get(tags::PERFORMING_PHYSICIAN_NAME).is_none(),
                            "{what}: nested X"
                        );
                    } else if !(exp == Action::K && (tag == tags::SOP_INSTANCE_UID)) {
                        assert_eq!(value(g), value(orig), "{what}: changed");
                    }
                }
                Action::C => {
                    let g = got.unwrap_or_else(|| panic!("{what}: absent"));
                    match vr {
                        VR::DA | VR::DT => {
                            let o_ = value(orig);
                            assert_eq!(
                                value(g),
                                dates::shift(&o_, shift).expect("shift"),
                                "{what}"
                            );
                        }
                        VR::SQ => {
                            let items = g.items().expect("items");
                            assert_eq!(
                                s(&items[0], tags::CODE_VALUE).as_deref(),
                                Some("C1"),
                                "{what}"
                            );
                        }
                        VR::PN => assert!(!value(g).contains("Orig"), "{what}: name kept"),
                        _ => {
                            assert_eq!(value(g), value(orig), "{what}: no identifying text to mask")
                        }
                    }
                }
            }
            checked += 1;
        }
        for t in [
            Tag(0x6000, 0x3000),
            Tag(0x6000, 0x4000),
            Tag(0x5000, 0x0010),
            Tag(0x0019, 0x0010),
            Tag(0x0019, 0x1001),
        ] {
            assert!(parsed.get(t).is_none(), "{t} (X) present");
        }
    }
    eprintln!(
        "conformance: {} attributes x 8 option sets = {checked} checks",
        populated.len()
    );
}
