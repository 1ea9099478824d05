//! The radiologist's review of a study's findings: the AI's proposals (from the AI job's
//! typed result) beside the doctor's decisions (kept by `lumen_store::review`), and the
//! actions on them: accept, reject, correct (type, location, axes redrawn as lines in
//! patient mm, solid component) and add a finding the AI missed.
//!
//! Sizes and Lung-RADS categories are recomputed by the clinical model
//! ([`lumen_model::Measures::recompute`]); the study's category for the worklist is derived
//! by the index in the transaction that records the action.

use std::collections::BTreeMap;

use dicom_dictionary_std::tags;
use lumen_model::ai::JobState;
use lumen_model::finding::{Line, VoxelPosition, check_location, study_category};
use lumen_model::{
    AiJobResult, AiState, Finding, FindingId, FindingStatus, LungRads, Measures, NoduleType, Origin,
};
use lumen_store::{FindingAction, FindingReview, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Actor, App, AppError, check_study};

/// The LIDC-IDRI citation, shown where the data is LIDC-IDRI.
pub const LIDC_CITATION: &str = "Data: LIDC-IDRI (The Lung Image Database Consortium image collection), The Cancer Imaging Archive. Armato SG 3rd et al., Med Phys 2011;38(2):915-931, doi:10.1118/1.3528204. Licensed CC BY 3.0.";

/// What the review of a study is built from.
#[derive(Debug, Clone)]
pub struct StudyReview {
    /// The study's attributes (study and patient level, DICOM JSON).
    pub attrs: Map<String, Value>,
    /// The series the AI analysed.
    pub source_series_uid: Option<String>,
    /// Where the AI stands on the study.
    pub ai_state: AiState,
    /// The AI's reported findings, in the engine's order.
    pub ai: Vec<(FindingId, Measures)>,
    /// The AI job's result (SEG UIDs, segment numbers).
    pub result: Option<AiJobResult>,
    /// The doctor's decisions so far.
    pub reviews: Vec<Finding>,
}

/// The review as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    /// Study Instance UID.
    pub study_uid: String,
    /// The series the AI analysed.
    pub source_series_uid: Option<String>,
    /// Where the AI stands on the study.
    pub ai_status: AiState,
    /// Every finding: the AI's (pending unless reviewed), then the doctor's.
    pub findings: Vec<Finding>,
    /// The study's category from the reported findings; none while nothing is reported.
    pub lung_rads: Option<LungRads>,
    /// The citation of the data, when it is a public collection.
    pub citation: Option<String>,
    /// The SOP Instance UIDs of the analysed series in Lumen's slice order
    /// (`lumen_dicom::geometry`): the order the viewer stacks, in which a finding's
    /// `center_voxel` slice index counts. Empty without an analysed series.
    pub slice_order: Vec<String>,
}

/// A doctor's correction of a finding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// New type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Redrawn long axis.
    pub long_axis_line: Option<Line>,
    /// Redrawn short axis.
    pub short_axis_line: Option<Line>,
    /// New location.
    pub location: Option<String>,
    /// A note.
    pub note: Option<String>,
    /// Mean diameter of the solid component of a part-solid nodule, in mm.
    pub solid_component_mm: Option<f64>,
}

/// A finding the AI missed, drawn by a doctor on one slice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFinding {
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The slice it is drawn on.
    pub sop_instance_uid: String,
    /// Long axis, patient mm.
    pub long_axis_line: Line,
    /// Short axis, patient mm.
    pub short_axis_line: Line,
    /// Location.
    pub location: Option<String>,
    /// A note.
    pub note: Option<String>,
    /// Mean diameter of the solid component of a part-solid nodule, in mm.
    pub solid_component_mm: Option<f64>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("stored {what} unreadable: {e}"))
}

/// A stored review row as the model's finding.
fn finding_of(r: &FindingReview) -> Result<Finding, AppError> {
    let measures = |v: &Value| {
        serde_json::from_value::<Measures>(v.clone()).map_err(|e| corrupt("finding", e))
    };
    Ok(Finding {
        id: r.finding_id.parse().map_err(|e| corrupt("finding id", e))?,
        origin: r.origin.parse().map_err(|e| corrupt("finding origin", e))?,
        status: r.status.parse().map_err(|e| corrupt("finding status", e))?,
        ai: r.ai.as_ref().map(measures).transpose()?,
        current: measures(&r.current)?,
        edited_by: r.edited_by.clone(),
        edited_at: r.edited_at.map(lumen_report::time::iso),
        note: r.note.clone(),
    })
}

