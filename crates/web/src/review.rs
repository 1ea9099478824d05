//! The radiologist's review of AI findings: list, accept, reject, correct (type, location,
//! axes redrawn as lines in patient mm), add a missed finding; and the SEG overlay the viewer
//! draws, read back from the stored SEG.
//!
//! AI findings come from the AI job's result (the engine's reported nodules); the first time a
//! doctor acts on one, its AI measures are stored beside the doctor's version
//! (`lumen_store::review`). Sizes and Lung-RADS categories are recomputed with the engine's
//! rules (`lumen_ai::lungrads`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use dicom_dictionary_std::tags;
use lumen_ai::lungrads::{self, LungRads, NoduleSize};
use lumen_ai::phantom::NoduleType;
use lumen_store::{FindingAction, FindingReview, Scope};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::actor::Actor;
use crate::{ApiError, AppState};

/// The LIDC-IDRI citation, shown where the data is LIDC-IDRI.
pub const LIDC_CITATION: &str = "Data: LIDC-IDRI (The Lung Image Database Consortium image collection), The Cancer Imaging Archive. Armato SG 3rd et al., Med Phys 2011;38(2):915-931, doi:10.1118/1.3528204. Licensed CC BY 3.0.";

/// What the review of a study is built from.
pub(crate) struct StudyReview {
    pub attrs: Map<String, Value>,
    pub source_series_uid: Option<String>,
    pub ai_status: String,
    /// AI findings (id, measures) from the job, in the engine's order.
    pub ai: Vec<(String, Value)>,
    /// The job result (SEG UIDs, segment numbers).
    pub result: Option<Value>,
    pub reviews: Vec<FindingReview>,
}

