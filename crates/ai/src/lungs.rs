//! Lung segmentation: left and right lung masks with airways removed, holes filled and
//! juxtapleural nodules kept inside by a per-lung closing.
//!
//! Works on a ~2 mm grid (block means of the CT): threshold, drop air connected to the image
//! border, keep the large components, grow the trachea and main bronchi from a seed in the upper
//! slices and remove them, split the lungs (erosion and geodesic regrowth when they touch), then
//! fill holes slice by slice and close each lung with a ball.

use std::collections::VecDeque;

use ndarray::{Array3, Axis, s};

use crate::AnalysisError;
use crate::ndimage::{block_mean, close, edt_sq, fill_holes_2d, label};
use crate::volume::Volume;

/// Lung segmentation settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LungConfig {
    /// Target grid spacing in mm for segmentation.
    pub grid_mm: f64,
    /// Lung/air threshold in HU (on the block-averaged grid).
    pub threshold_hu: f32,
    /// Airway lumen threshold in HU.
    pub airway_hu: f32,
    /// Closing radius in mm (keeps juxtapleural nodules inside the mask).
    pub closing_mm: f64,
}

impl Default for LungConfig {
    fn default() -> Self {
        Self {
            grid_mm: 2.0,
            threshold_hu: -400.0,
            airway_hu: -900.0,
            closing_mm: 10.0,
        }
    }
}

/// Lung labels of one label value.
pub const RIGHT: u8 = 1;
/// Left lung label.
pub const LEFT: u8 = 2;

/// The lung segmentation on a coarse grid aligned to the volume (block factors).
#[derive(Debug, Clone)]
pub struct LungMask {
    /// Labels on the coarse grid: 0 outside, [`RIGHT`], [`LEFT`].
    pub labels: Array3<u8>,
    /// Block factors `[z, y, x]` from the volume grid to the coarse grid.
    pub factors: [usize; 3],
    /// Coarse voxel spacing in mm.
    pub spacing: [f64; 3],
    /// Right lung volume, mL.
    pub right_volume_ml: f64,
    /// Left lung volume, mL.
    pub left_volume_ml: f64,
    /// Volume of the removed airways, mL.
    pub airway_volume_ml: f64,
    /// What was unusual (no patient data).
    pub warnings: Vec<String>,
}

impl LungMask {
    /// Label at a volume voxel index (nearest coarse voxel); 0 outside the array.
    pub fn label_at(&self, v: [f64; 3]) -> u8 {
        let (nz, ny, nx) = self.labels.dim();
        let mut i = [0usize; 3];
        for k in 0..3 {
            let c = (v[k] + 0.5).floor();
            if c < 0.0 {
                return 0;
            }
            i[k] = c as usize / self.factors[k];
        }
        if i[0] >= nz || i[1] >= ny || i[2] >= nx {
            return 0;
        }
        self.labels[[i[0], i[1], i[2]]]
    }

    /// Upsamples the labels to the volume grid (nearest).
    pub fn to_volume_grid(&self, shape: [usize; 3]) -> Array3<u8> {
        let f = self.factors;
        Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
            self.labels[[z / f[0], y / f[1], x / f[2]]]
        })
    }
}

