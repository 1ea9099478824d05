//! The structured report draft written from a study's accepted findings, in English or
//! simplified Chinese: per nodule location, type, size, volume and Lung-RADS category; the
//! impression; the follow-up recommendation.
//!
//! Pure text: the categories and the recommendation wording come from the caller (the
//! Lung-RADS v2022 and Fleischner 2017 rules live with the AI engine's `lungrads` module), so
//! this crate stays independent of the engine.

/// The language of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English (`en`).
    #[default]
    En,
    /// Simplified Chinese (`zh-CN`).
    ZhCn,
}

impl Lang {
    /// Parses `en` or `zh-CN` (case-insensitive; `zh` is taken as `zh-CN`).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            "zh-cn" | "zh" | "zh-hans" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// `en` or `zh-CN`.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Picks the English or the Chinese text.
    pub fn pick<'a>(&self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::ZhCn => zh,
        }
    }
}

/// One finding the report describes (accepted, corrected or added by the doctor).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftFinding {
    /// Lobe code (RUL, RML, RLL, LUL, LLL) or free text.
    pub location: String,
    /// solid, part-solid, ground-glass or calcified.
    pub kind: String,
    /// Long axis, mm.
    pub long_axis_mm: f64,
    /// Short axis, mm.
    pub short_axis_mm: f64,
    /// Mean diameter, mm.
    pub mean_diameter_mm: f64,
    /// Volume, mm³, when measured.
    pub volume_mm3: Option<f64>,
    /// Mean diameter of the solid component of a part-solid nodule, mm, when measured.
    pub solid_component_mm: Option<f64>,
    /// Lung-RADS v2022 category ("2", "4A"...).
    pub lung_rads: String,
}

/// What the draft is written from.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftInput {
    /// The findings, in report order.
    pub findings: Vec<DraftFinding>,
    /// The exam's Lung-RADS category (highest over the findings; "1" without any).
    pub exam_category: String,
    /// Lung-RADS management for that category, already in the report's language.
    pub management: String,
    /// Fleischner 2017 recommendation, already in the report's language.
    pub fleischner: String,
}

/// The three sections of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    /// Findings.
    pub findings: String,
    /// Impression.
    pub impression: String,
    /// Recommendation.
    pub recommendation: String,
}

/// The lobe's name in `lang` with its code ("right upper lobe (RUL)"), the text as given,
/// or "location not given" when there is none (a finding the doctor added without one).
pub fn location_name(code: &str, lang: Lang) -> String {
    let (en, zh) = match code.trim().to_ascii_uppercase().as_str() {
        "" => return lang.pick("location not given", "部位未注明").to_string(),
        "RUL" => ("right upper lobe", "右肺上叶"),
        "RML" => ("right middle lobe", "右肺中叶"),
        "RLL" => ("right lower lobe", "右肺下叶"),
        "LUL" => ("left upper lobe", "左肺上叶"),
        "LLL" => ("left lower lobe", "左肺下叶"),
        _ => return code.trim().to_string(),
    };
    match lang {
        Lang::En => format!("{en} ({})", code.trim().to_ascii_uppercase()),
        Lang::ZhCn => format!("{zh}（{}）", code.trim().to_ascii_uppercase()),
    }
}

/// The nodule type's name in `lang`.
pub fn kind_name(kind: &str, lang: Lang) -> &str {
    match kind {
        "solid" => lang.pick("solid", "实性"),
        "part-solid" => lang.pick("part-solid", "部分实性"),
        "ground-glass" => lang.pick("ground-glass", "磨玻璃"),
        "calcified" => lang.pick("calcified", "钙化"),
        other => other,
    }
}

/// The meaning of a Lung-RADS category in `lang`.
pub fn category_meaning(cat: &str, lang: Lang) -> &'static str {
    match cat {
        "1" => lang.pick("negative", "阴性"),
        "2" => lang.pick("benign appearance or behaviour", "良性表现"),
        "3" => lang.pick("probably benign", "可能良性"),
        "4A" => lang.pick("suspicious", "可疑恶性"),
        "4B" => lang.pick("very suspicious", "高度可疑恶性"),
        "4X" => lang.pick(
            "very suspicious, additional features",
            "高度可疑恶性（附加特征）",
        ),
        _ => "",
    }
}

fn mm(v: f64) -> String {
    format!("{v:.1}")
}

