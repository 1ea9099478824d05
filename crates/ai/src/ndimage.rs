//! Image-processing kernels on 3D arrays: Gaussian smoothing, distance transforms, labelling,
//! hole filling, block averaging and interpolation (what ndarray-ndimage lacks), all rayon-parallel.

use ndarray::{Array2, Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

/// Normalised 1D Gaussian kernel for `sigma` in voxels (radius 3 sigma, at least 1).
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    if sigma <= 1e-3 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil().max(1.0) as i64;
    let mut k: Vec<f64> = (-r..=r)
        .map(|i| (-(i as f64).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k.into_iter().map(|v| v as f32).collect()
}

/// Separable Gaussian smoothing with `sigma` per axis `[z, y, x]` in voxels (edges replicated).
pub fn gaussian(a: &Array3<f32>, sigma: [f64; 3]) -> Array3<f32> {
    let mut out = a.clone();
    for (axis, &s) in sigma.iter().enumerate() {
        if s > 1e-3 {
            out = convolve_axis(&out, &gaussian_kernel(s), axis);
        }
    }
    out
}

/// Convolves along one axis (0 = z, 1 = y, 2 = x) with a symmetric odd-length kernel.
pub fn convolve_axis(a: &Array3<f32>, k: &[f32], axis: usize) -> Array3<f32> {
    let (nz, ny, nx) = a.dim();
    let r = (k.len() / 2) as isize;
    let mut out = Array3::<f32>::zeros((nz, ny, nx));
    let a = a.as_standard_layout();
    match axis {
        2 => {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(z, mut plane)| {
                    let mut line = vec![0f32; nx + 2 * r as usize];
                    for y in 0..ny {
                        let src = a.slice(ndarray::s![z, y, ..]);
                        for (i, v) in line.iter_mut().enumerate() {
                            let xi = (i as isize - r).clamp(0, nx as isize - 1) as usize;
                            *v = src[xi];
                        }
                        let mut dst = plane.row_mut(y);
                        for x in 0..nx {
                            let mut s = 0f32;
                            for (j, &w) in k.iter().enumerate() {
                                s += w * line[x + j];
                            }
                            dst[x] = s;
                        }
                    }
                });
        }
        1 => {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(z, mut plane)| {
                    let src = a.index_axis(Axis(0), z);
                    for y in 0..ny {
                        let mut dst = plane.row_mut(y);
                        for (j, &w) in k.iter().enumerate() {
                            let yi =
                                (y as isize + j as isize - r).clamp(0, ny as isize - 1) as usize;
                            let s = src.row(yi);
                            Zip::from(&mut dst).and(&s).for_each(|d, &v| *d += w * v);
                        }
                    }
                });
        }
        _ => {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(z, mut plane)| {
                    for (j, &w) in k.iter().enumerate() {
                        let zi = (z as isize + j as isize - r).clamp(0, nz as isize - 1) as usize;
                        let s = a.index_axis(Axis(0), zi);
                        Zip::from(&mut plane).and(&s).for_each(|d, &v| *d += w * v);
                    }
                });
        }
    }
    out
}

/// Squared Euclidean distance (mm²) from each voxel to the nearest voxel where `mask` is false;
/// `f32::INFINITY` where the volume holds no such voxel. Felzenszwalb–Huttenlocher, separable.
pub fn edt_sq(mask: &Array3<bool>, spacing: [f64; 3]) -> Array3<f32> {
    let (nz, ny, nx) = mask.dim();
    let mut d = mask.mapv(|m| if m { f32::INFINITY } else { 0.0 });
    // Along x (contiguous rows in place), then y and z through a per-lane buffer.
    if let Some(flat) = d.as_slice_mut() {
        let w = spacing[2] as f32;
        flat.par_chunks_mut(nx.max(1)).for_each(|row| {
            let r = dt1d(row, w);
            row.copy_from_slice(&r);
        });
    }
    for axis in [1usize, 0] {
        let n = [nz, ny, nx][axis];
        let w = spacing[axis] as f32;
        let mut buf = vec![0f32; n];
        for mut lane in d.lanes_mut(Axis(axis)) {
            for (b, v) in buf.iter_mut().zip(lane.iter()) {
                *b = *v;
            }
            let r = dt1d(&buf, w);
            for (v, x) in lane.iter_mut().zip(r) {
                *v = x;
            }
        }
    }
    d
}

