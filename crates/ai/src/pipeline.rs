//! The analysis pipeline: typed, replaceable stages from a volume to scored, measured and
//! categorised findings, with per-stage timings.
//!
//! Each stage implements [`Stage`] for its own input and output types, so a trained model can
//! replace any of them (or wrap the classical one and combine scores) without touching the rest.

use std::time::Instant;

use crate::AnalysisError;
use crate::candidates::{Candidate, CandidateConfig, find_candidates};
use crate::lungrads::{self, LungRads, NoduleSize};
use crate::lungs::{LungConfig, LungMask, segment_lungs};
use crate::nodule::{AxialSize, Features, Finding, NoduleMask, SegmentConfig, segment_candidates};
use crate::phantom::NoduleType;
use crate::volume::Volume;

/// One step of the pipeline with a typed input and output.
pub trait Stage<I: ?Sized, O>: Send + Sync {
    /// Short name used in timings and progress.
    fn name(&self) -> &str;
    /// Runs the stage.
    fn run(&self, input: &I) -> Result<O, AnalysisError>;
}

/// Input of candidate generation.
#[derive(Debug, Clone, Copy)]
pub struct ScanInput<'a> {
    /// The CT.
    pub volume: &'a Volume,
    /// Its lungs.
    pub lungs: &'a LungMask,
}

/// Input of per-candidate segmentation.
#[derive(Debug, Clone, Copy)]
pub struct CandidateInput<'a> {
    /// The CT.
    pub volume: &'a Volume,
    /// Its lungs.
    pub lungs: &'a LungMask,
    /// Candidates to segment.
    pub candidates: &'a [Candidate],
}

/// Input of false-positive reduction.
#[derive(Debug, Clone, Copy)]
pub struct FindingsInput<'a> {
    /// The CT (a learned scorer may look at the image).
    pub volume: &'a Volume,
    /// Segmented findings.
    pub findings: &'a [Finding],
}

/// All settings of the classical pipeline.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// Lung segmentation.
    pub lungs: LungConfig,
    /// Candidate generation.
    pub candidates: CandidateConfig,
    /// Nodule segmentation.
    pub segmentation: SegmentConfig,
    /// Scoring and reporting.
    pub scoring: ScoreConfig,
}

/// Scoring and reporting settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScoreConfig {
    /// Findings below this score are dropped from the output.
    pub min_score: f64,
    /// Findings at or above this score count for the categories and the findings table.
    pub report_score: f64,
    /// Use the high-risk Fleischner wording.
    pub high_risk: bool,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            min_score: 0.05,
            report_score: 0.5,
            high_risk: false,
        }
    }
}

/// Classical lung segmentation stage.
#[derive(Debug, Clone, Default)]
pub struct ClassicalLungs(pub LungConfig);

impl Stage<Volume, LungMask> for ClassicalLungs {
    fn name(&self) -> &str {
        "lungs"
    }
    fn run(&self, v: &Volume) -> Result<LungMask, AnalysisError> {
        segment_lungs(v, &self.0)
    }
}

/// Multiscale LoG candidate stage.
#[derive(Debug, Clone, Default)]
pub struct LogCandidates(pub CandidateConfig);

impl<'a> Stage<ScanInput<'a>, Vec<Candidate>> for LogCandidates {
    fn name(&self) -> &str {
        "candidates"
    }
    fn run(&self, i: &ScanInput<'a>) -> Result<Vec<Candidate>, AnalysisError> {
        Ok(find_candidates(i.volume, i.lungs, &self.0))
    }
}

/// Region segmentation and measurement stage.
#[derive(Debug, Clone, Default)]
pub struct RegionSegmenter(pub SegmentConfig);

impl<'a> Stage<CandidateInput<'a>, Vec<Finding>> for RegionSegmenter {
    fn name(&self) -> &str {
        "segmentation"
    }
    fn run(&self, i: &CandidateInput<'a>) -> Result<Vec<Finding>, AnalysisError> {
        Ok(segment_candidates(i.volume, i.lungs, i.candidates, &self.0))
    }
}

/// Transparent rule-based false-positive reduction: a logistic combination of shape, Hessian and
/// density features.
#[derive(Debug, Clone, Default)]
pub struct RuleScorer;

