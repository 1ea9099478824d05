//! Query pushdown: the conditions of a QIDO-RS or C-FIND [`Query`] become SQL over the
//! index's columns (migration 0006), so that a query reads the rows it returns.
//!
//! The Rust matcher ([`Query::matches`]) stays the definition of what matches; this module
//! translates the conditions it can decide exactly with a column and leaves the others
//! (`residual`) to the matcher. When nothing is left over, limit and offset run in SQL too.
//! A property test (`tests/pushdown.rs`) checks that both give the same answers.
//!
//! The SQL is plain SQL-92 plus `LIKE ... ESCAPE`, which PostgreSQL runs as well; LIKE is
//! case-sensitive there and, with `PRAGMA case_sensitive_like`, in SQLite. Person names are
//! matched case-insensitively by storing them lower-cased. A wildcard with a literal prefix
//! also gets a range on that prefix, which both databases answer from a B-tree index.

use dicom_dictionary_std::tags;
use lumen_dicom::attrs::Level;
use lumen_dicom::query::{Condition, Include, MatchKey, Query};

/// The SQL conditions of a query and what the matcher must still decide.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Conditions (ANDed), with `?` placeholders.
    pub(crate) conds: Vec<String>,
    /// Their values, in order.
    pub(crate) binds: Vec<String>,
    /// Whether some key is left to the Rust matcher.
    pub(crate) residual: bool,
}

