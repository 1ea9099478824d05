//! Per-candidate nodule segmentation, features and Lung-RADS measurements.
//!
//! Each candidate is resampled into an isotropic sub-millimetre region of interest. The lung
//! background and the core density give a half-maximum threshold (volume-preserving under blur);
//! the component at the centre is separated from vessels and chest wall by a morphological opening
//! whose radius grows until the region no longer leaves the ROI. A second, lower threshold reveals
//! a ground-glass halo (part-solid nodules). Measurements follow Lung-RADS v2022: long and short
//! axis on the axial slice where the long axis is largest, mean diameter, volume, HU statistics,
//! type, solid-component size, centre, slice, side and lobe estimate.

use ndarray::{Array2, Array3, Axis, Zip};
use rayon::prelude::*;

use crate::candidates::Candidate;
use crate::lungs::{LEFT, LungMask, RIGHT};
use crate::ndimage::{edt_sq, label, labels_aligned, resample_aligned};
use crate::phantom::NoduleType;
use crate::volume::Volume;

/// Segmentation settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SegmentConfig {
    /// Smallest reported mean diameter, mm.
    pub min_diameter_mm: f64,
    /// Largest reported mean diameter, mm (bigger is a mass, not a nodule).
    pub max_diameter_mm: f64,
    /// Largest ROI half-size, mm.
    pub max_roi_mm: f64,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            min_diameter_mm: 3.0,
            max_diameter_mm: 40.0,
            max_roi_mm: 32.0,
        }
    }
}

/// Axial size of a region: Lung-RADS long axis, perpendicular short axis and their mean.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AxialSize {
    /// Longest in-plane diameter on the axial slice where it is largest, mm.
    pub long_axis_mm: f64,
    /// Largest diameter perpendicular to the long axis on that slice, mm.
    pub short_axis_mm: f64,
    /// (long + short) / 2, rounded to 0.1 mm as Lung-RADS asks.
    pub mean_diameter_mm: f64,
    /// Volume, mm³.
    pub volume_mm3: f64,
    /// End points of the long and short axis, `[[start, end]; 2]`, as continuous indices
    /// `[z, y, x]` of the grid the size was measured on; not serialised.
    #[serde(skip)]
    pub axes: [[[f64; 3]; 2]; 2],
}

/// Features used by false-positive reduction.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Features {
    /// Equivalent-sphere diameter, mm.
    pub equivalent_diameter_mm: f64,
    /// sqrt(l1 / l3) of the region's second moments (1 for a sphere).
    pub elongation: f64,
    /// Volume over that of the moment-fitted ellipsoid (~1 for compact blobs).
    pub fill: f64,
    /// Fraction of the region on the ROI faces (leak into vessels or wall).
    pub border_fraction: f64,
    /// Fraction of the region's surface shell outside the lung mask (pleural contact).
    pub wall_contact: f64,
    /// Fraction of the thresholded component removed by the opening (attached structures).
    pub opened_away: f64,
    /// Hessian dot measure at the candidate.
    pub dotness: f64,
    /// Hessian line measure at the candidate.
    pub lineness: f64,
    /// LoG response.
    pub response: f64,
    /// Core (peak) HU.
    pub peak_hu: f64,
    /// Local lung background HU.
    pub background_hu: f64,
    /// Threshold used, HU.
    pub threshold_hu: f64,
    /// Opening radius used, mm.
    pub opening_mm: f64,
}