/// Segments the lungs of an axial chest CT.
pub fn segment_lungs(vol: &Volume, cfg: &LungConfig) -> Result<LungMask, AnalysisError> {
    let sp = vol.geometry.spacing;
    let f = [
        ((cfg.grid_mm / sp[0]).round() as usize).max(1),
        ((cfg.grid_mm / sp[1]).round() as usize).max(1),
        ((cfg.grid_mm / sp[2]).round() as usize).max(1),
    ];
    let gsp = [
        sp[0] * f[0] as f64,
        sp[1] * f[1] as f64,
        sp[2] * f[2] as f64,
    ];
    let vox_ml = gsp.iter().product::<f64>() / 1000.0;
    let g = block_mean(vol.hu.view(), f);
    let (nz, ny, nx) = g.dim();
    let mut warnings = Vec::new();
    let low = g.mapv(|v| v < cfg.threshold_hu);
    let (lab, sizes) = label(&low, false);
    // Components touching the in-plane border are outside air.
    let mut border = vec![false; sizes.len()];
    for ((_, y, x), &l) in lab.indexed_iter() {
        if l != 0 && (y == 0 || x == 0 || y == ny - 1 || x == nx - 1) {
            border[l as usize] = true;
        }
    }
    let largest = (1..sizes.len())
        .filter(|&i| !border[i])
        .map(|i| sizes[i])
        .max()
        .unwrap_or(0);
    let min_ml = if nz <= 2 { 0.5 } else { 20.0 };
    if (largest as f64 * vox_ml) < min_ml {
        return Err(AnalysisError::NoLungs(
            "no large air-filled region inside the body".into(),
        ));
    }
    let keep: Vec<bool> = (0..sizes.len())
        .map(|i| {
            i != 0 && !border[i] && sizes[i] * 5 >= largest && sizes[i] as f64 * vox_ml >= min_ml
        })
        .collect();
    let mut mask = lab.mapv(|l| keep[l as usize]);
    drop(lab);

    // Airways.
    let up = vol.geometry.superior_sign() > 0.0;
    let airway = find_airways(&g, &mask, gsp, up, cfg.airway_hu);
    let airway_volume_ml = airway
        .as_ref()
        .map_or(0.0, |a| a.iter().filter(|&&v| v).count() as f64 * vox_ml);
    match &airway {
        Some(a) => {
            let grown = crate::ndimage::dilate(a, gsp, gsp[1].max(gsp[2]) * 1.01);
            ndarray::Zip::from(&mut mask).and(&grown).for_each(|m, &a| {
                if a {
                    *m = false;
                }
            });
        }
        None => warnings.push("trachea not found: airways not removed".to_string()),
    }

    // Components after airway removal; split left and right.
    let (lab, sizes) = label(&mask, false);
    let mut order: Vec<usize> = (1..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]));
    let big = order.first().map_or(0, |&i| sizes[i]);
    let comps: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| sizes[i] * 5 >= big && sizes[i] as f64 * vox_ml >= min_ml)
        .take(2)
        .collect();
    let mut labels = Array3::<u8>::zeros((nz, ny, nx));
    let body_cx = body_center_x(&g);
    // World x increases towards the patient's left (LPS); the index direction may be flipped.
    let x_to_left = vol.geometry.row_dir[0] >= 0.0;
    let side_of = |cx: f64| -> u8 {
        if (cx > body_cx) == x_to_left {
            LEFT
        } else {
            RIGHT
        }
    };
    if comps.len() == 2 {
        for &c in &comps {
            let cx = centroid_x(&lab, c as u32);
            let side = side_of(cx);
            ndarray::Zip::from(&mut labels).and(&lab).for_each(|o, &l| {
                if l == c as u32 {
                    *o = side;
                }
            });
        }
    } else if comps.len() == 1 {
        let c = comps[0] as u32;
        let one = lab.mapv(|l| l == c);
        labels = split_lungs(&one, gsp, body_cx, x_to_left);
        if labels.iter().all(|&l| l != LEFT) || labels.iter().all(|&l| l != RIGHT) {
            warnings.push("only one lung found".into());
        }
    }
    drop(lab);
    // Hole filling and closing per lung.
    for side in [RIGHT, LEFT] {
        let Some(bb) = bbox(&labels, side) else {
            continue;
        };
        let m = (cfg.closing_mm / gsp[1].min(gsp[2])).ceil() as usize + 1;
        let mz = (cfg.closing_mm / gsp[0]).ceil() as usize + 1;
        let z0 = bb[0].saturating_sub(mz);
        let z1 = (bb[1] + mz + 1).min(nz);
        let y0 = bb[2].saturating_sub(m);
        let y1 = (bb[3] + m + 1).min(ny);
        let x0 = bb[4].saturating_sub(m);
        let x1 = (bb[5] + m + 1).min(nx);
        let sub = labels.slice(s![z0..z1, y0..y1, x0..x1]).mapv(|l| l == side);
        let mut filled = sub.clone();
        fill_holes_2d(&mut filled);
        let mut closed = if nz > 2 {
            close(&filled, gsp, cfg.closing_mm)
        } else {
            // A single slice: close in-plane only.
            let mut sp2 = gsp;
            sp2[0] = 1e6;
            close(&filled, sp2, cfg.closing_mm)
        };
        fill_holes_2d(&mut closed);
        let mut view = labels.slice_mut(s![z0..z1, y0..y1, x0..x1]);
        ndarray::Zip::from(&mut view)
            .and(&closed)
            .for_each(|l, &c| {
                if c && *l == 0 {
                    *l = side;
                }
            });
    }
    let count = |side: u8| labels.iter().filter(|&&l| l == side).count() as f64 * vox_ml;
    let (right_volume_ml, left_volume_ml) = (count(RIGHT), count(LEFT));
    Ok(LungMask {
        labels,
        factors: f,
        spacing: gsp,
        right_volume_ml,
        left_volume_ml,
        airway_volume_ml,
        warnings,
    })
}

