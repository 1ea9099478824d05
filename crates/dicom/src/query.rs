//! The query model and matcher shared by QIDO-RS and C-FIND (PS3.4 C.2.2.2, PS3.18 8.3.4).
//!
//! A [`Query`] is parsed from QIDO-RS parameters (or built from a C-FIND identifier) and
//! matched against records held as DICOM JSON maps, so both front doors share one set of
//! rules: single value, wildcard (`*`, `?`), range (DA, TM, DT), UID list and universal
//! matching. Person names match case-insensitively, everything else exactly.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use serde_json::{Map, Value};

use crate::attrs::{self, Level};
use crate::json::{person_name_values, string_values, tag_key};

/// Attributes computed by the archive rather than read from instances.
pub const COMPUTED_STUDY_TAGS: &[Tag] = &[
    tags::MODALITIES_IN_STUDY,
    tags::SOP_CLASSES_IN_STUDY,
    tags::NUMBER_OF_STUDY_RELATED_SERIES,
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
];
/// Attributes computed at series level.
pub const COMPUTED_SERIES_TAGS: &[Tag] = &[tags::NUMBER_OF_SERIES_RELATED_INSTANCES];
/// Attributes computed at patient level.
pub const COMPUTED_PATIENT_TAGS: &[Tag] = &[
    tags::NUMBER_OF_PATIENT_RELATED_STUDIES,
    tags::NUMBER_OF_PATIENT_RELATED_SERIES,
    tags::NUMBER_OF_PATIENT_RELATED_INSTANCES,
];

/// A malformed or unsupported query; the message is safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A parameter names no known attribute.
    #[error("unknown attribute or parameter '{0}'")]
    UnknownAttribute(String),
    /// The attribute exists but cannot be matched at this level.
    #[error("attribute {attr} cannot be matched at {level} level")]
    NotMatchable {
        /// Keyword or tag of the attribute.
        attr: String,
        /// The query level.
        level: &'static str,
    },
    /// A value is malformed (bad date range, bad number...).
    #[error("invalid value for {attr}: {reason}")]
    InvalidValue {
        /// Keyword or tag of the attribute.
        attr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request uses a feature this archive does not provide.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// How one attribute is matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Empty value: every record matches, the attribute is returned.
    Universal,
    /// Single value matching.
    Exact(String),
    /// Wildcard matching with `*` and `?`.
    Wildcard(String),
    /// Inclusive range on DA, TM or DT; either bound may be open.
    Range(Option<String>, Option<String>),
    /// UID list matching.
    UidList(Vec<String>),
}

/// One matching key.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchKey {
    /// The attribute.
    pub tag: Tag,
    /// Its value representation (from the dictionary).
    pub vr: VR,
    /// The condition.
    pub cond: Condition,
}

/// Which attributes a response carries beyond the defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Include {
    /// The level's default attributes and the matching keys.
    #[default]
    Default,
    /// Every attribute the archive holds at that level.
    All,
    /// The defaults plus these attributes.
    Tags(Vec<Tag>),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The level searched.
    pub level: Level,
    /// Matching keys (all must match).
    pub keys: Vec<MatchKey>,
    /// Additional attributes to return.
    pub include: Include,
    /// Maximum number of results.
    pub limit: Option<usize>,
    /// Number of results to skip.
    pub offset: usize,
    /// Whether fuzzy matching of person names was requested (not supported: treated as
    /// exact, which PS3.18 allows).
    pub fuzzy: bool,
}

/// The keyword of a tag (`PatientName`), or its eight hex digits when the dictionary does
/// not know it.
pub fn keyword_of(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias.to_string())
        .unwrap_or_else(|| format!("{:04X}{:04X}", tag.group(), tag.element()))
}

/// Looks up an attribute by keyword (`PatientName`) or eight-digit hex tag (`00100010`).
pub fn lookup_attribute(name: &str) -> Option<(Tag, VR)> {
    let dict = StandardDataDictionary;
    let entry = if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let tag = crate::json::parse_tag_key(&name.to_ascii_uppercase())?;
        match dict.by_tag(tag) {
            Some(e) => e,
            None => return Some((tag, VR::UN)),
        }
    } else {
        dict.by_name(name)?
    };
    let vr = entry.vr().relaxed();
    Some((entry.tag_range().inner(), vr))
}