/// A segmented, measured candidate (before scoring).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Centre (region centroid) in world mm.
    pub center_world_mm: [f64; 3],
    /// Centre as a continuous volume index `[z, y, x]`.
    pub center_voxel: [f64; 3],
    /// Nearest slice index (0-based, in geometry order).
    pub slice_index: usize,
    /// SOP Instance UID of that slice, when original.
    pub sop_instance_uid: Option<String>,
    /// Size of the whole nodule.
    pub size: AxialSize,
    /// Size of the solid component (part-solid nodules).
    pub solid: Option<AxialSize>,
    /// End points of the long axis in world mm (on the axial plane where it is longest).
    pub long_axis_line: [[f64; 3]; 2],
    /// End points of the short axis in world mm (perpendicular, through the long axis' middle).
    pub short_axis_line: [[f64; 3]; 2],
    /// Type.
    pub kind: NoduleType,
    /// Mean HU inside.
    pub mean_hu: f64,
    /// Max HU inside.
    pub max_hu: f64,
    /// "left" or "right".
    pub side: &'static str,
    /// Lobe estimate from position (no fissure detection): RUL, RML, RLL, LUL, LLL.
    pub lobe: &'static str,
    /// Touches the pleura.
    pub juxtapleural: bool,
    /// Features for false-positive reduction.
    pub features: Features,
    /// Likelihood of a true nodule in [0, 1], set by false-positive reduction.
    pub score: f64,
    /// The segmented region (for SEG export); not serialised.
    #[serde(skip)]
    pub mask: Option<NoduleMask>,
}

/// A nodule's segmentation on its isotropic ROI grid: ROI voxel `[i, j, k]` is at volume index
/// `origin + [i, j, k] * step`.
#[derive(Debug, Clone)]
pub struct NoduleMask {
    /// Volume index `[z, y, x]` of ROI voxel (0, 0, 0).
    pub origin: [f64; 3],
    /// Volume-index step per ROI voxel, `[z, y, x]`.
    pub step: [f64; 3],
    /// ROI edge length in voxels.
    pub n: usize,
    /// Inside the nodule, `[n, n, n]`.
    pub bits: Array3<bool>,
}

impl NoduleMask {
    /// Volume voxels `[z, y, x]` (within `shape`) inside the nodule, sampling the ROI mask at
    /// the nearest ROI voxel.
    pub fn volume_voxels(&self, shape: [usize; 3]) -> Vec<[usize; 3]> {
        let n = self.n as f64;
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for k in 0..3 {
            let a = self.origin[k] - 0.5 * self.step[k];
            let b = self.origin[k] + (n - 0.5) * self.step[k];
            lo[k] = a.min(b).ceil().max(0.0) as usize;
            hi[k] = ((a.max(b).floor() + 1.0).max(0.0) as usize).min(shape[k]);
        }
        let roi = |k: usize, v: usize| {
            let p = ((v as f64 - self.origin[k]) / self.step[k]).round();
            (p >= 0.0 && p < n).then_some(p as usize)
        };
        let mut out = Vec::new();
        for z in lo[0]..hi[0] {
            let Some(i) = roi(0, z) else { continue };
            for y in lo[1]..hi[1] {
                let Some(j) = roi(1, y) else { continue };
                for x in lo[2]..hi[2] {
                    if let Some(k) = roi(2, x)
                        && self.bits[[i, j, k]]
                    {
                        out.push([z, y, x]);
                    }
                }
            }
        }
        out
    }
}

/// Lung extents used for the lobe estimate, per side: `[z, y]` ranges in volume indices.
#[derive(Debug, Clone, Copy)]
struct Extent {
    z: [f64; 2],
    y: [f64; 2],
}

fn extents(lungs: &LungMask) -> [Option<Extent>; 2] {
    let mut e = [None, None];
    for (k, side) in [RIGHT, LEFT].into_iter().enumerate() {
        let mut z = [f64::MAX, f64::MIN];
        let mut y = [f64::MAX, f64::MIN];
        for ((iz, iy, _), &l) in lungs.labels.indexed_iter() {
            if l == side {
                let vz = (iz * lungs.factors[0]) as f64;
                let vy = (iy * lungs.factors[1]) as f64;
                z = [z[0].min(vz), z[1].max(vz)];
                y = [y[0].min(vy), y[1].max(vy)];
            }
        }
        if z[0] <= z[1] {
            e[k] = Some(Extent { z, y });
        }
    }
    e
}

