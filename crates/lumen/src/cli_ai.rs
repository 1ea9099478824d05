//! `lumen analyze` and `lumen eval`: the command-line face of the chest CT AI engine.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lumen_ai::eval::{
    CPM_FP_RATES, Detection, froc, read_annotations, read_detections, write_detections,
};
use lumen_ai::phantom::{PhantomConfig, generate};
use lumen_ai::{Analysis, Config, Pipeline, Volume};

/// Arguments of `lumen analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A series folder or DICOM files.
    pub paths: Vec<std::path::PathBuf>,
    /// Write the findings as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Also write the findings as a LUNA16 detections CSV (input of `lumen eval`).
    #[arg(long)]
    pub detections: Option<std::path::PathBuf>,
    /// Analyse a synthetic 512x512x300 chest phantom with this seed instead of files.
    #[arg(long, value_name = "SEED")]
    pub phantom: Option<u64>,
    /// Score from which findings are listed and count for Lung-RADS.
    #[arg(long, default_value_t = 0.5)]
    pub report_score: f64,
    /// Use the high-risk wording of the Fleischner recommendation.
    #[arg(long)]
    pub high_risk: bool,
    /// Compare the lung masks with the Lung_R / Lung_L contours of this RTSTRUCT (Dice).
    #[arg(long, value_name = "RTSTRUCT")]
    pub rtstruct: Option<std::path::PathBuf>,
    /// Re-run the AI on a study already in a running archive (results are stored there as
    /// SEG and SR, replacing nothing: identical objects are not stored twice).
    #[arg(long, value_name = "STUDY_UID", conflicts_with_all = ["paths", "phantom"])]
    pub study: Option<String>,
    /// The running archive for `--study` [env: LUMEN_SERVER]; the bearer token of a user
    /// who may re-run the AI (a radiologist) is read from the LUMEN_TOKEN variable, never
    /// from the command line.
    #[arg(long, env = "LUMEN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// With `--study`: wait until the analysis has ended and print its outcome.
    #[arg(long)]
    pub wait: bool,
}

/// Arguments of `lumen eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// LUNA16-format annotations CSV.
    #[arg(long)]
    pub annotations: std::path::PathBuf,
    /// LUNA16-format excluded annotations CSV.
    #[arg(long)]
    pub excluded: Option<std::path::PathBuf>,
    /// Series evaluated (one UID per line, as LUNA16's seriesuids.csv); default: the series
    /// present in the detections file.
    #[arg(long)]
    pub seriesuids: Option<std::path::PathBuf>,
    /// Detections CSV (seriesuid,coordX,coordY,coordZ,probability).
    pub detections: std::path::PathBuf,
}

