//! Lung-RADS v2022 baseline categories and Fleischner Society 2017 recommendations.
//!
//! Sizes are mean diameters (long + short axis) / 2 rounded to 0.1 mm, as Lung-RADS asks.
//! Only baseline rules apply (no prior exam): growth, new-nodule and stability rules need a
//! comparison study. Category 4X (extra suspicious features) is left to the radiologist.

use crate::NoduleType;

/// The language of recommendation texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese (zh-CN).
    ZhCn,
}

/// A Lung-RADS category.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum LungRads {
    /// 1: negative, or benign calcification / fat.
    #[serde(rename = "1")]
    C1,
    /// 2: benign appearance or behaviour.
    #[serde(rename = "2")]
    C2,
    /// 3: probably benign.
    #[serde(rename = "3")]
    C3,
    /// 4A: suspicious.
    #[serde(rename = "4A")]
    C4A,
    /// 4B: very suspicious.
    #[serde(rename = "4B")]
    C4B,
}

impl LungRads {
    /// The category as printed ("1", "2", "3", "4A", "4B").
    pub fn as_str(&self) -> &'static str {
        match self {
            LungRads::C1 => "1",
            LungRads::C2 => "2",
            LungRads::C3 => "3",
            LungRads::C4A => "4A",
            LungRads::C4B => "4B",
        }
    }

    /// Management recommendation for the category (baseline), in `lang`.
    pub fn management_in(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.management(),
            Lang::ZhCn => match self {
                LungRads::C1 | LungRads::C2 => "继续年度筛查，12 个月后低剂量 CT 复查。",
                LungRads::C3 => "6 个月后低剂量 CT 复查。",
                LungRads::C4A => "3 个月后低剂量 CT 复查；若实性成分 >= 8 mm，可考虑 PET/CT。",
                LungRads::C4B => {
                    "诊断性胸部 CT（平扫或增强）；根据恶性概率及合并症行 PET/CT 和/或组织取样。"
                }
            },
        }
    }

    /// Management recommendation for the category (baseline).
    pub fn management(&self) -> &'static str {
        match self {
            LungRads::C1 | LungRads::C2 => "Continue annual screening with LDCT in 12 months.",
            LungRads::C3 => "LDCT in 6 months.",
            LungRads::C4A => {
                "LDCT in 3 months; PET/CT may be considered if there is a solid component >= 8 mm."
            }
            LungRads::C4B => {
                "Diagnostic chest CT with or without contrast; PET/CT and/or tissue sampling depending on probability of malignancy and comorbidities."
            }
        }
    }
}

/// What the rules need from one nodule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoduleSize {
    /// Type.
    pub kind: NoduleType,
    /// Mean diameter, mm.
    pub mean_diameter_mm: f64,
    /// Solid-component mean diameter (part-solid), mm.
    pub solid_mean_diameter_mm: Option<f64>,
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Lung-RADS v2022 baseline category of one nodule.
pub fn lung_rads(n: &NoduleSize) -> LungRads {
    let d = r1(n.mean_diameter_mm);
    match n.kind {
        NoduleType::Calcified => LungRads::C1,
        NoduleType::Solid => {
            if d < 6.0 {
                LungRads::C2
            } else if d < 8.0 {
                LungRads::C3
            } else if d < 15.0 {
                LungRads::C4A
            } else {
                LungRads::C4B
            }
        }
        NoduleType::PartSolid => {
            let s = r1(n.solid_mean_diameter_mm.unwrap_or(0.0));
            if d < 6.0 {
                LungRads::C2
            } else if s < 6.0 {
                LungRads::C3
            } else if s < 8.0 {
                LungRads::C4A
            } else {
                LungRads::C4B
            }
        }
        NoduleType::GroundGlass => {
            if d < 30.0 {
                LungRads::C2
            } else {
                LungRads::C3
            }
        }
    }
}

/// Exam category: that of the most suspicious nodule, 1 when there is none.
pub fn exam_category(cats: &[LungRads]) -> LungRads {
    cats.iter().copied().max().unwrap_or(LungRads::C1)
}

/// Fleischner 2017 recommendation for incidental nodules (patients >= 35 years, not screening,
/// not immunocompromised), for the nodules of one exam. `high_risk` selects the high-risk
/// wording where it differs.
pub fn fleischner(nodules: &[NoduleSize], high_risk: bool) -> String {
    fleischner_in(nodules, high_risk, Lang::En)
}

