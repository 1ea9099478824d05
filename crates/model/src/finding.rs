//! A radiologist's findings: the AI's proposals and the doctor's decisions on them.
//!
//! A finding is identified by [`FindingId`] (`ai-<n>` for the engine's nodule `n`, `dr-<n>` for
//! the doctor's `n`-th added finding). The AI's original [`Measures`] are kept beside the
//! doctor's version; a correction changes the version and [`Measures::recompute`] derives the
//! mean diameter and the Lung-RADS category again with [`crate::lungrads`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::NoduleType;
use crate::ai::AiNodule;
use crate::lungrads::{self, LungRads, NoduleSize};

/// Why a value of the model was refused. The message is meant for the user who sent it and
/// never holds patient data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The value is not acceptable (the sender's fault).
    #[error("{0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> ModelError {
    ModelError::Invalid(m.into())
}

/// Who proposed a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The AI engine.
    Ai,
    /// A doctor (a finding the AI missed).
    Doctor,
}

impl Origin {
    /// `ai` or `doctor`, as serialised.
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::Ai => "ai",
            Origin::Doctor => "doctor",
        }
    }
}

impl FromStr for Origin {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ai" => Ok(Origin::Ai),
            "doctor" => Ok(Origin::Doctor),
            _ => Err(invalid(format!("unknown finding origin {s:?}"))),
        }
    }
}

/// Where the review of a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    /// Proposed by the AI, not yet reviewed.
    Pending,
    /// Accepted as the AI measured it.
    Accepted,
    /// Rejected (a false positive).
    Rejected,
    /// Accepted with the doctor's corrections.
    Corrected,
    /// Added by the doctor.
    Added,
}

impl FindingStatus {
    /// The status as serialised.
    pub fn as_str(&self) -> &'static str {
        match self {
            FindingStatus::Pending => "pending",
            FindingStatus::Accepted => "accepted",
            FindingStatus::Rejected => "rejected",
            FindingStatus::Corrected => "corrected",
            FindingStatus::Added => "added",
        }
    }

    /// Whether a finding with this status counts for the report and the study's category.
    pub fn is_reported(&self) -> bool {
        matches!(
            self,
            FindingStatus::Accepted | FindingStatus::Corrected | FindingStatus::Added
        )
    }
}

impl FromStr for FindingStatus {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => FindingStatus::Pending,
            "accepted" => FindingStatus::Accepted,
            "rejected" => FindingStatus::Rejected,
            "corrected" => FindingStatus::Corrected,
            "added" => FindingStatus::Added,
            _ => return Err(invalid(format!("unknown finding status {s:?}"))),
        })
    }
}

/// The identity of a finding within its study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingId {
    /// The engine's nodule number (`ai-<n>`).
    Ai(u64),
    /// The doctor's n-th added finding (`dr-<n>`).
    Doctor(u64),
}

impl FindingId {
    /// Who proposed the finding.
    pub fn origin(&self) -> Origin {
        match self {
            FindingId::Ai(_) => Origin::Ai,
            FindingId::Doctor(_) => Origin::Doctor,
        }
    }

    /// The status a doctor's acceptance gives: an added finding stays `added`.
    pub fn accepted_status(&self) -> FindingStatus {
        match self {
            FindingId::Ai(_) => FindingStatus::Accepted,
            FindingId::Doctor(_) => FindingStatus::Added,
        }
    }

    /// The status a doctor's correction gives: an added finding stays `added`.
    pub fn corrected_status(&self) -> FindingStatus {
        match self {
            FindingId::Ai(_) => FindingStatus::Corrected,
            FindingId::Doctor(_) => FindingStatus::Added,
        }
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingId::Ai(n) => write!(f, "ai-{n}"),
            FindingId::Doctor(n) => write!(f, "dr-{n}"),
        }
    }
}