/// The attributes that can be matched (and are returned by default) at `level`.
pub fn matchable_tags(level: Level) -> Vec<Tag> {
    let mut v: Vec<Tag> = attrs::PATIENT_TAGS.to_vec();
    v.extend_from_slice(COMPUTED_PATIENT_TAGS);
    if level != Level::Patient {
        v.extend_from_slice(attrs::STUDY_TAGS);
        v.extend_from_slice(COMPUTED_STUDY_TAGS);
    }
    if matches!(level, Level::Series | Level::Instance) {
        v.extend_from_slice(attrs::SERIES_TAGS);
        v.extend_from_slice(COMPUTED_SERIES_TAGS);
    }
    if level == Level::Instance {
        v.extend_from_slice(attrs::INSTANCE_TAGS);
    }
    v
}

/// The attributes a response carries by default at `level` (PS3.18 Table 10.6.3-3..5).
pub fn default_return_tags(level: Level) -> &'static [Tag] {
    match level {
        Level::Patient => &[
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::PATIENT_BIRTH_DATE,
            tags::PATIENT_SEX,
            tags::NUMBER_OF_PATIENT_RELATED_STUDIES,
        ],
        Level::Study => &[
            tags::SPECIFIC_CHARACTER_SET,
            tags::STUDY_DATE,
            tags::STUDY_TIME,
            tags::ACCESSION_NUMBER,
            tags::INSTANCE_AVAILABILITY,
            tags::MODALITIES_IN_STUDY,
            tags::REFERRING_PHYSICIAN_NAME,
            tags::TIMEZONE_OFFSET_FROM_UTC,
            tags::RETRIEVE_URL,
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::PATIENT_BIRTH_DATE,
            tags::PATIENT_SEX,
            tags::STUDY_INSTANCE_UID,
            tags::STUDY_ID,
            tags::NUMBER_OF_STUDY_RELATED_SERIES,
            tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
        ],
        Level::Series => &[
            tags::SPECIFIC_CHARACTER_SET,
            tags::MODALITY,
            tags::TIMEZONE_OFFSET_FROM_UTC,
            tags::SERIES_DESCRIPTION,
            tags::RETRIEVE_URL,
            tags::SERIES_INSTANCE_UID,
            tags::SERIES_NUMBER,
            tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            tags::PERFORMED_PROCEDURE_STEP_START_TIME,
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            tags::STUDY_INSTANCE_UID,
        ],
        Level::Instance => &[
            tags::SPECIFIC_CHARACTER_SET,
            tags::SOP_CLASS_UID,
            tags::SOP_INSTANCE_UID,
            tags::INSTANCE_AVAILABILITY,
            tags::TIMEZONE_OFFSET_FROM_UTC,
            tags::RETRIEVE_URL,
            tags::INSTANCE_NUMBER,
            tags::ROWS,
            tags::COLUMNS,
            tags::BITS_ALLOCATED,
            tags::NUMBER_OF_FRAMES,
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
        ],
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Patient => "patient",
        Level::Study => "study",
        Level::Series => "series",
        Level::Instance => "instance",
    }
}

impl Query {
    /// An empty query at `level`: matches everything, default attributes.
    pub fn new(level: Level) -> Self {
        Query {
            level,
            keys: Vec::new(),
            include: Include::Default,
            limit: None,
            offset: 0,
            fuzzy: false,
        }
    }