fn body_center_x(g: &Array3<f32>) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for ((_, _, x), &v) in g.indexed_iter() {
        if v > -500.0 {
            s += x as f64;
            n += 1.0;
        }
    }
    if n > 0.0 {
        s / n
    } else {
        g.dim().2 as f64 / 2.0
    }
}

fn centroid_x(lab: &Array3<u32>, c: u32) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for ((_, _, x), &l) in lab.indexed_iter() {
        if l == c {
            s += x as f64;
            n += 1.0;
        }
    }
    s / n.max(1.0)
}

/// Bounding box `[z0, z1, y0, y1, x0, x1]` (inclusive) of a label.
fn bbox(labels: &Array3<u8>, side: u8) -> Option<[usize; 6]> {
    let mut b = [usize::MAX, 0, usize::MAX, 0, usize::MAX, 0];
    let mut any = false;
    for ((z, y, x), &l) in labels.indexed_iter() {
        if l == side {
            any = true;
            b[0] = b[0].min(z);
            b[1] = b[1].max(z);
            b[2] = b[2].min(y);
            b[3] = b[3].max(y);
            b[4] = b[4].min(x);
            b[5] = b[5].max(x);
        }
    }
    any.then_some(b)
}

/// Finds the trachea in the upper slices and grows the airway tree below `airway_hu`.
fn find_airways(
    g: &Array3<f32>,
    mask: &Array3<bool>,
    gsp: [f64; 3],
    up: bool,
    airway_hu: f32,
) -> Option<Array3<bool>> {
    let (nz, ny, nx) = g.dim();
    let px_mm2 = gsp[1] * gsp[2];
    let zs: Vec<usize> = if up {
        (0..nz).rev().collect()
    } else {
        (0..nz).collect()
    };
    let mut seed = None;
    // Search the upper half (all of it for thin stacks).
    let limit = if nz <= 4 { nz } else { nz / 2 };
    'outer: for &z in zs.iter().take(limit) {
        let plane = mask.index_axis(Axis(0), z).to_owned().insert_axis(Axis(0));
        if !plane.iter().any(|&v| v) {
            continue;
        }
        let (lab, sizes) = label(&plane, false);
        // Body centre in this slice.
        let gp = g.index_axis(Axis(0), z);
        let (mut sx, mut n) = (0f64, 0f64);
        for ((_, x), &v) in gp.indexed_iter() {
            if v > -500.0 {
                sx += x as f64;
                n += 1.0;
            }
        }
        let cx = if n > 0.0 { sx / n } else { nx as f64 / 2.0 };
        for (c, &size) in sizes.iter().enumerate().skip(1) {
            let area = size as f64 * px_mm2;
            if !(40.0..=800.0).contains(&area) {
                continue;
            }
            let (mut mx, mut my, mut hu) = (0f64, 0f64, 0f64);
            for ((_, y, x), &l) in lab.indexed_iter() {
                if l == c as u32 {
                    mx += x as f64;
                    my += y as f64;
                    hu += gp[[y, x]] as f64;
                }
            }
            let k = size as f64;
            let (mx, my, hu) = (mx / k, my / k, hu / k);
            if (mx - cx).abs() * gsp[2] < 30.0 && hu < -880.0 && my > 0.15 * ny as f64 {
                seed = Some((z, my.round() as usize, mx.round() as usize, c as u32, lab));
                break 'outer;
            }
        }
    }
    let (z, _, _, c, lab) = seed?;
    for thr in [
        airway_hu,
        airway_hu - 25.0,
        airway_hu - 50.0,
        airway_hu - 70.0,
    ] {
        let mut grown = Array3::from_elem((nz, ny, nx), false);
        let mut q = VecDeque::new();
        for ((_, y, x), &l) in lab.indexed_iter() {
            if l == c && g[[z, y, x]] < thr {
                grown[[z, y, x]] = true;
                q.push_back((z, y, x));
            }
        }
        let mut count = q.len();
        let max_voxels = (250_000.0 / (gsp[0] * gsp[1] * gsp[2])) as usize;
        let mut leaked = false;
        while let Some((cz, cy, cx)) = q.pop_front() {
            for (dz, dy, dx) in [
                (-1i64, 0i64, 0i64),
                (1, 0, 0),
                (0, -1, 0),
                (0, 1, 0),
                (0, 0, -1),
                (0, 0, 1),
            ] {
                let (qz, qy, qx) = (cz as i64 + dz, cy as i64 + dy, cx as i64 + dx);
                if qz < 0
                    || qy < 0
                    || qx < 0
                    || qz >= nz as i64
                    || qy >= ny as i64
                    || qx >= nx as i64
                {
                    continue;
                }
                let p = (qz as usize, qy as usize, qx as usize);
                if !grown[[p.0, p.1, p.2]] && mask[[p.0, p.1, p.2]] && g[[p.0, p.1, p.2]] < thr {
                    grown[[p.0, p.1, p.2]] = true;
                    count += 1;
                    q.push_back(p);
                }
            }
            if count > max_voxels {
                leaked = true;
                break;
            }
        }
        if !leaked && count > 0 {
            return Some(grown);
        }
    }
    None
}