impl FromStr for FindingId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || invalid("a finding id is ai-<n> or dr-<n>");
        let (kind, n) = s.split_once('-').ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = n.parse().map_err(|_| bad())?;
        match kind {
            "ai" => Ok(FindingId::Ai(n)),
            "dr" => Ok(FindingId::Doctor(n)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FindingId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A line between two points in patient coordinates (mm).
pub type Line = [[f64; 3]; 2];

/// A voxel position: column and row within the slice (continuous) and the slice index.
pub type VoxelPosition = (f64, f64, u64);

/// What is measured of a nodule, by the AI or by a doctor (the JSON of the web API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Solid, part-solid, ground-glass or calcified.
    #[serde(rename = "type")]
    pub kind: NoduleType,
    /// A lobe code (RUL, RML, RLL, LUL, LLL) or a short text; empty when not given.
    #[serde(default)]
    pub location: String,
    /// Long axis, mm (0.1 mm).
    pub long_axis_mm: f64,
    /// Short axis, mm (0.1 mm).
    pub short_axis_mm: f64,
    /// Mean of the long and short axes, mm (0.1 mm), as Lung-RADS asks.
    pub mean_diameter_mm: f64,
    /// Segmented volume, mm³; none once the axes were redrawn.
    #[serde(default)]
    pub volume_mm3: Option<f64>,
    /// Mean attenuation, HU (AI findings).
    #[serde(default)]
    pub mean_hu: Option<f64>,
    /// Lung-RADS v2022 category of this nodule.
    pub lung_rads: LungRads,
    /// The AI's likelihood of a true nodule (AI findings).
    #[serde(default)]
    pub score: Option<f64>,
    /// Centre in patient coordinates, mm.
    pub center_world: [f64; 3],
    /// Centre as column, row and slice index of the series.
    pub center_voxel: VoxelPosition,
    /// The slice the finding is marked on.
    #[serde(default)]
    pub sop_instance_uid: Option<String>,
    /// End points of the long axis, mm.
    #[serde(default)]
    pub long_axis_line: Option<Line>,
    /// End points of the short axis, mm.
    #[serde(default)]
    pub short_axis_line: Option<Line>,
    /// Mean diameter of the solid component of a part-solid nodule, mm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solid_component_mm: Option<f64>,
}

/// Rounds to 0.1 (mm), as measures are reported.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Checks a location given by a doctor.
pub fn check_location(loc: &str) -> Result<String, ModelError> {
    let loc = loc.trim();
    if loc.is_empty() || loc.chars().count() > 64 || loc.chars().any(char::is_control) {
        return Err(invalid(
            "location must be a lobe code (RUL, RML, RLL, LUL, LLL) or a short text",
        ));
    }
    Ok(loc.to_string())
}

/// The length of an axis line, checked to be a plausible nodule axis.
pub fn axis_length(l: &Line, what: &str) -> Result<f64, ModelError> {
    if l.iter().flatten().any(|v| !v.is_finite()) {
        return Err(invalid(format!("{what} has a non-finite coordinate")));
    }
    let d =
        ((l[1][0] - l[0][0]).powi(2) + (l[1][1] - l[0][1]).powi(2) + (l[1][2] - l[0][2]).powi(2))
            .sqrt();
    if !(0.5..=100.0).contains(&d) {
        return Err(invalid(format!(
            "{what} is {d:.1} mm long; a nodule axis is 0.5 to 100 mm"
        )));
    }
    Ok(d)
}

impl Measures {
    /// The AI's measures of one of its nodules.
    pub fn from_ai(n: &AiNodule) -> Measures {
        let cv = n.center_voxel; // [z, y, x]
        Measures {
            kind: n.kind,
            location: n.lobe.clone(),
            long_axis_mm: n.long_axis_mm,
            short_axis_mm: n.short_axis_mm,
            mean_diameter_mm: n.mean_diameter_mm,
            volume_mm3: Some(n.volume_mm3),
            mean_hu: Some(n.mean_hu),
            lung_rads: n.lung_rads,
            score: Some(n.score),
            center_world: n.center_world_mm,
            center_voxel: (cv[2], cv[1], n.slice_index as u64),
            sop_instance_uid: n.sop_instance_uid.clone(),
            long_axis_line: Some(n.long_axis_line),
            short_axis_line: Some(n.short_axis_line),
            solid_component_mm: (n.kind == NoduleType::PartSolid)
                .then(|| n.solid_component.as_ref().map(|s| s.mean_diameter_mm))
                .flatten(),
        }
    }

    /// A doctor's new finding drawn with two axis lines on a slice (category computed).
    pub fn drawn(
        kind: NoduleType,
        location: String,
        long: &Line,
        short: &Line,
        center_voxel: VoxelPosition,
        sop_instance_uid: String,
        solid_component_mm: Option<f64>,
    ) -> Result<Measures, ModelError> {
        let center = [
            (long[0][0] + long[1][0]) / 2.0,
            (long[0][1] + long[1][1]) / 2.0,
            (long[0][2] + long[1][2]) / 2.0,
        ];
        let r2 = |v: f64| (v * 100.0).round() / 100.0;
        let mut m = Measures {
            kind,
            location,
            long_axis_mm: 0.0,
            short_axis_mm: 0.0,
            mean_diameter_mm: 0.0,
            volume_mm3: None,
            mean_hu: None,
            lung_rads: LungRads::C1,
            score: None,
            center_world: center.map(r2),
            center_voxel,
            sop_instance_uid: Some(sop_instance_uid),
            long_axis_line: None,
            short_axis_line: None,
            solid_component_mm: None,
        };
        m.apply_lines(long, short)?;
        m.set_solid(solid_component_mm)?;
        m.recompute()?;
        Ok(m)
    }

    /// Redraws the axes (the longer line becomes the long axis); the segmented volume no
    /// longer matches and is dropped.
    pub fn apply_lines(&mut self, long: &Line, short: &Line) -> Result<(), ModelError> {
        let (a, b) = (
            axis_length(long, "long_axis_line")?,
            axis_length(short, "short_axis_line")?,
        );
        let (a, b) = if b > a { (b, a) } else { (a, b) };
        self.long_axis_mm = round1(a);
        self.short_axis_mm = round1(b);
        self.long_axis_line = Some(*long);
        self.short_axis_line = Some(*short);
        self.volume_mm3 = None;
        Ok(())
    }

    /// Sets the solid component given by a doctor (checked by [`recompute`](Self::recompute)).
    pub fn set_solid(&mut self, mm: Option<f64>) -> Result<(), ModelError> {
        if let Some(v) = mm {
            if !v.is_finite() {
                return Err(invalid("solid_component_mm must be a number of mm"));
            }
            self.solid_component_mm = Some(round1(v));
        }
        Ok(())
    }

    /// Derives the mean diameter and the Lung-RADS category after the sizes or the type
    /// changed. A part-solid nodule is graded by its solid component, which must lie within
    /// the nodule; other types have none.
    pub fn recompute(&mut self) -> Result<(), ModelError> {
        let mean = round1((self.long_axis_mm + self.short_axis_mm) / 2.0);
        self.mean_diameter_mm = mean;
        if self.kind != NoduleType::PartSolid {
            self.solid_component_mm = None;
        }
        if let Some(sc) = self.solid_component_mm
            && !(sc > 0.0 && sc <= mean)
        {
            return Err(invalid(format!(
                "the solid component ({sc:.1} mm) must be above 0 and at most the nodule's mean diameter ({mean:.1} mm)"
            )));
        }
        self.lung_rads = lungrads::lung_rads(&self.size());
        Ok(())
    }

    /// The inputs of the Lung-RADS and Fleischner rules.
    pub fn size(&self) -> NoduleSize {
        NoduleSize {
            kind: self.kind,
            mean_diameter_mm: self.mean_diameter_mm,
            solid_mean_diameter_mm: if self.kind == NoduleType::PartSolid {
                self.solid_component_mm
            } else {
                None
            },
        }
    }
}

/// A finding as the review shows it: the AI's original beside the doctor's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `ai-<n>` or `dr-<n>`.
    pub id: FindingId,
    /// Who proposed it.
    pub origin: Origin,
    /// Where its review stands.
    pub status: FindingStatus,
    /// The AI's original measures (AI findings only), never changed.
    pub ai: Option<Measures>,
    /// The version that counts: the AI's until a doctor corrects it.
    pub current: Measures,
    /// Who acted last (display name).
    pub edited_by: Option<String>,
    /// When, ISO 8601 UTC.
    pub edited_at: Option<String>,
    /// The doctor's note.
    pub note: Option<String>,
}