    /// Parses QIDO-RS query parameters (already percent-decoded, in request order).
    pub fn from_qido(level: Level, params: &[(String, String)]) -> Result<Self, QueryError> {
        let mut q = Query::new(level);
        let matchable = matchable_tags(level);
        for (name, value) in params {
            match name.as_str() {
                "includefield" => {
                    for f in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                        if f == "all" {
                            q.include = Include::All;
                            continue;
                        }
                        let (tag, _) = lookup_attribute(f)
                            .ok_or_else(|| QueryError::UnknownAttribute(f.to_string()))?;
                        match &mut q.include {
                            Include::All => {}
                            Include::Default => q.include = Include::Tags(vec![tag]),
                            Include::Tags(t) => t.push(tag),
                        }
                    }
                }
                "limit" => {
                    q.limit = Some(value.parse().map_err(|_| QueryError::InvalidValue {
                        attr: "limit".into(),
                        reason: "not a non-negative integer".into(),
                    })?)
                }
                "offset" => {
                    q.offset = value.parse().map_err(|_| QueryError::InvalidValue {
                        attr: "offset".into(),
                        reason: "not a non-negative integer".into(),
                    })?
                }
                "fuzzymatching" => {
                    q.fuzzy = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(QueryError::InvalidValue {
                                attr: "fuzzymatching".into(),
                                reason: "must be true or false".into(),
                            });
                        }
                    }
                }
                _ => {
                    if name.contains('.') {
                        return Err(QueryError::Unsupported(format!(
                            "sequence matching ('{name}')"
                        )));
                    }
                    let (tag, vr) = lookup_attribute(name)
                        .ok_or_else(|| QueryError::UnknownAttribute(name.clone()))?;
                    if !matchable.contains(&tag) {
                        return Err(QueryError::NotMatchable {
                            attr: name.clone(),
                            level: level_name(level),
                        });
                    }
                    let cond = Condition::parse(name, vr, value)?;
                    q.keys.push(MatchKey { tag, vr, cond });
                }
            }
        }
        Ok(q)
    }

    /// Whether `record` (a DICOM JSON map of the level and the levels above) matches all keys.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        self.keys.iter().all(|k| {
            matches!(k.cond, Condition::Universal)
                || if k.vr == VR::PN {
                    // A name matches on any of its component groups (alphabetic,
                    // ideographic, phonetic): 王* finds the patient whose pinyin is Wang.
                    person_name_values(record, k.tag)
                } else {
                    string_values(record, k.tag)
                }
                .iter()
                .any(|v| k.cond.matches(k.vr, v))
        })
    }

    /// The response for a matching record: default attributes, matching keys and the
    /// requested extra attributes that the record holds.
    pub fn response(&self, record: &Map<String, Value>) -> Map<String, Value> {
        if self.include == Include::All {
            return record.clone();
        }
        let mut out = Map::new();
        let mut put = |tag: Tag| {
            let key = tag_key(tag);
            if let Some(v) = record.get(&key) {
                out.insert(key, v.clone());
            }
        };
        for &t in default_return_tags(self.level) {
            put(t);
        }
        for k in &self.keys {
            put(k.tag);
        }
        if let Include::Tags(tags) = &self.include {
            for &t in tags {
                put(t);
            }
        }
        out
    }

    /// The value of an exact or UID-list key on `tag`, if the query has one (used by
    /// stores to narrow the candidates before matching).
    pub fn exact_values(&self, tag: Tag) -> Option<Vec<String>> {
        self.keys
            .iter()
            .find(|k| k.tag == tag)
            .and_then(|k| match &k.cond {
                Condition::Exact(v) => Some(vec![v.clone()]),
                Condition::UidList(v) => Some(v.clone()),
                _ => None,
            })
    }
}

/// A C-FIND, C-MOVE or C-GET identifier (PS3.4 C.4) as a [`Query`], with the attributes
/// it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Identifier {
    /// The matching keys at the identifier's level; the response carries the requested
    /// attributes.
    pub query: Query,
    /// The attributes asked for (matching and return keys), in order, with their VRs;
    /// the level's unique key is always among them.
    pub requested: Vec<(Tag, VR)>,
}

/// The unique key of a level, always returned (PS3.4 C.2.2.1.1).
pub fn unique_key(level: Level) -> (Tag, VR) {
    match level {
        Level::Patient => (tags::PATIENT_ID, VR::LO),
        Level::Study => (tags::STUDY_INSTANCE_UID, VR::UI),
        Level::Series => (tags::SERIES_INSTANCE_UID, VR::UI),
        Level::Instance => (tags::SOP_INSTANCE_UID, VR::UI),
    }
}