pub(crate) fn check_study(study: &str) -> Result<(), ApiError> {
    lumen_dicom::attrs::check_uid("StudyInstanceUID", study)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The contract's AiMeasures from one nodule of the engine's JSON.
fn ai_measures(n: &Value) -> Value {
    let cv = &n["center_voxel"]; // [z, y, x]
    json!({
        "type": n["type"],
        "location": n["lobe"],
        "long_axis_mm": n["long_axis_mm"],
        "short_axis_mm": n["short_axis_mm"],
        "mean_diameter_mm": n["mean_diameter_mm"],
        "volume_mm3": n["volume_mm3"],
        "mean_hu": n["mean_hu"],
        "lung_rads": n["lung_rads"],
        "score": n["score"],
        "center_world": n["center_world_mm"],
        "center_voxel": [cv[2], cv[1], n["slice_index"]],
        "sop_instance_uid": n["sop_instance_uid"],
        "long_axis_line": n.get("long_axis_line").cloned().unwrap_or(Value::Null),
        "short_axis_line": n.get("short_axis_line").cloned().unwrap_or(Value::Null),
    })
}

pub(crate) async fn load(s: &AppState, study: &str) -> Result<StudyReview, ApiError> {
    check_study(study)?;
    let attrs = s
        .store
        .study_attrs(study)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such study".into()))?;
    let jobs = s.store.ai_jobs(study).await?;
    let ai_status = if jobs.is_empty() {
        "none"
    } else if jobs.iter().any(|j| j.state == "running") {
        "running"
    } else if jobs.iter().any(|j| j.state == "waiting") {
        "queued"
    } else if jobs.iter().any(|j| j.state == "done") {
        "done"
    } else if jobs.iter().any(|j| j.state == "failed") {
        "failed"
    } else {
        "skipped"
    };
    // The analysed series: the done job with the most reported nodules (one CT per study
    // in practice).
    let done = jobs
        .iter()
        .filter(|j| j.state == "done" && j.result.is_some())
        .max_by_key(|j| {
            j.result
                .as_ref()
                .and_then(|r| r["nodules"].as_array().map(Vec::len))
                .unwrap_or(0)
        });
    let mut ai = Vec::new();
    if let Some(r) = done.and_then(|j| j.result.as_ref()) {
        let a = &r["analysis"];
        let min = a["report_score"].as_f64().unwrap_or(0.5);
        for n in a["nodules"].as_array().into_iter().flatten() {
            if n["score"].as_f64().unwrap_or(0.0) < min {
                continue;
            }
            if let Some(id) = n["id"].as_u64() {
                ai.push((format!("ai-{id}"), ai_measures(n)));
            }
        }
    }
    Ok(StudyReview {
        attrs,
        source_series_uid: done.map(|j| j.series_uid.clone()),
        ai_status: ai_status.into(),
        ai,
        result: done.and_then(|j| j.result.clone()),
        reviews: s.store.finding_reviews(study).await?,
    })
}

/// Milliseconds since the epoch as ISO 8601 UTC (`2026-11-27T06:05:09Z`).
pub(crate) fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl StudyReview {
    /// Every finding as the API shows it: AI findings (pending unless reviewed), then the
    /// doctor's.
    pub fn findings(&self) -> Vec<Value> {
        let by_id: BTreeMap<&str, &FindingReview> = self
            .reviews
            .iter()
            .map(|r| (r.finding_id.as_str(), r))
            .collect();
        let mut out = Vec::new();
        for (id, m) in &self.ai {
            out.push(match by_id.get(id.as_str()) {
                Some(r) => finding_json(r),
                None => json!({
                    "id": id, "origin": "ai", "status": "pending", "ai": m, "current": m,
                    "edited_by": null, "edited_at": null, "note": null,
                }),
            });
        }
        // Reviewed AI findings the current job no longer lists (a re-run) stay visible.
        for r in &self.reviews {
            if r.origin == "ai" && !self.ai.iter().any(|(id, _)| *id == r.finding_id) {
                out.push(finding_json(r));
            }
        }
        for r in self.reviews.iter().filter(|r| r.origin == "doctor") {
            out.push(finding_json(r));
        }
        out
    }

    /// The AI's measures of an AI finding.
    fn ai_of(&self, id: &str) -> Option<Value> {
        if let Some(r) = self.reviews.iter().find(|r| r.finding_id == id) {
            return r.ai.clone();
        }
        self.ai
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, m)| m.clone())
    }

    /// The finding's current version.
    fn current_of(&self, id: &str) -> Option<Value> {
        if let Some(r) = self.reviews.iter().find(|r| r.finding_id == id) {
            return Some(r.current.clone());
        }
        self.ai
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, m)| m.clone())
    }

    /// The citation of the data, when it is a public collection.
    pub fn citation(&self) -> Option<String> {
        let pid = lumen_dicom::json::first_string(&self.attrs, tags::PATIENT_ID)?;
        pid.starts_with("LIDC-IDRI")
            .then(|| LIDC_CITATION.to_string())
    }
}

fn finding_json(r: &FindingReview) -> Value {
    json!({
        "id": r.finding_id,
        "origin": r.origin,
        "status": r.status,
        "ai": r.ai,
        "current": r.current,
        "edited_by": r.edited_by,
        "edited_at": r.edited_at.map(iso),
        "note": r.note,
    })
}

/// The findings that count for the report: accepted, corrected and added.
pub(crate) fn reported(findings: &[Value]) -> Vec<&Value> {
    findings
        .iter()
        .filter(|f| {
            matches!(
                f["status"].as_str(),
                Some("accepted" | "corrected" | "added")
            )
        })
        .collect()
}

pub(crate) fn category(v: &Value) -> Option<LungRads> {
    serde_json::from_value(v["lung_rads"].clone()).ok()
}

pub(crate) fn nodule_size(current: &Value) -> Option<NoduleSize> {
    let kind = serde_json::from_value::<NoduleType>(current["type"].clone()).ok()?;
    Some(NoduleSize {
        kind,
        mean_diameter_mm: current["mean_diameter_mm"].as_f64()?,
        solid_mean_diameter_mm: (kind == NoduleType::PartSolid)
            .then(|| current["solid_component_mm"].as_f64())
            .flatten(),
    })
}

