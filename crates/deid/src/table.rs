//! DICOM PS3.15 Table E.1-1, "Application Level Confidentiality Profile Attributes", as data:
//! every row with its Basic Profile action and the action of each option column.
//!
//! The rows are `table/annex_e.tsv`, written by `table/generate.py` from two machine-readable
//! copies of the standard's table (see that script for the exact files and commits):
//! - the rows of PS3.15 2024b with all their columns, as scraped from the standard's HTML
//!   by innolitics/dicom-standard (`standard/confidentiality_profile_attributes.json`,
//!   commit 8670abdd9ad16c61af5146ef857899699bdd9c5f), 621 rows;
//! - the 35 rows added up to PS3.15 2026c, with their Basic Profile action only, from PyPI
//!   dicom-anonymizer 2.1.0 (`dicomfields_2026c.py`); they have no option columns here
//!   (source [`Source::Basic2026c`]).
//!
//! Both copies agree on the Basic Profile action of every row they share.

use std::collections::HashMap;
use std::sync::LazyLock;

use dicom_core::Tag;

/// The table as checked in (tab-separated, one header line).
pub const TSV: &str = include_str!("../table/annex_e.tsv");

/// An action code of Table E.1-1 (PS3.15 E.1.1, Table E.1-1a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// D: replace with a non-zero length dummy value consistent with the VR.
    D,
    /// Z: replace with a zero length value (or a dummy value consistent with the VR).
    Z,
    /// X: remove.
    X,
    /// K: keep (unchanged for non-sequence attributes, cleaned for sequences).
    K,
    /// C: clean, replacing values of similar meaning known not to identify.
    C,
    /// U: replace with a non-zero length UID, consistent within the set of instances.
    U,
    /// Z/D: Z unless D is required to keep the IOD conformant (Type 2 versus Type 1).
    ZD,
    /// X/Z: X unless Z is required (Type 3 versus Type 2).
    XZ,
    /// X/D: X unless D is required (Type 3 versus Type 1).
    XD,
    /// X/Z/D: X unless Z or D is required (Type 3 versus Type 2 versus Type 1).
    XZD,
    /// X/Z/U*: X unless Z or replacement of the contained instance UIDs (U) is required.
    XZUStar,
}

impl Action {
    /// Reads an action code as the table writes it.
    pub fn parse(code: &str) -> Option<Action> {
        Some(match code {
            "D" => Action::D,
            "Z" => Action::Z,
            "X" => Action::X,
            "K" => Action::K,
            "C" => Action::C,
            "U" => Action::U,
            "Z/D" => Action::ZD,
            "X/Z" => Action::XZ,
            "X/D" => Action::XD,
            "X/Z/D" => Action::XZD,
            "X/Z/U*" => Action::XZUStar,
            _ => return None,
        })
    }

    /// The code as the table writes it.
    pub fn code(self) -> &'static str {
        match self {
            Action::D => "D",
            Action::Z => "Z",
            Action::X => "X",
            Action::K => "K",
            Action::C => "C",
            Action::U => "U",
            Action::ZD => "Z/D",
            Action::XZ => "X/Z",
            Action::XD => "X/D",
            Action::XZD => "X/Z/D",
            Action::XZUStar => "X/Z/U*",
        }
    }
}

/// Which attributes a row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagPattern {
    /// One attribute.
    Exact(Tag),
    /// `(50xx,xxxx)`: every element of the repeating curve groups 5000-50FF (even).
    Curve,
    /// `(60xx,eeee)`: element `eeee` of the repeating overlay groups 6000-60FF (even).
    Overlay(u16),
    /// `(gggg,eeee)` where gggg is odd: private attributes.
    Private,
}

impl TagPattern {
    fn parse(s: &str) -> Option<TagPattern> {
        if s == "ggggeeee" {
            return Some(TagPattern::Private);
        }
        if s == "50xxxxxx" {
            return Some(TagPattern::Curve);
        }
        if let Some(e) = s.strip_prefix("60xx") {
            return u16::from_str_radix(e, 16).ok().map(TagPattern::Overlay);
        }
        let n = u32::from_str_radix(s, 16).ok()?;
        (s.len() == 8).then_some(TagPattern::Exact(Tag((n >> 16) as u16, n as u16)))
    }

