//! Evaluation: FROC and CPM by the LUNA16 rules, and Dice overlap for masks.
//!
//! The rules follow the LUNA16 evaluation script (`noduleCADEvaluationLUNA16.py`): at most 100
//! detections per scan (those above the 101st probability), a detection hits a nodule when its
//! squared distance to the centre is below the squared radius, the best-scored hit per nodule
//! counts and its other hits are ignored, detections on excluded findings (diameter -1 read as
//! 10 mm) are ignored, missed nodules enter at probability -1e9, and CPM is the mean sensitivity
//! at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per scan, interpolated as `numpy.interp` does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The FP-per-scan operating points of the CPM.
pub const CPM_FP_RATES: [f64; 7] = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
/// Detections kept per scan.
pub const MAX_MARKS_PER_SCAN: usize = 100;

/// Why an evaluation input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A CSV is malformed.
    #[error("{path} line {line}: {reason}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// Two masks differ in shape.
    #[error("mask shapes differ: {0:?} vs {1:?}")]
    Shape(Vec<usize>, Vec<usize>),
}

/// A reference nodule (annotations.csv row), world mm.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Annotation {
    /// Series Instance UID.
    pub series_uid: String,
    /// Centre in world mm.
    pub center: [f64; 3],
    /// Diameter in mm (-1 in excluded files means 10 mm).
    pub diameter_mm: f64,
}

/// A detection (seriesuid,coordX,coordY,coordZ,probability).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// Series Instance UID.
    pub series_uid: String,
    /// Centre in world mm.
    pub center: [f64; 3],
    /// Score; higher is more likely a nodule.
    pub probability: f64,
}

/// The FROC result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Froc {
    /// Number of scans (the FP divisor).
    pub scans: usize,
    /// Number of reference nodules in those scans.
    pub nodules: usize,
    /// Nodules hit by at least one kept detection.
    pub detected: usize,
    /// Detections counted as false positives.
    pub false_positives: usize,
    /// Detections ignored (on excluded findings, or second hits on a nodule).
    pub ignored: usize,
    /// FROC curve: average false positives per scan.
    pub fps: Vec<f64>,
    /// FROC curve: sensitivity at each point.
    pub sens: Vec<f64>,
    /// Sensitivity at each of [`CPM_FP_RATES`].
    pub sens_at: [f64; 7],
    /// Competition performance metric: mean of `sens_at`.
    pub cpm: f64,
}

/// Reads a LUNA16 annotations CSV (seriesuid,coordX,coordY,coordZ,diameter_mm).
pub fn read_annotations(path: &Path) -> Result<Vec<Annotation>, EvalError> {
    read_rows(path, "diameter_mm")?
        .into_iter()
        .map(|(uid, c, v)| {
            Ok(Annotation {
                series_uid: uid,
                center: c,
                diameter_mm: v,
            })
        })
        .collect()
}

/// Reads a detections CSV (seriesuid,coordX,coordY,coordZ,probability).
pub fn read_detections(path: &Path) -> Result<Vec<Detection>, EvalError> {
    read_rows(path, "probability")?
        .into_iter()
        .map(|(uid, c, v)| {
            Ok(Detection {
                series_uid: uid,
                center: c,
                probability: v,
            })
        })
        .collect()
}

/// Writes detections as a LUNA16 CSV.
pub fn write_detections(dets: &[Detection]) -> String {
    let mut s = String::from("seriesuid,coordX,coordY,coordZ,probability\n");
    for d in dets {
        s.push_str(&format!(
            "{},{:.4},{:.4},{:.4},{:.6}\n",
            d.series_uid, d.center[0], d.center[1], d.center[2], d.probability
        ));
    }
    s
}

type Row = (String, [f64; 3], f64);