/// 1D squared distance transform of sampled function `f` with sample spacing `w`.
fn dt1d(f: &[f32], w: f32) -> Vec<f32> {
    let n = f.len();
    let mut d = vec![f32::INFINITY; n];
    let mut v = vec![0usize; n];
    let mut z = vec![0f32; n + 1];
    let mut k: isize = -1;
    let pos = |i: usize| i as f32 * w;
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        if k < 0 {
            k = 0;
            v[0] = q;
            z[0] = f32::NEG_INFINITY;
            z[1] = f32::INFINITY;
            continue;
        }
        loop {
            let p = v[k as usize];
            let s =
                ((f[q] + pos(q) * pos(q)) - (f[p] + pos(p) * pos(p))) / (2.0 * (pos(q) - pos(p)));
            if s <= z[k as usize] {
                k -= 1;
                if k < 0 {
                    k = 0;
                    v[0] = q;
                    z[0] = f32::NEG_INFINITY;
                    z[1] = f32::INFINITY;
                    break;
                }
            } else {
                k += 1;
                v[k as usize] = q;
                z[k as usize] = s;
                z[k as usize + 1] = f32::INFINITY;
                break;
            }
        }
    }
    if k < 0 {
        return d;
    }
    let mut j = 0usize;
    for (q, dq) in d.iter_mut().enumerate() {
        while z[j + 1] < pos(q) {
            j += 1;
        }
        let p = v[j];
        *dq = (pos(q) - pos(p)).powi(2) + f[p];
    }
    d
}

/// Dilation by a ball of radius `r` mm (exact, via the distance transform).
pub fn dilate(mask: &Array3<bool>, spacing: [f64; 3], r: f64) -> Array3<bool> {
    let inv = mask.mapv(|m| !m);
    let d = edt_sq(&inv, spacing);
    let r2 = (r * r) as f32;
    d.mapv(|v| v <= r2)
}

/// Erosion by a ball of radius `r` mm (voxels outside the array are not background).
pub fn erode(mask: &Array3<bool>, spacing: [f64; 3], r: f64) -> Array3<bool> {
    let d = edt_sq(mask, spacing);
    let r2 = (r * r) as f32;
    d.mapv(|v| v > r2)
}

/// Closing (dilation then erosion) by a ball of radius `r` mm.
pub fn close(mask: &Array3<bool>, spacing: [f64; 3], r: f64) -> Array3<bool> {
    erode(&dilate(mask, spacing, r), spacing, r)
}

/// Connected-component labels (6- or 26-connectivity); 0 is background. Returns labels and
/// the size of each label (index 0 unused).
pub fn label(mask: &Array3<bool>, full: bool) -> (Array3<u32>, Vec<usize>) {
    let (nz, ny, nx) = mask.dim();
    let mut labels = Array3::<u32>::zeros((nz, ny, nx));
    let mut sizes = vec![0usize];
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    let offs: Vec<(isize, isize, isize)> = if full {
        let mut o = Vec::new();
        for dz in -1..=1 {
            for dy in -1..=1 {
                for dx in -1..=1 {
                    if (dz, dy, dx) != (0, 0, 0) {
                        o.push((dz, dy, dx));
                    }
                }
            }
        }
        o
    } else {
        vec![
            (-1, 0, 0),
            (1, 0, 0),
            (0, -1, 0),
            (0, 1, 0),
            (0, 0, -1),
            (0, 0, 1),
        ]
    };
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if !mask[[z, y, x]] || labels[[z, y, x]] != 0 {
                    continue;
                }
                let id = sizes.len() as u32;
                let mut count = 0usize;
                labels[[z, y, x]] = id;
                stack.push((z, y, x));
                while let Some((cz, cy, cx)) = stack.pop() {
                    count += 1;
                    for &(dz, dy, dx) in &offs {
                        let (qz, qy, qx) = (cz as isize + dz, cy as isize + dy, cx as isize + dx);
                        if qz < 0
                            || qy < 0
                            || qx < 0
                            || qz >= nz as isize
                            || qy >= ny as isize
                            || qx >= nx as isize
                        {
                            continue;
                        }
                        let q = (qz as usize, qy as usize, qx as usize);
                        if mask[[q.0, q.1, q.2]] && labels[[q.0, q.1, q.2]] == 0 {
                            labels[[q.0, q.1, q.2]] = id;
                            stack.push(q);
                        }
                    }
                }
                sizes.push(count);
            }
        }
    }
    (labels, sizes)
}