impl Identifier {
    /// Reads an identifier data set. `patient_root` says whether the information model
    /// has a patient level (Patient Root) or starts at studies (Study Root).
    pub fn parse(
        obj: &dicom_object::InMemDicomObject,
        patient_root: bool,
    ) -> Result<Self, QueryError> {
        let level_name = attrs::string_of(obj, tags::QUERY_RETRIEVE_LEVEL);
        let level = match level_name.trim().to_ascii_uppercase().as_str() {
            "PATIENT" if patient_root => Level::Patient,
            "STUDY" => Level::Study,
            "SERIES" => Level::Series,
            "IMAGE" => Level::Instance,
            _ => {
                return Err(QueryError::InvalidValue {
                    attr: "QueryRetrieveLevel".into(),
                    reason: "missing or invalid for this information model".into(),
                });
            }
        };
        let matchable = matchable_tags(level);
        let mut query = Query::new(level);
        let mut requested = Vec::new();
        for elem in obj.iter() {
            use dicom_core::header::Header;
            let tag = elem.tag();
            if tag.group() <= 0x0002
                || tag.element() == 0
                || tag == tags::QUERY_RETRIEVE_LEVEL
                || tag == tags::SPECIFIC_CHARACTER_SET
            {
                continue;
            }
            let key = format!("{:04X}{:04X}", tag.group(), tag.element());
            let vr = lookup_attribute(&key)
                .map(|(_, vr)| vr)
                .unwrap_or(elem.vr());
            requested.push((tag, vr));
            if vr == VR::SQ || !matchable.contains(&tag) {
                // Sequence matching and keys this archive does not index: returned (empty)
                // but not matched.
                continue;
            }
            let value = elem.to_str().map(|s| s.to_string()).unwrap_or_default();
            let value = value.trim_end_matches(['\0', ' ']);
            let cond = Condition::parse(&key, vr, value)?;
            if cond != Condition::Universal {
                query.keys.push(MatchKey { tag, vr, cond });
            }
        }
        let uk = unique_key(level);
        if !requested.iter().any(|(t, _)| *t == uk.0) {
            requested.push(uk);
        }
        // Only what is asked for: the indexed attributes usually suffice, so the store
        // need not read each instance's full metadata.
        query.include = Include::Tags(requested.iter().map(|(t, _)| *t).collect());
        Ok(Identifier { query, requested })
    }

    /// The response identifier of a matching record (DICOM JSON, for encoding): the
    /// requested attributes (empty where the record has none), the level, the Retrieve
    /// AE Title and the record's character set.
    pub fn response(&self, record: &Map<String, Value>, retrieve_aet: &str) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(cs) = record.get(&tag_key(tags::SPECIFIC_CHARACTER_SET)) {
            m.insert(tag_key(tags::SPECIFIC_CHARACTER_SET), cs.clone());
        }
        m.insert(
            tag_key(tags::QUERY_RETRIEVE_LEVEL),
            serde_json::json!({"vr": "CS", "Value": [self.query.level.dimse_name()]}),
        );
        m.insert(
            tag_key(tags::RETRIEVE_AE_TITLE),
            serde_json::json!({"vr": "AE", "Value": [retrieve_aet]}),
        );
        for (tag, vr) in &self.requested {
            let key = tag_key(*tag);
            let v = record
                .get(&key)
                .filter(|v| v.get("BulkDataURI").is_none())
                .cloned()
                .unwrap_or_else(|| serde_json::json!({ "vr": vr.to_string() }));
            m.insert(key, v);
        }
        m
    }
}