    /// Whether `tag` is covered.
    pub fn matches(self, tag: Tag) -> bool {
        match self {
            TagPattern::Exact(t) => t == tag,
            TagPattern::Curve => (tag.0 & 0xFF00) == 0x5000 && tag.0.is_multiple_of(2),
            TagPattern::Overlay(e) => {
                (tag.0 & 0xFF00) == 0x6000 && tag.0.is_multiple_of(2) && tag.1 == e
            }
            TagPattern::Private => tag.0 % 2 == 1,
        }
    }
}

/// Which copy of the standard a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// PS3.15 2024b, every column.
    Full2024b,
    /// Added by 2026c; the Basic Profile column only.
    Basic2026c,
}

/// One row of Table E.1-1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The attribute (or attributes) of the row.
    pub tag: TagPattern,
    /// The attribute name as the table gives it.
    pub name: String,
    /// "In Std. Comp. IOD" column (Y or N, empty for 2026c rows).
    pub in_std_iod: String,
    /// Basic Profile.
    pub basic: Action,
    /// Retain Safe Private Option.
    pub retain_safe_private: Option<Action>,
    /// Retain UIDs Option.
    pub retain_uids: Option<Action>,
    /// Retain Device Identity Option.
    pub retain_device_identity: Option<Action>,
    /// Retain Institution Identity Option.
    pub retain_institution_identity: Option<Action>,
    /// Retain Patient Characteristics Option.
    pub retain_patient_characteristics: Option<Action>,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    pub retain_long_full_dates: Option<Action>,
    /// Retain Longitudinal Temporal Information with Modified Dates Option.
    pub retain_long_modified_dates: Option<Action>,
    /// Clean Descriptors Option.
    pub clean_descriptors: Option<Action>,
    /// Clean Structured Content Option.
    pub clean_structured_content: Option<Action>,
    /// Clean Graphics Option.
    pub clean_graphics: Option<Action>,
    /// Where the row comes from.
    pub source: Source,
}

struct Table {
    rows: Vec<Row>,
    exact: HashMap<Tag, usize>,
    overlay: HashMap<u16, usize>,
    curve: Option<usize>,
    private: Option<usize>,
}

fn opt(cell: &str) -> Option<Action> {
    Action::parse(cell)
}

fn load() -> Table {
    let mut rows = Vec::new();
    for (n, line) in TSV.lines().enumerate().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        // The file is checked in and checked by the tests: a bad line is a build mistake.
        assert!(
            c.len() == 15,
            "annex_e.tsv line {}: {} cells",
            n + 1,
            c.len()
        );
        let tag = TagPattern::parse(c[0])
            .unwrap_or_else(|| panic!("annex_e.tsv line {}: tag {}", n + 1, c[0]));
        let basic = Action::parse(c[3])
            .unwrap_or_else(|| panic!("annex_e.tsv line {}: action {}", n + 1, c[3]));
        rows.push(Row {
            tag,
            name: c[1].to_string(),
            in_std_iod: c[2].to_string(),
            basic,
            retain_safe_private: opt(c[4]),
            retain_uids: opt(c[5]),
            retain_device_identity: opt(c[6]),
            retain_institution_identity: opt(c[7]),
            retain_patient_characteristics: opt(c[8]),
            retain_long_full_dates: opt(c[9]),
            retain_long_modified_dates: opt(c[10]),
            clean_descriptors: opt(c[11]),
            clean_structured_content: opt(c[12]),
            clean_graphics: opt(c[13]),
            source: if c[14] == "2026c-basic" {
                Source::Basic2026c
            } else {
                Source::Full2024b
            },
        });
    }
    let mut t = Table {
        exact: HashMap::new(),
        overlay: HashMap::new(),
        curve: None,
        private: None,
        rows: Vec::new(),
    };
    for (i, r) in rows.iter().enumerate() {
        match r.tag {
            TagPattern::Exact(tag) => {
                t.exact.insert(tag, i);
            }
            TagPattern::Overlay(e) => {
                t.overlay.insert(e, i);
            }
            TagPattern::Curve => t.curve = Some(i),
            TagPattern::Private => t.private = Some(i),
        }
    }
    t.rows = rows;
    t
}

static TABLE: LazyLock<Table> = LazyLock::new(load);

/// Every row of the table, in tag order.
pub fn rows() -> &'static [Row] {
    &TABLE.rows
}