fn progress_bar(len: u64) -> ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Runs `lumen analyze`.
pub fn run_analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    if let Some(study) = &args.study {
        return analyze_study(&args.server, study, args.wait);
    }
    let t0 = Instant::now();
    let pb = progress_bar(5);
    pb.set_message("loading");
    let vol = match args.phantom {
        Some(seed) => {
            let p = generate(&PhantomConfig::full(seed));
            eprintln!("phantom seed {seed}: {} nodules placed", p.nodules.len());
            p.volume
        }
        None => {
            anyhow::ensure!(
                !args.paths.is_empty(),
                "give a series folder or DICOM files (or --phantom SEED)"
            );
            Volume::from_dicom_files(&args.paths).context("reading the series")?
        }
    };
    let load_s = t0.elapsed().as_secs_f64();
    let mut cfg = Config::default();
    cfg.scoring.report_score = args.report_score;
    cfg.scoring.high_risk = args.high_risk;
    let pipeline = Pipeline::classical(&cfg);
    let (analysis, lungs) = pipeline
        .run_with_lungs(&vol, &mut |stage, k, _| {
            pb.set_position(k as u64 + 1);
            pb.set_message(stage.to_string());
        })
        .context("analysing the series")?;
    pb.finish_and_clear();
    print_report(&analysis, load_s, t0.elapsed().as_secs_f64());
    let mut json = serde_json::to_value(&analysis)?;
    if let Some(rt_path) = &args.rtstruct {
        let dice = lung_dice(rt_path, &vol, &lungs)?;
        for (side, roi, d) in &dice {
            println!("Lung Dice vs RTSTRUCT {roi}: {side} {d:.4}");
        }
        json["lung_dice"] = serde_json::json!(
            dice.iter()
                .map(|(side, roi, d)| serde_json::json!({"side": side, "roi": roi, "dice": d}))
                .collect::<Vec<_>>()
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    if let Some(path) = &args.detections {
        let uid = analysis
            .series_uid
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let dets: Vec<Detection> = analysis
            .nodules
            .iter()
            .map(|n| Detection {
                series_uid: uid.clone(),
                center: n.center_world_mm,
                probability: n.score,
            })
            .collect();
        std::fs::write(path, write_detections(&dets))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("detections written to {}", path.display());
    }
    Ok(())
}

/// Dice of the right and left lung masks against an RTSTRUCT's lung contours.
fn lung_dice(
    rt_path: &std::path::Path,
    vol: &Volume,
    lungs: &lumen_ai::lungs::LungMask,
) -> anyhow::Result<Vec<(&'static str, String, f64)>> {
    let rt = dicom_object::open_file(rt_path)
        .with_context(|| format!("reading {}", rt_path.display()))?;
    let names = lumen_ai::eval::rtstruct_roi_names(&rt);
    let find = |side: &str| {
        names
            .iter()
            .find(|n| {
                let l = n.to_ascii_lowercase().replace([' ', '-'], "_");
                let s = &side[..1];
                l.contains("lung")
                    && (l.ends_with(&format!("_{s}"))
                        || l.contains(side)
                        || l.starts_with(&format!("{s}_"))
                        || l.starts_with(&format!("{s}lung")))
            })
            .cloned()
    };
    let ours = lungs.to_volume_grid(vol.shape());
    let mut out = Vec::new();
    for (side, label) in [
        ("right", lumen_ai::lungs::RIGHT),
        ("left", lumen_ai::lungs::LEFT),
    ] {
        let Some(roi) = find(side) else {
            anyhow::bail!(
                "the RTSTRUCT has no {side} lung ROI (ROIs: {})",
                names.join(", ")
            );
        };
        let truth = lumen_ai::eval::rtstruct_mask(&rt, vol, &roi)?;
        let mine = ours.mapv(|l| l == label);
        out.push((side, roi, lumen_ai::eval::dice(&mine, &truth)?));
    }
    Ok(out)
}

fn print_report(a: &Analysis, load_s: f64, total_s: f64) {
    println!(
        "Series {}  ({} x {} x {} voxels, {:.2} x {:.2} x {:.2} mm)",
        a.series_uid.as_deref().unwrap_or("(no UID)"),
        a.shape[2],
        a.shape[1],
        a.shape[0],
        a.spacing_mm[2],
        a.spacing_mm[1],
        a.spacing_mm[0]
    );
    println!(
        "Lungs: right {:.0} mL, left {:.0} mL (airways removed: {:.0} mL)",
        a.lungs.right_volume_ml, a.lungs.left_volume_ml, a.lungs.airway_volume_ml
    );
    let reported: Vec<_> = a.reported().collect();
    println!();
    if reported.is_empty() {
        println!("No nodule with score >= {:.2}.", a.report_score);
    } else {
        println!(
            "{:>3} {:>5} {:<12} {:>11} {:>6} {:>9} {:>6} {:>6} {:<10} {:>5} {:<24} {:>4}",
            "#",
            "score",
            "type",
            "long x short",
            "mean",
            "vol mm3",
            "HU",
            "maxHU",
            "site",
            "slice",
            "centre (x, y, z) mm",
            "LR"
        );
        for n in &reported {
            let solid = n
                .solid_component
                .as_ref()
                .map(|s| format!(" (solid {:.1} mm)", s.mean_diameter_mm))
                .unwrap_or_default();
            println!(
                "{:>3} {:>5.2} {:<12} {:>5.1} x{:>5.1} {:>6.1} {:>9.1} {:>6.0} {:>6.0} {:<10} {:>5} {:<24} {:>4}{}",
                n.id,
                n.score,
                n.kind.as_str(),
                n.long_axis_mm,
                n.short_axis_mm,
                n.mean_diameter_mm,
                n.volume_mm3,
                n.mean_hu,
                n.max_hu,
                format!(
                    "{} {}{}",
                    n.side,
                    n.lobe,
                    if n.juxtapleural { "*" } else { "" }
                ),
                n.slice_index,
                format!(
                    "({:.1}, {:.1}, {:.1})",
                    n.center_world_mm[0], n.center_world_mm[1], n.center_world_mm[2]
                ),
                n.lung_rads.as_str(),
                solid
            );
        }
        println!(
            "(* juxtapleural; lobe is a position-based estimate; slice is 0-based along the slice normal)"
        );
    }
    let below = a.nodules.len() - reported.len();
    if below > 0 {
        println!("{below} lower-scored finding(s) in the JSON output.");
    }
    println!();
    println!(
        "Lung-RADS v2022 (baseline): {} - {}",
        a.lung_rads.as_str(),
        a.lung_rads_management
    );
    println!("Fleischner 2017: {}", a.fleischner);
    println!();
    print!("Times: load {load_s:.2}s");
    for t in &a.timings {
        print!(", {} {:.2}s", t.stage, t.seconds);
    }
    println!(", total {total_s:.2}s ({} candidates)", a.candidates);
    for w in &a.warnings {
        println!("warning: {w}");
    }
}

/// Runs `lumen eval`.
pub fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    print!("{}", eval_report(&args)?);
    Ok(())
}