/// Sets the solid component given by the doctor (checked when the category is recomputed).
fn set_solid(m: &mut Value, mm: Option<f64>) -> Result<(), ApiError> {
    if let Some(v) = mm {
        if !v.is_finite() {
            return Err(ApiError::BadRequest(
                "solid_component_mm must be a number of mm".into(),
            ));
        }
        m["solid_component_mm"] = json!(round1(v));
    }
    Ok(())
}

/// The highest category of the reported findings ("1" when there is none).
pub(crate) fn study_category(findings: &[Value]) -> LungRads {
    let cats: Vec<LungRads> = reported(findings)
        .iter()
        .filter_map(|f| category(&f["current"]))
        .collect();
    lungrads::exam_category(&cats)
}

/// `GET /api/studies/{study}/review`.
pub async fn review(
    State(s): State<AppState>,
    Path(study): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&s, &study).await?;
    let findings = r.findings();
    let cat = if reported(&findings).is_empty() {
        Value::Null
    } else {
        json!(study_category(&findings).as_str())
    };
    Ok(Json(json!({
        "study_uid": study,
        "source_series_uid": r.source_series_uid,
        "ai_status": r.ai_status,
        "findings": findings,
        "lung_rads": cat,
        "citation": r.citation(),
    })))
}

async fn act(
    s: &AppState,
    study: &str,
    id: Option<&str>,
    status: &str,
    current: Value,
    note: Option<&str>,
    actor: &Actor,
) -> Result<Value, ApiError> {
    let r = load(s, study).await?;
    let ai = match id {
        Some(id) if id.starts_with("ai-") => Some(
            r.ai_of(id)
                .ok_or_else(|| ApiError::NotFound(format!("no finding {id} in this study")))?,
        ),
        Some(id) if id.starts_with("dr-") => None,
        Some(id) => return Err(ApiError::NotFound(format!("no finding {id} in this study"))),
        None => None,
    };
    // The study's category after this action, for the worklist.
    let mut after = r.findings();
    match id {
        Some(id) => {
            if let Some(f) = after.iter_mut().find(|f| f["id"] == id) {
                f["status"] = json!(status);
                f["current"] = current.clone();
            }
        }
        None => after.push(json!({ "status": status, "current": current })),
    }
    let cat = study_category(&after);
    let saved = s
        .store
        .review_finding(
            study,
            FindingAction {
                finding_id: id,
                ai: ai.as_ref(),
                status,
                current: &current,
                note,
                actor: &actor.display_name,
                study_lung_rads: Some(cat.as_str()),
            },
        )
        .await?;
    Ok(finding_json(&saved))
}

/// `POST /api/studies/{study}/findings/{id}/accept`.
pub async fn accept(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    actor: Actor,
) -> Result<Json<Value>, ApiError> {
    let r = load(&s, &study).await?;
    let current = r
        .current_of(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no finding {id} in this study")))?;
    let status = if id.starts_with("dr-") {
        "added"
    } else {
        "accepted"
    };
    Ok(Json(
        act(&s, &study, Some(&id), status, current, None, &actor).await?,
    ))
}

/// `POST /api/studies/{study}/findings/{id}/reject`.
pub async fn reject(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    actor: Actor,
) -> Result<Json<Value>, ApiError> {
    let r = load(&s, &study).await?;
    let current = r
        .current_of(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no finding {id} in this study")))?;
    Ok(Json(
        act(&s, &study, Some(&id), "rejected", current, None, &actor).await?,
    ))
}

type Line = [[f64; 3]; 2];

/// A doctor's correction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    #[serde(rename = "type")]
    kind: Option<String>,
    long_axis_line: Option<Line>,
    short_axis_line: Option<Line>,
    location: Option<String>,
    note: Option<String>,
    /// Mean diameter of the solid component of a part-solid nodule, in mm.
    solid_component_mm: Option<f64>,
}

/// A doctor's new finding.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFinding {
    #[serde(rename = "type")]
    kind: String,
    sop_instance_uid: String,
    long_axis_line: Line,
    short_axis_line: Line,
    location: Option<String>,
    note: Option<String>,
    /// Mean diameter of the solid component of a part-solid nodule, in mm.
    solid_component_mm: Option<f64>,
}