fn read_rows(path: &Path, last: &str) -> Result<Vec<Row>, EvalError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Io {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    let mut cols: Option<[usize; 5]> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .collect();
        let err = |reason: String| EvalError::Csv {
            path: p.clone(),
            line: i + 1,
            reason,
        };
        let Some(c) = cols else {
            let find = |n: &str| f.iter().position(|h| h.eq_ignore_ascii_case(n));
            let names = ["seriesuid", "coordX", "coordY", "coordZ", last];
            let mut idx = [0usize; 5];
            for (k, n) in names.iter().enumerate() {
                idx[k] = find(n).ok_or_else(|| err(format!("header lacks column {n}")))?;
            }
            cols = Some(idx);
            continue;
        };
        let get = |k: usize| -> Result<f64, EvalError> {
            f.get(c[k])
                .ok_or_else(|| err("missing field".into()))?
                .parse::<f64>()
                .map_err(|e| err(format!("bad number: {e}")))
        };
        let uid = f
            .get(c[0])
            .ok_or_else(|| err("missing seriesuid".into()))?
            .to_string();
        out.push((uid, [get(1)?, get(2)?, get(3)?], get(4)?));
    }
    Ok(out)
}

/// Computes the FROC curve and CPM over `scans` (the series evaluated; detections and
/// annotations of other series are ignored).
pub fn froc(
    scans: &[String],
    annotations: &[Annotation],
    excluded: &[Annotation],
    detections: &[Detection],
) -> Froc {
    let scan_set: BTreeSet<&str> = scans.iter().map(String::as_str).collect();
    let mut by_scan: BTreeMap<&str, Vec<&Detection>> = BTreeMap::new();
    for d in detections {
        if scan_set.contains(d.series_uid.as_str()) {
            by_scan.entry(d.series_uid.as_str()).or_default().push(d);
        }
    }
    // (is_nodule, probability, excluded_from_roc)
    let mut gt: Vec<(bool, f64, bool)> = Vec::new();
    let mut ignored = 0usize;
    let mut nodules = 0usize;
    let mut detected = 0usize;
    for &scan in &scan_set {
        let mut cands: Vec<&Detection> = by_scan.remove(scan).unwrap_or_default();
        if cands.len() > MAX_MARKS_PER_SCAN {
            let mut probs: Vec<f64> = cands.iter().map(|d| d.probability).collect();
            probs.sort_by(|a, b| b.total_cmp(a));
            let thr = probs[MAX_MARKS_PER_SCAN];
            cands.retain(|d| d.probability > thr);
        }
        let mut alive = vec![true; cands.len()];
        let included = annotations.iter().filter(|a| a.series_uid == scan);
        let excl = excluded.iter().filter(|a| a.series_uid == scan);
        for (a, is_included) in included.map(|a| (a, true)).chain(excl.map(|a| (a, false))) {
            let diameter = if a.diameter_mm < 0.0 {
                10.0
            } else {
                a.diameter_mm
            };
            let r2 = (diameter / 2.0).powi(2);
            let mut best: Option<f64> = None;
            let mut hits_alive = 0usize;
            for (k, d) in cands.iter().enumerate() {
                let dist2: f64 = (0..3).map(|i| (d.center[i] - a.center[i]).powi(2)).sum();
                if dist2 < r2 {
                    if is_included {
                        best = Some(best.map_or(d.probability, |b: f64| b.max(d.probability)));
                        if alive[k] {
                            alive[k] = false;
                            hits_alive += 1;
                        }
                    } else if alive[k] {
                        alive[k] = false;
                        ignored += 1;
                    }
                }
            }
            if is_included {
                ignored += hits_alive.saturating_sub(1);
                nodules += 1;
                match best {
                    Some(p) => {
                        detected += 1;
                        gt.push((true, p, false));
                    }
                    None => gt.push((true, -1e9, true)),
                }
            }
        }
        // Matched-but-not-best hits are ignored; the rest are false positives.
        for (k, d) in cands.iter().enumerate() {
            if alive[k] {
                gt.push((false, d.probability, false));
            }
        }
    }
    let false_positives = gt.iter().filter(|g| !g.0).count();
    let (fps, sens) = froc_curve(&gt, nodules, scan_set.len());
    let mut sens_at = [0.0; 7];
    for (k, &r) in CPM_FP_RATES.iter().enumerate() {
        sens_at[k] = np_interp(r, &fps, &sens);
    }
    let cpm = sens_at.iter().sum::<f64>() / 7.0;
    Froc {
        scans: scan_set.len(),
        nodules,
        detected,
        false_positives,
        ignored,
        fps,
        sens,
        sens_at,
        cpm,
    }
}