fn no_finding(id: &str) -> AppError {
    AppError::NotFound(format!("no finding {id} in this study"))
}

fn parse_id(id: &str) -> Result<FindingId, AppError> {
    id.parse().map_err(|_| no_finding(id))
}

fn parse_kind(kind: &str) -> Result<NoduleType, AppError> {
    Ok(kind.parse::<NoduleType>()?)
}

impl StudyReview {
    /// Every finding: AI findings (pending unless reviewed), the reviewed AI findings a
    /// re-run no longer lists, then the doctor's.
    pub fn findings(&self) -> Vec<Finding> {
        let by_id: BTreeMap<FindingId, &Finding> = self.reviews.iter().map(|r| (r.id, r)).collect();
        let mut out: Vec<Finding> = self
            .ai
            .iter()
            .map(|(id, m)| match by_id.get(id) {
                Some(r) => (*r).clone(),
                None => Finding::pending(*id, m.clone()),
            })
            .collect();
        for r in &self.reviews {
            if r.origin == Origin::Ai && !self.ai.iter().any(|(id, _)| *id == r.id) {
                out.push(r.clone());
            }
        }
        out.extend(
            self.reviews
                .iter()
                .filter(|r| r.origin == Origin::Doctor)
                .cloned(),
        );
        out
    }

    /// The findings that count for the report: accepted, corrected and added.
    pub fn reported(&self) -> Vec<Finding> {
        self.findings()
            .into_iter()
            .filter(|f| f.status.is_reported())
            .collect()
    }

    /// The AI's measures of an AI finding.
    fn ai_of(&self, id: FindingId) -> Option<Measures> {
        if let Some(r) = self.reviews.iter().find(|r| r.id == id) {
            return r.ai.clone();
        }
        self.ai
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, m)| m.clone())
    }

    /// A finding's current version.
    fn current_of(&self, id: FindingId) -> Option<Measures> {
        if let Some(r) = self.reviews.iter().find(|r| r.id == id) {
            return Some(r.current.clone());
        }
        self.ai
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, m)| m.clone())
    }

    /// The citation of the data, when it is a public collection.
    pub fn citation(&self) -> Option<String> {
        let pid = lumen_dicom::json::first_string(&self.attrs, tags::PATIENT_ID)?;
        pid.starts_with("LIDC-IDRI")
            .then(|| LIDC_CITATION.to_string())
    }
}

