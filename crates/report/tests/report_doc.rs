//! The radiologist's report: drafts in English and Chinese carry the nodule's numbers, the
//! PDF's extracted text (pdftotext) carries them and the Chinese labels, and the Encapsulated
//! PDF and Basic Text SR pass dciodvfy without errors.

use std::path::Path;
use std::process::Command;

use dicom_dictionary_std::tags;
use lumen_report::document::{
    BASIC_TEXT_SR_STORAGE, ENCAPSULATED_PDF_STORAGE, Predecessor, TextReport, Verifier,
    encapsulated_pdf, section, text_sr,
};
use lumen_report::draft::{DraftFinding, DraftInput, Lang, Sections, draft};
use lumen_report::pdf::{KNOWN_CJK_FONTS, ReportDocument, ReportFont, ReportState, pdf};
use lumen_report::{Equipment, SeriesInfo, StudyContext};

fn require_tools() -> bool {
    std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1")
}

fn tool(name: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !require_tools(),
            "{name} is required (LUMEN_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIP: {name} not installed (scripts/deps.sh test installs it)");
    }
    ok
}

fn font() -> Option<ReportFont> {
    for p in KNOWN_CJK_FONTS {
        if let Ok(bytes) = std::fs::read(p) {
            return Some(ReportFont::new(bytes).expect("usable CJK font"));
        }
    }
    assert!(
        !require_tools(),
        "no CJK font installed (scripts/deps.sh installs fonts-noto-cjk)"
    );
    eprintln!("SKIP: no CJK font installed (scripts/deps.sh installs fonts-noto-cjk)");
    None
}

fn input(lang: Lang) -> DraftInput {
    let zh = lang == Lang::ZhCn;
    DraftInput {
        findings: vec![DraftFinding {
            location: "RLL".into(),
            kind: "solid".into(),
            long_axis_mm: 24.6,
            short_axis_mm: 19.2,
            mean_diameter_mm: 21.9,
            volume_mm3: Some(5321.0),
            solid_component_mm: None,
            lung_rads: "4B".into(),
        }],
        exam_category: "4B".into(),
        management: if zh {
            "诊断性胸部 CT。"
        } else {
            "Diagnostic chest CT."
        }
        .into(),
        fleischner: if zh {
            "实性结节 > 8 mm。"
        } else {
            "Solid nodule > 8 mm."
        }
        .into(),
    }
}

fn study() -> StudyContext {
    StudyContext {
        patient_name: "张^三".into(),
        patient_id: "LIDC-IDRI-0001".into(),
        patient_birth_date: "19500101".into(),
        patient_sex: "M".into(),
        study_instance_uid: "1.2.826.0.1.3680043.10.1.1".into(),
        study_date: "20000101".into(),
        study_time: "120000".into(),
        accession_number: "A1".into(),
        ..Default::default()
    }
}

fn document(lang: Lang, sections: Sections, state: ReportState) -> ReportDocument {
    ReportDocument {
        lang,
        institution: "Lumen Test Hospital".into(),
        patient_name: "张^三".into(),
        patient_id: "LIDC-IDRI-0001".into(),
        patient_sex: "M".into(),
        patient_birth_date: "19500101".into(),
        study_date: "20000101".into(),
        accession_number: "A1".into(),
        study_description: "Chest CT".into(),
        study_uid: "1.2.826.0.1.3680043.10.1.1".into(),
        sections,
        state,
        addenda: vec![],
        citation: Some("LIDC-IDRI: Armato SG 3rd et al., Med Phys 2011;38:915-931.".into()),
    }
}