/// Segments and measures every candidate (in parallel); candidates that are not nodule-like
/// blobs in the size range are dropped.
pub fn segment_candidates(
    vol: &Volume,
    lungs: &LungMask,
    cands: &[Candidate],
    cfg: &SegmentConfig,
) -> Vec<Finding> {
    let ext = extents(lungs);
    let mut out: Vec<Finding> = cands
        .par_iter()
        .filter_map(|c| segment_one(vol, lungs, c, cfg, &ext))
        .collect();
    // Several candidates can land on one large nodule: keep the strongest per nodule.
    out.sort_by(|a, b| b.features.response.total_cmp(&a.features.response));
    let mut kept: Vec<Finding> = Vec::new();
    for f in out {
        let dup = kept.iter().any(|k| {
            let d2: f64 = (0..3)
                .map(|i| (k.center_world_mm[i] - f.center_world_mm[i]).powi(2))
                .sum();
            let r = k.size.long_axis_mm.max(f.size.long_axis_mm) / 2.0;
            d2 < r * r
        });
        if !dup {
            kept.push(f);
        }
    }
    kept
}

struct Roi {
    hu: Array3<f32>,
    lung: Array3<bool>,
    /// Volume index of ROI voxel (0,0,0) and the volume-index step per ROI voxel.
    origin: [f64; 3],
    step: [f64; 3],
    n: usize,
}

impl Roi {
    fn to_volume(&self, p: [f64; 3]) -> [f64; 3] {
        [
            self.origin[0] + p[0] * self.step[0],
            self.origin[1] + p[1] * self.step[1],
            self.origin[2] + p[2] * self.step[2],
        ]
    }
}

fn build_roi(vol: &Volume, lungs: &LungMask, center: [f64; 3], half_mm: f64, res: f64) -> Roi {
    let sp = vol.geometry.spacing;
    let n = (2.0 * half_mm / res).round() as usize + 1;
    let c = (n - 1) as f64 / 2.0;
    let step = [res / sp[0], res / sp[1], res / sp[2]];
    let origin = [
        center[0] - c * step[0],
        center[1] - c * step[1],
        center[2] - c * step[2],
    ];
    let hu = resample_aligned(&vol.hu, origin, step, [n; 3], -1000.0);
    let lung = labels_aligned(&lungs.labels, lungs.factors, origin, step, [n; 3]).mapv(|l| l != 0);
    Roi {
        hu,
        lung,
        origin,
        step,
        n,
    }
}

fn percentile(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    *x
}

/// The component of `mask` containing (or nearest to, within `reach` voxels) the ROI centre.
fn center_component(mask: &Array3<bool>, reach: f64) -> Option<Array3<bool>> {
    let n = mask.dim().0;
    let c = (n - 1) as f64 / 2.0;
    let (lab, sizes) = label(mask, false);
    if sizes.len() <= 1 {
        return None;
    }
    let mut best: Option<(f64, u32)> = None;
    let r = reach.ceil() as isize;
    let ci = c.round() as isize;
    for dz in -r..=r {
        for dy in -r..=r {
            for dx in -r..=r {
                let p = (ci + dz, ci + dy, ci + dx);
                if p.0 < 0
                    || p.1 < 0
                    || p.2 < 0
                    || p.0 >= n as isize
                    || p.1 >= n as isize
                    || p.2 >= n as isize
                {
                    continue;
                }
                let l = lab[[p.0 as usize, p.1 as usize, p.2 as usize]];
                if l == 0 {
                    continue;
                }
                let d = ((p.0 as f64 - c).powi(2)
                    + (p.1 as f64 - c).powi(2)
                    + (p.2 as f64 - c).powi(2))
                .sqrt();
                if d <= reach && best.is_none_or(|b| d < b.0) {
                    best = Some((d, l));
                }
            }
        }
    }
    let (_, l) = best?;
    Some(lab.mapv(|v| v == l))
}