/// The ROC-derived FROC curve as the LUNA16 script builds it with `sklearn.metrics.roc_curve`:
/// one point per distinct threshold (descending), starting at (0, 0).
fn froc_curve(gt: &[(bool, f64, bool)], nodules: usize, scans: usize) -> (Vec<f64>, Vec<f64>) {
    let mut kept: Vec<(bool, f64)> = gt.iter().filter(|g| !g.2).map(|g| (g.0, g.1)).collect();
    kept.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut fps = vec![0.0];
    let mut sens = vec![0.0];
    let (mut tp, mut fp) = (0usize, 0usize);
    let scans = scans.max(1) as f64;
    let nodules = nodules.max(1) as f64;
    let mut i = 0;
    while i < kept.len() {
        let thr = kept[i].1;
        while i < kept.len() && kept[i].1 == thr {
            if kept[i].0 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        fps.push(fp as f64 / scans);
        sens.push(tp as f64 / nodules);
    }
    (fps, sens)
}

/// `numpy.interp(x, xp, fp)` for non-decreasing `xp`: clamps outside, and at a repeated
/// abscissa returns the value at its last occurrence.
pub fn np_interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if n == 0 {
        return 0.0;
    }
    if x < xp[0] {
        return fp[0];
    }
    if x >= xp[n - 1] {
        return fp[n - 1];
    }
    // Last j with xp[j] <= x.
    let j = xp.partition_point(|&v| v <= x) - 1;
    if xp[j] == x {
        return fp[j];
    }
    let t = (x - xp[j]) / (xp[j + 1] - xp[j]);
    fp[j] + t * (fp[j + 1] - fp[j])
}

/// Dice coefficient of two boolean masks of the same shape (1.0 when both are empty).
pub fn dice<D: ndarray::Dimension>(
    a: &ndarray::Array<bool, D>,
    b: &ndarray::Array<bool, D>,
) -> Result<f64, EvalError> {
    if a.shape() != b.shape() {
        return Err(EvalError::Shape(a.shape().to_vec(), b.shape().to_vec()));
    }
    let (mut inter, mut sa, mut sb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b.iter()) {
        sa += x as usize;
        sb += y as usize;
        inter += (x && y) as usize;
    }
    if sa + sb == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * inter as f64 / (sa + sb) as f64)
}

