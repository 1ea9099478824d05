//! The AI job runner: analyses each qualifying series once it has stopped receiving
//! instances for the quiet period, on a bounded worker pool, with retries and backoff.
//!
//! The queue itself lives in the index database (`lumen_store::jobs`), so jobs survive
//! restarts; this module only decides what qualifies and runs the engine. Every process with
//! the AI on (front ends, `lumen worker`) runs this loop over the one queue: a job is held
//! under a lease renewed while it runs, and taken over by another process when its worker
//! dies.

use std::sync::Arc;
use std::time::Duration;

use lumen_store::{AiJob, AiJobOutcome, Scope, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// When and how the AI reads arriving series (the `[ai]` table of the configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Run the AI on arrival at all.
    pub enabled: bool,
    /// Modalities whose series are considered.
    pub modalities: Vec<String>,
    /// Seconds without a new instance before a series is analysed.
    pub quiet_period_secs: f64,
    /// Series analysed at once.
    pub workers: usize,
    /// Fewest slices a series needs.
    pub min_slices: usize,
    /// Thickest slices accepted, mm.
    pub max_slice_thickness_mm: f64,
    /// Body Part Examined values accepted (a series without the attribute is accepted).
    pub body_parts: Vec<String>,
    /// Series whose description contains one of these (case-insensitive) are skipped.
    pub exclude_descriptions: Vec<String>,
    /// Attempts before a job is marked failed.
    pub max_attempts: i64,
    /// Seconds before the first retry (doubled each attempt).
    pub retry_backoff_secs: f64,
    /// Seconds a claimed job stays this process's without a renewal (renewed every third of
    /// it while the job runs): how long a job whose worker died waits to be taken over.
    pub lease_secs: f64,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            enabled: true,
            modalities: vec!["CT".into()],
            quiet_period_secs: 30.0,
            workers: 1,
            min_slices: 20,
            max_slice_thickness_mm: 5.0,
            body_parts: [
                "CHEST",
                "LUNG",
                "THORAX",
                "CHEST_ABDOMEN",
                "CHESTABDOMEN",
                "CHEST_TO_PELVIS",
            ]
            .map(String::from)
            .to_vec(),
            exclude_descriptions: ["LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "DOSE"]
                .map(String::from)
                .to_vec(),
            max_attempts: 3,
            retry_backoff_secs: 30.0,
            lease_secs: 60.0,
        }
    }
}

/// Starts the runner in the background (nothing runs when disabled). The results it stores
/// (SEG, SR) are routed by the store like any arrival (origin `ai`).
pub fn spawn(store: Store, cfg: AiConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !cfg.enabled {
            return;
        }
        match store.recover_ai_jobs().await {
            Ok(n) if n > 0 => {
                tracing::info!(jobs = n, "AI jobs interrupted by a stop are queued again")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot recover AI jobs"),
        }
        let cfg = Arc::new(cfg);
        let slots = Arc::new(tokio::sync::Semaphore::new(cfg.workers.max(1)));
        let quiet = Duration::from_secs_f64(cfg.quiet_period_secs.max(0.0));
        let poll = Duration::from_secs_f64((cfg.quiet_period_secs / 4.0).clamp(0.05, 1.0));
        let lease = cfg.lease();
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match store.claim_ai_job(quiet, lease).await {
                Ok(Some(job)) => {
                    let (store, cfg) = (store.clone(), cfg.clone());
                    tokio::spawn(async move {
                        run_job(&store, &cfg, job).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::time::sleep(poll).await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!(error = %e, "cannot claim an AI job");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    })
}

impl AiConfig {
    /// The lease of a claimed job (at least a second).
    fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_secs.max(1.0))
    }
}

/// Renews `job`'s lease every third of it; returns once the claim is lost (another worker
/// took the job after the lease passed, or the series changed).
async fn hold(store: &Store, job: &AiJob, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match store.renew_ai_job(job, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            // Kept trying: the lease has two more renewals' worth of time.
            Err(e) => {
                tracing::warn!(series = %job.series_uid, error = %e, "cannot renew an AI job's lease")
            }
        }
    }
}