impl RuleScorer {
    /// Score of one finding in [0, 1].
    pub fn score(f: &Finding) -> f64 {
        let ft = &f.features;
        if ft.border_fraction > 0.02 {
            return 0.0; // still connected to something larger than the ROI: vessel or wall
        }
        let d = ft.equivalent_diameter_mm.max(0.1);
        let mut z = 0.5;
        z += 6.0 * (ft.dotness - 0.55); // Hessian: blob (1) versus tube or plate (0)
        z -= 4.0 * (ft.opened_away - 0.6).max(0.0); // mostly attached structure
        z -= 3.0 * (ft.elongation - 1.5).max(0.0);
        z += 2.5 * (ft.fill - 0.8).min(0.1);
        z -= 3.0 * (ft.wall_contact - 0.35).max(0.0);
        z += 1.2 * (d / 5.0).ln();
        1.0 / (1.0 + (-z).exp())
    }
}

impl<'a> Stage<FindingsInput<'a>, Vec<Finding>> for RuleScorer {
    fn name(&self) -> &str {
        "fp-reduction"
    }
    fn run(&self, i: &FindingsInput<'a>) -> Result<Vec<Finding>, AnalysisError> {
        Ok(i.findings
            .iter()
            .cloned()
            .map(|mut f| {
                f.score = Self::score(&f);
                f
            })
            .collect())
    }
}

/// A pipeline of replaceable stages.
pub struct Pipeline {
    /// Lung segmentation.
    pub lungs: Box<dyn Stage<Volume, LungMask>>,
    /// Candidate generation.
    pub candidates: Box<dyn for<'a> Stage<ScanInput<'a>, Vec<Candidate>>>,
    /// Per-candidate segmentation and measurement.
    pub segmentation: Box<dyn for<'a> Stage<CandidateInput<'a>, Vec<Finding>>>,
    /// False-positive reduction (sets scores).
    pub fp_reduction: Box<dyn for<'a> Stage<FindingsInput<'a>, Vec<Finding>>>,
    /// Reporting settings.
    pub scoring: ScoreConfig,
}

impl Pipeline {
    /// The classical computer-aided detection pipeline.
    pub fn classical(cfg: &Config) -> Self {
        Self {
            lungs: Box::new(ClassicalLungs(cfg.lungs.clone())),
            candidates: Box::new(LogCandidates(cfg.candidates.clone())),
            segmentation: Box::new(RegionSegmenter(cfg.segmentation.clone())),
            fp_reduction: Box::new(RuleScorer),
            scoring: cfg.scoring.clone(),
        }
    }

