//! The report as a PDF (A4): institution, patient and study, findings, impression,
//! recommendation, the AI-draft or signed status with signer and time, addenda, and the data
//! citation. Written with krilla (typst's PDF backend), which embeds a subset of the font with
//! a ToUnicode map, so the text, Chinese included, can be extracted and searched.
//!
//! The font is given as bytes (this crate opens no files): a font that covers CJK, such as
//! Noto Sans CJK (SIL Open Font License) or Droid Sans Fallback (Apache 2.0); its Latin glyphs
//! serve the English text too. [`KNOWN_CJK_FONTS`] lists where Debian installs such fonts.

use std::sync::Arc;

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use skrifa::instance::{LocationRef, Size};
use skrifa::raw::FileRef;
use skrifa::{FontRef, MetadataProvider, string::StringId};

use crate::draft::{Lang, Sections};
use crate::{ReportError, Result};

/// Where Debian packages put fonts that show Chinese (fonts-noto-cjk, fonts-droid-fallback,
/// fonts-wqy-zenhei), in order of preference.
pub const KNOWN_CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
];

/// A font for reports: one face of a font file, checked to cover Latin and Chinese.
#[derive(Clone)]
pub struct ReportFont {
    data: Arc<Vec<u8>>,
    index: u32,
    font: Font,
}

impl std::fmt::Debug for ReportFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportFont")
            .field("bytes", &self.data.len())
            .field("index", &self.index)
            .finish()
    }
}

impl ReportFont {
    /// Takes a TrueType/OpenType font or collection. In a collection the simplified Chinese
    /// face ("SC" in its family name) is preferred, else the first face that covers both
    /// Latin and Chinese.
    pub fn new(data: Vec<u8>) -> Result<Self> {
        let data = Arc::new(data);
        let file = FileRef::new(&data).map_err(|e| ReportError::Font(e.to_string()))?;
        let mut chosen = None;
        for (i, face) in file.fonts().enumerate() {
            let Ok(face) = face else { continue };
            let cmap = face.charmap();
            if cmap.map('胸').is_none() || cmap.map('A').is_none() || cmap.map('报').is_none() {
                continue;
            }
            let sc = face
                .localized_strings(StringId::FAMILY_NAME)
                .any(|s| s.to_string().contains(" SC"));
            if sc {
                chosen = Some(i as u32);
                break;
            }
            chosen.get_or_insert(i as u32);
        }
        let index = chosen.ok_or_else(|| {
            ReportError::Font("no face of the font covers both Latin and Chinese".into())
        })?;
        let font = Font::new(data.clone().into(), index)
            .ok_or_else(|| ReportError::Font("the PDF writer cannot read the font".into()))?;
        Ok(ReportFont { data, index, font })
    }

    fn face(&self) -> Option<FontRef<'_>> {
        FontRef::from_index(&self.data, self.index).ok()
    }
}

/// A signed addendum as the PDF shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddendumText {
    /// Its text.
    pub text: String,
    /// Signer.
    pub signed_by: String,
    /// Signature time, as displayed (e.g. `2026-11-27 06:05 UTC`).
    pub signed_at: String,
}

/// Whether the report is an AI draft, a doctor's unsigned draft, or signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportState {
    /// Written by the AI from its findings; nobody has checked it.
    AiDraft,
    /// Edited by a doctor, not signed.
    Draft,
    /// Signed and final.
    Signed {
        /// Signer.
        by: String,
        /// Signature time, as displayed.
        at: String,
    },
}

/// Everything the PDF shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDocument {
    /// Language of the labels (the sections are already in it).
    pub lang: Lang,
    /// Institution name (header).
    pub institution: String,
    /// Patient's name.
    pub patient_name: String,
    /// Patient ID.
    pub patient_id: String,
    /// Patient's sex.
    pub patient_sex: String,
    /// Birth date (YYYYMMDD as stored).
    pub patient_birth_date: String,
    /// Study date (YYYYMMDD).
    pub study_date: String,
    /// Accession number.
    pub accession_number: String,
    /// Study description.
    pub study_description: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// The report text.
    pub sections: Sections,
    /// Draft or signed.
    pub state: ReportState,
    /// Signed addenda, oldest first.
    pub addenda: Vec<AddendumText>,
    /// Data citation (e.g. LIDC-IDRI), printed at the end.
    pub citation: Option<String>,
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const BODY: f32 = 10.5;