fn pdftotext(pdf: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.pdf");
    std::fs::write(&p, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&p)
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Collapses the whitespace pdftotext inserts at line ends and between CJK glyphs.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn drafts_in_both_languages_carry_the_numbers() {
    for lang in [Lang::En, Lang::ZhCn] {
        let s = draft(&input(lang), lang);
        for n in ["24.6", "19.2", "21.9", "5321", "4B"] {
            assert!(
                s.findings.contains(n),
                "{lang:?} findings lack {n}: {}",
                s.findings
            );
        }
        assert!(s.impression.contains("4B") && s.impression.contains("21.9"));
        assert!(s.recommendation.contains("Fleischner 2017"));
    }
    let zh = draft(&input(Lang::ZhCn), Lang::ZhCn);
    assert!(zh.findings.contains("右肺下叶") && zh.findings.contains("实性"));
    let en = draft(&input(Lang::En), Lang::En);
    assert!(en.findings.contains("right lower lobe (RLL), solid"));
}

#[test]
fn pdf_text_can_be_extracted_in_english_and_chinese() {
    let Some(font) = font() else { return };
    if !tool("pdftotext") {
        return;
    }
    let zh = draft(&input(Lang::ZhCn), Lang::ZhCn);
    let mut doc = document(
        Lang::ZhCn,
        zh,
        ReportState::Signed {
            by: "李医生".into(),
            at: "2026-11-27 06:00 UTC".into(),
        },
    );
    doc.addenda.push(lumen_report::pdf::AddendumText {
        text: "Addendum: compared with the outside CT of 2025, unchanged.".into(),
        signed_by: "李医生".into(),
        signed_at: "2026-11-27 07:00 UTC".into(),
    });
    let bytes = pdf(&doc, &font).expect("pdf");
    assert!(bytes.starts_with(b"%PDF"));
    assert!(
        bytes.len() < 2_000_000,
        "the font is subset: {} bytes",
        bytes.len()
    );
    assert_eq!(pdf(&doc, &font).unwrap(), bytes, "same input, same bytes");
    let text = squash(&pdftotext(&bytes));
    for want in [
        "胸部CT报告",
        "所见",
        "印象",
        "建议",
        "右肺下叶",
        "24.6×19.2mm",
        "平均径21.9mm",
        "Lung-RADS4B",
        "已签署：李医生",
        "LumenTestHospital",
        "LIDC-IDRI-0001",
        "comparedwiththeoutsideCT",
        "LIDC-IDRI:ArmatoSG",
    ] {
        assert!(text.contains(want), "PDF text lacks {want}:\n{text}");
    }

    let en = draft(&input(Lang::En), Lang::En);
    let long = "A deliberately long sentence that must wrap onto further lines. ".repeat(40);
    let en = Sections {
        findings: format!("{}\n{long}", en.findings),
        ..en
    };
    let bytes = pdf(&document(Lang::En, en, ReportState::AiDraft), &font).unwrap();
    let text = pdftotext(&bytes);
    let flat = squash(&text);
    assert!(flat.contains("AIDRAFT-notreviewedorsigned"), "{text}");
    assert!(
        flat.contains("24.6x19.2mm(meandiameter21.9mm),volume5321mm³,Lung-RADS4B"),
        "{text}"
    );
    assert!(
        flat.contains("Page2of2") || flat.contains("Page1of1"),
        "{text}"
    );
    assert_eq!(
        flat.matches("mustwrapontofurtherlines").count(),
        40,
        "no text lost in wrapping: {text}"
    );
}

fn dciodvfy_clean(bytes: &[u8], what: &str) {
    if !tool("dciodvfy") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("o.dcm");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new("dciodvfy").arg(&p).output().expect("dciodvfy");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("dciodvfy {what}:\n{all}");
    let errors: Vec<&str> = all.lines().filter(|l| l.starts_with("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy errors in {what}: {errors:#?}");
}

#[test]
fn encapsulated_pdf_and_text_sr_are_valid_dicom() {
    let series = |n: i32, s: &str, i: &str| SeriesInfo {
        series_number: n,
        series_description: "Lumen report".into(),
        instance_number: 1,
        series_instance_uid: Some(s.into()),
        sop_instance_uid: Some(i.into()),
        date_time: Some(("20261127".into(), "060000".into())),
    };
    let fake_pdf = b"%PDF-1.7\n% test\n%%EOF\n".to_vec();
    let pdf_obj = encapsulated_pdf(
        &study(),
        &fake_pdf,
        "Chest CT report",
        &series(
            9001,
            "1.2.826.0.1.3680043.10.1.2",
            "1.2.826.0.1.3680043.10.1.3",
        ),
        &Equipment::default(),
    )
    .unwrap();
    assert_eq!(pdf_obj.sop_class_uid, ENCAPSULATED_PDF_STORAGE);
    let o = dicom_object::from_reader(std::io::Cursor::new(&pdf_obj.bytes[128..])).unwrap();
    let doc = o
        .element(tags::ENCAPSULATED_DOCUMENT)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(&doc[..fake_pdf.len()], &fake_pdf[..]);
    assert_eq!(o.element(tags::MODALITY).unwrap().to_str().unwrap(), "DOC");
    dciodvfy_clean(&pdf_obj.bytes, "encapsulated PDF");
    assert!(
        encapsulated_pdf(
            &study(),
            b"not a pdf",
            "x",
            &series(1, "1.2", "1.3"),
            &Equipment::default()
        )
        .is_err()
    );

    let zh = draft(&input(Lang::ZhCn), Lang::ZhCn);
    let report = TextReport {
        sections: vec![
            (section::findings(), zh.findings.clone()),
            (section::impression(), zh.impression.clone()),
            (section::recommendation(), zh.recommendation.clone()),
            (section::addendum(), "补充说明：无变化。".into()),
        ],
        verifier: Some(Verifier {
            name: "李医生".into(),
            organization: "Lumen Test Hospital".into(),
            date_time: "20261127060000".into(),
        }),
        predecessor: Some(Predecessor {
            series_instance_uid: "1.2.826.0.1.3680043.10.1.4".into(),
            sop_class_uid: BASIC_TEXT_SR_STORAGE.into(),
            sop_instance_uid: "1.2.826.0.1.3680043.10.1.5".into(),
        }),
        language: Some("zh-CN".into()),
    };
    let sr = text_sr(
        &study(),
        &report,
        &series(
            9002,
            "1.2.826.0.1.3680043.10.1.6",
            "1.2.826.0.1.3680043.10.1.7",
        ),
        &Equipment::default(),
    )
    .unwrap();
    assert_eq!(sr.sop_class_uid, BASIC_TEXT_SR_STORAGE);
    let o = dicom_object::from_reader(std::io::Cursor::new(&sr.bytes[128..])).unwrap();
    let s = |t| o.element(t).unwrap().to_str().unwrap().trim().to_string();
    assert_eq!(s(tags::VERIFICATION_FLAG), "VERIFIED");
    assert_eq!(s(tags::COMPLETION_FLAG), "COMPLETE");
    let obs = &o
        .element(tags::VERIFYING_OBSERVER_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        obs.element(tags::VERIFYING_OBSERVER_NAME)
            .unwrap()
            .to_str()
            .unwrap(),
        "李医生"
    );
    let items = o.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| i.element(tags::TEXT_VALUE).ok())
        .map(|e| e.to_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 4);
    assert!(texts[0].contains("24.6 × 19.2 mm"), "{texts:?}");
    dciodvfy_clean(&sr.bytes, "basic text SR");
    let _ = Path::new("");
}

#[test]
fn the_patient_copy_adds_a_page_with_the_link_and_its_qr_code() {
    let Some(font) = font() else { return };
    if !tool("pdftotext") {
        return;
    }
    let url = "https://pacs.example.org/film/3q2-7wEVR6bGq0m7yCqz1Bv5zT3nY4uXh0lK8sQdAaE";
    let link = lumen_report::pdf::PatientLinkPage {
        url: url.into(),
        expires_at: "2026-12-08 06:05 UTC".into(),
        qr: lumen_report::qr::QrMatrix::encode(url).expect("qr"),
    };
    let signed = ReportState::Signed {
        by: "李医生".into(),
        at: "2026-11-27 06:00 UTC".into(),
    };
    let zh = document(
        Lang::ZhCn,
        draft(&input(Lang::ZhCn), Lang::ZhCn),
        signed.clone(),
    );
    let plain = pdf(&zh, &font).expect("pdf");
    let copy = lumen_report::pdf::patient_copy(&zh, &font, &link).expect("copy");
    assert!(copy.starts_with(b"%PDF") && copy.len() > plain.len());
    let text = squash(&pdftotext(&copy));
    for want in [
        "胸部CT报告",
        "已签署：李医生",
        "云胶片",
        "有效期至2026-12-0806:05UTC",
        "不可用于诊断",
        "第2页，共2页",
        "pacs.example.org/film/",
    ] {
        assert!(text.contains(want), "patient copy lacks {want}:\n{text}");
    }
    // The printed code scans: page 2 rasterised (pdftoppm) and read back by a decoder.
    if tool("pdftoppm") {
        let tmp = tempfile::tempdir().expect("tmp");
        let pdf_path = tmp.path().join("copy.pdf");
        std::fs::write(&pdf_path, &copy).expect("write");
        let out = Command::new("pdftoppm")
            .args(["-f", "2", "-l", "2", "-r", "150", "-gray"])
            .arg(&pdf_path)
            .arg(tmp.path().join("page"))
            .output()
            .expect("pdftoppm");
        assert!(out.status.success(), "pdftoppm failed");
        let pgm = std::fs::read_dir(tmp.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "pgm"))
            .expect("a PGM page");
        let (w, h, pixels) = read_pgm(&std::fs::read(pgm).expect("pgm"));
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code on the page");
        let (_, text) = grids[0].decode().expect("the printed code decodes");
        assert_eq!(text, url);
    }
    let en = document(Lang::En, draft(&input(Lang::En), Lang::En), signed);
    let text = squash(&pdftotext(
        &lumen_report::pdf::patient_copy(&en, &font, &link).expect("copy"),
    ));
    for want in [
        "cloudfilm",
        "Validuntil2026-12-0806:05UTC",
        "notfordiagnosis",
    ] {
        assert!(text.contains(want), "patient copy lacks {want}:\n{text}");
    }
}

/// A binary PGM (P5, 8-bit) image: width, height, pixels.
fn read_pgm(b: &[u8]) -> (usize, usize, Vec<u8>) {
    // Header: "P5", width, height, maxval, each separated by whitespace, then one byte.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&b[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let w: usize = fields[1].parse().expect("width");
    let h: usize = fields[2].parse().expect("height");
    let data = b[i + 1..i + 1 + w * h].to_vec();
    (w, h, data)
}