/// Splits one connected lung region into right and left by erosion and geodesic regrowth.
fn split_lungs(one: &Array3<bool>, gsp: [f64; 3], body_cx: f64, x_to_left: bool) -> Array3<u8> {
    let (nz, ny, nx) = one.dim();
    let total = one.iter().filter(|&&v| v).count();
    let d = edt_sq(one, gsp);
    let mut seeds: Option<Array3<u32>> = None;
    let mut seed_ids = (0u32, 0u32);
    for step in 1..20 {
        let r = step as f32 * gsp[1].max(gsp[2]) as f32;
        let core = d.mapv(|v| v > r * r);
        let (lab, sizes) = label(&core, false);
        let mut order: Vec<usize> = (1..sizes.len()).collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]));
        if order.len() >= 2 && sizes[order[1]] * 40 >= total {
            seed_ids = (order[0] as u32, order[1] as u32);
            seeds = Some(lab);
            break;
        }
        if order.is_empty() {
            break;
        }
    }
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    let side_of = |cx: f64| -> u8 {
        if (cx > body_cx) == x_to_left {
            LEFT
        } else {
            RIGHT
        }
    };
    let Some(lab) = seeds else {
        // Cannot split: one lung (or two fused); assign by the body midline.
        for ((z, y, x), &v) in one.indexed_iter() {
            if v {
                out[[z, y, x]] = side_of(x as f64);
            }
        }
        return out;
    };
    let s0 = side_of(centroid_x(&lab, seed_ids.0));
    let s1 = if s0 == LEFT { RIGHT } else { LEFT };
    let mut q = VecDeque::new();
    for ((z, y, x), &l) in lab.indexed_iter() {
        if l == seed_ids.0 || l == seed_ids.1 {
            out[[z, y, x]] = if l == seed_ids.0 { s0 } else { s1 };
            q.push_back((z, y, x));
        }
    }
    while let Some((cz, cy, cx)) = q.pop_front() {
        let v = out[[cz, cy, cx]];
        for (dz, dy, dx) in [
            (-1i64, 0i64, 0i64),
            (1, 0, 0),
            (0, -1, 0),
            (0, 1, 0),
            (0, 0, -1),
            (0, 0, 1),
        ] {
            let (qz, qy, qx) = (cz as i64 + dz, cy as i64 + dy, cx as i64 + dx);
            if qz < 0 || qy < 0 || qx < 0 || qz >= nz as i64 || qy >= ny as i64 || qx >= nx as i64 {
                continue;
            }
            let p = (qz as usize, qy as usize, qx as usize);
            if one[[p.0, p.1, p.2]] && out[[p.0, p.1, p.2]] == 0 {
                out[[p.0, p.1, p.2]] = v;
                q.push_back(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{PhantomConfig, generate};

    #[test]
    fn phantom_lungs_match_truth() {
        let mut cfg = PhantomConfig::small(3);
        cfg.shape = [96, 384, 384];
        cfg.spacing = [2.0, 0.8, 0.8];
        let p = generate(&cfg);
        let m = segment_lungs(&p.volume, &LungConfig::default()).unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert!(m.airway_volume_ml > 10.0, "airways {}", m.airway_volume_ml);
        let full = m.to_volume_grid(p.volume.shape());
        for side in [RIGHT, LEFT] {
            let a = full.mapv(|l| l == side);
            let b = p.lung_labels.mapv(|l| l == side);
            let d = crate::eval::dice(&a, &b).unwrap();
            assert!(d > 0.95, "side {side}: dice {d}");
        }
        // Every nodule centre lies inside the lung mask, juxtapleural ones included.
        for n in &p.nodules {
            let v = p.volume.world_to_voxel(n.center_world_mm);
            let expect = if n.side == "left" { LEFT } else { RIGHT };
            assert_eq!(m.label_at(v), expect, "{:?}", n.spec);
        }
        let truth = p.lung_volumes_ml;
        assert!(
            (m.right_volume_ml / truth[0] - 1.0).abs() < 0.1,
            "{} vs {}",
            m.right_volume_ml,
            truth[0]
        );
        assert!(
            (m.left_volume_ml / truth[1] - 1.0).abs() < 0.1,
            "{} vs {}",
            m.left_volume_ml,
            truth[1]
        );
    }
}