/// A laid-out line: text, size, x offset.
struct Line {
    text: String,
    size: f32,
    gap_before: f32,
    rule: bool,
}

/// Line breaking: Chinese may break between any two characters, other text at spaces.
fn wrap(font: &ReportFont, text: &str, size: f32, width: f32) -> Vec<String> {
    let face = font.face();
    let advance = |c: char| -> f32 {
        face.as_ref()
            .and_then(|f| {
                let gid = f.charmap().map(c)?;
                f.glyph_metrics(Size::new(size), LocationRef::default())
                    .advance_width(gid)
            })
            .unwrap_or(if c.is_ascii() { 0.6 * size } else { size })
    };
    let wide = |c: char| !c.is_ascii() && !matches!(c, '²' | '³' | '°' | 'µ' | '×');
    let mut out = Vec::new();
    for para in text.split('\n') {
        // Tokens: a run of non-space narrow characters, a single wide character, or spaces.
        let mut tokens: Vec<String> = Vec::new();
        for c in para.chars() {
            let start_new = match tokens.last() {
                None => true,
                Some(t) => {
                    let last = t.chars().last().unwrap_or(' ');
                    wide(c) || wide(last) || (c == ' ') != (last == ' ')
                }
            };
            if start_new {
                tokens.push(c.to_string());
            } else if let Some(t) = tokens.last_mut() {
                t.push(c);
            }
        }
        let mut line = String::new();
        let mut w = 0.0;
        for t in tokens {
            let tw: f32 = t.chars().map(advance).sum();
            if w + tw > width && !line.trim().is_empty() {
                out.push(line.trim_end().to_string());
                line.clear();
                w = 0.0;
                if t.starts_with(' ') {
                    continue;
                }
            }
            if tw > width {
                // A word longer than the line (a UID): cut it by characters.
                for c in t.chars() {
                    let cw = advance(c);
                    if w + cw > width && !line.is_empty() {
                        out.push(std::mem::take(&mut line));
                        w = 0.0;
                    }
                    line.push(c);
                    w += cw;
                }
                continue;
            }
            line.push_str(&t);
            w += tw;
        }
        out.push(line.trim_end().to_string());
    }
    out
}

fn display_date(d: &str) -> String {
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        d.to_string()
    }
}

/// A patient link (云胶片) printed on the patient's copy of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientLinkPage {
    /// The link.
    pub url: String,
    /// When it stops working, as displayed (e.g. `2026-12-08 06:05 UTC`).
    pub expires_at: String,
    /// The link's QR code.
    pub qr: crate::qr::QrMatrix,
}

/// Renders the report as PDF bytes. The same document and font give the same bytes.
pub fn pdf(doc: &ReportDocument, font: &ReportFont) -> Result<Vec<u8>> {
    render(doc, font, None)
}

/// The patient's copy of a signed report: the report's pages, then a page with the
/// patient link's QR code, its URL and expiry, and the notice that the viewer is for the
/// patient's reference, not for diagnosis.
pub fn patient_copy(
    doc: &ReportDocument,
    font: &ReportFont,
    link: &PatientLinkPage,
) -> Result<Vec<u8>> {
    render(doc, font, Some(link))
}

