//! What the AI engine concluded for a series, as the index stores it and the API shows it.
//!
//! [`AiJobResult`] is the one contract between the AI job (which writes it), the index (which
//! stores its serde form and derives the Lung-RADS column from it), the review (which turns its
//! nodules into findings) and the command line. It carries a schema version
//! ([`AI_RESULT_SCHEMA`]); results stored before versioning read as version 1.

use serde::{Deserialize, Serialize};

use crate::NoduleType;
use crate::lungrads::LungRads;

/// The version of [`AiJobResult`]'s serde form.
pub const AI_RESULT_SCHEMA: u32 = 1;

fn schema_1() -> u32 {
    1
}

/// Time spent in one stage of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    /// Stage name.
    pub stage: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Lung volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LungSummary {
    /// Left lung, mL.
    pub left_volume_ml: f64,
    /// Right lung, mL.
    pub right_volume_ml: f64,
    /// Removed trachea and main bronchi, mL.
    pub airway_volume_ml: f64,
}

/// Size of a solid component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolidComponent {
    /// Long axis, mm.
    pub long_axis_mm: f64,
    /// Short axis, mm.
    pub short_axis_mm: f64,
    /// Mean diameter, mm.
    pub mean_diameter_mm: f64,
    /// Volume, mm³.
    pub volume_mm3: f64,
}

/// One nodule the engine reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiNodule {
    /// 1-based rank by score.
    pub id: u64,
    /// Centre in patient coordinates, mm.
    pub center_world_mm: [f64; 3],
    /// Centre as a continuous volume index `[z, y, x]`.
    pub center_voxel: [f64; 3],
    /// Slice index in the series' slice order.
    pub slice_index: usize,
    /// SOP Instance UID of that slice, when it is an original slice.
    pub sop_instance_uid: Option<String>,
    /// Mean of long and short axis, mm (0.1 mm).
    pub mean_diameter_mm: f64,
    /// Long axis, mm.
    pub long_axis_mm: f64,
    /// Short axis, mm.
    pub short_axis_mm: f64,
    /// Volume, mm³.
    pub volume_mm3: f64,
    /// End points of the long axis, world mm.
    pub long_axis_line: [[f64; 3]; 2],
    /// End points of the short axis, world mm.
    pub short_axis_line: [[f64; 3]; 2],
    /// Mean HU.
    pub mean_hu: f64,
    /// Max HU.
    pub max_hu: f64,
    /// Solid, part-solid, ground-glass or calcified.
    #[serde(rename = "type")]
    pub kind: NoduleType,
    /// Solid component (part-solid).
    pub solid_component: Option<SolidComponent>,
    /// `left` or `right`.
    pub side: String,
    /// Lobe estimate (RUL, RML, RLL, LUL, LLL).
    pub lobe: String,
    /// Touches the pleura.
    pub juxtapleural: bool,
    /// Lung-RADS v2022 category of this nodule (baseline).
    pub lung_rads: LungRads,
    /// Likelihood of a true nodule, [0, 1].
    pub score: f64,
    /// The engine's own features behind the score (engine-specific, for audit and tuning).
    #[serde(default)]
    pub features: serde_json::Value,
}

/// The engine's analysis of one CT series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiAnalysis {
    /// Series Instance UID.
    pub series_uid: Option<String>,
    /// Study Instance UID.
    pub study_uid: Option<String>,
    /// Findings with score >= the engine's minimum, best first.
    pub nodules: Vec<AiNodule>,
    /// Lung volumes.
    pub lungs: LungSummary,
    /// Exam Lung-RADS category (from findings with score >= `report_score`).
    pub lung_rads: LungRads,
    /// Management for the exam category.
    pub lung_rads_management: String,
    /// Fleischner 2017 recommendation text.
    pub fleischner: String,
    /// Score from which findings count for categories and are shown for review.
    pub report_score: f64,
    /// Number of candidates examined.
    pub candidates: usize,
    /// Volume shape `[z, y, x]`.
    pub shape: [usize; 3],
    /// Voxel spacing `[z, y, x]`, mm.
    pub spacing_mm: [f64; 3],
    /// Per-stage wall-clock times.
    pub timings: Vec<StageTiming>,
    /// What was unusual (no patient data).
    pub warnings: Vec<String>,
}

impl AiAnalysis {
    /// The nodules at or above the reporting score: those a radiologist reviews.
    pub fn reported(&self) -> impl Iterator<Item = &AiNodule> {
        self.nodules.iter().filter(|n| n.score >= self.report_score)
    }
}

/// Where the SEG and SR of a result put one nodule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleObjects {
    /// The nodule's id in the analysis.
    pub id: u64,
    /// Tracking Identifier in the SR.
    pub tracking_id: String,
    /// Tracking Unique Identifier in the SR.
    pub tracking_uid: String,
    /// Its segment in the SEG, if one was written.
    pub segment_number: Option<u64>,
    /// Voxels of its segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voxels: Option<u64>,
}

/// Voxels of the lung segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LungVoxels {
    /// Right lung.
    pub right: u64,
    /// Left lung.
    pub left: u64,
}