impl Finding {
    /// An AI finding nobody has reviewed yet.
    pub fn pending(id: FindingId, m: Measures) -> Finding {
        Finding {
            id,
            origin: id.origin(),
            status: FindingStatus::Pending,
            ai: Some(m.clone()),
            current: m,
            edited_by: None,
            edited_at: None,
            note: None,
        }
    }
}

/// The study's Lung-RADS category: the highest of the reported findings (accepted,
/// corrected, added), `None` when no finding is reported yet.
pub fn study_category<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Option<LungRads> {
    let cats: Vec<LungRads> = findings
        .into_iter()
        .filter(|f| f.status.is_reported())
        .map(|f| f.current.lung_rads)
        .collect();
    (!cats.is_empty()).then(|| lungrads::exam_category(&cats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid() -> Measures {
        Measures {
            kind: NoduleType::Solid,
            location: "RUL".into(),
            long_axis_mm: 0.0,
            short_axis_mm: 0.0,
            mean_diameter_mm: 0.0,
            volume_mm3: Some(1.0),
            mean_hu: None,
            lung_rads: LungRads::C1,
            score: None,
            center_world: [0.0; 3],
            center_voxel: (1.0, 2.0, 3),
            sop_instance_uid: None,
            long_axis_line: None,
            short_axis_line: None,
            solid_component_mm: None,
        }
    }

    #[test]
    fn finding_ids_round_trip_and_refuse_junk() {
        for s in ["ai-1", "dr-12", "ai-0"] {
            assert_eq!(s.parse::<FindingId>().unwrap().to_string(), s);
        }
        for s in [
            "ai-",
            "xx-1",
            "ai-1x",
            "ai--1",
            "",
            "dr-+1",
            "ai-99999999999999999999",
        ] {
            assert!(s.parse::<FindingId>().is_err(), "{s}");
        }
        assert_eq!(FindingId::Doctor(2).origin(), Origin::Doctor);
        assert_eq!(serde_json::to_value(FindingId::Ai(4)).unwrap(), "ai-4");
    }

    #[test]
    fn corrections_recompute_sizes_and_category() {
        let mut m = solid();
        m.apply_lines(
            &[[0.0, 0.0, 0.0], [0.0, 12.0, 0.0]],
            &[[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]],
        )
        .unwrap();
        m.recompute().unwrap();
        assert_eq!(
            (m.long_axis_mm, m.short_axis_mm, m.mean_diameter_mm),
            (12.0, 9.0, 10.5)
        );
        assert_eq!(m.lung_rads, LungRads::C4A);
        assert_eq!(m.volume_mm3, None);
        m.kind = NoduleType::GroundGlass;
        m.recompute().unwrap();
        assert_eq!(m.lung_rads, LungRads::C2);
        assert!(
            m.apply_lines(&[[0.0; 3], [0.0; 3]], &[[0.0; 3], [1.0, 0.0, 0.0]])
                .is_err()
        );
        // Part-solid: graded by the solid component (Lung-RADS v2022: solid >= 8 mm is 4B,
        // 6 to < 8 mm 4A); the component cannot exceed the nodule, and goes with the type.
        m.kind = NoduleType::PartSolid;
        m.set_solid(Some(8.4)).unwrap();
        m.recompute().unwrap();
        assert_eq!(m.lung_rads, LungRads::C4B);
        m.set_solid(Some(6.5)).unwrap();
        m.recompute().unwrap();
        assert_eq!(m.lung_rads, LungRads::C4A);
        m.set_solid(Some(11.0)).unwrap();
        assert!(m.recompute().is_err());
        m.set_solid(Some(6.5)).unwrap();
        m.kind = NoduleType::Solid;
        m.recompute().unwrap();
        assert_eq!(m.solid_component_mm, None);
        assert!(m.set_solid(Some(f64::NAN)).is_err());
        assert!("blob".parse::<NoduleType>().is_err());
    }

    #[test]
    fn measures_keep_their_json_form() {
        let mut m = solid();
        m.sop_instance_uid = Some("1.2.3".into());
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "solid");
        assert_eq!(v["lung_rads"], "1");
        assert_eq!(v["center_voxel"], serde_json::json!([1.0, 2.0, 3]));
        assert!(v["center_voxel"][2].is_u64());
        assert!(v.get("solid_component_mm").is_none());
        assert_eq!(v["volume_mm3"], 1.0);
        let back: Measures = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn study_category_counts_reported_findings_only() {
        let mut big = solid();
        big.lung_rads = LungRads::C4B;
        let mut f = Finding::pending(FindingId::Ai(1), big);
        assert_eq!(study_category([&f]), None);
        f.status = FindingStatus::Rejected;
        assert_eq!(study_category([&f]), None);
        f.status = FindingStatus::Accepted;
        let g = Finding::pending(FindingId::Ai(2), solid());
        assert_eq!(study_category([&f, &g]), Some(LungRads::C4B));
    }
}