async fn run_job(store: &Store, cfg: &AiConfig, job: AiJob) {
    let started = std::time::Instant::now();
    tracing::info!(series = %job.series_uid, attempt = job.attempts, "AI analysis started");
    let analysed = tokio::select! {
        r = analyse(store, cfg, &job) => r,
        () = hold(store, &job, cfg.lease()) => {
            tracing::info!(series = %job.series_uid, "AI job no longer ours (taken over, or the series changed); stopped");
            return;
        }
    };
    let outcome = match analysed {
        Ok(Ok(v)) => AiJobOutcome::Done(v),
        Ok(Err(Skip(reason))) => AiJobOutcome::Skipped(reason),
        Err(Failure::Permanent(reason)) => AiJobOutcome::Failed(reason),
        Err(Failure::Transient(reason)) if job.attempts < cfg.max_attempts => {
            let after = Duration::from_secs_f64(
                cfg.retry_backoff_secs.max(0.0) * 2f64.powi((job.attempts - 1).clamp(0, 16) as i32),
            );
            AiJobOutcome::Retry { reason, after }
        }
        Err(Failure::Transient(reason)) => AiJobOutcome::Failed(reason),
    };
    let kind = match &outcome {
        AiJobOutcome::Done(_) => "done",
        AiJobOutcome::Skipped(_) => "skipped",
        AiJobOutcome::Failed(_) => "failed",
        AiJobOutcome::Retry { .. } => "retry",
    };
    metrics::histogram!(crate::metrics::AI_JOB_SECONDS, "outcome" => kind)
        .record(started.elapsed().as_secs_f64());
    let label = match &outcome {
        AiJobOutcome::Done(_) => "done".to_string(),
        AiJobOutcome::Skipped(r) => format!("skipped: {r}"),
        AiJobOutcome::Failed(r) => format!("failed: {r}"),
        AiJobOutcome::Retry { reason, .. } => format!("will retry: {reason}"),
    };
    match store.finish_ai_job(&job, outcome).await {
        Ok(true) => {
            tracing::info!(series = %job.series_uid, seconds = started.elapsed().as_secs_f64(), outcome = %label, "AI analysis finished")
        }
        Ok(false) => {
            tracing::info!(series = %job.series_uid, "series changed during analysis; queued again")
        }
        Err(e) => {
            tracing::error!(series = %job.series_uid, error = %e, "cannot record the AI result")
        }
    }
}

struct Skip(String);

enum Failure {
    /// Will not get better by retrying (the series cannot become a volume).
    Permanent(String),
    /// May (I/O, database).
    Transient(String),
}

fn first_str(m: &Map<String, Value>, tag: dicom_object::Tag) -> Option<String> {
    lumen_dicom::json::first_string(m, tag)
}

/// Checks the configured rules on the series' attributes.
fn qualifies(cfg: &AiConfig, m: &Map<String, Value>) -> Result<(), Skip> {
    use dicom_dictionary_std::tags;
    let modality = first_str(m, tags::MODALITY).unwrap_or_default();
    if !cfg
        .modalities
        .iter()
        .any(|x| x.eq_ignore_ascii_case(&modality))
    {
        return Err(Skip(format!("modality {modality} is not analysed")));
    }
    if let Some(part) = first_str(m, tags::BODY_PART_EXAMINED).filter(|p| !p.trim().is_empty())
        && !cfg
            .body_parts
            .iter()
            .any(|b| b.eq_ignore_ascii_case(part.trim()))
    {
        return Err(Skip(format!("body part {} is not a chest", part.trim())));
    }
    if let Some(desc) = first_str(m, tags::SERIES_DESCRIPTION) {
        let up = desc.to_uppercase();
        if let Some(word) = cfg
            .exclude_descriptions
            .iter()
            .find(|w| up.contains(&w.to_uppercase()))
        {
            return Err(Skip(format!("series description mentions {word}")));
        }
    }
    if let Some(t) = first_str(m, tags::SLICE_THICKNESS).and_then(|t| t.trim().parse::<f64>().ok())
        && t > cfg.max_slice_thickness_mm
    {
        return Err(Skip(format!(
            "slices of {t} mm are thicker than {} mm",
            cfg.max_slice_thickness_mm
        )));
    }
    Ok(())
}