/// Rasterises a closed planar polygon (pixel coordinates `(x, y)`) into a `rows x cols` mask by
/// the even-odd rule at pixel centres (as RTSTRUCT contours are drawn).
pub fn rasterize_polygon(poly: &[(f64, f64)], rows: usize, cols: usize) -> ndarray::Array2<bool> {
    let mut m = ndarray::Array2::from_elem((rows, cols), false);
    if poly.len() < 3 {
        return m;
    }
    for y in 0..rows {
        let yc = y as f64;
        let mut xs: Vec<f64> = Vec::new();
        for k in 0..poly.len() {
            let (x0, y0) = poly[k];
            let (x1, y1) = poly[(k + 1) % poly.len()];
            if (y0 <= yc && y1 > yc) || (y1 <= yc && y0 > yc) {
                xs.push(x0 + (yc - y0) / (y1 - y0) * (x1 - x0));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixel centres x with pair[0] <= x < pair[1].
            let mut x = pair[0].ceil().max(0.0);
            while x < pair[1] && x < cols as f64 {
                m[[y, x as usize]] = true;
                x += 1.0;
            }
        }
    }
    m
}

/// Names of the ROIs of an RTSTRUCT (StructureSetROISequence), in file order.
pub fn rtstruct_roi_names(rt: &dicom_object::DefaultDicomObject) -> Vec<String> {
    use dicom_dictionary_std::tags;
    rt.element_opt(tags::STRUCTURE_SET_ROI_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .map(|items| {
            items
                .iter()
                .filter_map(|r| r.element_opt(tags::ROI_NAME).ok().flatten())
                .filter_map(|e| e.to_str().ok().map(|s| s.trim().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Rasterises the closed planar contours of RTSTRUCT ROI `roi` (case-insensitive name) onto the
/// volume grid: each contour goes to the slice within half a slice spacing of its plane, and
/// contours of one ROI on one slice combine by XOR (holes), as RTSTRUCT intends.
pub fn rtstruct_mask(
    rt: &dicom_object::DefaultDicomObject,
    vol: &crate::Volume,
    roi: &str,
) -> Result<ndarray::Array3<bool>, EvalError> {
    use dicom_dictionary_std::tags;
    let bad = |reason: &str| EvalError::Csv {
        path: "RTSTRUCT".into(),
        line: 0,
        reason: reason.to_string(),
    };
    let rois = rt
        .element_opt(tags::STRUCTURE_SET_ROI_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .ok_or_else(|| bad("no StructureSetROISequence"))?;
    let number = rois
        .iter()
        .find(|r| {
            r.element_opt(tags::ROI_NAME)
                .ok()
                .flatten()
                .and_then(|e| e.to_str().ok())
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(roi))
        })
        .and_then(|r| r.element_opt(tags::ROI_NUMBER).ok().flatten())
        .and_then(|e| e.to_int::<i64>().ok())
        .ok_or_else(|| bad(&format!("no ROI named {roi}")))?;
    let [nz, ny, nx] = vol.shape();
    let mut mask = ndarray::Array3::from_elem((nz, ny, nx), false);
    let contours = rt
        .element_opt(tags::ROI_CONTOUR_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .ok_or_else(|| bad("no ROIContourSequence"))?;
    for rc in contours {
        let r = rc
            .element_opt(tags::REFERENCED_ROI_NUMBER)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<i64>().ok());
        if r != Some(number) {
            continue;
        }
        let Some(items) = rc
            .element_opt(tags::CONTOUR_SEQUENCE)
            .ok()
            .flatten()
            .and_then(|e| e.items())
        else {
            continue;
        };
        for c in items {
            let Some(pts) = c
                .element_opt(tags::CONTOUR_DATA)
                .ok()
                .flatten()
                .and_then(|e| e.to_multi_float64().ok())
            else {
                continue;
            };
            if pts.len() < 9 {
                continue;
            }
            let vox: Vec<[f64; 3]> = pts
                .chunks_exact(3)
                .map(|p| vol.world_to_voxel([p[0], p[1], p[2]]))
                .collect();
            let z = vox.iter().map(|v| v[0]).sum::<f64>() / vox.len() as f64;
            let zi = z.round();
            if (z - zi).abs() > 0.5 || zi < 0.0 || zi >= nz as f64 {
                continue;
            }
            let poly: Vec<(f64, f64)> = vox.iter().map(|v| (v[2], v[1])).collect();
            let m = rasterize_polygon(&poly, ny, nx);
            let mut plane = mask.index_axis_mut(ndarray::Axis(0), zi as usize);
            ndarray::Zip::from(&mut plane)
                .and(&m)
                .for_each(|a, &b| *a ^= b);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(uid: &str, c: [f64; 3], d: f64) -> Annotation {
        Annotation {
            series_uid: uid.into(),
            center: c,
            diameter_mm: d,
        }
    }
    fn det(uid: &str, c: [f64; 3], p: f64) -> Detection {
        Detection {
            series_uid: uid.into(),
            center: c,
            probability: p,
        }
    }

    #[test]
    fn hand_worked_two_scans() {
        // Scan A: nodule N1 at origin, 10 mm; nodule N2 at (50,0,0), 6 mm (missed);
        // excluded finding at (0,50,0) diameter -1 (10 mm).
        // Scan B: nodule N3 at (0,0,0), 20 mm.
        let scans = vec!["A".to_string(), "B".to_string()];
        let anns = vec![
            ann("A", [0.0; 3], 10.0),
            ann("A", [50.0, 0.0, 0.0], 6.0),
            ann("B", [0.0; 3], 20.0),
        ];
        let excl = vec![ann("A", [0.0, 50.0, 0.0], -1.0)];
        let dets = vec![
            det("A", [1.0, 1.0, 0.0], 0.9),  // hit N1 (best)
            det("A", [0.0, 4.0, 0.0], 0.5),  // second hit on N1: ignored
            det("A", [0.0, 5.0, 0.0], 0.95), // distance 5 = radius: not a hit -> FP
            det("A", [0.0, 53.0, 0.0], 0.8), // on excluded: ignored
            det("A", [53.1, 0.0, 0.0], 0.7), // 3.1 mm from N2 (radius 3): FP
            det("B", [0.0, 9.9, 0.0], 0.3),  // hit N3
            det("B", [90.0, 0.0, 0.0], 0.2), // FP
            det("C", [0.0; 3], 1.0),         // other scan: ignored
        ];
        let f = froc(&scans, &anns, &excl, &dets);
        assert_eq!(
            (f.scans, f.nodules, f.detected, f.false_positives),
            (2, 3, 2, 3)
        );
        // Sorted kept list: 0.95 FP, 0.9 TP, 0.7 FP, 0.3 TP, 0.2 FP.
        // Curve (FP/scan, sens): (0,0) (.5,0) (.5,1/3) (1,1/3) (1,2/3) (1.5,2/3).
        let expect_fps = [0.0, 0.5, 0.5, 1.0, 1.0, 1.5];
        let expect_sens = [0.0, 0.0, 1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0];
        assert_eq!(f.fps, expect_fps);
        for (a, b) in f.sens.iter().zip(expect_sens) {
            assert!((a - b).abs() < 1e-12);
        }
        // 1/8: between (0,0) and (0.5,0) -> 0; 1/4 -> 0; 1/2 -> last value at 0.5 = 1/3;
        // 1 -> 2/3; 2, 4, 8 -> 2/3 (clamped).
        let expect = [
            0.0,
            0.0,
            1.0 / 3.0,
            2.0 / 3.0,
            2.0 / 3.0,
            2.0 / 3.0,
            2.0 / 3.0,
        ];
        for (a, b) in f.sens_at.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{:?}", f.sens_at);
        }
        let cpm = (1.0 / 3.0 + 4.0 * 2.0 / 3.0) / 7.0;
        assert!((f.cpm - cpm).abs() < 1e-12);
    }

    #[test]
    fn interpolates_between_points() {
        // One scan, one nodule found at 0.6 after 3 FPs scored above it, then 1 FP below.
        let scans = vec!["S".to_string()];
        let anns = vec![ann("S", [0.0; 3], 10.0)];
        let dets = vec![
            det("S", [100.0, 0.0, 0.0], 0.9),
            det("S", [200.0, 0.0, 0.0], 0.8),
            det("S", [300.0, 0.0, 0.0], 0.7),
            det("S", [0.0; 3], 0.6),
            det("S", [400.0, 0.0, 0.0], 0.1),
        ];
        let f = froc(&scans, &anns, &[], &dets);
        // Points: (0,0) (1,0) (2,0) (3,0) (3,1) (4,1); at 2 -> 0, at 4 -> 1, at 8 -> 1.
        assert_eq!(f.sens_at, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        assert!((f.cpm - 2.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn keeps_only_top_100_marks() {
        let scans = vec!["S".to_string()];
        let anns = vec![ann("S", [0.0; 3], 10.0)];
        let mut dets: Vec<Detection> = (0..150)
            .map(|i| {
                det(
                    "S",
                    [100.0 + i as f64 * 20.0, 0.0, 0.0],
                    0.5 + i as f64 / 1000.0,
                )
            })
            .collect();
        dets.push(det("S", [0.0; 3], 0.1)); // below the 101st probability: dropped
        let f = froc(&scans, &anns, &[], &dets);
        assert_eq!(f.detected, 0);
        assert_eq!(f.false_positives, 100);
    }

    #[test]
    fn np_interp_matches_numpy() {
        let xp = [0.0, 1.0, 1.0, 3.0];
        let fp = [0.0, 0.2, 0.6, 1.0];
        assert_eq!(np_interp(-1.0, &xp, &fp), 0.0);
        assert_eq!(np_interp(1.0, &xp, &fp), 0.6);
        assert!((np_interp(2.0, &xp, &fp) - 0.8).abs() < 1e-12);
        assert_eq!(np_interp(5.0, &xp, &fp), 1.0);
    }

    #[test]
    fn dice_and_polygon() {
        let a = ndarray::Array1::from(vec![true, true, false, false]);
        let b = ndarray::Array1::from(vec![true, false, true, false]);
        assert!((dice(&a, &b).unwrap() - 0.5).abs() < 1e-12);
        // Square from (1,1) to (3,3): pixel centres 1..=3 on each axis, 9 pixels.
        let m = rasterize_polygon(&[(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0)], 6, 6);
        assert_eq!(
            m.iter().filter(|&&v| v).count(),
            4,
            "half-open: rows and columns 1, 2"
        );
        let tri = rasterize_polygon(&[(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)], 12, 12);
        let n = tri.iter().filter(|&&v| v).count();
        assert!((45..=66).contains(&n), "{n}");
    }
}