/// [`fleischner`] in `lang`: the same rules, worded in English or Chinese.
pub fn fleischner_in(nodules: &[NoduleSize], high_risk: bool, lang: Lang) -> String {
    let zh = lang == Lang::ZhCn;
    let t = |en: &'static str, cn: &'static str| if zh { cn } else { en };
    let relevant: Vec<&NoduleSize> = nodules
        .iter()
        .filter(|n| n.kind != NoduleType::Calcified)
        .collect();
    if relevant.is_empty() {
        return t(
            "No non-calcified nodule: no Fleischner follow-up.",
            "无非钙化结节：无需按 Fleischner 指南随访。",
        )
        .into();
    }
    let multiple = relevant.len() > 1;
    let solid: Vec<f64> = relevant
        .iter()
        .filter(|n| n.kind == NoduleType::Solid)
        .map(|n| r1(n.mean_diameter_mm))
        .collect();
    let sub: Vec<&&NoduleSize> = relevant
        .iter()
        .filter(|n| n.kind != NoduleType::Solid)
        .collect();
    let mut parts = Vec::new();
    if let Some(max) = solid.iter().copied().reduce(f64::max) {
        let text = match (multiple, max) {
            (false, d) if d < 6.0 => {
                if high_risk {
                    t(
                        "Solid nodule < 6 mm (high risk): optional CT at 12 months.",
                        "实性结节 < 6 mm（高危）：可选 12 个月 CT 复查。",
                    )
                } else {
                    t(
                        "Solid nodule < 6 mm (low risk): no routine follow-up.",
                        "实性结节 < 6 mm（低危）：无需常规随访。",
                    )
                }
            }
            (false, d) if d <= 8.0 => {
                if high_risk {
                    t(
                        "Solid nodule 6-8 mm (high risk): CT at 6-12 months, then CT at 18-24 months.",
                        "实性结节 6-8 mm（高危）：6-12 个月 CT 复查，之后 18-24 个月 CT 复查。",
                    )
                } else {
                    t(
                        "Solid nodule 6-8 mm (low risk): CT at 6-12 months, then consider CT at 18-24 months.",
                        "实性结节 6-8 mm（低危）：6-12 个月 CT 复查，之后考虑 18-24 个月 CT 复查。",
                    )
                }
            }
            (false, _) => t(
                "Solid nodule > 8 mm: consider CT at 3 months, PET/CT, or tissue sampling.",
                "实性结节 > 8 mm：考虑 3 个月 CT 复查、PET/CT 或组织取样。",
            ),
            (true, d) if d < 6.0 => {
                if high_risk {
                    t(
                        "Multiple solid nodules < 6 mm (high risk): optional CT at 12 months.",
                        "多发实性结节 < 6 mm（高危）：可选 12 个月 CT 复查。",
                    )
                } else {
                    t(
                        "Multiple solid nodules < 6 mm (low risk): no routine follow-up.",
                        "多发实性结节 < 6 mm（低危）：无需常规随访。",
                    )
                }
            }
            (true, d) if d <= 8.0 => {
                if high_risk {
                    t(
                        "Multiple solid nodules 6-8 mm (high risk): CT at 3-6 months, then CT at 18-24 months.",
                        "多发实性结节 6-8 mm（高危）：3-6 个月 CT 复查，之后 18-24 个月 CT 复查。",
                    )
                } else {
                    t(
                        "Multiple solid nodules 6-8 mm (low risk): CT at 3-6 months, then consider CT at 18-24 months.",
                        "多发实性结节 6-8 mm（低危）：3-6 个月 CT 复查，之后考虑 18-24 个月 CT 复查。",
                    )
                }
            }
            (true, _) => {
                if high_risk {
                    t(
                        "Multiple solid nodules, largest > 8 mm (high risk): CT at 3-6 months, then CT at 18-24 months.",
                        "多发实性结节，最大者 > 8 mm（高危）：3-6 个月 CT 复查，之后 18-24 个月 CT 复查。",
                    )
                } else {
                    t(
                        "Multiple solid nodules, largest > 8 mm (low risk): CT at 3-6 months, then consider CT at 18-24 months.",
                        "多发实性结节，最大者 > 8 mm（低危）：3-6 个月 CT 复查，之后考虑 18-24 个月 CT 复查。",
                    )
                }
            }
        };
        parts.push(text.to_string());
    }
    if !sub.is_empty() {
        let max = sub
            .iter()
            .map(|n| r1(n.mean_diameter_mm))
            .fold(0.0, f64::max);
        let text = if sub.len() > 1 || (multiple && !solid.is_empty()) {
            if max < 6.0 {
                t(
                    "Multiple subsolid nodules < 6 mm: CT at 3-6 months; if stable, consider CT at 2 and 4 years.",
                    "多发亚实性结节 < 6 mm：3-6 个月 CT 复查；若稳定，考虑 2 年和 4 年时 CT 复查。",
                )
            } else {
                t(
                    "Multiple subsolid nodules, one >= 6 mm: CT at 3-6 months; subsequent management based on the most suspicious nodule.",
                    "多发亚实性结节，其一 >= 6 mm：3-6 个月 CT 复查；后续处理依据最可疑的结节。",
                )
            }
        } else {
            let n = sub[0];
            match (n.kind, max < 6.0) {
                (NoduleType::GroundGlass, true) => t(
                    "Ground-glass nodule < 6 mm: no routine follow-up.",
                    "磨玻璃结节 < 6 mm：无需常规随访。",
                ),
                (NoduleType::GroundGlass, false) => t(
                    "Ground-glass nodule >= 6 mm: CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years.",
                    "磨玻璃结节 >= 6 mm：6-12 个月 CT 复查以确认持续存在，之后每 2 年 CT 复查至 5 年。",
                ),
                (_, true) => t(
                    "Part-solid nodule < 6 mm: no routine follow-up.",
                    "部分实性结节 < 6 mm：无需常规随访。",
                ),
                (_, false) => {
                    if n.solid_mean_diameter_mm.unwrap_or(0.0) >= 6.0 {
                        t(
                            "Part-solid nodule >= 6 mm with solid component >= 6 mm: CT at 3-6 months to confirm persistence; a persistent part-solid nodule with a solid component >= 6 mm is highly suspicious (consider PET/CT or tissue sampling).",
                            "部分实性结节 >= 6 mm 且实性成分 >= 6 mm：3-6 个月 CT 复查以确认持续存在；持续存在且实性成分 >= 6 mm 的部分实性结节高度可疑（考虑 PET/CT 或组织取样）。",
                        )
                    } else {
                        t(
                            "Part-solid nodule >= 6 mm: CT at 3-6 months to confirm persistence; if unchanged and solid component < 6 mm, annual CT for 5 years.",
                            "部分实性结节 >= 6 mm：3-6 个月 CT 复查以确认持续存在；若无变化且实性成分 < 6 mm，每年 CT 复查共 5 年。",
                        )
                    }
                }
            }
        };
        parts.push(text.to_string());
    }
    parts.push(
        t(
            "(Fleischner 2017 applies to incidental nodules in adults >= 35 years; use Lung-RADS for screening.)",
            "（Fleischner 2017 指南适用于 35 岁及以上成人的偶发结节；筛查请采用 Lung-RADS。）",
        )
        .into(),
    );
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(kind: NoduleType, d: f64, s: Option<f64>) -> NoduleSize {
        NoduleSize {
            kind,
            mean_diameter_mm: d,
            solid_mean_diameter_mm: s,
        }
    }

    #[test]
    fn lung_rads_boundaries() {
        use NoduleType::*;
        assert_eq!(lung_rads(&n(Solid, 5.94, None)), LungRads::C2);
        assert_eq!(
            lung_rads(&n(Solid, 5.96, None)),
            LungRads::C3,
            "rounds to 6.0"
        );
        assert_eq!(lung_rads(&n(Solid, 7.9, None)), LungRads::C3);
        assert_eq!(lung_rads(&n(Solid, 8.0, None)), LungRads::C4A);
        assert_eq!(lung_rads(&n(Solid, 15.0, None)), LungRads::C4B);
        assert_eq!(lung_rads(&n(PartSolid, 5.9, Some(3.0))), LungRads::C2);
        assert_eq!(lung_rads(&n(PartSolid, 10.0, Some(5.9))), LungRads::C3);
        assert_eq!(lung_rads(&n(PartSolid, 10.0, Some(6.0))), LungRads::C4A);
        assert_eq!(lung_rads(&n(PartSolid, 12.0, Some(8.0))), LungRads::C4B);
        assert_eq!(lung_rads(&n(GroundGlass, 29.9, None)), LungRads::C2);
        assert_eq!(lung_rads(&n(GroundGlass, 30.0, None)), LungRads::C3);
        assert_eq!(lung_rads(&n(Calcified, 12.0, None)), LungRads::C1);
        assert_eq!(
            exam_category(&[LungRads::C2, LungRads::C4A, LungRads::C3]),
            LungRads::C4A
        );
        assert_eq!(exam_category(&[]), LungRads::C1);
    }

    #[test]
    fn fleischner_texts() {
        use NoduleType::*;
        assert!(
            fleischner(&[n(Solid, 5.0, None)], false)
                .starts_with("Solid nodule < 6 mm (low risk): no routine")
        );
        assert!(fleischner(&[n(Solid, 7.0, None)], false).contains("6-12 months"));
        assert!(fleischner(&[n(Solid, 9.0, None)], true).contains("PET/CT"));
        assert!(
            fleischner(&[n(Solid, 7.0, None), n(Solid, 4.0, None)], false).contains("3-6 months")
        );
        assert!(fleischner(&[n(GroundGlass, 7.0, None)], false).contains("every 2 years"));
        assert!(
            fleischner(&[n(PartSolid, 8.0, Some(3.0))], false).contains("annual CT for 5 years")
        );
        assert!(fleischner(&[n(Calcified, 8.0, None)], false).starts_with("No non-calcified"));
    }

    #[test]
    fn chinese_texts_follow_the_same_rules() {
        use NoduleType::*;
        let zh = |v: &[NoduleSize]| fleischner_in(v, false, Lang::ZhCn);
        assert!(zh(&[n(Solid, 7.0, None)]).starts_with("实性结节 6-8 mm（低危）"));
        assert!(zh(&[n(GroundGlass, 7.0, None)]).contains("每 2 年"));
        assert!(zh(&[n(Calcified, 8.0, None)]).starts_with("无非钙化结节"));
        assert_eq!(
            fleischner_in(&[n(Solid, 9.0, None)], true, Lang::En),
            fleischner(&[n(Solid, 9.0, None)], true)
        );
        assert!(
            LungRads::C4A
                .management_in(Lang::ZhCn)
                .starts_with("3 个月")
        );
        assert_eq!(
            LungRads::C3.management_in(Lang::En),
            LungRads::C3.management()
        );
    }
}
