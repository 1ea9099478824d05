//! Nodule candidate generation: multiscale scale-normalised Laplacian-of-Gaussian blob detection
//! inside the lungs, with Hessian dot/line measures at each maximum.
//!
//! The lung region of the CT is resampled to 1 mm (small scales) and 2 mm (large scales); at each
//! scale sigma the response `-sigma^2 * laplacian(G_sigma * I)` is computed, local maxima inside
//! the lung mask above a threshold become candidates, and candidates of all scales are merged by
//! non-maximum suppression at the blob radius (`sqrt(3) * sigma` for a sphere).

use ndarray::{Array3, Axis};
use rayon::prelude::*;

use crate::lungs::LungMask;
use crate::ndimage::{gaussian, labels_aligned, resample_aligned, sym_eigen3};
use crate::volume::Volume;

/// Candidate generation settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CandidateConfig {
    /// Scales (Gaussian sigma, mm). Blob diameter ~ 2 * sqrt(3) * sigma.
    pub sigmas_mm: Vec<f64>,
    /// Minimum scale-normalised LoG response (HU).
    pub min_response: f32,
    /// Minimum smoothed HU at the centre.
    pub min_center_hu: f32,
    /// At most this many candidates (strongest first).
    pub max_candidates: usize,
    /// Minimum Hessian dot measure (tubes and plates below it are not nodule candidates).
    pub min_dotness: f32,
}

impl Default for CandidateConfig {
    fn default() -> Self {
        Self {
            sigmas_mm: vec![1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0],
            min_response: 40.0,
            min_center_hu: -780.0,
            max_candidates: 120,
            min_dotness: 0.2,
        }
    }
}

/// A blob candidate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Candidate {
    /// Centre as a continuous volume index `[z, y, x]`.
    pub center_voxel: [f64; 3],
    /// Centre in world mm.
    pub center_world_mm: [f64; 3],
    /// Scale (sigma, mm) of the strongest response.
    pub sigma_mm: f64,
    /// Scale-normalised LoG response (HU).
    pub response: f32,
    /// Smoothed HU at the centre at that scale.
    pub center_hu: f32,
    /// Hessian dot measure |l3|/|l1| in [0, 1] (1 for a sphere, ~0 for a tube or plate).
    pub dotness: f32,
    /// Hessian line measure (l2 / l1 ratio: ~1 for tubes and spheres, ~0 for plates).
    pub lineness: f32,
}

impl Candidate {
    /// Estimated blob radius in mm.
    pub fn radius_mm(&self) -> f64 {
        3f64.sqrt() * self.sigma_mm
    }
}

/// A regular grid sampled from the volume: `vol_index = origin + k * step` per axis.
struct Grid {
    data: Array3<f32>,
    lung: Array3<bool>,
    origin: [f64; 3],
    step: [f64; 3],
    mm: f64,
}

fn resample(vol: &Volume, lungs: &LungMask, bb: [[f64; 2]; 3], mm: f64) -> Grid {
    let sp = vol.geometry.spacing;
    let step = [mm / sp[0], mm / sp[1], mm / sp[2]];
    let n: Vec<usize> = (0..3)
        .map(|k| (((bb[k][1] - bb[k][0]) / step[k]).floor() as usize + 1).max(1))
        .collect();
    let origin = [bb[0][0], bb[1][0], bb[2][0]];
    let nn = [n[0], n[1], n[2]];
    let mut data = resample_aligned(&vol.hu, origin, step, nn, -1000.0);
    data.par_mapv_inplace(|v| v.clamp(-1000.0, 150.0));
    let lung = labels_aligned(&lungs.labels, lungs.factors, origin, step, nn).mapv(|l| l != 0);
    Grid {
        data,
        lung,
        origin,
        step,
        mm,
    }
}

/// Finds blob candidates inside the lungs.
pub fn find_candidates(vol: &Volume, lungs: &LungMask, cfg: &CandidateConfig) -> Vec<Candidate> {
    // Lung bounding box in volume indices, with a margin.
    let f = lungs.factors;
    let (nz, ny, nx) = lungs.labels.dim();
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for ((z, y, x), &l) in lungs.labels.indexed_iter() {
        if l != 0 {
            for (k, v) in [z, y, x].into_iter().enumerate() {
                lo[k] = lo[k].min(v);
                hi[k] = hi[k].max(v);
            }
        }
    }
    if lo[0] == usize::MAX {
        return Vec::new();
    }
    let vs = vol.shape();
    let mut bb = [[0.0; 2]; 3];
    for k in 0..3 {
        let _ = (nz, ny, nx);
        let a = (lo[k] * f[k]) as f64 - 3.0;
        let b = ((hi[k] + 1) * f[k]) as f64 + 2.0;
        bb[k] = [a.max(0.0), b.min(vs[k] as f64 - 1.0)];
    }
    let fine = resample(vol, lungs, bb, 1.0);
    let coarse = resample(vol, lungs, bb, 2.0);
    let mut all = Vec::new();
    for &sigma in &cfg.sigmas_mm {
        let grid = if sigma < 2.5 { &fine } else { &coarse };
        all.extend(scale_maxima(vol, grid, sigma, cfg));
    }
    // Merge across scales: strongest blob-like first (tubes rank low), suppress within the
    // larger radius.
    let rank = |c: &Candidate| c.response * (0.15 + c.dotness);
    all.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in all {
        if c.dotness < cfg.min_dotness {
            continue;
        }
        let clash = kept.iter().any(|k| {
            let d2: f64 = (0..3)
                .map(|i| (k.center_world_mm[i] - c.center_world_mm[i]).powi(2))
                .sum();
            d2 < k.radius_mm().max(c.radius_mm()).powi(2)
        });
        if !clash {
            kept.push(c);
            if kept.len() >= cfg.max_candidates {
                break;
            }
        }
    }
    kept
}