/// How an attribute is kept in the index.
#[derive(Debug, Clone, Copy)]
enum Col {
    /// A NOT NULL text column, `''` when absent.
    Text(&'static str),
    /// A nullable text column, NULL when absent.
    Nullable(&'static str),
    /// A UID column.
    Uid(&'static str),
    /// A date column, YYYYMMDD or `''`.
    Date(&'static str),
    /// The three lower-cased person name groups of the patient.
    Names,
    /// The study's modalities, backslash-joined.
    Modalities,
}

/// The column that holds `tag` at `level`, when one does.
fn column(tag: dicom_object::Tag, level: Level) -> Option<Col> {
    let study_uid = match level {
        Level::Patient | Level::Study => "st.study_uid",
        Level::Series => "se.study_uid",
        Level::Instance => "i.study_uid",
    };
    if tag == tags::PATIENT_ID {
        return Some(Col::Text("st.patient_id"));
    }
    if level == Level::Patient {
        // Patients are folded from their studies after the query; narrowing the studies
        // by anything but the patient would change the folded record and its counts.
        return None;
    }
    Some(match tag {
        t if t == tags::PATIENT_NAME => Col::Names,
        t if t == tags::STUDY_DATE => Col::Date("st.study_date"),
        t if t == tags::ACCESSION_NUMBER => Col::Nullable("st.accession"),
        t if t == tags::STUDY_DESCRIPTION => Col::Nullable("st.description"),
        t if t == tags::STUDY_INSTANCE_UID => Col::Uid(study_uid),
        t if t == tags::MODALITIES_IN_STUDY => Col::Modalities,
        t if t == tags::MODALITY && level != Level::Study => Col::Text("se.modality"),
        t if t == tags::SERIES_INSTANCE_UID && level == Level::Series => Col::Uid("se.series_uid"),
        t if t == tags::SERIES_INSTANCE_UID && level == Level::Instance => Col::Uid("i.series_uid"),
        t if t == tags::SOP_INSTANCE_UID && level == Level::Instance => Col::Uid("i.sop_uid"),
        t if t == tags::SOP_CLASS_UID && level == Level::Instance => Col::Uid("i.sop_class_uid"),
        _ => return None,
    })
}

/// The escape character of every LIKE pattern built here.
const ESC: char = '!';

/// A DICOM wildcard pattern (`*`, `?`) as a LIKE pattern.
fn like_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 4);
    for c in p.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | ESC => {
                out.push(ESC);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The literal text before a pattern's first wildcard.
fn literal_prefix(p: &str) -> &str {
    &p[..p.find(['*', '?']).unwrap_or(p.len())]
}

/// The least string greater than every string that starts with `prefix` (its last
/// character incremented), if there is one.
fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = match last as u32 + 1 {
        0xD800 => '\u{E000}',
        n => char::from_u32(n)?,
    };
    chars.push(next);
    Some(chars.into_iter().collect())
}

impl Plan {
    fn push(&mut self, cond: String, binds: impl IntoIterator<Item = String>) {
        self.conds.push(cond);
        self.binds.extend(binds);
    }

    /// `col` matches the wildcard pattern `p`: LIKE, plus a range on its literal prefix.
    fn like(&mut self, col: &str, p: &str) {
        self.push(format!("{col} LIKE ? ESCAPE '{ESC}'"), [like_pattern(p)]);
        let prefix = literal_prefix(p);
        if !prefix.is_empty() {
            self.push(format!("{col} >= ?"), [prefix.to_string()]);
            if let Some(upper) = prefix_upper(prefix) {
                self.push(format!("{col} < ?"), [upper]);
            }
        }
    }

    fn uids(&mut self, col: &str, uids: &[String]) {
        let marks = vec!["?"; uids.len()].join(", ");
        self.push(format!("{col} IN ({marks})"), uids.iter().cloned());
    }

    /// Translates one key; false when the matcher must decide it.
    fn key(&mut self, key: &MatchKey, level: Level) -> bool {
        let Some(col) = column(key.tag, level) else {
            return matches!(key.cond, Condition::Universal);
        };
        match (col, &key.cond) {
            (_, Condition::Universal) => {}
            (Col::Text(c) | Col::Nullable(c) | Col::Uid(c) | Col::Date(c), Condition::Exact(v)) => {
                self.push(format!("{c} = ?"), [v.clone()])
            }
            (Col::Uid(c) | Col::Text(c) | Col::Nullable(c), Condition::UidList(v)) => {
                self.uids(c, v)
            }
            (Col::Text(c), Condition::Wildcard(p)) => {
                // An absent value is '' here, and a pattern of stars would match it.
                self.push(format!("{c} <> ''"), []);
                self.like(c, p);
            }
            (Col::Nullable(c), Condition::Wildcard(p)) => self.like(c, p),
            (Col::Date(c), Condition::Range(lo, hi)) => {
                self.push(format!("{c} <> ''"), []);
                if let Some(lo) = lo {
                    self.push(format!("{c} >= ?"), [lo.clone()]);
                }
                if let Some(hi) = hi {
                    self.push(format!("{c} <= ?"), [hi.clone()]);
                }
            }
            (Col::Names, Condition::Exact(v)) => {
                let v = v.to_lowercase();
                self.push(
                    "(st.pn_alphabetic = ? OR st.pn_ideographic = ? OR st.pn_phonetic = ?)"
                        .to_string(),
                    [v.clone(), v.clone(), v],
                );
            }
            (Col::Names, Condition::Wildcard(p)) => {
                let p = p.to_lowercase();
                let mut parts = Vec::new();
                for col in ["st.pn_alphabetic", "st.pn_ideographic", "st.pn_phonetic"] {
                    let mut one = Plan::default();
                    one.like(col, &p);
                    parts.push(format!("({})", one.conds.join(" AND ")));
                    self.binds.extend(one.binds);
                }
                self.conds.push(format!("({})", parts.join(" OR ")));
            }
            (Col::Modalities, Condition::Exact(v)) if !v.contains('\\') => {
                let pattern = format!("%\\{}\\%", like_pattern(v));
                self.push(
                    format!("('\\' || st.modalities || '\\') LIKE ? ESCAPE '{ESC}'"),
                    [pattern],
                );
            }
            _ => return false,
        }
        true
    }
}

/// The columns of a study row that queries match on, computed from the study's attributes
/// exactly as the matcher reads them (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StudyColumns {
    pub(crate) pn: [Option<String>; 3],
    pub(crate) accession: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) study_date: String,
    pub(crate) study_time: String,
}

impl StudyColumns {
    /// The columns of a study's DICOM JSON attributes.
    pub(crate) fn of(attrs: &serde_json::Map<String, serde_json::Value>) -> Self {
        use lumen_dicom::json::{first_string, person_name_groups, tag_key};
        let first_name = attrs
            .get(&tag_key(tags::PATIENT_NAME))
            .and_then(|e| e.get("Value"))
            .and_then(|v| v.get(0));
        let pn = match first_name {
            Some(v) => person_name_groups(v).map(|g| g.map(str::to_lowercase)),
            None => [None, None, None],
        };
        let text = |t| {
            first_string(attrs, t)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        // The matcher's DA normalisation: periods of the old ACR-NEMA form dropped, then
        // exactly eight digits.
        let study_date = text(tags::STUDY_DATE)
            .map(|d| d.replace('.', ""))
            .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_default();
        StudyColumns {
            pn,
            accession: text(tags::ACCESSION_NUMBER),
            description: text(tags::STUDY_DESCRIPTION),
            study_date,
            study_time: text(tags::STUDY_TIME).unwrap_or_default(),
        }
    }
}

/// The SQL conditions of `query`'s keys at its level.
pub(crate) fn plan(query: &Query) -> Plan {
    let mut plan = Plan::default();
    for key in &query.keys {
        if !plan.key(key, query.level) {
            plan.residual = true;
        }
    }
    plan
}

/// Whether a response at instance level needs the full metadata rather than the indexed
/// instance attributes.
pub(crate) fn needs_metadata(query: &Query) -> bool {
    match &query.include {
        Include::All => true,
        Include::Default => false,
        Include::Tags(t) => {
            let indexed = lumen_dicom::query::matchable_tags(Level::Instance);
            t.iter().any(|t| !indexed.contains(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_like_patterns() {
        assert_eq!(like_pattern("Wang*"), "Wang%");
        assert_eq!(like_pattern("W?ng_100%!"), "W_ng!_100!%!!");
        assert_eq!(literal_prefix("Wang^F*?"), "Wang^F");
        assert_eq!(literal_prefix("*x"), "");
        assert_eq!(prefix_upper("wang").as_deref(), Some("wanh"));
        assert_eq!(prefix_upper("王").as_deref(), Some("玌"));
        assert_eq!(prefix_upper(""), None);
    }

    #[test]
    fn what_is_pushed_down() {
        let q = |level, p: &[(&str, &str)]| {
            let params: Vec<(String, String)> = p
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            plan(&Query::from_qido(level, &params).expect("parses"))
        };
        let p = q(
            Level::Study,
            &[("PatientName", "WANG*"), ("StudyDate", "20240101-")],
        );
        assert!(!p.residual);
        assert!(p.binds.contains(&"wang%".to_string()), "{:?}", p.binds);
        assert!(p.binds.contains(&"20240101".to_string()));
        assert!(q(Level::Study, &[("ReferringPhysicianName", "X*")]).residual);
        assert!(q(Level::Patient, &[("PatientName", "X*")]).residual);
        assert!(!q(Level::Patient, &[("PatientID", "X*")]).residual);
        assert!(!q(Level::Instance, &[("SOPClassUID", "1.2.3,1.2.4")]).residual);
    }
}