fn length(l: &Line, what: &str) -> Result<f64, ApiError> {
    if l.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ApiError::BadRequest(format!(
            "{what} has a non-finite coordinate"
        )));
    }
    let d =
        ((l[1][0] - l[0][0]).powi(2) + (l[1][1] - l[0][1]).powi(2) + (l[1][2] - l[0][2]).powi(2))
            .sqrt();
    if !(0.5..=100.0).contains(&d) {
        return Err(ApiError::BadRequest(format!(
            "{what} is {d:.1} mm long; a nodule axis is 0.5 to 100 mm"
        )));
    }
    Ok(d)
}

fn check_kind(kind: &str) -> Result<NoduleType, ApiError> {
    serde_json::from_value(json!(kind)).map_err(|_| {
        ApiError::BadRequest(
            "type must be solid, part-solid, ground-glass or calcified".to_string(),
        )
    })
}

fn check_location(loc: &str) -> Result<String, ApiError> {
    let loc = loc.trim();
    if loc.is_empty() || loc.chars().count() > 64 || loc.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "location must be a lobe code (RUL, RML, RLL, LUL, LLL) or a short text".into(),
        ));
    }
    Ok(loc.to_string())
}

/// Recomputes mean diameter and Lung-RADS after sizes or type changed.
fn recompute(m: &mut Value) -> Result<(), ApiError> {
    let kind = check_kind(m["type"].as_str().unwrap_or(""))?;
    let long = m["long_axis_mm"].as_f64().unwrap_or(0.0);
    let short = m["short_axis_mm"].as_f64().unwrap_or(0.0);
    let mean = round1((long + short) / 2.0);
    m["mean_diameter_mm"] = json!(mean);
    // Lung-RADS grades a part-solid nodule by its solid component; other types have none.
    let solid = if kind == NoduleType::PartSolid {
        m["solid_component_mm"].as_f64()
    } else {
        if let Some(o) = m.as_object_mut() {
            o.remove("solid_component_mm");
        }
        None
    };
    if let Some(sc) = solid
        && !(sc > 0.0 && sc <= mean)
    {
        return Err(ApiError::BadRequest(format!(
            "the solid component ({sc:.1} mm) must be above 0 and at most the nodule's mean diameter ({mean:.1} mm)"
        )));
    }
    let cat = lungrads::lung_rads(&NoduleSize {
        kind,
        mean_diameter_mm: mean,
        solid_mean_diameter_mm: solid,
    });
    m["lung_rads"] = json!(cat.as_str());
    Ok(())
}

fn apply_lines(m: &mut Value, long: &Line, short: &Line) -> Result<(), ApiError> {
    let (a, b) = (
        length(long, "long_axis_line")?,
        length(short, "short_axis_line")?,
    );
    let (a, b) = if b > a { (b, a) } else { (a, b) };
    m["long_axis_mm"] = json!(round1(a));
    m["short_axis_mm"] = json!(round1(b));
    m["long_axis_line"] = json!(long);
    m["short_axis_line"] = json!(short);
    // The segmented volume no longer matches redrawn axes.
    m["volume_mm3"] = Value::Null;
    Ok(())
}

/// `PUT /api/studies/{study}/findings/{id}`: a correction (status "corrected").
pub async fn correct(
    State(s): State<AppState>,
    Path((study, id)): Path<(String, String)>,
    actor: Actor,
    Json(body): Json<Correction>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&s, &study).await?;
    let mut m = r
        .current_of(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no finding {id} in this study")))?;
    if let Some(k) = &body.kind {
        check_kind(k)?;
        m["type"] = json!(k);
    }
    if let Some(l) = &body.location {
        m["location"] = json!(check_location(l)?);
    }
    match (&body.long_axis_line, &body.short_axis_line) {
        (Some(a), Some(b)) => apply_lines(&mut m, a, b)?,
        (Some(a), None) => {
            let b: Line = serde_json::from_value(m["short_axis_line"].clone()).map_err(|_| {
                ApiError::BadRequest("short_axis_line is needed with long_axis_line".into())
            })?;
            apply_lines(&mut m, a, &b)?
        }
        (None, Some(b)) => {
            let a: Line = serde_json::from_value(m["long_axis_line"].clone()).map_err(|_| {
                ApiError::BadRequest("long_axis_line is needed with short_axis_line".into())
            })?;
            apply_lines(&mut m, &a, b)?
        }
        (None, None) => {}
    }
    set_solid(&mut m, body.solid_component_mm)?;
    recompute(&mut m)?;
    let status = if id.starts_with("dr-") {
        "added"
    } else {
        "corrected"
    };
    let note = body.note.as_deref();
    Ok(Json(
        act(&s, &study, Some(&id), status, m, note, &actor).await?,
    ))
}