/// Fills holes slice by slice (axial planes): background not connected to the plane border
/// becomes foreground.
pub fn fill_holes_2d(mask: &mut Array3<bool>) {
    mask.axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut plane| {
            let filled = fill_holes_plane(&plane.to_owned());
            plane.assign(&filled);
        });
}

/// Fills the holes of one 2D mask.
pub fn fill_holes_plane(m: &Array2<bool>) -> Array2<bool> {
    let (ny, nx) = m.dim();
    let mut outside = Array2::from_elem((ny, nx), false);
    let mut stack = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            if (y == 0 || x == 0 || y == ny - 1 || x == nx - 1) && !m[[y, x]] {
                outside[[y, x]] = true;
                stack.push((y, x));
            }
        }
    }
    while let Some((y, x)) = stack.pop() {
        let nb = [
            (y.wrapping_sub(1), x),
            (y + 1, x),
            (y, x.wrapping_sub(1)),
            (y, x + 1),
        ];
        for (qy, qx) in nb {
            if qy < ny && qx < nx && !m[[qy, qx]] && !outside[[qy, qx]] {
                outside[[qy, qx]] = true;
                stack.push((qy, qx));
            }
        }
    }
    outside.mapv(|o| !o)
}

/// Block mean with integer factors `[fz, fy, fx]` (partial blocks at the far edges averaged
/// over what they hold).
pub fn block_mean(a: ArrayView3<i16>, f: [usize; 3]) -> Array3<f32> {
    let (nz, ny, nx) = a.dim();
    let (oz, oy, ox) = (nz.div_ceil(f[0]), ny.div_ceil(f[1]), nx.div_ceil(f[2]));
    let mut out = Array3::<f32>::zeros((oz, oy, ox));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            let mut acc = vec![0f64; oy * ox];
            let mut cnt = vec![0u32; oy * ox];
            for iz in z * f[0]..((z + 1) * f[0]).min(nz) {
                for iy in 0..ny {
                    let row = a.slice(ndarray::s![iz, iy, ..]);
                    let by = iy / f[1];
                    for (ix, &v) in row.iter().enumerate() {
                        let k = by * ox + ix / f[2];
                        acc[k] += v as f64;
                        cnt[k] += 1;
                    }
                }
            }
            for (k, v) in plane.iter_mut().enumerate() {
                *v = (acc[k] / cnt[k].max(1) as f64) as f32;
            }
        });
    out
}

/// Trilinear sample of an i16 volume at a continuous index `[z, y, x]` (edges clamped;
/// `outside` beyond half a voxel from the array).
pub fn trilinear_i16(a: &Array3<i16>, p: [f64; 3], outside: f32) -> f32 {
    let dims = a.dim();
    let n = [dims.0, dims.1, dims.2];
    let mut i0 = [0usize; 3];
    let mut t = [0f64; 3];
    for k in 0..3 {
        if p[k] < -0.5 || p[k] > n[k] as f64 - 0.5 {
            return outside;
        }
        let c = p[k].clamp(0.0, (n[k] - 1) as f64);
        i0[k] = (c.floor() as usize).min(n[k].saturating_sub(2));
        t[k] = if n[k] > 1 { c - i0[k] as f64 } else { 0.0 };
    }
    let g = |dz: usize, dy: usize, dx: usize| -> f64 {
        let z = (i0[0] + dz).min(n[0] - 1);
        let y = (i0[1] + dy).min(n[1] - 1);
        let x = (i0[2] + dx).min(n[2] - 1);
        a[[z, y, x]] as f64
    };
    let c00 = g(0, 0, 0) * (1.0 - t[2]) + g(0, 0, 1) * t[2];
    let c01 = g(0, 1, 0) * (1.0 - t[2]) + g(0, 1, 1) * t[2];
    let c10 = g(1, 0, 0) * (1.0 - t[2]) + g(1, 0, 1) * t[2];
    let c11 = g(1, 1, 0) * (1.0 - t[2]) + g(1, 1, 1) * t[2];
    let c0 = c00 * (1.0 - t[1]) + c01 * t[1];
    let c1 = c10 * (1.0 - t[1]) + c11 * t[1];
    (c0 * (1.0 - t[0]) + c1 * t[0]) as f32
}