fn render(
    doc: &ReportDocument,
    font: &ReportFont,
    link: Option<&PatientLinkPage>,
) -> Result<Vec<u8>> {
    let l = doc.lang;
    let width = PAGE_W - 2.0 * MARGIN;
    let mut lines: Vec<Line> = Vec::new();
    let push = |text: &str, size: f32, gap: f32, lines: &mut Vec<Line>| {
        for (i, t) in wrap(font, text, size, width).into_iter().enumerate() {
            lines.push(Line {
                text: t,
                size,
                gap_before: if i == 0 { gap } else { 0.0 },
                rule: false,
            });
        }
    };
    if !doc.institution.is_empty() {
        push(&doc.institution, 12.0, 0.0, &mut lines);
    }
    push(
        l.pick("Chest CT report", "胸部 CT 报告"),
        17.0,
        6.0,
        &mut lines,
    );
    let status = match &doc.state {
        ReportState::AiDraft => l
            .pick(
                "AI DRAFT - not reviewed or signed by a physician",
                "AI 草稿 - 未经医师审核签署",
            )
            .to_string(),
        ReportState::Draft => l.pick("DRAFT - not signed", "草稿 - 未签署").to_string(),
        ReportState::Signed { by, at } => match l {
            Lang::En => format!("SIGNED by {by} at {at}"),
            Lang::ZhCn => format!("已签署：{by}，签署时间 {at}"),
        },
    };
    push(&status, 11.0, 4.0, &mut lines);
    lines.push(Line {
        text: String::new(),
        size: 4.0,
        gap_before: 2.0,
        rule: true,
    });
    let field = |en: &str, zh: &str, v: &str| format!("{}: {v}", l.pick(en, zh));
    let header = [
        field("Patient", "患者", &doc.patient_name.replace('^', " ")),
        field("Patient ID", "患者 ID", &doc.patient_id),
        field("Sex", "性别", &doc.patient_sex),
        field(
            "Birth date",
            "出生日期",
            &display_date(&doc.patient_birth_date),
        ),
        field("Study date", "检查日期", &display_date(&doc.study_date)),
        field("Accession", "检查号", &doc.accession_number),
        field("Study", "检查", &doc.study_description),
        field("Study UID", "检查 UID", &doc.study_uid),
    ];
    for (i, h) in header.iter().enumerate() {
        push(h, 9.5, if i == 0 { 6.0 } else { 0.0 }, &mut lines);
    }
    for (en, zh, text) in [
        ("Findings", "所见", &doc.sections.findings),
        ("Impression", "印象", &doc.sections.impression),
        ("Recommendation", "建议", &doc.sections.recommendation),
    ] {
        push(l.pick(en, zh), 13.0, 12.0, &mut lines);
        push(text, BODY, 3.0, &mut lines);
    }
    for (i, a) in doc.addenda.iter().enumerate() {
        let title = match l {
            Lang::En => format!(
                "Addendum {} - signed by {} at {}",
                i + 1,
                a.signed_by,
                a.signed_at
            ),
            Lang::ZhCn => format!("补充说明 {}：{} 签署于 {}", i + 1, a.signed_by, a.signed_at),
        };
        push(&title, 12.0, 12.0, &mut lines);
        push(&a.text, BODY, 3.0, &mut lines);
    }
    if let Some(c) = &doc.citation {
        push(l.pick("Data", "数据来源"), 10.0, 14.0, &mut lines);
        push(c, 8.0, 2.0, &mut lines);
    }
    let generated = l.pick(
        "Measurements were proposed by Lumen AI and reviewed by the physician named above.",
        "测量结果由 Lumen AI 提出，并经上述医师审核。",
    );
    if matches!(doc.state, ReportState::Signed { .. }) {
        push(generated, 8.0, 10.0, &mut lines);
    }

    let mut document = Document::new();
    let mut i = 0;
    let total_pages = {
        // Count pages first so that each page can say "page n of m".
        let mut pages = 1;
        let mut y = MARGIN;
        for line in &lines {
            let h = line.gap_before + line.size * 1.45;
            if y + h > PAGE_H - MARGIN {
                pages += 1;
                y = MARGIN;
            }
            y += h;
        }
        pages + usize::from(link.is_some())
    };
    let text_pages = total_pages - usize::from(link.is_some());
    for page_no in 1..=text_pages {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| ReportError::Encode("page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let mut y = MARGIN;
        while i < lines.len() {
            let line = &lines[i];
            let h = line.gap_before + line.size * 1.45;
            if y + h > PAGE_H - MARGIN && y > MARGIN {
                break;
            }
            y += h;
            if line.rule {
                let mut pb = PathBuilder::new();
                pb.move_to(MARGIN, y - line.size);
                pb.line_to(PAGE_W - MARGIN, y - line.size);
                if let Some(path) = pb.finish() {
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        width: 0.7,
                        ..Default::default()
                    }));
                    surface.draw_path(&path);
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill::default()));
                }
            } else if !line.text.is_empty() {
                surface.draw_text(
                    Point::from_xy(MARGIN, y),
                    font.font.clone(),
                    line.size,
                    &line.text,
                    false,
                    TextDirection::Auto,
                );
            }
            i += 1;
        }
        footer(&mut surface, font, l, page_no, total_pages);
        surface.finish();
        page.finish();
    }
    if let Some(link) = link {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| ReportError::Encode("page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        link_page(&mut surface, font, l, link, width);
        footer(&mut surface, font, l, total_pages, total_pages);
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| ReportError::Encode(format!("PDF: {e:?}")))
}