impl App {
    /// Everything the review of a study is built from.
    pub(crate) async fn study_review(&self, study: &str) -> Result<StudyReview, AppError> {
        check_study(study)?;
        let attrs = self
            .store
            .study_attrs(study)
            .await?
            .ok_or_else(|| AppError::NotFound("no such study".into()))?;
        let jobs = self.store.ai_jobs(study).await?;
        let ai_state = AiState::of_jobs(jobs.iter().filter_map(|j| j.state.parse().ok()));
        // The analysed series: the done job with the most reported nodules (one CT per study
        // in practice).
        let mut done: Option<(String, AiJobResult)> = None;
        for j in &jobs {
            if j.state.parse::<JobState>().ok() != Some(JobState::Done) {
                continue;
            }
            let Some(v) = &j.result else { continue };
            let result: AiJobResult = match serde_json::from_value(v.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(series = %j.series_uid, error = %e, "AI result unreadable; ignored");
                    continue;
                }
            };
            let n = result.analysis.reported().count();
            if done
                .as_ref()
                .is_none_or(|(_, d)| n > d.analysis.reported().count())
            {
                done = Some((j.series_uid.clone(), result));
            }
        }
        let ai = done
            .as_ref()
            .map(|(_, r)| {
                r.analysis
                    .reported()
                    .map(|n| (FindingId::Ai(n.id), Measures::from_ai(n)))
                    .collect()
            })
            .unwrap_or_default();
        let reviews = self
            .store
            .finding_reviews(study)
            .await?
            .iter()
            .map(finding_of)
            .collect::<Result<Vec<_>, _>>()?;
        let (source_series_uid, result) = match done {
            Some((s, r)) => (Some(s), Some(r)),
            None => (None, None),
        };
        Ok(StudyReview {
            attrs,
            source_series_uid,
            ai_state,
            ai,
            result,
            reviews,
        })
    }

    /// The review of a study.
    pub(crate) async fn review_inner(&self, study: &str) -> Result<ReviewView, AppError> {
        let r = self.study_review(study).await?;
        let findings = r.findings();
        let slice_order = match &r.source_series_uid {
            Some(series) => self.slice_order(study, series).await?,
            None => Vec::new(),
        };
        Ok(ReviewView {
            study_uid: study.to_string(),
            source_series_uid: r.source_series_uid.clone(),
            ai_status: r.ai_state,
            lung_rads: study_category(&findings),
            citation: r.citation(),
            findings,
            slice_order,
        })
    }

    /// A series' slices in Lumen's slice order, from the indexed instance attributes.
    async fn slice_order(&self, study: &str, series: &str) -> Result<Vec<String>, AppError> {
        use dicom_dictionary_std::tags;
        let mut q = lumen_dicom::query::Query::new(lumen_dicom::attrs::Level::Instance);
        q.include = lumen_dicom::query::Include::Tags(vec![
            tags::IMAGE_POSITION_PATIENT,
            tags::IMAGE_ORIENTATION_PATIENT,
            tags::INSTANCE_NUMBER,
        ]);
        let scope = Scope {
            study_uid: Some(study.into()),
            series_uid: Some(series.into()),
            ..Default::default()
        };
        let records = self.store.search(&q, &scope).await?;
        let sops: Vec<Option<String>> = records
            .iter()
            .map(|m| lumen_dicom::json::first_string(m, tags::SOP_INSTANCE_UID))
            .collect();
        Ok(crate::review_geometry::slice_order(
            sops.iter()
                .zip(&records)
                .filter_map(|(s, m)| Some((s.as_deref()?, m))),
        ))
    }

    /// Records a doctor's action; the index derives the study's category in the same
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        study: &str,
        r: &StudyReview,
        id: Option<FindingId>,
        status: FindingStatus,
        current: Measures,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        let ai = match id {
            Some(id @ FindingId::Ai(_)) => {
                Some(r.ai_of(id).ok_or_else(|| no_finding(&id.to_string()))?)
            }
            _ => None,
        };
        let to_json = |m: &Measures| serde_json::to_value(m).map_err(AppError::internal);
        let ai = ai.as_ref().map(to_json).transpose()?;
        let current = to_json(&current)?;
        let id = id.map(|i| i.to_string());
        let saved = self
            .store
            .review_finding(
                study,
                FindingAction {
                    finding_id: id.as_deref(),
                    ai: ai.as_ref(),
                    status: status.as_str(),
                    current: &current,
                    note,
                    actor: &actor.display_name,
                },
            )
            .await?;
        finding_of(&saved)
    }

    /// Accepts a finding as it stands (a doctor's finding stays `added`).
    pub(crate) async fn accept_inner(
        &self,
        study: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        self.decide(study, id, FindingId::accepted_status, actor)
            .await
    }

    /// Rejects a finding (a false positive).
    pub(crate) async fn reject_inner(
        &self,
        study: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        self.decide(study, id, |_| FindingStatus::Rejected, actor)
            .await
    }

    /// A decision on a finding as it stands: its current version with a new status.
    async fn decide(
        &self,
        study: &str,
        id: &str,
        status: impl Fn(&FindingId) -> FindingStatus,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        let r = self.study_review(study).await?;
        let fid = parse_id(id)?;
        let current = r.current_of(fid).ok_or_else(|| no_finding(id))?;
        self.act(study, &r, Some(fid), status(&fid), current, None, actor)
            .await
    }

    /// Corrects a finding: type, location, redrawn axes, solid component; sizes and the
    /// category are recomputed.
    pub(crate) async fn correct_inner(
        &self,
        study: &str,
        id: &str,
        c: &Correction,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        let r = self.study_review(study).await?;
        let fid = parse_id(id)?;
        let mut m = r.current_of(fid).ok_or_else(|| no_finding(id))?;
        if let Some(k) = &c.kind {
            m.kind = parse_kind(k)?;
        }
        if let Some(l) = &c.location {
            m.location = check_location(l)?;
        }
        let need = |line: Option<Line>, what: &str| {
            line.ok_or_else(|| AppError::Invalid(format!("{what} is needed with the other axis")))
        };
        match (&c.long_axis_line, &c.short_axis_line) {
            (Some(a), Some(b)) => m.apply_lines(a, b)?,
            (Some(a), None) => {
                let b = need(m.short_axis_line, "short_axis_line")?;
                m.apply_lines(a, &b)?
            }
            (None, Some(b)) => {
                let a = need(m.long_axis_line, "long_axis_line")?;
                m.apply_lines(&a, b)?
            }
            (None, None) => {}
        }
        m.set_solid(c.solid_component_mm)?;
        m.recompute()?;
        self.act(
            study,
            &r,
            Some(fid),
            fid.corrected_status(),
            m,
            c.note.as_deref(),
            actor,
        )
        .await
    }

    /// Adds a finding the AI missed (status `added`), located on its slice.
    pub(crate) async fn add_inner(
        &self,
        study: &str,
        f: &NewFinding,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        check_study(study)?;
        let kind = parse_kind(&f.kind)?;
        let location = match &f.location {
            Some(l) => check_location(l)?,
            None => String::new(),
        };
        let voxel = self
            .voxel_of(study, &f.sop_instance_uid, &f.long_axis_line)
            .await?;
        let m = Measures::drawn(
            kind,
            location,
            &f.long_axis_line,
            &f.short_axis_line,
            voxel,
            f.sop_instance_uid.clone(),
            f.solid_component_mm,
        )?;
        let r = self.study_review(study).await?;
        self.act(
            study,
            &r,
            None,
            FindingStatus::Added,
            m,
            f.note.as_deref(),
            actor,
        )
        .await
    }

    /// The SEG overlay of the study's AI result: its segments and, per source slice, the
    /// runs of each segment.
    pub(crate) async fn seg_overlay_inner(&self, study: &str) -> Result<Value, AppError> {
        let r = self.study_review(study).await?;
        let result = r
            .result
            .as_ref()
            .ok_or_else(|| AppError::NotFound("the AI has not analysed this study".into()))?;
        let seg_uid = result.seg_sop_uid.as_deref().ok_or_else(|| {
            AppError::NotFound("the AI stored no segmentation for this study".into())
        })?;
        let inst = self
            .store
            .instances(&Scope {
                study_uid: Some(study.to_string()),
                sop_instance_uid: Some(seg_uid.to_string()),
                ..Default::default()
            })
            .await?;
        let inst = inst
            .first()
            .ok_or_else(|| AppError::NotFound("the segmentation is no longer stored".into()))?
            .clone();
        let findings_by_segment: BTreeMap<u64, String> = result
            .nodules
            .iter()
            .filter_map(|n| Some((n.segment_number?, FindingId::Ai(n.id).to_string())))
            .collect();
        let bytes = inst.read().await?;
        let mut v = tokio::task::spawn_blocking(move || {
            crate::seg_overlay::overlay_from_seg(&bytes, &findings_by_segment)
        })
        .await
        .map_err(AppError::internal)??;
        v["source_series_uid"] = serde_json::json!(r.source_series_uid);
        Ok(v)
    }

    /// Where a drawn finding lies in the series of its slice: column and row of its centre
    /// and the slice's index in the series' slice order.
    async fn voxel_of(
        &self,
        study: &str,
        sop: &str,
        long: &Line,
    ) -> Result<VoxelPosition, AppError> {
        lumen_dicom::attrs::check_uid("SOPInstanceUID", sop)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let one = self
            .store
            .instances(&Scope {
                study_uid: Some(study.into()),
                sop_instance_uid: Some(sop.into()),
                ..Default::default()
            })
            .await?;
        let inst = one.first().ok_or_else(|| {
            AppError::Invalid("sop_instance_uid is not an instance of this study".into())
        })?;
        let meta = self
            .store
            .metadata(&Scope {
                study_uid: Some(study.into()),
                series_uid: Some(inst.series_uid.clone()),
                ..Default::default()
            })
            .await?;
        let g = crate::review_geometry::slice_geometry(&meta, sop)?;
        let center = [
            (long[0][0] + long[1][0]) / 2.0,
            (long[0][1] + long[1][1]) / 2.0,
            (long[0][2] + long[1][2]) / 2.0,
        ];
        let d = [
            center[0] - g.position[0],
            center[1] - g.position[1],
            center[2] - g.position[2],
        ];
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        // Pixel Spacing is row spacing (between rows), then column spacing.
        let col = dot(d, g.row_dir) / g.spacing[1];
        let row = dot(d, g.col_dir) / g.spacing[0];
        let r2 = |v: f64| (v * 100.0).round() / 100.0;
        Ok((r2(col), r2(row), g.index as u64))
    }
}