/// Writes the draft sections in `lang`.
pub fn draft(input: &DraftInput, lang: Lang) -> Sections {
    let mut findings = Vec::new();
    for (i, f) in input.findings.iter().enumerate() {
        let n = i + 1;
        let loc = location_name(&f.location, lang);
        let kind = kind_name(&f.kind, lang);
        let line = match lang {
            Lang::En => {
                let vol = f
                    .volume_mm3
                    .map(|v| format!(", volume {v:.0} mm³"))
                    .unwrap_or_default();
                let solid = f
                    .solid_component_mm
                    .map(|v| format!(", solid component {} mm", mm(v)))
                    .unwrap_or_default();
                format!(
                    "Nodule {n}: {loc}, {kind}, {} x {} mm (mean diameter {} mm){solid}{vol}, Lung-RADS {}.",
                    mm(f.long_axis_mm),
                    mm(f.short_axis_mm),
                    mm(f.mean_diameter_mm),
                    f.lung_rads
                )
            }
            Lang::ZhCn => {
                let vol = f
                    .volume_mm3
                    .map(|v| format!("，体积 {v:.0} mm³"))
                    .unwrap_or_default();
                let solid = f
                    .solid_component_mm
                    .map(|v| format!("，实性成分 {} mm", mm(v)))
                    .unwrap_or_default();
                format!(
                    "结节 {n}：{loc}，{kind}，{} × {} mm（平均径 {} mm）{solid}{vol}，Lung-RADS {}。",
                    mm(f.long_axis_mm),
                    mm(f.short_axis_mm),
                    mm(f.mean_diameter_mm),
                    f.lung_rads
                )
            }
        };
        findings.push(line);
    }
    if findings.is_empty() {
        findings.push(
            lang.pick("No pulmonary nodule is reported.", "未见需报告的肺结节。")
                .to_string(),
        );
    }
    let cat = input.exam_category.as_str();
    let meaning = category_meaning(cat, lang);
    let largest = input
        .findings
        .iter()
        .max_by(|a, b| a.mean_diameter_mm.total_cmp(&b.mean_diameter_mm));
    let impression = match (lang, largest) {
        (Lang::En, Some(l)) => format!(
            "Lung-RADS {cat} ({meaning}). {} pulmonary nodule{}; the largest is a {} {} mm nodule in the {}.",
            input.findings.len(),
            if input.findings.len() == 1 { "" } else { "s" },
            kind_name(&l.kind, lang),
            mm(l.mean_diameter_mm),
            location_name(&l.location, lang)
        ),
        (Lang::En, None) => format!("Lung-RADS {cat} ({meaning}). No pulmonary nodule."),
        (Lang::ZhCn, Some(l)) => format!(
            "Lung-RADS {cat}（{meaning}）。共 {} 个肺结节，最大者为{}{}结节，平均径 {} mm。",
            input.findings.len(),
            location_name(&l.location, lang),
            kind_name(&l.kind, lang),
            mm(l.mean_diameter_mm)
        ),
        (Lang::ZhCn, None) => format!("Lung-RADS {cat}（{meaning}）。未见肺结节。"),
    };
    let recommendation = match lang {
        Lang::En => format!(
            "Lung-RADS v2022: {}\nFleischner 2017: {}",
            input.management, input.fleischner
        ),
        Lang::ZhCn => format!(
            "Lung-RADS v2022：{}\nFleischner 2017：{}",
            input.management, input.fleischner
        ),
    };
    Sections {
        findings: findings.join("\n"),
        impression,
        recommendation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> DraftInput {
        DraftInput {
            findings: vec![DraftFinding {
                location: "RUL".into(),
                kind: "solid".into(),
                long_axis_mm: 12.3,
                short_axis_mm: 9.1,
                mean_diameter_mm: 10.7,
                volume_mm3: Some(812.4),
                solid_component_mm: None,
                lung_rads: "4A".into(),
            }],
            exam_category: "4A".into(),
            management: "LDCT in 3 months.".into(),
            fleischner: "Solid nodule > 8 mm.".into(),
        }
    }

    #[test]
    fn english_draft_has_the_numbers() {
        let s = draft(&input(), Lang::En);
        assert_eq!(
            s.findings,
            "Nodule 1: right upper lobe (RUL), solid, 12.3 x 9.1 mm (mean diameter 10.7 mm), volume 812 mm³, Lung-RADS 4A."
        );
        assert!(
            s.impression
                .starts_with("Lung-RADS 4A (suspicious). 1 pulmonary nodule;")
        );
        assert!(s.recommendation.contains("LDCT in 3 months."));
        assert!(
            s.recommendation
                .contains("Fleischner 2017: Solid nodule > 8 mm.")
        );
    }

    #[test]
    fn a_part_solid_nodule_names_its_solid_component() {
        let mut i = input();
        i.findings[0].kind = "part-solid".into();
        i.findings[0].solid_component_mm = Some(6.5);
        assert!(draft(&i, Lang::En).findings.contains(
            "part-solid, 12.3 x 9.1 mm (mean diameter 10.7 mm), solid component 6.5 mm,"
        ));
        assert!(
            draft(&i, Lang::ZhCn)
                .findings
                .contains("部分实性，12.3 × 9.1 mm（平均径 10.7 mm），实性成分 6.5 mm，")
        );
    }

    #[test]
    fn a_finding_without_location_says_so() {
        assert_eq!(location_name(" ", Lang::En), "location not given");
        assert_eq!(location_name("", Lang::ZhCn), "部位未注明");
        assert_eq!(location_name("lll", Lang::En), "left lower lobe (LLL)");
        assert_eq!(location_name("lingula", Lang::En), "lingula");
    }

    #[test]
    fn chinese_draft_has_the_numbers() {
        let s = draft(&input(), Lang::ZhCn);
        assert_eq!(
            s.findings,
            "结节 1：右肺上叶（RUL），实性，12.3 × 9.1 mm（平均径 10.7 mm），体积 812 mm³，Lung-RADS 4A。"
        );
        assert!(s.impression.contains("可疑恶性") && s.impression.contains("10.7 mm"));
        let none = DraftInput {
            findings: vec![],
            exam_category: "1".into(),
            ..input()
        };
        assert_eq!(draft(&none, Lang::ZhCn).findings, "未见需报告的肺结节。");
        assert_eq!(Lang::parse("zh-cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("fr"), None);
    }
}