/// The text `lumen eval` prints; its last line is `CPM: 0.xxx`.
fn eval_report(args: &EvalArgs) -> anyhow::Result<String> {
    use std::fmt::Write;
    let anns = read_annotations(&args.annotations)?;
    let excl = match &args.excluded {
        Some(p) => read_annotations(p)?,
        None => Vec::new(),
    };
    let dets = read_detections(&args.detections)?;
    let scans: Vec<String> = match &args.seriesuids {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            text.lines()
                .map(|l| l.trim().trim_matches('"').to_string())
                .filter(|l| !l.is_empty() && l != "seriesuid")
                .collect()
        }
        None => {
            let mut s: Vec<String> = dets.iter().map(|d| d.series_uid.clone()).collect();
            s.sort();
            s.dedup();
            s
        }
    };
    anyhow::ensure!(
        !scans.is_empty(),
        "no scans to evaluate (empty detections and no --seriesuids)"
    );
    let f = froc(&scans, &anns, &excl, &dets);
    let mut out = String::new();
    writeln!(
        out,
        "scans {}, reference nodules {}, detected {}, false positives {}, ignored {}",
        f.scans, f.nodules, f.detected, f.false_positives, f.ignored
    )?;
    writeln!(out, "FROC (sensitivity at false positives per scan):")?;
    for (r, s) in CPM_FP_RATES.iter().zip(f.sens_at.iter()) {
        writeln!(out, "  {r:>6.3} FP/scan: {s:.3}")?;
    }
    writeln!(out, "CPM: {:.3}", f.cpm)?;
    Ok(out)
}

/// `lumen analyze --study UID`: asks the running archive to analyse the study again.
fn analyze_study(server: &str, study: &str, wait: bool) -> anyhow::Result<()> {
    let base = server.trim_end_matches('/');
    let url = format!("{base}/api/studies/{study}/ai");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let token = std::env::var("LUMEN_TOKEN").unwrap_or_default();
    anyhow::ensure!(
        !token.is_empty(),
        "set LUMEN_TOKEN to a bearer token (POST /api/auth/login) of a user who may re-run the AI"
    );
    let auth = format!("Bearer {}", token.trim());
    let mut r = agent
        .post(&url)
        .header("Authorization", &auth)
        .send_empty()
        .with_context(|| {
            format!("cannot reach the archive at {base} (is `lumen serve` running?)")
        })?;
    let status = r.status().as_u16();
    let body: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
    anyhow::ensure!(
        status == 202,
        "the archive refused: {} ({status})",
        body["error"].as_str().unwrap_or("no reason given")
    );
    println!("queued {} series of study {study}", body["queued_series"]);
    if !wait {
        return Ok(());
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let v: serde_json::Value = agent
            .get(&url)
            .header("Authorization", &auth)
            .call()
            .context("cannot read the AI status")?
            .body_mut()
            .read_json()
            .context("malformed AI status")?;
        let series = v["series"].as_array().cloned().unwrap_or_default();
        let ended = |s: &serde_json::Value| {
            matches!(s["state"].as_str(), Some("done" | "failed" | "skipped"))
        };
        if !series.is_empty() && series.iter().all(ended) {
            for s in &series {
                let n = s["result"]["analysis"]["nodules"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                println!(
                    "series {}: {}{} ({} nodules; exam Lung-RADS {})",
                    s["series_uid"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?"),
                    s["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default(),
                    n,
                    s["result"]["analysis"]["lung_rads"].as_str().unwrap_or("-"),
                );
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_prints_cpm_last() {
        let dir = tempfile::tempdir().unwrap();
        let ann = dir.path().join("annotations.csv");
        let exc = dir.path().join("excluded.csv");
        let det = dir.path().join("detections.csv");
        std::fs::write(
            &ann,
            "seriesuid,coordX,coordY,coordZ,diameter_mm\nS,0,0,0,10\nS,50,0,0,6\n",
        )
        .unwrap();
        std::fs::write(
            &exc,
            "seriesuid,coordX,coordY,coordZ,diameter_mm\nS,0,50,0,-1\n",
        )
        .unwrap();
        // Hit on nodule 1 (0.9), FP (0.95), ignored on the excluded finding, FP (0.7).
        std::fs::write(
            &det,
            "seriesuid,coordX,coordY,coordZ,probability\nS,1,1,0,0.9\nS,0,5,0,0.95\nS,0,53,0,0.8\nS,53.1,0,0,0.7\n",
        )
        .unwrap();
        let args = EvalArgs {
            annotations: ann,
            excluded: Some(exc),
            seriesuids: None,
            detections: det,
        };
        let out = eval_report(&args).unwrap();
        // Curve: (0,0) (1,0) (1,1/2) (2,1/2): 1/8..1/2 -> 0, 1..8 -> 1/2; CPM = 2/7.
        assert_eq!(out.lines().last().unwrap(), "CPM: 0.286", "{out}");
        assert!(
            out.contains("detected 1, false positives 2, ignored 1"),
            "{out}"
        );
    }
}