impl Condition {
    /// Parses a QIDO-RS value for an attribute of representation `vr`.
    pub fn parse(name: &str, vr: VR, value: &str) -> Result<Self, QueryError> {
        let value = value.trim();
        if value.is_empty() || value == "*" {
            return Ok(Condition::Universal);
        }
        let bad = |reason: &str| QueryError::InvalidValue {
            attr: name.to_string(),
            reason: reason.to_string(),
        };
        match vr {
            VR::UI => {
                let list: Vec<String> = value
                    .split([',', '\\'])
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for uid in &list {
                    if !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        return Err(bad("not a UID"));
                    }
                }
                Ok(if list.len() == 1 {
                    Condition::Exact(list.into_iter().next().unwrap_or_default())
                } else {
                    Condition::UidList(list)
                })
            }
            VR::DA | VR::TM | VR::DT => {
                if let Some((lo, hi)) = value
                    .split_once('-')
                    .filter(|_| vr != VR::DT || is_dt_range(value))
                {
                    let lo = normalize_temporal(vr, lo).map_err(|r| bad(&r))?;
                    let hi = normalize_temporal(vr, hi).map_err(|r| bad(&r))?;
                    if lo.is_none() && hi.is_none() {
                        return Err(bad("a range needs at least one bound"));
                    }
                    Ok(Condition::Range(lo, hi))
                } else {
                    let v = normalize_temporal(vr, value)
                        .map_err(|r| bad(&r))?
                        .unwrap_or_default();
                    Ok(Condition::Exact(v))
                }
            }
            VR::US | VR::SS | VR::UL | VR::SL | VR::IS | VR::DS | VR::FL | VR::FD => {
                if value.parse::<f64>().is_err() {
                    return Err(bad("not a number"));
                }
                Ok(Condition::Exact(value.to_string()))
            }
            _ => {
                if value.contains(['*', '?']) {
                    Ok(Condition::Wildcard(value.to_string()))
                } else {
                    Ok(Condition::Exact(value.to_string()))
                }
            }
        }
    }

    /// Whether one stored value of representation `vr` satisfies the condition.
    pub fn matches(&self, vr: VR, stored: &str) -> bool {
        let ci = vr == VR::PN;
        match self {
            Condition::Universal => true,
            Condition::Exact(v) => match vr {
                VR::DA | VR::TM | VR::DT => normalize_temporal(vr, stored)
                    .ok()
                    .flatten()
                    .is_some_and(|s| temporal_eq(vr, &s, v)),
                VR::US | VR::SS | VR::UL | VR::SL | VR::IS | VR::DS | VR::FL | VR::FD => {
                    match (stored.trim().parse::<f64>(), v.parse::<f64>()) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => false,
                    }
                }
                _ if ci => {
                    stored.trim().eq_ignore_ascii_case(v)
                        || stored.trim().to_lowercase() == v.to_lowercase()
                }
                _ => stored.trim() == v,
            },
            Condition::Wildcard(p) => {
                if ci {
                    wildcard(&p.to_lowercase(), &stored.trim().to_lowercase())
                } else {
                    wildcard(p, stored.trim())
                }
            }
            Condition::Range(lo, hi) => {
                let Some(s) = normalize_temporal(vr, stored).ok().flatten() else {
                    return false;
                };
                lo.as_ref().is_none_or(|lo| s.as_str() >= lo.as_str())
                    && hi.as_ref().is_none_or(|hi| temporal_le_upper(&s, hi))
            }
            Condition::UidList(list) => list.iter().any(|u| u == stored.trim()),
        }
    }
}

/// A DT value contains '-' both as range separator and in a UTC offset; it is a range
/// when it starts with '-' or has a '-' right after a date-time prefix of at least 4 digits.
fn is_dt_range(value: &str) -> bool {
    value.starts_with('-') || value.matches('-').count() == 1 && !value.contains('+')
}

/// Normalises a DA/TM/DT value for ordered comparison: DA as YYYYMMDD, TM as HHMMSS.FFFFFF
/// prefix (colons removed), DT with its offset dropped. `Ok(None)` for an empty bound.
fn normalize_temporal(vr: VR, v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match vr {
        VR::DA => {
            let d: String = v.chars().filter(|c| *c != '.').collect();
            if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err("dates are YYYYMMDD".into());
            }
            Ok(Some(d))
        }
        VR::TM => {
            let t: String = v.chars().filter(|c| *c != ':').collect();
            let (hms, frac) = t.split_once('.').unwrap_or((&t, ""));
            if hms.is_empty()
                || hms.len() > 6
                || hms.len() % 2 == 1
                || !hms.bytes().all(|b| b.is_ascii_digit())
                || !frac.bytes().all(|b| b.is_ascii_digit())
            {
                return Err("times are HHMMSS.FFFFFF".into());
            }
            Ok(Some(if frac.is_empty() {
                hms.to_string()
            } else {
                format!("{hms}.{frac}")
            }))
        }
        _ => {
            let end = v.find(['+', '-']).unwrap_or(v.len());
            let dt = &v[..end];
            if dt.is_empty() || !dt.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err("date-times are YYYYMMDDHHMMSS.FFFFFF".into());
            }
            Ok(Some(dt.to_string()))
        }
    }
}