/// The row that covers `tag`, if any (private tags: the private attributes row).
pub fn lookup(tag: Tag) -> Option<&'static Row> {
    let t = &*TABLE;
    if tag.0 % 2 == 1 {
        return t.private.map(|i| &t.rows[i]);
    }
    if let Some(&i) = t.exact.get(&tag) {
        return Some(&t.rows[i]);
    }
    if (tag.0 & 0xFF00) == 0x6000
        && let Some(&i) = t.overlay.get(&tag.1)
    {
        return Some(&t.rows[i]);
    }
    if (tag.0 & 0xFF00) == 0x5000 {
        return t.curve.map(|i| &t.rows[i]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_counts_match_the_sources() {
        let rows = rows();
        assert_eq!(rows.len(), 656);
        let full = rows
            .iter()
            .filter(|r| r.source == Source::Full2024b)
            .count();
        assert_eq!(full, 621, "PS3.15 2024b Table E.1-1 has 621 rows");
        assert_eq!(rows.len() - full, 35, "rows added up to 2026c");
        // Distribution of the Basic Profile column.
        let count = |a| rows.iter().filter(|r| r.basic == a).count();
        assert_eq!(count(Action::X), 416);
        assert_eq!(count(Action::D), 93);
        assert_eq!(count(Action::U), 55);
        assert_eq!(count(Action::Z), 42);
        assert_eq!(count(Action::XZUStar), 2);
        let uids = rows.iter().filter(|r| r.retain_uids.is_some()).count();
        assert_eq!(uids, 59);
        let dates = rows
            .iter()
            .filter(|r| r.retain_long_modified_dates == Some(Action::C))
            .count();
        assert_eq!(dates, 165);
        let desc = rows
            .iter()
            .filter(|r| r.clean_descriptors == Some(Action::C))
            .count();
        assert_eq!(desc, 125);
    }

    #[test]
    fn known_rows() {
        let r = lookup(Tag(0x0010, 0x0010)).expect("Patient's Name");
        assert_eq!((r.name.as_str(), r.basic), ("Patient's Name", Action::Z));
        let r = lookup(Tag(0x0010, 0x0020)).expect("Patient ID");
        assert_eq!(r.basic, Action::ZD);
        let r = lookup(Tag(0x0020, 0x000D)).expect("Study Instance UID");
        assert_eq!((r.basic, r.retain_uids), (Action::U, Some(Action::K)));
        let r = lookup(Tag(0x0008, 0x0020)).expect("Study Date");
        assert_eq!(r.basic, Action::Z);
        assert_eq!(r.retain_long_modified_dates, Some(Action::C));
        assert_eq!(r.retain_long_full_dates, Some(Action::K));
        let r = lookup(Tag(0x0008, 0x1030)).expect("Study Description");
        assert_eq!((r.basic, r.clean_descriptors), (Action::X, Some(Action::C)));
        let r = lookup(Tag(0x0008, 0x1140)).expect("Referenced Image Sequence");
        assert_eq!(r.basic, Action::XZUStar);
        let r = lookup(Tag(0x0040, 0xA730)).expect("Content Sequence");
        assert_eq!(
            (r.basic, r.clean_structured_content),
            (Action::D, Some(Action::C))
        );
        let r = lookup(Tag(0x0008, 0x0080)).expect("Institution Name");
        assert_eq!(
            (r.basic, r.retain_institution_identity),
            (Action::XZD, Some(Action::K))
        );
        let r = lookup(Tag(0x6002, 0x3000)).expect("Overlay Data");
        assert_eq!((r.basic, r.clean_graphics), (Action::X, Some(Action::C)));
        assert_eq!(
            lookup(Tag(0x5010, 0x3000)).map(|r| r.basic),
            Some(Action::X)
        );
        let r = lookup(Tag(0x0009, 0x1001)).expect("private");
        assert_eq!(
            (r.basic, r.retain_safe_private),
            (Action::X, Some(Action::C))
        );
        let r = lookup(Tag(0x0010, 0x0041)).expect("Gender Identity Sequence (2026c)");
        assert_eq!((r.basic, r.source), (Action::X, Source::Basic2026c));
        // Not in the table: retained by the Basic Profile.
        assert!(lookup(Tag(0x0008, 0x0016)).is_none(), "SOP Class UID");
        assert!(lookup(Tag(0x7FE0, 0x0010)).is_none(), "Pixel Data");
        assert!(lookup(Tag(0x0028, 0x0010)).is_none(), "Rows");
    }

    #[test]
    fn codes_round_trip() {
        for r in rows() {
            assert_eq!(Action::parse(r.basic.code()), Some(r.basic));
        }
    }
}