fn footer(
    surface: &mut krilla::surface::Surface<'_>,
    font: &ReportFont,
    l: Lang,
    page_no: usize,
    total_pages: usize,
) {
    let footer = match l {
        Lang::En => format!("Page {page_no} of {total_pages}"),
        Lang::ZhCn => format!("第 {page_no} 页，共 {total_pages} 页"),
    };
    surface.draw_text(
        Point::from_xy(MARGIN, PAGE_H - MARGIN / 2.0),
        font.font.clone(),
        8.0,
        &footer,
        false,
        TextDirection::Auto,
    );
}

/// The patient link's page: title, QR code (dark modules as filled squares), URL, expiry
/// and the notice.
fn link_page(
    surface: &mut krilla::surface::Surface<'_>,
    font: &ReportFont,
    l: Lang,
    link: &PatientLinkPage,
    width: f32,
) {
    let mut y = MARGIN;
    let mut text = |surface: &mut krilla::surface::Surface<'_>, t: &str, size: f32, gap: f32| {
        for line in wrap(font, t, size, width) {
            y += gap + size * 1.45;
            surface.draw_text(
                Point::from_xy(MARGIN, y),
                font.font.clone(),
                size,
                &line,
                false,
                TextDirection::Auto,
            );
        }
        y
    };
    text(
        surface,
        l.pick(
            "Your images online (cloud film)",
            "云胶片：在线查看您的影像",
        ),
        17.0,
        0.0,
    );
    let top = text(
        surface,
        l.pick(
            "Scan the code with your phone to see your study and this report, without an account.",
            "用手机扫描二维码，无需账号即可查看您的检查影像和本报告。",
        ),
        BODY,
        6.0,
    ) + 16.0;
    // The code: 200 pt wide with its quiet zone, dark modules as squares.
    let n = link.qr.width() + 2 * crate::qr::QUIET_ZONE;
    let module = 200.0 / n as f32;
    let origin = (MARGIN, top);
    let mut pb = PathBuilder::new();
    for yy in 0..link.qr.width() {
        for xx in 0..link.qr.width() {
            if link.qr.is_dark(xx, yy) {
                let x = origin.0 + (xx + crate::qr::QUIET_ZONE) as f32 * module;
                let y = origin.1 + (yy + crate::qr::QUIET_ZONE) as f32 * module;
                if let Some(r) = Rect::from_xywh(x, y, module, module) {
                    pb.push_rect(r);
                }
            }
        }
    }
    if let Some(path) = pb.finish() {
        surface.set_stroke(None);
        surface.set_fill(Some(Fill::default()));
        surface.draw_path(&path);
    }
    let mut y2 = top + 200.0 + 8.0;
    let mut text2 = |surface: &mut krilla::surface::Surface<'_>, t: &str, size: f32, gap: f32| {
        for line in wrap(font, t, size, width) {
            y2 += gap + size * 1.45;
            surface.draw_text(
                Point::from_xy(MARGIN, y2),
                font.font.clone(),
                size,
                &line,
                false,
                TextDirection::Auto,
            );
        }
    };
    text2(surface, &link.url, 8.0, 0.0);
    let valid = match l {
        Lang::En => format!(
            "Valid until {}. The hospital can revoke it earlier.",
            link.expires_at
        ),
        Lang::ZhCn => format!("有效期至 {}。医院可提前撤销。", link.expires_at),
    };
    text2(surface, &valid, BODY, 8.0);
    text2(
        surface,
        l.pick(
            "For your reference only: the images online are not for diagnosis.",
            "仅供患者本人参考，在线影像不可用于诊断。",
        ),
        BODY,
        4.0,
    );
    text2(
        surface,
        l.pick(
            "Keep this page private: whoever has the link can see your images until it expires.",
            "请妥善保管本页：任何持有链接的人在有效期内都能查看您的影像。",
        ),
        BODY,
        4.0,
    );
}