/// The result of an AI job: the analysis and the DICOM objects written from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiJobResult {
    /// Version of this form ([`AI_RESULT_SCHEMA`]).
    #[serde(default = "schema_1")]
    pub schema: u32,
    /// The engine's analysis.
    pub analysis: AiAnalysis,
    /// The SEG stored (when the volume's slices are the source slices).
    #[serde(default)]
    pub seg_sop_uid: Option<String>,
    /// The SR stored.
    #[serde(default)]
    pub sr_sop_uid: Option<String>,
    /// The series of the results.
    #[serde(default)]
    pub result_series_uid: Option<String>,
    /// The SEG's series.
    #[serde(default)]
    pub seg_series_uid: Option<String>,
    /// The SR's series.
    #[serde(default)]
    pub sr_series_uid: Option<String>,
    /// Where each nodule is in the SEG and SR.
    #[serde(default)]
    pub nodules: Vec<NoduleObjects>,
    /// Voxels of the lung segments.
    #[serde(default)]
    pub lung_voxels: Option<LungVoxels>,
    /// Why the analysis could not be written as DICOM, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom_error: Option<String>,
}

impl AiJobResult {
    /// A result without DICOM objects (yet).
    pub fn new(analysis: AiAnalysis) -> AiJobResult {
        AiJobResult {
            schema: AI_RESULT_SCHEMA,
            analysis,
            seg_sop_uid: None,
            sr_sop_uid: None,
            result_series_uid: None,
            seg_series_uid: None,
            sr_series_uid: None,
            nodules: Vec::new(),
            lung_voxels: None,
            dicom_error: None,
        }
    }

    /// The exam's Lung-RADS category as the AI sees it (the index keeps it as a column).
    pub fn lung_rads(&self) -> LungRads {
        self.analysis.lung_rads
    }

    /// The SEG segment of a nodule.
    pub fn segment_of(&self, nodule_id: u64) -> Option<u64> {
        self.nodules
            .iter()
            .find(|n| n.id == nodule_id)
            .and_then(|n| n.segment_number)
    }
}

/// Where the AI stands on a study, over the jobs of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiState {
    /// No series of the study is analysed by the AI.
    None,
    /// A series waits for its quiet period or a retry.
    Queued,
    /// A series is being analysed.
    Running,
    /// Analysed.
    Done,
    /// The analysis failed.
    Failed,
    /// No series qualified (not a chest CT...).
    Skipped,
}

/// The state of one series' AI job, as the index keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the quiet period or a retry.
    Waiting,
    /// Being analysed.
    Running,
    /// Analysed.
    Done,
    /// Failed for good.
    Failed,
    /// The series does not qualify.
    Skipped,
}

impl JobState {
    /// The state as the index stores it.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Skipped => "skipped",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = crate::ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "waiting" => JobState::Waiting,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "skipped" => JobState::Skipped,
            _ => {
                return Err(crate::ModelError::Invalid(format!(
                    "unknown AI job state {s:?}"
                )));
            }
        })
    }
}

impl AiState {
    /// The state as serialised.
    pub fn as_str(&self) -> &'static str {
        match self {
            AiState::None => "none",
            AiState::Queued => "queued",
            AiState::Running => "running",
            AiState::Done => "done",
            AiState::Failed => "failed",
            AiState::Skipped => "skipped",
        }
    }

    /// A study's state from its series' jobs: running over queued over done over failed
    /// over skipped (the index computes the same in SQL for the worklist).
    pub fn of_jobs(jobs: impl IntoIterator<Item = JobState>) -> AiState {
        let mut seen = [false; 5];
        let mut any = false;
        for j in jobs {
            any = true;
            seen[j as usize] = true;
        }
        let has = |s: JobState| seen[s as usize];
        if !any {
            AiState::None
        } else if has(JobState::Running) {
            AiState::Running
        } else if has(JobState::Waiting) {
            AiState::Queued
        } else if has(JobState::Done) {
            AiState::Done
        } else if has(JobState::Failed) {
            AiState::Failed
        } else {
            AiState::Skipped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_state_orders_job_states() {
        use JobState::*;
        assert_eq!(AiState::of_jobs([]), AiState::None);
        assert_eq!(AiState::of_jobs([Done, Running, Waiting]), AiState::Running);
        assert_eq!(AiState::of_jobs([Done, Waiting]), AiState::Queued);
        assert_eq!(AiState::of_jobs([Skipped, Done, Failed]), AiState::Done);
        assert_eq!(AiState::of_jobs([Skipped, Failed]), AiState::Failed);
        assert_eq!(AiState::of_jobs([Skipped]), AiState::Skipped);
        assert_eq!(serde_json::to_value(AiState::Queued).unwrap(), "queued");
    }

    #[test]
    fn results_without_schema_read_as_version_1() {
        let v = serde_json::json!({
            "analysis": {
                "series_uid": "1.2", "study_uid": "1.1", "nodules": [],
                "lungs": {"left_volume_ml": 1.0, "right_volume_ml": 1.0, "airway_volume_ml": 0.1},
                "lung_rads": "2", "lung_rads_management": "m", "fleischner": "f",
                "report_score": 0.5, "candidates": 3, "shape": [1, 2, 3],
                "spacing_mm": [1.0, 1.0, 1.0], "timings": [], "warnings": []
            },
            "seg_sop_uid": null, "sr_sop_uid": "1.3", "nodules": [], "warnings": []
        });
        let r: AiJobResult = serde_json::from_value(v).unwrap();
        assert_eq!(r.schema, 1);
        assert_eq!(r.lung_rads(), LungRads::C2);
        let again = serde_json::to_value(&r).unwrap();
        assert_eq!(again["schema"], 1);
        assert_eq!(serde_json::from_value::<AiJobResult>(again).unwrap(), r);
    }
}