fn scale_maxima(vol: &Volume, grid: &Grid, sigma_mm: f64, cfg: &CandidateConfig) -> Vec<Candidate> {
    let s = sigma_mm / grid.mm;
    let g = gaussian(&grid.data, [s, s, s]);
    let (nz, ny, nx) = g.dim();
    let h2 = (grid.mm * grid.mm) as f32;
    let norm = (sigma_mm * sigma_mm) as f32;
    // Response R = -sigma^2 * laplacian(G).
    let mut r = Array3::<f32>::zeros((nz, ny, nx));
    r.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            if z == 0 || z + 1 >= nz {
                return;
            }
            for y in 1..ny.saturating_sub(1) {
                for x in 1..nx.saturating_sub(1) {
                    let c = g[[z, y, x]];
                    let lap = g[[z - 1, y, x]]
                        + g[[z + 1, y, x]]
                        + g[[z, y - 1, x]]
                        + g[[z, y + 1, x]]
                        + g[[z, y, x - 1]]
                        + g[[z, y, x + 1]]
                        - 6.0 * c;
                    plane[[y, x]] = -norm * lap / h2;
                }
            }
        });
    let zs: Vec<usize> = (1..nz.saturating_sub(1)).collect();
    zs.par_iter()
        .flat_map_iter(|&z| {
            let mut out = Vec::new();
            for y in 1..ny - 1 {
                for x in 1..nx - 1 {
                    let v = r[[z, y, x]];
                    if v < cfg.min_response
                        || !grid.lung[[z, y, x]]
                        || g[[z, y, x]] < cfg.min_center_hu
                    {
                        continue;
                    }
                    let mut is_max = true;
                    'n: for dz in 0..3 {
                        for dy in 0..3 {
                            for dx in 0..3 {
                                if (dz, dy, dx) == (1, 1, 1) {
                                    continue;
                                }
                                let w = r[[z + dz - 1, y + dy - 1, x + dx - 1]];
                                // Ties: the first in raster order wins.
                                if w > v || (w == v && (dz, dy, dx) < (1, 1, 1)) {
                                    is_max = false;
                                    break 'n;
                                }
                            }
                        }
                    }
                    if !is_max {
                        continue;
                    }
                    // Sub-voxel peak by parabola fit per axis.
                    let sub = |a: f32, b: f32, c: f32| -> f64 {
                        let den = a - 2.0 * b + c;
                        if den.abs() < 1e-6 {
                            0.0
                        } else {
                            (0.5 * (a - c) / den).clamp(-0.5, 0.5) as f64
                        }
                    };
                    let oz = sub(r[[z - 1, y, x]], v, r[[z + 1, y, x]]);
                    let oy = sub(r[[z, y - 1, x]], v, r[[z, y + 1, x]]);
                    let ox = sub(r[[z, y, x - 1]], v, r[[z, y, x + 1]]);
                    let vi = [
                        grid.origin[0] + (z as f64 + oz) * grid.step[0],
                        grid.origin[1] + (y as f64 + oy) * grid.step[1],
                        grid.origin[2] + (x as f64 + ox) * grid.step[2],
                    ];
                    // Hessian of G (per mm^2).
                    let gg = |dz: isize, dy: isize, dx: isize| {
                        g[[
                            (z as isize + dz) as usize,
                            (y as isize + dy) as usize,
                            (x as isize + dx) as usize,
                        ]] as f64
                    };
                    let c = gg(0, 0, 0);
                    let hzz = gg(-1, 0, 0) + gg(1, 0, 0) - 2.0 * c;
                    let hyy = gg(0, -1, 0) + gg(0, 1, 0) - 2.0 * c;
                    let hxx = gg(0, 0, -1) + gg(0, 0, 1) - 2.0 * c;
                    let hxy = (gg(0, 1, 1) - gg(0, 1, -1) - gg(0, -1, 1) + gg(0, -1, -1)) / 4.0;
                    let hxz = (gg(1, 0, 1) - gg(1, 0, -1) - gg(-1, 0, 1) + gg(-1, 0, -1)) / 4.0;
                    let hyz = (gg(1, 1, 0) - gg(1, -1, 0) - gg(-1, 1, 0) + gg(-1, -1, 0)) / 4.0;
                    let ev = sym_eigen3([hxx, hyy, hzz, hxy, hxz, hyz]);
                    let (l1, l2, l3) = (ev[0], ev[1], ev[2]);
                    let (dot, line) = if l1 < 0.0 && l2 < 0.0 && l3 < 0.0 {
                        ((l3 / l1) as f32, (l2 / l1) as f32)
                    } else if l1 < 0.0 && l2 < 0.0 {
                        (0.0, (l2 / l1) as f32)
                    } else {
                        (0.0, 0.0)
                    };
                    out.push(Candidate {
                        center_voxel: vi,
                        center_world_mm: vol.voxel_to_world(vi),
                        sigma_mm,
                        response: v,
                        center_hu: g[[z, y, x]],
                        dotness: dot,
                        lineness: line,
                    });
                }
            }
            out
        })
        .collect()
}