/// Opening by a ball of `r` voxels keeping the part connected to the centre, then reconstructed
/// inside `mask`.
fn open_center(mask: &Array3<bool>, r_vox: f64, reach: f64) -> Option<Array3<bool>> {
    let d = edt_sq(mask, [1.0; 3]);
    let r2 = (r_vox * r_vox) as f32;
    let eroded = d.mapv(|v| v > r2);
    let core = center_component(&eroded, reach)?;
    let inv = core.mapv(|v| !v);
    let dd = edt_sq(&inv, [1.0; 3]);
    let mut opened = dd.mapv(|v| v <= r2);
    Zip::from(&mut opened)
        .and(mask)
        .for_each(|o, &m| *o = *o && m);
    center_component(&opened, reach)
}

fn count(m: &Array3<bool>) -> usize {
    m.iter().filter(|&&v| v).count()
}

fn border_fraction(m: &Array3<bool>) -> f64 {
    let n = m.dim().0;
    let mut b = 0usize;
    for ((z, y, x), &v) in m.indexed_iter() {
        if v && (z == 0 || y == 0 || x == 0 || z == n - 1 || y == n - 1 || x == n - 1) {
            b += 1;
        }
    }
    let face = (count(m) as f64).powf(2.0 / 3.0).max(1.0);
    b as f64 / face
}

/// Lung-RADS axial size of a region on an isotropic grid of `res` mm whose axis 0 is the slice
/// normal.
pub fn axial_size(m: &Array3<bool>, res: f64) -> AxialSize {
    let volume_mm3 = count(m) as f64 * res.powi(3);
    let mut best = PlaneAxes::default();
    let mut best_z = 0usize;
    for (z, plane) in m.axis_iter(Axis(0)).enumerate() {
        let axes = plane_axes(&plane.to_owned(), res);
        if axes.long > best.long {
            best = axes;
            best_z = z;
        }
    }
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let z = best_z as f64;
    let at = |p: [f64; 2]| [z, p[0], p[1]];
    AxialSize {
        long_axis_mm: round(best.long),
        short_axis_mm: round(best.short),
        mean_diameter_mm: round((round(best.long) + round(best.short)) / 2.0),
        volume_mm3: (volume_mm3 * 10.0).round() / 10.0,
        axes: [
            [at(best.long_line[0]), at(best.long_line[1])],
            [at(best.short_line[0]), at(best.short_line[1])],
        ],
    }
}

/// The axes of one plane: lengths in mm and end points as `[y, x]` grid indices.
#[derive(Debug, Clone, Copy, Default)]
struct PlaneAxes {
    long: f64,
    short: f64,
    long_line: [[f64; 2]; 2],
    short_line: [[f64; 2]; 2],
}

/// Long axis (max Feret) and the caliper width perpendicular to it, of a 2D mask, in mm, with
/// their end points.
fn plane_axes(p: &Array2<bool>, res: f64) -> PlaneAxes {
    let (ny, nx) = p.dim();
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for ((y, x), &v) in p.indexed_iter() {
        if !v {
            continue;
        }
        let edge = y == 0
            || x == 0
            || y + 1 == ny
            || x + 1 == nx
            || !p[[y - 1, x]]
            || !p[[y + 1, x]]
            || !p[[y, x - 1]]
            || !p[[y, x + 1]];
        if edge {
            pts.push((y as f64, x as f64));
        }
    }
    if pts.is_empty() {
        return PlaneAxes::default();
    }
    let mut best = (0.0, (0.0, 1.0), 0usize);
    for i in 0..pts.len() {
        for j in i + 1..pts.len() {
            let d = (pts[i].0 - pts[j].0).hypot(pts[i].1 - pts[j].1);
            if d > best.0 {
                best = (d, (pts[j].0 - pts[i].0, pts[j].1 - pts[i].1), i);
            }
        }
    }
    let (dy, dx) = best.1;
    let norm = dy.hypot(dx).max(1e-9);
    let u = (dy / norm, dx / norm);
    let w = (-dx / norm, dy / norm);
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for &(y, x) in &pts {
        let s = y * w.0 + x * w.1;
        lo = lo.min(s);
        hi = hi.max(s);
    }
    // Voxel centres: the extreme voxels reach about half a voxel further on average, so each
    // drawn end point is moved out by a quarter voxel and the lines are as long as reported.
    let a = pts[best.2];
    let long_line = [
        [a.0 - 0.25 * u.0, a.1 - 0.25 * u.1],
        [a.0 + (best.0 + 0.25) * u.0, a.1 + (best.0 + 0.25) * u.1],
    ];
    // The short axis is drawn perpendicular to the long axis through its middle.
    let mid = (a.0 + 0.5 * best.0 * u.0, a.1 + 0.5 * best.0 * u.1);
    let m = mid.0 * w.0 + mid.1 * w.1;
    let short_line = [
        [mid.0 + (lo - 0.25 - m) * w.0, mid.1 + (lo - 0.25 - m) * w.1],
        [mid.0 + (hi + 0.25 - m) * w.0, mid.1 + (hi + 0.25 - m) * w.1],
    ];
    PlaneAxes {
        long: (best.0 + 0.5) * res,
        short: (hi - lo + 0.5) * res,
        long_line,
        short_line,
    }
}