/// Where a slice lies: its index in the series sorted along the normal, and its geometry.
struct SliceGeometry {
    index: usize,
    position: [f64; 3],
    row_dir: [f64; 3],
    col_dir: [f64; 3],
    spacing: [f64; 2],
}

fn floats(m: &Map<String, Value>, t: dicom_object::Tag) -> Vec<f64> {
    lumen_dicom::json::string_values(m, t)
        .iter()
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

async fn slice_geometry(s: &AppState, study: &str, sop: &str) -> Result<SliceGeometry, ApiError> {
    lumen_dicom::attrs::check_uid("SOPInstanceUID", sop)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let one = s
        .store
        .instances(&Scope {
            study_uid: Some(study.into()),
            sop_instance_uid: Some(sop.into()),
            ..Default::default()
        })
        .await?;
    let inst = one.first().ok_or_else(|| {
        ApiError::BadRequest("sop_instance_uid is not an instance of this study".into())
    })?;
    let meta = s
        .store
        .metadata(&Scope {
            study_uid: Some(study.into()),
            series_uid: Some(inst.series_uid.clone()),
            ..Default::default()
        })
        .await?;
    let mut slices = Vec::new();
    let mut this = None;
    for (i, m) in &meta {
        let ipp = floats(m, tags::IMAGE_POSITION_PATIENT);
        let iop = floats(m, tags::IMAGE_ORIENTATION_PATIENT);
        let ps = floats(m, tags::PIXEL_SPACING);
        if ipp.len() != 3 || iop.len() != 6 {
            continue;
        }
        let r = [iop[0], iop[1], iop[2]];
        let c = [iop[3], iop[4], iop[5]];
        let n = [
            r[1] * c[2] - r[2] * c[1],
            r[2] * c[0] - r[0] * c[2],
            r[0] * c[1] - r[1] * c[0],
        ];
        let along = ipp[0] * n[0] + ipp[1] * n[1] + ipp[2] * n[2];
        // Ascending z as the AI engine orders slices (for axial series).
        let key = if n[2] < 0.0 { -along } else { along };
        slices.push((key, i.sop_instance_uid.clone()));
        if i.sop_instance_uid == sop && ps.len() == 2 {
            this = Some(([ipp[0], ipp[1], ipp[2]], r, c, [ps[0], ps[1]]));
        }
    }
    let (position, row_dir, col_dir, spacing) = this.ok_or_else(|| {
        ApiError::BadRequest(
            "the slice has no image geometry (position, orientation, spacing)".into(),
        )
    })?;
    slices.sort_by(|a, b| a.0.total_cmp(&b.0));
    let index = slices.iter().position(|(_, u)| u == sop).unwrap_or(0);
    Ok(SliceGeometry {
        index,
        position,
        row_dir,
        col_dir,
        spacing,
    })
}

/// `POST /api/studies/{study}/findings`: a finding the AI missed (status "added").
pub async fn add(
    State(s): State<AppState>,
    Path(study): Path<String>,
    actor: Actor,
    Json(body): Json<NewFinding>,
) -> Result<Json<Value>, ApiError> {
    check_study(&study)?;
    check_kind(&body.kind)?;
    let location = match &body.location {
        Some(l) => check_location(l)?,
        None => String::new(),
    };
    let g = slice_geometry(&s, &study, &body.sop_instance_uid).await?;
    let l = &body.long_axis_line;
    let center = [
        (l[0][0] + l[1][0]) / 2.0,
        (l[0][1] + l[1][1]) / 2.0,
        (l[0][2] + l[1][2]) / 2.0,
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
    let mut m = json!({
        "type": body.kind,
        "location": location,
        "volume_mm3": null,
        "mean_hu": null,
        "score": null,
        "center_world": center.map(r2),
        "center_voxel": [r2(col), r2(row), g.index],
        "sop_instance_uid": body.sop_instance_uid,
    });
    apply_lines(&mut m, &body.long_axis_line, &body.short_axis_line)?;
    set_solid(&mut m, body.solid_component_mm)?;
    recompute(&mut m)?;
    Ok(Json(
        act(&s, &study, None, "added", m, body.note.as_deref(), &actor).await?,
    ))
}

/// `GET /api/studies/{study}/seg-overlay`: the stored SEG's segments, run-length encoded
/// per source slice.
pub async fn seg_overlay(
    State(s): State<AppState>,
    Path(study): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&s, &study).await?;
    let result = r
        .result
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the AI has not analysed this study".into()))?;
    let seg_uid = result["seg_sop_uid"]
        .as_str()
        .ok_or_else(|| ApiError::NotFound("the AI stored no segmentation for this study".into()))?;
    let inst = s
        .store
        .instances(&Scope {
            study_uid: Some(study.clone()),
            sop_instance_uid: Some(seg_uid.to_string()),
            ..Default::default()
        })
        .await?;
    let inst = inst
        .first()
        .ok_or_else(|| ApiError::NotFound("the segmentation is no longer stored".into()))?
        .clone();
    let mut findings_by_segment = BTreeMap::new();
    for n in result["nodules"].as_array().into_iter().flatten() {
        if let (Some(seg), Some(id)) = (n["segment_number"].as_u64(), n["id"].as_u64()) {
            findings_by_segment.insert(seg, format!("ai-{id}"));
        }
    }
    let bytes = inst.read().await?;
    let overlay =
        tokio::task::spawn_blocking(move || overlay_from_seg(&bytes, &findings_by_segment))
            .await
            .map_err(ApiError::internal)??;
    let mut v = overlay;
    v["source_series_uid"] = json!(r.source_series_uid);
    Ok(Json(v))
}

const COLORS: [&str; 6] = [
    "#ef4444", "#f59e0b", "#a855f7", "#ec4899", "#14b8a6", "#eab308",
];

/// Reads a binary SEG: segments and, per referenced source instance, the runs of each
/// segment's frame.
fn overlay_from_seg(bytes: &[u8], findings: &BTreeMap<u64, String>) -> Result<Value, ApiError> {
    let bad = |m: &str| ApiError::internal(format!("stored SEG unreadable: {m}"));
    let obj = lumen_dicom::part10::parse(bytes).map_err(|e| bad(&e.to_string()))?;
    let int = |o: &dicom_object::InMemDicomObject, t| -> Option<u64> {
        o.get(t).and_then(|e| e.to_int::<u64>().ok())
    };
    let rows = int(&obj, tags::ROWS).ok_or_else(|| bad("no Rows"))? as usize;
    let cols = int(&obj, tags::COLUMNS).ok_or_else(|| bad("no Columns"))? as usize;
    let frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1) as usize;
    let mut segments = Vec::new();
    let mut nodule_i = 0;
    for item in obj
        .get(tags::SEGMENT_SEQUENCE)
        .and_then(|e| e.items())
        .into_iter()
        .flatten()
    {
        let number = int(item, tags::SEGMENT_NUMBER).unwrap_or(0);
        let label = item
            .get(tags::SEGMENT_LABEL)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let lung = label.to_ascii_lowercase().contains("lung");
        let color = if lung {
            if label.to_ascii_lowercase().contains("right") {
                "#3b82f6"
            } else {
                "#22c55e"
            }
        } else {
            nodule_i += 1;
            COLORS[(nodule_i - 1) % COLORS.len()]
        };
        segments.push(json!({
            "number": number,
            "label": label,
            "kind": if lung { "lung" } else { "nodule" },
            "finding_id": findings.get(&number),
            "color": color,
        }));
    }
    let pixels = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.to_bytes().ok())
        .ok_or_else(|| bad("no Pixel Data"))?;
    let plane = rows * cols;
    if pixels.len() * 8 < plane * frames {
        return Err(bad("Pixel Data shorter than its frames"));
    }
    let per_frame: Vec<&dicom_object::InMemDicomObject> = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let mut slices: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (f, item) in per_frame.iter().enumerate().take(frames) {
        let seg = item
            .get(tags::SEGMENT_IDENTIFICATION_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|i| int(i, tags::REFERENCED_SEGMENT_NUMBER));
        let sop = item
            .get(tags::DERIVATION_IMAGE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|d| d.get(tags::SOURCE_IMAGE_SEQUENCE))
            .and_then(|e| e.items())
            .and_then(|v| v.first())
            .and_then(|s| s.get(tags::REFERENCED_SOP_INSTANCE_UID))
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string());
        let (Some(seg), Some(sop)) = (seg, sop) else {
            continue;
        };
        let start_bit = f * plane;
        let mut runs: Vec<usize> = Vec::new();
        let mut run_start = None;
        for p in 0..plane {
            let b = start_bit + p;
            let on = pixels[b / 8] >> (b % 8) & 1 == 1;
            match (on, run_start) {
                (true, None) => run_start = Some(p),
                (false, Some(s0)) => {
                    runs.push(s0);
                    runs.push(p - s0);
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(s0) = run_start {
            runs.push(s0);
            runs.push(plane - s0);
        }
        if runs.is_empty() {
            continue;
        }
        slices
            .entry(sop)
            .or_default()
            .push(json!({ "segment": seg, "runs": runs }));
    }
    Ok(json!({
        "segments": segments,
        "rows": rows,
        "columns": cols,
        "slices": slices,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_759_509_000), "2026-11-27T06:05:09Z");
    }

    #[test]
    fn corrections_recompute_sizes_and_category() {
        let mut m = json!({ "type": "solid" });
        apply_lines(
            &mut m,
            &[[0.0, 0.0, 0.0], [0.0, 12.0, 0.0]],
            &[[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]],
        )
        .unwrap();
        recompute(&mut m).unwrap();
        assert_eq!(m["long_axis_mm"], 12.0);
        assert_eq!(m["short_axis_mm"], 9.0);
        assert_eq!(m["mean_diameter_mm"], 10.5);
        assert_eq!(m["lung_rads"], "4A");
        m["type"] = json!("ground-glass");
        recompute(&mut m).unwrap();
        assert_eq!(m["lung_rads"], "2");
        assert!(apply_lines(&mut m, &[[0.0; 3], [0.0; 3]], &[[0.0; 3], [1.0, 0.0, 0.0]]).is_err());
        // Part-solid: graded by the solid component (Lung-RADS v2022: solid >= 8 mm is 4B,
        // 6 to < 8 mm 4A); the component cannot exceed the nodule, and goes with the type.
        m["type"] = json!("part-solid");
        set_solid(&mut m, Some(8.4)).unwrap();
        recompute(&mut m).unwrap();
        assert_eq!(m["lung_rads"], "4B");
        set_solid(&mut m, Some(6.5)).unwrap();
        recompute(&mut m).unwrap();
        assert_eq!(m["lung_rads"], "4A");
        set_solid(&mut m, Some(11.0)).unwrap();
        assert!(recompute(&mut m).is_err());
        set_solid(&mut m, Some(6.5)).unwrap();
        m["type"] = json!("solid");
        recompute(&mut m).unwrap();
        assert!(m.get("solid_component_mm").is_none());
        assert!(set_solid(&mut m, Some(f64::NAN)).is_err());
        m["type"] = json!("blob");
        assert!(recompute(&mut m).is_err());
    }
}