    /// Runs all stages; `progress(stage_name, index, total)` is called before each stage.
    pub fn run(
        &self,
        vol: &Volume,
        progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<Analysis, AnalysisError> {
        self.run_with_lungs(vol, progress).map(|(a, _)| a)
    }

    /// Like [`Pipeline::run`], also returning the lung mask (for overlays, SEG export, Dice).
    pub fn run_with_lungs(
        &self,
        vol: &Volume,
        progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<(Analysis, LungMask), AnalysisError> {
        if !vol.geometry.is_axial() {
            return Err(AnalysisError::Unsuitable(
                "slices are not axial; the detector needs an axial chest CT".into(),
            ));
        }
        let nz = vol.shape()[0];
        let extent_z = nz as f64 * vol.geometry.spacing[0];
        if nz < 10 || extent_z < 60.0 {
            return Err(AnalysisError::Unsuitable(format!(
                "{nz} slices covering {extent_z:.0} mm: not a chest CT volume"
            )));
        }
        if vol.geometry.spacing[0] > 5.0 {
            return Err(AnalysisError::Unsuitable(format!(
                "slice spacing {:.1} mm is too coarse for nodule detection (<= 5 mm needed)",
                vol.geometry.spacing[0]
            )));
        }
        let mut timings = Vec::new();
        let total = 4;
        let timed = |name: &str, t0: Instant, timings: &mut Vec<StageTiming>| {
            timings.push(StageTiming {
                stage: name.to_string(),
                seconds: t0.elapsed().as_secs_f64(),
            });
        };
        progress(self.lungs.name(), 0, total);
        let t0 = Instant::now();
        let lungs = self.lungs.run(vol)?;
        timed(self.lungs.name(), t0, &mut timings);

        progress(self.candidates.name(), 1, total);
        let t0 = Instant::now();
        let cands = self.candidates.run(&ScanInput {
            volume: vol,
            lungs: &lungs,
        })?;
        timed(self.candidates.name(), t0, &mut timings);

        progress(self.segmentation.name(), 2, total);
        let t0 = Instant::now();
        let found = self.segmentation.run(&CandidateInput {
            volume: vol,
            lungs: &lungs,
            candidates: &cands,
        })?;
        timed(self.segmentation.name(), t0, &mut timings);

        progress(self.fp_reduction.name(), 3, total);
        let t0 = Instant::now();
        let mut scored = self.fp_reduction.run(&FindingsInput {
            volume: vol,
            findings: &found,
        })?;
        timed(self.fp_reduction.name(), t0, &mut timings);
        progress("done", total, total);

        scored.retain(|f| f.score >= self.scoring.min_score);
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        let nodules: Vec<Nodule> = scored
            .iter()
            .enumerate()
            .map(|(i, f)| Nodule::from_finding(i + 1, f))
            .collect();
        let reported: Vec<&Nodule> = nodules
            .iter()
            .filter(|n| n.score >= self.scoring.report_score)
            .collect();
        let sizes: Vec<NoduleSize> = reported.iter().map(|n| n.size_for_rules()).collect();
        let cats: Vec<LungRads> = reported.iter().map(|n| n.lung_rads).collect();
        let exam = lungrads::exam_category(&cats);
        let mut warnings = vol.warnings.clone();
        warnings.extend(lungs.warnings.iter().cloned());
        let analysis = Analysis {
            series_uid: vol.series_uid.clone(),
            study_uid: vol.study_uid.clone(),
            nodules,
            lungs: LungSummary {
                left_volume_ml: (lungs.left_volume_ml * 10.0).round() / 10.0,
                right_volume_ml: (lungs.right_volume_ml * 10.0).round() / 10.0,
                airway_volume_ml: (lungs.airway_volume_ml * 10.0).round() / 10.0,
            },
            lung_rads: exam,
            lung_rads_management: exam.management().to_string(),
            fleischner: lungrads::fleischner(&sizes, self.scoring.high_risk),
            report_score: self.scoring.report_score,
            candidates: cands.len(),
            shape: vol.shape(),
            spacing_mm: vol.geometry.spacing,
            timings,
            warnings,
        };
        Ok((analysis, lungs))
    }
}

/// Runs the classical pipeline with `cfg`.
pub fn analyze(vol: &Volume, cfg: &Config) -> Result<Analysis, AnalysisError> {
    Pipeline::classical(cfg).run(vol, &mut |_, _, _| {})
}

/// The result records of the clinical model, which the engine fills in.
pub use lumen_model::ai::{LungSummary, SolidComponent, StageTiming};

fn solid_component(s: AxialSize) -> SolidComponent {
    SolidComponent {
        long_axis_mm: s.long_axis_mm,
        short_axis_mm: s.short_axis_mm,
        mean_diameter_mm: s.mean_diameter_mm,
        volume_mm3: s.volume_mm3,
    }
}

/// One reported nodule (the JSON contract's `nodules[]`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nodule {
    /// 1-based rank by score.
    pub id: usize,
    /// Centre, world mm (LPS).
    pub center_world_mm: [f64; 3],
    /// Centre as a continuous volume index `[z, y, x]`.
    pub center_voxel: [f64; 3],
    /// Slice index (0-based, slices ordered along the normal, ascending z for axial series).
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
    /// End points of the long axis, world mm, on the axial plane where it is longest.
    pub long_axis_line: [[f64; 3]; 2],
    /// End points of the short axis (perpendicular, through the long axis' middle), world mm.
    pub short_axis_line: [[f64; 3]; 2],
    /// Mean HU.
    pub mean_hu: f64,
    /// Max HU.
    pub max_hu: f64,
    /// "solid", "part-solid", "ground-glass" or "calcified".
    #[serde(rename = "type")]
    pub kind: NoduleType,
    /// Solid component (part-solid).
    pub solid_component: Option<SolidComponent>,
    /// "left" or "right".
    pub side: &'static str,
    /// Lobe estimate.
    pub lobe: &'static str,
    /// Touches the pleura.
    pub juxtapleural: bool,
    /// Lung-RADS v2022 category of this nodule (baseline).
    pub lung_rads: LungRads,
    /// Likelihood of a true nodule, [0, 1].
    pub score: f64,
    /// Features behind the score.
    pub features: Features,
    /// The segmented region on its ROI grid (for SEG export); not serialised.
    #[serde(skip)]
    pub mask: Option<NoduleMask>,
}

impl Nodule {
    fn from_finding(id: usize, f: &Finding) -> Self {
        let solid_mean = f.solid.map(|s| s.mean_diameter_mm);
        let cat = lungrads::lung_rads(&NoduleSize {
            kind: f.kind,
            mean_diameter_mm: f.size.mean_diameter_mm,
            solid_mean_diameter_mm: solid_mean,
        });
        let r = |v: f64| (v * 100.0).round() / 100.0;
        Self {
            id,
            center_world_mm: f.center_world_mm.map(r),
            center_voxel: f.center_voxel.map(r),
            slice_index: f.slice_index,
            sop_instance_uid: f.sop_instance_uid.clone(),
            mean_diameter_mm: f.size.mean_diameter_mm,
            long_axis_mm: f.size.long_axis_mm,
            short_axis_mm: f.size.short_axis_mm,
            volume_mm3: f.size.volume_mm3,
            long_axis_line: f.long_axis_line.map(|p| p.map(r)),
            short_axis_line: f.short_axis_line.map(|p| p.map(r)),
            mean_hu: f.mean_hu,
            max_hu: f.max_hu,
            kind: f.kind,
            solid_component: f.solid.map(solid_component),
            side: f.side,
            lobe: f.lobe,
            juxtapleural: f.juxtapleural,
            lung_rads: cat,
            score: (f.score * 1000.0).round() / 1000.0,
            features: f.features.clone(),
            mask: f.mask.clone(),
        }
    }