fn moments(m: &Array3<bool>) -> ([f64; 3], [f64; 3]) {
    let (mut s, mut n) = ([0f64; 3], 0f64);
    for ((z, y, x), &v) in m.indexed_iter() {
        if v {
            s[0] += z as f64;
            s[1] += y as f64;
            s[2] += x as f64;
            n += 1.0;
        }
    }
    let c = [s[0] / n, s[1] / n, s[2] / n];
    let mut cov = [0f64; 6]; // xx yy zz xy xz yz with x=z-axis etc.
    for ((z, y, x), &v) in m.indexed_iter() {
        if v {
            let d = [z as f64 - c[0], y as f64 - c[1], x as f64 - c[2]];
            cov[0] += d[0] * d[0];
            cov[1] += d[1] * d[1];
            cov[2] += d[2] * d[2];
            cov[3] += d[0] * d[1];
            cov[4] += d[0] * d[2];
            cov[5] += d[1] * d[2];
        }
    }
    for v in &mut cov {
        *v /= n;
    }
    let mut ev = crate::ndimage::sym_eigen3(cov);
    ev.sort_by(|a, b| b.total_cmp(a));
    (c, ev)
}

fn segment_one(
    vol: &Volume,
    lungs: &LungMask,
    cand: &Candidate,
    cfg: &SegmentConfig,
    ext: &[Option<Extent>; 2],
) -> Option<Finding> {
    let r_est = cand.radius_mm();
    let res = (r_est / 6.0).clamp(0.35, 0.7);
    let half = (2.0 * r_est + 3.5).clamp(6.0, cfg.max_roi_mm);
    let roi = build_roi(vol, lungs, cand.center_voxel, half, res);
    let n = roi.n;
    let c = (n - 1) as f64 / 2.0;
    // Background: lung parenchyma around the candidate.
    let mut bgv: Vec<f32> = roi
        .hu
        .iter()
        .zip(roi.lung.iter())
        .filter(|(v, l)| **l && **v < -500.0)
        .map(|(v, _)| *v)
        .collect();
    let bg = if bgv.len() > 20 {
        percentile(&mut bgv, 0.5) as f64
    } else {
        -860.0
    };
    // Peak: upper quartile within half the estimated radius of the centre.
    let rc = (0.5 * r_est / res).max(1.5);
    let mut core = Vec::new();
    for ((z, y, x), &v) in roi.hu.indexed_iter() {
        let d2 = (z as f64 - c).powi(2) + (y as f64 - c).powi(2) + (x as f64 - c).powi(2);
        if d2 <= rc * rc {
            core.push(v);
        }
    }
    let peak = percentile(&mut core, 0.75) as f64;
    if !peak.is_finite() || peak - bg < 120.0 {
        return None;
    }
    let reach = (0.6 * r_est / res).max(2.0);
    let region_at = |thr: f64| -> Option<(Array3<bool>, f64, f64, f64)> {
        let mut m = roi.hu.mapv(|v| v as f64 > thr);
        Zip::from(&mut m)
            .and(&roi.lung)
            .for_each(|a, &l| *a = *a && l);
        let comp = center_component(&m, reach)?;
        let before = count(&comp) as f64;
        let bf0 = border_fraction(&comp);
        if bf0 == 0.0 {
            // Isolated: nothing to detach.
            return Some((comp, 0.0, 0.0, 0.0));
        }
        // The nodule is the largest ball inscribed near the centre; attached vessels and wall
        // are thinner. Open with a fraction of that radius, growing until nothing leaves the ROI.
        let d = edt_sq(&comp, [1.0; 3]);
        let ci = c.round() as isize;
        let rr = reach.ceil() as isize;
        let mut max_d2 = 0f32;
        for dz in -rr..=rr {
            for dy in -rr..=rr {
                for dx in -rr..=rr {
                    let p = [ci + dz, ci + dy, ci + dx];
                    if p.iter().all(|&v| v >= 0 && (v as usize) < n) {
                        max_d2 = max_d2.max(d[[p[0] as usize, p[1] as usize, p[2] as usize]]);
                    }
                }
            }
        }
        let r_in = (max_d2 as f64).sqrt();
        let mut last = None;
        for k in [0.45, 0.65, 0.85] {
            let r_open = (k * r_in).max(0.6 / res).min(5.0 / res);
            let Some(opened) = open_center(&comp, r_open, reach) else {
                continue;
            };
            let bf = border_fraction(&opened);
            let removed = 1.0 - count(&opened) as f64 / before;
            let done = bf < 0.01;
            last = Some((opened, bf, removed, r_open * res));
            if done {
                break;
            }
        }
        last
    };
    let t_half = bg + 0.5 * (peak.min(60.0) - bg);
    let (half_region, bf, removed, r_open) = region_at(t_half)?;
    let half_size = axial_size(&half_region, res);
    let mut kind;
    let mut total = half_region;
    let mut solid = None;
    let mut threshold = t_half;
    if peak > -300.0 {
        kind = NoduleType::Solid;
        // A ground-glass halo: a lower threshold finds a much larger region.
        let t_low = (bg + 0.5 * (-620.0 - bg)).max(bg + 90.0);
        if let Some((low, bf_low, _, _)) = region_at(t_low) {
            let (nl, nh) = (count(&low) as f64, count(&total) as f64);
            let dl = (6.0 * nl / std::f64::consts::PI).cbrt() * res;
            let dh = (6.0 * nh / std::f64::consts::PI).cbrt() * res;
            if nl > 2.5 * nh && dl - dh > 2.0 && bf_low < 0.01 {
                // Mean HU of the halo.
                let (mut s, mut k) = (0f64, 0f64);
                Zip::from(&low)
                    .and(&total)
                    .and(&roi.hu)
                    .for_each(|&l, &h, &v| {
                        if l && !h {
                            s += v as f64;
                            k += 1.0;
                        }
                    });
                let halo = s / k.max(1.0);
                if (-760.0..-300.0).contains(&halo) {
                    kind = NoduleType::PartSolid;
                    solid = Some(half_size);
                    total = low;
                    threshold = t_low;
                }
            }
        }
    } else {
        kind = NoduleType::GroundGlass;
    }
    let size = if solid.is_some() {
        axial_size(&total, res)
    } else {
        half_size
    };
    if size.mean_diameter_mm < cfg.min_diameter_mm || size.mean_diameter_mm > cfg.max_diameter_mm {
        return None;
    }
    // HU statistics inside.
    let (mut s, mut k, mut mx) = (0f64, 0f64, f64::MIN);
    Zip::from(&total).and(&roi.hu).for_each(|&m, &v| {
        if m {
            s += v as f64;
            k += 1.0;
            mx = mx.max(v as f64);
        }
    });
    let mean_hu = s / k.max(1.0);
    let dense = Zip::from(&total)
        .and(&roi.hu)
        .fold(0usize, |acc, &m, &v| acc + usize::from(m && v > 200.0));
    if kind == NoduleType::Solid && peak > 250.0 && dense as f64 >= 0.4 * k {
        kind = NoduleType::Calcified;
    }
    let (cen, ev) = moments(&total);
    let elongation = (ev[0] / ev[2].max(1e-6)).sqrt();
    let fill = count(&total) as f64
        / (4.0 / 3.0
            * std::f64::consts::PI
            * (5.0 * ev[0]).sqrt()
            * (5.0 * ev[1]).sqrt()
            * (5.0 * ev[2]).sqrt())
        .max(1e-9);
    // Pleural contact: shell voxels (just outside the region) outside the lung.
    let (mut shell, mut out_lung) = (0usize, 0usize);
    for ((z, y, x), &v) in total.indexed_iter() {
        if v {
            continue;
        }
        let nb = [
            (z.wrapping_sub(1), y, x),
            (z + 1, y, x),
            (z, y.wrapping_sub(1), x),
            (z, y + 1, x),
            (z, y, x.wrapping_sub(1)),
            (z, y, x + 1),
        ];
        if nb
            .iter()
            .any(|&(a, b, d)| a < n && b < n && d < n && total[[a, b, d]])
        {
            shell += 1;
            if !roi.lung[[z, y, x]] {
                out_lung += 1;
            }
        }
    }
    let wall_contact = out_lung as f64 / shell.max(1) as f64;
    let center_voxel = roi.to_volume(cen);
    let center_world_mm = vol.voxel_to_world(center_voxel);
    let nz = vol.shape()[0];
    let slice_index = (center_voxel[0].round().max(0.0) as usize).min(nz - 1);
    let label = lungs.label_at(center_voxel);
    let label = if label == 0 {
        // On the wall: use the nearer lung by x.
        let x_left = (vol.geometry.row_dir[0] >= 0.0) == (center_world_mm[0] > 0.0);
        if x_left { LEFT } else { RIGHT }
    } else {
        label
    };
    let side = if label == LEFT { "left" } else { "right" };
    let lobe = lobe_estimate(ext, label, center_voxel, vol.geometry.superior_sign() > 0.0);
    let features = Features {
        equivalent_diameter_mm: (6.0 * size.volume_mm3 / std::f64::consts::PI).cbrt(),
        elongation,
        fill,
        border_fraction: bf,
        wall_contact,
        opened_away: removed,
        dotness: cand.dotness as f64,
        lineness: cand.lineness as f64,
        response: cand.response as f64,
        peak_hu: peak,
        background_hu: bg,
        threshold_hu: threshold,
        opening_mm: r_open,
    };
    Some(Finding {
        center_world_mm,
        center_voxel,
        slice_index,
        sop_instance_uid: vol.slice_sop_uids.get(slice_index).cloned().flatten(),
        long_axis_line: size.axes[0].map(|p| vol.voxel_to_world(roi.to_volume(p))),
        short_axis_line: size.axes[1].map(|p| vol.voxel_to_world(roi.to_volume(p))),
        size,
        solid,
        kind,
        mean_hu: (mean_hu * 10.0).round() / 10.0,
        max_hu: mx.round(),
        side,
        lobe,
        juxtapleural: wall_contact > 0.05,
        features,
        score: 0.0,
        mask: Some(NoduleMask {
            origin: roi.origin,
            step: roi.step,
            n,
            bits: total,
        }),
    })
}