/// Per-axis interpolation table entry: lower index, upper index, weight of the upper one, and
/// whether the position lies within half a voxel of the array.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    t: f32,
    ok: bool,
}

fn taps(n: usize, origin: f64, step: f64, count: usize) -> Vec<Tap> {
    (0..count)
        .map(|k| {
            let p = origin + k as f64 * step;
            let ok = n > 0 && p >= -0.5 && p <= n as f64 - 0.5;
            let c = p.clamp(0.0, n.saturating_sub(1) as f64);
            let i0 = c.floor() as usize;
            let i1 = (i0 + 1).min(n.saturating_sub(1));
            Tap {
                i0,
                i1,
                t: (c - i0 as f64) as f32,
                ok,
            }
        })
        .collect()
}

/// Trilinear resampling of an i16 volume onto an axis-aligned grid: output voxel `(k, j, i)`
/// samples the input at continuous index `origin + (k, j, i) * step`; `outside` beyond the array.
pub fn resample_aligned(
    a: &Array3<i16>,
    origin: [f64; 3],
    step: [f64; 3],
    n: [usize; 3],
    outside: f32,
) -> Array3<f32> {
    let (nz, ny, nx) = a.dim();
    let tz = taps(nz, origin[0], step[0], n[0]);
    let ty = taps(ny, origin[1], step[1], n[1]);
    let tx = taps(nx, origin[2], step[2], n[2]);
    let a = a.as_standard_layout();
    let src = a.as_slice().expect("standard layout");
    let mut out = Array3::<f32>::from_elem((n[0], n[1], n[2]), outside);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(tz.par_iter())
        .for_each(|(mut plane, z)| {
            if !z.ok {
                return;
            }
            let (p0, p1) = (z.i0 * ny * nx, z.i1 * ny * nx);
            for (j, y) in ty.iter().enumerate() {
                if !y.ok {
                    continue;
                }
                let (r00, r01) = (p0 + y.i0 * nx, p0 + y.i1 * nx);
                let (r10, r11) = (p1 + y.i0 * nx, p1 + y.i1 * nx);
                let mut row = plane.row_mut(j);
                for (i, x) in tx.iter().enumerate() {
                    if !x.ok {
                        continue;
                    }
                    let lerp =
                        |r: usize| src[r + x.i0] as f32 * (1.0 - x.t) + src[r + x.i1] as f32 * x.t;
                    let a0 = lerp(r00) * (1.0 - y.t) + lerp(r01) * y.t;
                    let a1 = lerp(r10) * (1.0 - y.t) + lerp(r11) * y.t;
                    row[i] = a0 * (1.0 - z.t) + a1 * z.t;
                }
            }
        });
    out
}

/// Nearest-neighbour lookup of a coarse label grid (block factors `f`) on an axis-aligned grid
/// given in fine-volume indices (as [`resample_aligned`]); 0 outside.
pub fn labels_aligned(
    labels: &Array3<u8>,
    f: [usize; 3],
    origin: [f64; 3],
    step: [f64; 3],
    n: [usize; 3],
) -> Array3<u8> {
    let dims = labels.dim();
    let dims = [dims.0, dims.1, dims.2];
    let idx: Vec<Vec<Option<usize>>> = (0..3)
        .map(|k| {
            (0..n[k])
                .map(|i| {
                    let p = (origin[k] + i as f64 * step[k] + 0.5).floor();
                    if p < 0.0 {
                        return None;
                    }
                    let c = p as usize / f[k];
                    (c < dims[k]).then_some(c)
                })
                .collect()
        })
        .collect();
    let mut out = Array3::<u8>::zeros((n[0], n[1], n[2]));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut plane)| {
            let Some(z) = idx[0][k] else { return };
            for (j, y) in idx[1].iter().enumerate() {
                let Some(y) = *y else { continue };
                for (i, x) in idx[2].iter().enumerate() {
                    if let Some(x) = *x {
                        plane[[j, i]] = labels[[z, y, x]];
                    }
                }
            }
        });
    out
}