async fn analyse(
    store: &Store,
    cfg: &AiConfig,
    job: &AiJob,
) -> Result<Result<Value, Skip>, Failure> {
    let scope = Scope {
        study_uid: Some(job.study_uid.clone()),
        series_uid: Some(job.series_uid.clone()),
        sop_instance_uid: None,
        org: None,
    };
    let meta = store
        .metadata(&scope)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let Some((_, first)) = meta.first() else {
        return Ok(Err(Skip("the series has no instances".into())));
    };
    if let Err(skip) = qualifies(cfg, first) {
        return Ok(Err(skip));
    }
    if meta.len() < cfg.min_slices {
        return Err(Failure::Permanent(format!(
            "{} images cannot make a chest CT volume; at least {} needed",
            meta.len(),
            cfg.min_slices
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len());
    for (inst, _) in &meta {
        bytes.push(
            inst.read()
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?,
        );
    }
    let result = tokio::task::spawn_blocking(
        move || -> Result<(Value, Option<crate::ai_results::Results>, Option<String>), Failure> {
            let mut objects = Vec::with_capacity(bytes.len());
            for b in bytes {
                objects.push(
                    lumen_dicom::part10::parse(&b).map_err(|e| {
                        Failure::Permanent(format!("stored instance unreadable: {e}"))
                    })?,
                );
            }
            let sources = crate::ai_results::Sources::from_objects(objects.iter().map(|o| &**o));
            let volume = lumen_ai::Volume::from_objects(objects)
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            let (analysis, lungs) = lumen_ai::Pipeline::classical(&lumen_ai::Config::default())
                .run_with_lungs(&volume, &mut |_, _, _| {})
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            // The analysis stands even when its DICOM rendering cannot be written.
            let (results, error) = match sources
                .and_then(|s| crate::ai_results::build(&s, &volume, &analysis, &lungs))
            {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            let v =
                serde_json::to_value(&analysis).map_err(|e| Failure::Permanent(e.to_string()))?;
            Ok((v, results, error))
        },
    )
    .await
    .map_err(|e| Failure::Transient(format!("analysis task failed: {e}")))??;
    let (mut analysis, results, error) = result;
    let mut out = json!({});
    if let Some(e) = error {
        tracing::warn!(series = %job.series_uid, error = %e, "AI results not written as DICOM");
        out["dicom_error"] = json!(e);
    }
    // A study shared with this node whose grant was revoked while the AI ran: it was
    // purged, and its results must not bring it back.
    if store
        .study_revoked_here(&job.study_uid)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?
    {
        return Err(Failure::Permanent(
            "the study's share was revoked; results not stored".into(),
        ));
    }
    if let Some(r) = results {
        // SEG first: the SR refers to it. Identical bytes on a re-run are "already present"
        // (and not routed again: the first run's outbox rows committed with the objects).
        for obj in r.seg.iter().chain(std::iter::once(&r.sr)) {
            match store
                .ingest(
                    bytes::Bytes::from(obj.bytes.clone()),
                    lumen_store::Origin::Ai,
                )
                .await
            {
                Ok(_) => {}
                Err(lumen_store::IngestError::Internal(e)) => {
                    return Err(Failure::Transient(format!(
                        "storing AI result {}: {e}",
                        obj.sop_instance_uid
                    )));
                }
                Err(e) => {
                    return Err(Failure::Permanent(format!(
                        "AI result {} refused: {e}",
                        obj.sop_instance_uid
                    )));
                }
            }
        }
        if let (Some(w), Some(list)) = (
            r.json["warnings"].as_array(),
            analysis["warnings"].as_array_mut(),
        ) {
            list.extend(w.iter().cloned());
        }
        if let (Value::Object(o), Value::Object(extra)) = (&mut out, r.json) {
            o.extend(extra);
        }
    }
    out["analysis"] = analysis;
    Ok(Ok(out))
}