/// Lobe from position: oblique fissure approximated by a plane rising from anterior-inferior to
/// posterior-superior; horizontal fissure (right) at about 55% of the lung height anteriorly.
fn lobe_estimate(ext: &[Option<Extent>; 2], label: u8, v: [f64; 3], up: bool) -> &'static str {
    let k = if label == LEFT { 1 } else { 0 };
    let Some(e) = ext[k] else {
        return if label == LEFT { "LUL" } else { "RUL" };
    };
    let mut tz = (v[0] - e.z[0]) / (e.z[1] - e.z[0]).max(1.0);
    if !up {
        tz = 1.0 - tz;
    }
    let ty = ((v[1] - e.y[0]) / (e.y[1] - e.y[0]).max(1.0)).clamp(0.0, 1.0); // 0 anterior
    let lower = tz < 0.15 + 0.6 * ty;
    match (label == LEFT, lower) {
        (true, true) => "LLL",
        (true, false) => "LUL",
        (false, true) => "RLL",
        (false, false) => {
            if tz < 0.55 {
                "RML"
            } else {
                "RUL"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axial_size_of_digital_sphere() {
        let res = 0.25;
        let n = 61;
        let c = 30.0;
        let r = 5.0 / res; // 10 mm diameter
        let m = Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            ((z as f64 - c).powi(2) + (y as f64 - c).powi(2) + (x as f64 - c).powi(2)).sqrt() <= r
        });
        let s = axial_size(&m, res);
        assert!((s.long_axis_mm - 10.0).abs() < 0.3, "{s:?}");
        assert!((s.short_axis_mm - 10.0).abs() < 0.4, "{s:?}");
        let v = 4.0 / 3.0 * std::f64::consts::PI * 125.0;
        assert!((s.volume_mm3 / v - 1.0).abs() < 0.03, "{s:?}");
    }

    #[test]
    fn nodule_mask_rasterises_on_the_volume_grid() {
        let m = NoduleMask {
            origin: [2.0, 2.0, 2.0],
            step: [0.5; 3],
            n: 5,
            bits: Array3::from_elem((5, 5, 5), true),
        };
        // ROI spans volume indices 1.75..4.25: voxels 2, 3, 4 on each axis.
        let v = m.volume_voxels([10, 10, 10]);
        assert_eq!(v.len(), 27);
        assert!(v.contains(&[2, 2, 2]) && v.contains(&[4, 4, 4]));
        // Clipped by the volume.
        assert_eq!(m.volume_voxels([3, 10, 10]).len(), 9);
    }

    #[test]
    fn ellipse_axes() {
        // 12 x 6 mm ellipse at 0.2 mm, rotated 30 degrees.
        let res = 0.2;
        let n = 81;
        let c = 40.0;
        let (a, b) = (6.0 / res, 3.0 / res);
        let (cs, sn) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let p = Array2::from_shape_fn((n, n), |(y, x)| {
            let (dy, dx) = (y as f64 - c, x as f64 - c);
            let u = dx * cs + dy * sn;
            let w = -dx * sn + dy * cs;
            (u / a).powi(2) + (w / b).powi(2) <= 1.0
        });
        let axes = plane_axes(&p, res);
        let (l, s) = (axes.long, axes.short);
        assert!((l - 12.0).abs() < 0.3, "{l}");
        assert!((s - 6.0).abs() < 0.3, "{s}");
        // The drawn end points are as far apart as the reported lengths, perpendicular.
        let len = |q: [[f64; 2]; 2]| (q[1][0] - q[0][0]).hypot(q[1][1] - q[0][1]) * res;
        assert!((len(axes.long_line) - l).abs() < 1e-9, "{axes:?}");
        assert!((len(axes.short_line) - s).abs() < 1e-9, "{axes:?}");
        let d = |q: [[f64; 2]; 2]| [q[1][0] - q[0][0], q[1][1] - q[0][1]];
        let (a, b) = (d(axes.long_line), d(axes.short_line));
        assert!((a[0] * b[0] + a[1] * b[1]).abs() < 1e-6);
        // The long axis runs along the ellipse's major axis (30 degrees).
        let ang = a[0].atan2(a[1]).to_degrees().rem_euclid(180.0);
        assert!((ang - 30.0).abs() < 5.0, "{ang}");
    }
}