    /// The inputs of the Lung-RADS and Fleischner rules.
    pub fn size_for_rules(&self) -> NoduleSize {
        NoduleSize {
            kind: self.kind,
            mean_diameter_mm: self.mean_diameter_mm,
            solid_mean_diameter_mm: self.solid_component.as_ref().map(|s| s.mean_diameter_mm),
        }
    }
}

/// The result of analysing one CT series (serialises to the documented JSON contract).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Analysis {
    /// Series Instance UID.
    pub series_uid: Option<String>,
    /// Study Instance UID.
    pub study_uid: Option<String>,
    /// Findings with score >= the minimum, best first.
    pub nodules: Vec<Nodule>,
    /// Lung volumes.
    pub lungs: LungSummary,
    /// Exam Lung-RADS category (from findings with score >= `report_score`).
    pub lung_rads: LungRads,
    /// Management for the exam category.
    pub lung_rads_management: String,
    /// Fleischner 2017 recommendation text.
    pub fleischner: String,
    /// Score from which findings count for categories.
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

impl Analysis {
    /// Findings at or above the reporting score.
    pub fn reported(&self) -> impl Iterator<Item = &Nodule> {
        self.nodules.iter().filter(|n| n.score >= self.report_score)
    }

    /// The analysis as the clinical model records it (what the index stores and the review
    /// reads); the same JSON as this type's own serde form, without the masks.
    pub fn to_model(&self) -> lumen_model::AiAnalysis {
        lumen_model::AiAnalysis {
            series_uid: self.series_uid.clone(),
            study_uid: self.study_uid.clone(),
            nodules: self.nodules.iter().map(Nodule::to_model).collect(),
            lungs: self.lungs.clone(),
            lung_rads: self.lung_rads,
            lung_rads_management: self.lung_rads_management.clone(),
            fleischner: self.fleischner.clone(),
            report_score: self.report_score,
            candidates: self.candidates,
            shape: self.shape,
            spacing_mm: self.spacing_mm,
            timings: self.timings.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

impl Nodule {
    /// The nodule as the clinical model records it.
    pub fn to_model(&self) -> lumen_model::AiNodule {
        lumen_model::AiNodule {
            id: self.id as u64,
            center_world_mm: self.center_world_mm,
            center_voxel: self.center_voxel,
            slice_index: self.slice_index,
            sop_instance_uid: self.sop_instance_uid.clone(),
            mean_diameter_mm: self.mean_diameter_mm,
            long_axis_mm: self.long_axis_mm,
            short_axis_mm: self.short_axis_mm,
            volume_mm3: self.volume_mm3,
            long_axis_line: self.long_axis_line,
            short_axis_line: self.short_axis_line,
            mean_hu: self.mean_hu,
            max_hu: self.max_hu,
            kind: self.kind,
            solid_component: self.solid_component.clone(),
            side: self.side.to_string(),
            lobe: self.lobe.to_string(),
            juxtapleural: self.juxtapleural,
            lung_rads: self.lung_rads,
            score: self.score,
            features: serde_json::to_value(&self.features).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{PhantomConfig, generate};
    use crate::volume::Geometry;

    /// A stand-in for a learned scorer: every finding gets the same score.
    struct Constant(f64);

    impl<'a> Stage<FindingsInput<'a>, Vec<Finding>> for Constant {
        fn name(&self) -> &str {
            "constant-model"
        }
        fn run(&self, i: &FindingsInput<'a>) -> Result<Vec<Finding>, AnalysisError> {
            Ok(i.findings
                .iter()
                .cloned()
                .map(|mut f| {
                    f.score = self.0;
                    f
                })
                .collect())
        }
    }

    #[test]
    fn a_stage_can_be_replaced() {
        let mut cfg = PhantomConfig::small(21);
        cfg.shape = [80, 384, 384];
        cfg.spacing = [2.5, 0.8, 0.8];
        let p = generate(&cfg);
        let mut pipe = Pipeline::classical(&Config::default());
        let classical = pipe.run(&p.volume, &mut |_, _, _| {}).unwrap();
        // The clinical model's record is the analysis' own JSON, and reads back.
        let record = serde_json::to_value(classical.to_model()).unwrap();
        assert_eq!(record, serde_json::to_value(&classical).unwrap());
        let back: lumen_model::AiAnalysis = serde_json::from_value(record).unwrap();
        assert_eq!(back, classical.to_model());
        pipe.fp_reduction = Box::new(Constant(0.42));
        let mut seen = Vec::new();
        let a = pipe
            .run(&p.volume, &mut |s, _, _| seen.push(s.to_string()))
            .unwrap();
        assert_eq!(
            seen,
            [
                "lungs",
                "candidates",
                "segmentation",
                "constant-model",
                "done"
            ]
        );
        assert!(a.nodules.iter().all(|n| n.score == 0.42));
        assert!(a.nodules.len() >= classical.nodules.len());
        // Nothing reaches the reporting score: exam category 1.
        assert_eq!(a.lung_rads, LungRads::C1);
        assert_eq!(a.timings[3].stage, "constant-model");
    }

    #[test]
    fn refuses_unsuitable_series() {
        let hu = ndarray::Array3::<i16>::from_elem((5, 32, 32), -1000);
        let v = Volume::new(hu.clone(), Geometry::axial([0.0; 3], [1.0, 1.0, 1.0]));
        assert!(matches!(
            analyze(&v, &Config::default()),
            Err(AnalysisError::Unsuitable(_))
        ));
        let mut g = Geometry::axial([0.0; 3], [1.0, 1.0, 1.0]);
        g.col_dir = [0.0, 0.0, -1.0];
        g.slice_dir = [0.0, 1.0, 0.0];
        let v = Volume::new(ndarray::Array3::<i16>::from_elem((100, 32, 32), -1000), g);
        let e = analyze(&v, &Config::default()).unwrap_err();
        assert!(e.to_string().contains("not axial"), "{e}");
        // An axial stack of air: no lungs.
        let v = Volume::new(
            ndarray::Array3::<i16>::from_elem((100, 32, 32), -1000),
            Geometry::axial([0.0; 3], [1.0; 3]),
        );
        assert!(matches!(
            analyze(&v, &Config::default()),
            Err(AnalysisError::NoLungs(_))
        ));
    }
}