/// Eigenvalues of a symmetric 3x3 matrix `[xx, yy, zz, xy, xz, yz]`, sorted by decreasing
/// absolute value.
pub fn sym_eigen3(m: [f64; 6]) -> [f64; 3] {
    let [a, b, c, d, e, f] = m;
    let p1 = d * d + e * e + f * f;
    let mut ev = if p1 < 1e-30 {
        [a, b, c]
    } else {
        let q = (a + b + c) / 3.0;
        let p2 = (a - q).powi(2) + (b - q).powi(2) + (c - q).powi(2) + 2.0 * p1;
        let p = (p2 / 6.0).sqrt();
        let (ba, bb, bc) = ((a - q) / p, (b - q) / p, (c - q) / p);
        let (bd, be, bf) = (d / p, e / p, f / p);
        let det = ba * (bb * bc - bf * bf) - bd * (bd * bc - bf * be) + be * (bd * bf - bb * be);
        let r = (det / 2.0).clamp(-1.0, 1.0);
        let phi = r.acos() / 3.0;
        let e1 = q + 2.0 * p * phi.cos();
        let e3 = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
        [e1, 3.0 * q - e1 - e3, e3]
    };
    ev.sort_by(|x, y| y.abs().total_cmp(&x.abs()));
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edt_matches_brute_force() {
        let mut m = Array3::from_elem((7, 9, 11), true);
        m[[1, 2, 3]] = false;
        m[[5, 7, 9]] = false;
        let sp = [2.0, 0.7, 1.1];
        let d = edt_sq(&m, sp);
        for ((z, y, x), &v) in d.indexed_iter() {
            let b = [(1, 2, 3), (5, 7, 9)]
                .iter()
                .map(|&(bz, by, bx)| {
                    ((z as f64 - bz as f64) * sp[0]).powi(2)
                        + ((y as f64 - by as f64) * sp[1]).powi(2)
                        + ((x as f64 - bx as f64) * sp[2]).powi(2)
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                (v as f64 - b).abs() < 1e-3 * b.max(1.0),
                "{z} {y} {x}: {v} vs {b}"
            );
        }
    }

    #[test]
    fn gaussian_preserves_mass_and_labels_count() {
        let mut a = Array3::<f32>::zeros((9, 9, 9));
        a[[4, 4, 4]] = 1.0;
        let g = gaussian(&a, [1.0, 1.0, 1.0]);
        assert!((g.sum() - 1.0).abs() < 1e-4);
        assert!((g[[4, 4, 3]] - g[[4, 3, 4]]).abs() < 1e-6);
        let mut m = Array3::from_elem((3, 5, 5), false);
        m[[0, 0, 0]] = true;
        m[[1, 1, 1]] = true;
        m[[2, 4, 4]] = true;
        m[[2, 4, 3]] = true;
        let (_, s6) = label(&m, false);
        assert_eq!(s6.len() - 1, 3);
        let (_, s26) = label(&m, true);
        assert_eq!(s26.len() - 1, 2);
    }

    #[test]
    fn resample_aligned_matches_trilinear() {
        let a = Array3::from_shape_fn((5, 6, 7), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
        let r = resample_aligned(&a, [0.3, -0.2, 1.1], [0.7, 0.45, 0.9], [6, 9, 8], -5.0);
        for ((k, j, i), &v) in r.indexed_iter() {
            let p = [
                0.3 + k as f64 * 0.7,
                -0.2 + j as f64 * 0.45,
                1.1 + i as f64 * 0.9,
            ];
            let e = trilinear_i16(&a, p, -5.0);
            assert!((v - e).abs() < 1e-3, "{p:?}: {v} vs {e}");
        }
    }

    #[test]
    fn holes_filled_and_eigen() {
        let mut m = Array3::from_elem((1, 5, 5), false);
        for y in 1..4 {
            for x in 1..4 {
                m[[0, y, x]] = (y, x) != (2, 2);
            }
        }
        fill_holes_2d(&mut m);
        assert!(m[[0, 2, 2]]);
        assert!(!m[[0, 0, 0]]);
        let e = sym_eigen3([2.0, 3.0, -5.0, 0.0, 0.0, 0.0]);
        assert_eq!(e, [-5.0, 3.0, 2.0]);
        let e = sym_eigen3([2.0, 2.0, 2.0, 1.0, 0.0, 0.0]);
        let mut s = e;
        s.sort_by(f64::total_cmp);
        assert!(
            (s[0] - 1.0).abs() < 1e-9 && (s[1] - 2.0).abs() < 1e-9 && (s[2] - 3.0).abs() < 1e-9
        );
    }
}