/// Equality of normalised temporal values, where a shorter query value (e.g. TM `10`)
/// matches the whole period it names.
fn temporal_eq(vr: VR, stored: &str, query: &str) -> bool {
    match vr {
        VR::DA => stored == query,
        _ => stored.starts_with(query),
    }
}

/// `stored <= hi`, where an upper bound with less precision includes its whole period.
fn temporal_le_upper(stored: &str, hi: &str) -> bool {
    stored <= hi || stored.starts_with(hi)
}

/// Wildcard matching: `*` any sequence, `?` any single character.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn study() -> Map<String, Value> {
        json!({
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Wang^Fang", "Ideographic": "王^芳"}]},
            "00100020": {"vr": "LO", "Value": ["PID-001"]},
            "00080020": {"vr": "DA", "Value": ["20240315"]},
            "00080030": {"vr": "TM", "Value": ["101530.25"]},
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
            "00201208": {"vr": "IS", "Value": [133]}
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn check(p: &[(&str, &str)], expected: bool) {
        let q = Query::from_qido(Level::Study, &params(p)).expect("query parses");
        assert_eq!(q.matches(&study()), expected, "{p:?}");
    }

    #[test]
    fn single_value_and_wildcards() {
        check(&[("PatientID", "PID-001")], true);
        check(&[("PatientID", "pid-001")], false);
        check(&[("PatientName", "wang^fang")], true);
        check(&[("PatientName", "Wang*")], true);
        check(&[("PatientName", "W?ng^F*")], true);
        check(&[("PatientName", "Li*")], false);
        check(&[("PatientName", "王*")], true);
        check(&[("PatientName", "王^芳")], true);
        check(&[("PatientName", "李*")], false);
        check(&[("00100020", "PID-00?")], true);
        check(&[("PatientID", "")], true);
    }

    #[test]
    fn date_and_time_ranges() {
        check(&[("StudyDate", "20240101-20241231")], true);
        check(&[("StudyDate", "-20240314")], false);
        check(&[("StudyDate", "20240315-")], true);
        check(&[("StudyDate", "20240315")], true);
        check(&[("StudyTime", "1000-1100")], true);
        check(&[("StudyTime", "10")], true);
        check(&[("StudyTime", "1016-")], false);
        check(
            &[("StudyDate", "20240101"), ("PatientID", "PID-001")],
            false,
        );
    }

    #[test]
    fn uid_lists_and_multi_values() {
        check(&[("StudyInstanceUID", "1.2.4,1.2.3")], true);
        check(&[("StudyInstanceUID", "1.2.4\\1.2.5")], false);
        check(&[("ModalitiesInStudy", "SR")], true);
        check(&[("ModalitiesInStudy", "MR")], false);
        check(&[("NumberOfStudyRelatedInstances", "133")], true);
    }

    #[test]
    fn bad_queries_are_rejected() {
        let bad = |p: &[(&str, &str)]| Query::from_qido(Level::Study, &params(p)).unwrap_err();
        assert!(matches!(
            bad(&[("NoSuchAttr", "x")]),
            QueryError::UnknownAttribute(_)
        ));
        assert!(matches!(
            bad(&[("StudyDate", "2024-01")]),
            QueryError::InvalidValue { .. }
        ));
        assert!(matches!(
            bad(&[("limit", "-1")]),
            QueryError::InvalidValue { .. }
        ));
        assert!(matches!(
            bad(&[("SOPInstanceUID", "1.2")]),
            QueryError::NotMatchable { .. }
        ));
        assert!(matches!(
            bad(&[("includefield", "Bogus")]),
            QueryError::UnknownAttribute(_)
        ));
    }

    #[test]
    fn response_has_defaults_keys_and_includes() {
        let q = Query::from_qido(Level::Study, &params(&[("includefield", "00080030")])).unwrap();
        let r = q.response(&study());
        assert!(r.contains_key("00080030"));
        assert!(r.contains_key("0020000D"));
        let all = Query::from_qido(Level::Study, &params(&[("includefield", "all")])).unwrap();
        assert_eq!(all.response(&study()).len(), study().len());
    }

    #[test]
    fn wildcard_engine() {
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*b*", "abc"));
        assert!(!wildcard("abc", "abcd"));
    }
}
