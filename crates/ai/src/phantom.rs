//! Synthetic chest CT phantoms with known ground truth, for tests and benchmarks.
//!
//! A phantom has a body with a fat layer and chest wall, two ellipsoidal lungs, a trachea and main
//! bronchi with walls, branching vessel trees, and nodules of known size, type and position (free,
//! juxtapleural, juxtavascular), with partial-volume edges and Gaussian noise at CT levels. The
//! same seed always gives the same phantom.

use ndarray::{Array3, Axis};
use rayon::prelude::*;

use crate::volume::{Geometry, Volume};

/// The kind of a nodule: the clinical model's type, re-exported where the phantom uses it.
pub use lumen_model::NoduleType;

/// Where a phantom nodule sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attachment {
    /// Surrounded by lung.
    Free,
    /// Touching the chest wall.
    Juxtapleural,
    /// Touching a vessel.
    Juxtavascular,
}

/// A nodule to place: type, diameter and attachment.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NoduleSpec {
    /// Type.
    pub kind: NoduleType,
    /// Diameter in mm.
    pub diameter_mm: f64,
    /// Solid-core diameter for part-solid nodules, mm.
    pub solid_diameter_mm: f64,
    /// Attachment.
    pub attachment: Attachment,
}

/// Phantom parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhantomConfig {
    /// Array shape `[z, y, x]`.
    pub shape: [usize; 3],
    /// Voxel spacing `[z, y, x]` mm.
    pub spacing: [f64; 3],
    /// Random seed.
    pub seed: u64,
    /// Noise standard deviation in HU.
    pub noise_hu: f64,
    /// Nodules to place (positions are drawn from the seed).
    pub nodules: Vec<NoduleSpec>,
}

impl PhantomConfig {
    /// The standard nodule set: solid 4-15 mm, ground-glass 6-12 mm, part-solid, calcified,
    /// juxtapleural and juxtavascular.
    pub fn standard_nodules() -> Vec<NoduleSpec> {
        use Attachment::*;
        use NoduleType::*;
        let n = |kind, d, s, attachment| NoduleSpec {
            kind,
            diameter_mm: d,
            solid_diameter_mm: s,
            attachment,
        };
        vec![
            n(Solid, 4.0, 4.0, Free),
            n(Solid, 5.0, 5.0, Free),
            n(Solid, 6.0, 6.0, Free),
            n(Solid, 8.0, 8.0, Free),
            n(Solid, 12.0, 12.0, Free),
            n(Solid, 18.0, 18.0, Free),
            n(Solid, 6.0, 6.0, Juxtapleural),
            n(Solid, 9.0, 9.0, Juxtapleural),
            n(Solid, 5.0, 5.0, Juxtavascular),
            n(Solid, 7.0, 7.0, Juxtavascular),
            n(GroundGlass, 6.0, 0.0, Free),
            n(GroundGlass, 9.0, 0.0, Free),
            n(GroundGlass, 14.0, 0.0, Free),
            n(PartSolid, 10.0, 5.0, Free),
            n(PartSolid, 16.0, 9.0, Free),
            n(Calcified, 5.0, 5.0, Free),
        ]
    }

    /// A full-size 512x512x300 chest CT (0.7 x 0.7 x 1.0 mm) with the standard nodules.
    pub fn full(seed: u64) -> Self {
        Self {
            shape: [300, 512, 512],
            spacing: [1.0, 0.7, 0.7],
            seed,
            noise_hu: 25.0,
            nodules: Self::standard_nodules(),
        }
    }

    /// A smaller phantom for tests: 384x384x160 at 0.8 x 0.8 x 1.25 mm.
    pub fn small(seed: u64) -> Self {
        Self {
            shape: [160, 384, 384],
            spacing: [1.25, 0.8, 0.8],
            seed,
            noise_hu: 25.0,
            nodules: Self::standard_nodules(),
        }
    }
}

/// A placed nodule: the ground truth.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhantomNodule {
    /// Specification.
    pub spec: NoduleSpec,
    /// Centre in world mm.
    pub center_world_mm: [f64; 3],
    /// True volume, mm³.
    pub volume_mm3: f64,
    /// Which lung: "left" or "right".
    pub side: &'static str,
}

/// A phantom: the volume and its ground truth.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// The CT volume.
    pub volume: Volume,
    /// The nodules.
    pub nodules: Vec<PhantomNodule>,
    /// Analytic lung volumes (left, right), mL.
    pub lung_volumes_ml: [f64; 2],
    /// The true lung mask (0 outside, 1 right, 2 left).
    pub lung_labels: Array3<u8>,
}

/// Deterministic SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [a, b).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const BODY_HU: f64 = 40.0;
const FAT_HU: f64 = -100.0;
const LUNG_HU: f64 = -860.0;
const AIR_HU: f64 = -1000.0;
const VESSEL_HU: f64 = 40.0;

#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    c: [f64; 3],
    a: [f64; 3],
}

impl Ellipsoid {
    fn rho(&self, p: [f64; 3]) -> f64 {
        (0..3)
            .map(|i| ((p[i] - self.c[i]) / self.a[i]).powi(2))
            .sum::<f64>()
            .sqrt()
    }
    /// Approximate signed distance inside (positive) in mm.
    fn depth(&self, p: [f64; 3]) -> f64 {
        let rho = self.rho(p);
        // Gradient-normalised first-order distance.
        let g: f64 = (0..3)
            .map(|i| ((p[i] - self.c[i]) / (self.a[i] * self.a[i])).powi(2))
            .sum::<f64>()
            .sqrt();
        if g < 1e-9 {
            return self.a.iter().cloned().fold(f64::INFINITY, f64::min);
        }
        (1.0 - rho * rho) / (2.0 * g)
    }
}

/// A tube segment (capsule) painted with a value.
#[derive(Debug, Clone, Copy)]
struct Tube {
    p0: [f64; 3],
    p1: [f64; 3],
    r: f64,
    hu: f64,
}

impl Tube {
    fn dist(&self, p: [f64; 3]) -> f64 {
        let d = sub(self.p1, self.p0);
        let l2 = dot(d, d).max(1e-12);
        let t = (dot(sub(p, self.p0), d) / l2).clamp(0.0, 1.0);
        let q = [
            self.p0[0] + t * d[0],
            self.p0[1] + t * d[1],
            self.p0[2] + t * d[2],
        ];
        let v = sub(p, q);
        dot(v, v).sqrt()
    }
    /// Distance to the axis and the squared z component of the unit normal.
    fn dist_nz2(&self, p: [f64; 3]) -> (f64, f64) {
        let d = sub(self.p1, self.p0);
        let l2 = dot(d, d).max(1e-12);
        let t = (dot(sub(p, self.p0), d) / l2).clamp(0.0, 1.0);
        let q = [
            self.p0[0] + t * d[0],
            self.p0[1] + t * d[1],
            self.p0[2] + t * d[2],
        ];
        let v = sub(p, q);
        let n2 = dot(v, v);
        if n2 < 1e-12 {
            return (0.0, 0.0);
        }
        (n2.sqrt(), v[2] * v[2] / n2)
    }
    fn zrange(&self) -> (f64, f64) {
        (
            self.p0[2].min(self.p1[2]) - self.r - 2.0,
            self.p0[2].max(self.p1[2]) + self.r + 2.0,
        )
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

#[derive(Debug, Clone, Copy)]
struct Sphere {
    c: [f64; 3],
    r: f64,
    hu: f64,
}

/// Generates a phantom. Geometry is axial LPS with the origin chosen so that the volume is
/// centred on world (0, 0, 0).
pub fn generate(cfg: &PhantomConfig) -> Phantom {
    let [nz, ny, nx] = cfg.shape;
    let sp = cfg.spacing;
    let origin = [
        -(nx as f64 - 1.0) * sp[2] / 2.0,
        -(ny as f64 - 1.0) * sp[1] / 2.0,
        -(nz as f64 - 1.0) * sp[0] / 2.0,
    ];
    let geometry = Geometry::axial(origin, sp);
    let zext = nz as f64 * sp[0];
    let mut rng = Rng::new(cfg.seed);

    // Anatomy in world mm (x: patient left +, y: posterior +, z: superior +).
    let body = Ellipsoid {
        c: [0.0, 0.0, 0.0],
        a: [150.0, 105.0, 1e9],
    };
    let az = 0.42 * zext;
    let zc = -0.04 * zext;
    let right = Ellipsoid {
        c: [-68.0, 8.0, zc],
        a: [56.0, 78.0, az],
    };
    let left = Ellipsoid {
        c: [68.0, 8.0, zc],
        a: [54.0, 76.0, az * 0.97],
    };
    let lungs = [right, left];
    // Airways: trachea to carina, main bronchi to the hila, lobar bronchi inside the lungs.
    let carina = [0.0, -5.0, zc + 0.45 * az];
    let mut airways = vec![Tube {
        p0: [0.0, -8.0, zext],
        p1: carina,
        r: 8.0,
        hu: AIR_HU,
    }];
    for s in [-1.0, 1.0] {
        let hilum = [s * 42.0, 2.0, zc + 0.22 * az];
        airways.push(Tube {
            p0: carina,
            p1: hilum,
            r: 5.5,
            hu: AIR_HU,
        });
        airways.push(Tube {
            p0: hilum,
            p1: [s * 62.0, 10.0, zc - 0.05 * az],
            r: 3.5,
            hu: AIR_HU,
        });
        airways.push(Tube {
            p0: hilum,
            p1: [s * 60.0, -5.0, zc + 0.5 * az],
            r: 3.0,
            hu: AIR_HU,
        });
    }
    let airway_walls: Vec<Tube> = airways
        .iter()
        .map(|t| Tube {
            r: t.r + 1.5,
            hu: BODY_HU,
            ..*t
        })
        .collect();
    // Vessel trees from each hilum.
    let mut vessels = Vec::new();
    for (li, lung) in lungs.iter().enumerate() {
        let s = if li == 0 { -1.0 } else { 1.0 };
        let root = [s * 40.0, 12.0, zc + 0.15 * az];
        for dir in [
            [s * 0.3, -0.2, 0.9],
            [s * 0.9, 0.2, 0.1],
            [s * 0.4, 0.4, -0.8],
            [s * 0.5, -0.6, -0.3],
        ] {
            grow_tree(&mut vessels, lung, root, dir, 3.6, 0, &mut rng);
        }
    }
    // Nodules.
    let mut spheres: Vec<Sphere> = Vec::new();
    let mut truth = Vec::new();
    for (k, spec) in cfg.nodules.iter().enumerate() {
        let r = spec.diameter_mm / 2.0;
        let mut placed = None;
        for _attempt in 0..4000 {
            let li = ((k as u64).wrapping_add(rng.next_u64()) % 2) as usize;
            let lung = lungs[li];
            let c = match spec.attachment {
                Attachment::Free | Attachment::Juxtavascular => {
                    let u = [
                        rng.range(-0.8, 0.8),
                        rng.range(-0.8, 0.8),
                        rng.range(-0.75, 0.6),
                    ];
                    if norm(u) > 0.85 {
                        continue;
                    }
                    [
                        lung.c[0] + u[0] * lung.a[0],
                        lung.c[1] + u[1] * lung.a[1],
                        lung.c[2] + u[2] * lung.a[2],
                    ]
                }
                Attachment::Juxtapleural => {
                    // A point on the lateral/posterior wall, moved inwards by the radius.
                    let th = rng.range(-1.2, 1.2);
                    let zz = rng.range(-0.6, 0.5);
                    let side = if li == 0 { -1.0 } else { 1.0 };
                    let dir = [side * th.cos(), th.sin(), 0.0];
                    let mut t = 0.0;
                    let base = [lung.c[0], lung.c[1], lung.c[2] + zz * lung.a[2]];
                    while lung.rho([base[0] + dir[0] * t, base[1] + dir[1] * t, base[2]]) < 1.0 {
                        t += 0.1;
                    }
                    [
                        base[0] + dir[0] * (t - r * 0.95),
                        base[1] + dir[1] * (t - r * 0.95),
                        base[2],
                    ]
                }
            };
            if !(0..3).all(|i| {
                let v = (c[i] - origin[i]) / sp[2 - i];
                let n = [nx, ny, nz][i] as f64;
                v > r / sp[2 - i] + 4.0 && v < n - r / sp[2 - i] - 5.0
            }) {
                continue;
            }
            if spec.attachment != Attachment::Juxtapleural && lung.depth(c) < r + 4.0 {
                continue;
            }
            if spheres.iter().any(|s| norm(sub(s.c, c)) < s.r + r + 12.0) {
                continue;
            }
            if airway_walls.iter().any(|t| t.dist(c) < t.r + r + 5.0) {
                continue;
            }
            let vd = vessels
                .iter()
                .map(|t: &Tube| t.dist(c) - t.r)
                .fold(f64::INFINITY, f64::min);
            let ok = match spec.attachment {
                Attachment::Juxtavascular => {
                    // Touch one vessel of radius >= 1 mm: surface gap within [-0.3, 0.3] mm.
                    vessels
                        .iter()
                        .any(|t| t.r >= 1.0 && (t.dist(c) - t.r - r).abs() < 0.3)
                        && vd > r - 0.6
                }
                _ => vd > r + 2.5,
            };
            if !ok {
                continue;
            }
            placed = Some((c, li));
            break;
        }
        let Some((c, li)) = placed else {
            tracing::warn!("phantom: could not place nodule {k}");
            continue;
        };
        let (hu, core) = match spec.kind {
            NoduleType::Solid => (30.0, None),
            NoduleType::GroundGlass => (-560.0, None),
            NoduleType::PartSolid => (-560.0, Some(spec.solid_diameter_mm / 2.0)),
            NoduleType::Calcified => (420.0, None),
        };
        spheres.push(Sphere { c, r, hu });
        if let Some(rc) = core {
            spheres.push(Sphere { c, r: rc, hu: 30.0 });
        }
        truth.push(PhantomNodule {
            spec: *spec,
            center_world_mm: c,
            volume_mm3: 4.0 / 3.0 * std::f64::consts::PI * r.powi(3),
            side: if li == 0 { "right" } else { "left" },
        });
    }

    // Paint, one axial plane per task.
    let w = (sp[1] + sp[2]) / 2.0; // partial-volume ramp width
    let wxy = w;
    let frac = |s: f64| (0.5 + s / w).clamp(0.0, 1.0);
    let fov_r = (nx.min(ny) as f64 * sp[2].min(sp[1])) / 2.0 - 2.0;
    let mut hu = Array3::<i16>::zeros((nz, ny, nx));
    let mut labels = Array3::<u8>::zeros((nz, ny, nx));
    hu.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(labels.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(z, (mut plane, mut lab))| {
            let wz = origin[2] + z as f64 * sp[0];
            let mut buf = vec![0f64; ny * nx];
            let mut prng = Rng::new(cfg.seed.wrapping_mul(1_000_003).wrapping_add(z as u64));
            for y in 0..ny {
                let wy = origin[1] + y as f64 * sp[1];
                for x in 0..nx {
                    let wx = origin[0] + x as f64 * sp[2];
                    let p = [wx, wy, wz];
                    let v;
                    if wx * wx + wy * wy > fov_r * fov_r {
                        v = -1024.0;
                    } else {
                        let bd = (1.0 - body.rho([wx, wy, 0.0])) * 105.0;
                        let mut t = AIR_HU + (FAT_HU - AIR_HU) * frac(bd);
                        t += (BODY_HU - t) * frac(bd - 12.0);
                        for (li, l) in lungs.iter().enumerate() {
                            let d = l.depth(p);
                            if d > -2.0 * w {
                                let f = frac(d);
                                t += (LUNG_HU - t) * f;
                                if f >= 0.5 {
                                    lab[[y, x]] = li as u8 + 1;
                                }
                            }
                        }
                        v = t;
                    }
                    buf[y * nx + x] = v;
                }
            }
            let paint = |buf: &mut Vec<f64>, tube: &Tube| {
                let (z0, z1) = tube.zrange();
                if wz < z0 || wz > z1 {
                    return;
                }
                let rr = tube.r + 2.0;
                let xs = tube.p0[0].min(tube.p1[0]) - rr;
                let xe = tube.p0[0].max(tube.p1[0]) + rr;
                let ys = tube.p0[1].min(tube.p1[1]) - rr;
                let ye = tube.p0[1].max(tube.p1[1]) + rr;
                let ix0 = ((xs - origin[0]) / sp[2]).floor().max(0.0) as usize;
                let ix1 = (((xe - origin[0]) / sp[2]).ceil().max(0.0) as usize).min(nx - 1);
                let iy0 = ((ys - origin[1]) / sp[1]).floor().max(0.0) as usize;
                let iy1 = (((ye - origin[1]) / sp[1]).ceil().max(0.0) as usize).min(ny - 1);
                for y in iy0..=iy1 {
                    for x in ix0..=ix1 {
                        let p = [
                            origin[0] + x as f64 * sp[2],
                            origin[1] + y as f64 * sp[1],
                            wz,
                        ];
                        let (dist, nz2) = tube.dist_nz2(p);
                        // Partial volume: ramp width along the surface normal from the voxel size.
                        let we = (wxy * wxy * (1.0 - nz2) + sp[0] * sp[0] * nz2).sqrt();
                        let f = (0.5 + (tube.r - dist) / we).clamp(0.0, 1.0);
                        if f > 0.0 {
                            let b = &mut buf[y * nx + x];
                            *b += (tube.hu - *b) * f;
                        }
                    }
                }
            };
            for t in &vessels {
                paint(&mut buf, t);
            }
            for t in &airway_walls {
                paint(&mut buf, t);
            }
            for t in &airways {
                paint(&mut buf, t);
            }
            for s in &spheres {
                let tube = Tube {
                    p0: s.c,
                    p1: s.c,
                    r: s.r,
                    hu: s.hu,
                };
                paint(&mut buf, &tube);
            }
            for y in 0..ny {
                for x in 0..nx {
                    let mut v = buf[y * nx + x];
                    if v > -1020.0 {
                        v += cfg.noise_hu * prng.normal();
                    }
                    plane[[y, x]] = v.round().clamp(-1024.0, 3000.0) as i16;
                }
            }
        });
    // Airways are not lung.
    let mut volume = Volume::new(hu, geometry);
    volume.series_uid = Some(format!("2.25.{}", 1_000_000 + cfg.seed));
    let lung_volumes_ml = [
        4.0 / 3.0 * std::f64::consts::PI * right.a[0] * right.a[1] * right.a[2] / 1000.0,
        4.0 / 3.0 * std::f64::consts::PI * left.a[0] * left.a[1] * left.a[2] / 1000.0,
    ];
    Phantom {
        volume,
        nodules: truth,
        lung_volumes_ml,
        lung_labels: labels,
    }
}

/// Writes a volume as a CT series of single-frame DICOM files (Explicit VR Little Endian, signed
/// 16-bit HU, rescale 1/0) named `slice_NNNN.dcm` in `dir`; returns the number of files. Used to
/// benchmark loading end to end.
pub fn write_dicom_series(vol: &Volume, dir: &std::path::Path) -> std::io::Result<usize> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    std::fs::create_dir_all(dir)?;
    let [nz, ny, nx] = vol.shape();
    let g = vol.geometry;
    let series = vol.series_uid.clone().unwrap_or_else(|| "2.25.1".into());
    let study = vol
        .study_uid
        .clone()
        .unwrap_or_else(|| format!("{series}.1"));
    let ds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.6}"))
            .collect::<Vec<_>>()
            .join("\\")
    };
    (0..nz)
        .into_par_iter()
        .try_for_each(|z| -> std::io::Result<()> {
            let sop = format!("{series}.{}", z + 1);
            let mut o = InMemDicomObject::new_empty();
            let mut put = |tag, vr, v: PrimitiveValue| o.put(DataElement::new(tag, vr, v));
            put(
                tags::SOP_CLASS_UID,
                VR::UI,
                "1.2.840.10008.5.1.4.1.1.2".into(),
            );
            put(tags::SOP_INSTANCE_UID, VR::UI, sop.clone().into());
            put(tags::STUDY_INSTANCE_UID, VR::UI, study.clone().into());
            put(tags::SERIES_INSTANCE_UID, VR::UI, series.clone().into());
            put(tags::MODALITY, VR::CS, "CT".into());
            put(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL".into());
            put(tags::INSTANCE_NUMBER, VR::IS, format!("{}", nz - z).into());
            put(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds(&g.voxel_to_world([z as f64, 0.0, 0.0])).into(),
            );
            put(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                ds(&[
                    g.row_dir[0],
                    g.row_dir[1],
                    g.row_dir[2],
                    g.col_dir[0],
                    g.col_dir[1],
                    g.col_dir[2],
                ])
                .into(),
            );
            put(
                tags::PIXEL_SPACING,
                VR::DS,
                ds(&[g.spacing[1], g.spacing[2]]).into(),
            );
            put(tags::SLICE_THICKNESS, VR::DS, ds(&[g.spacing[0]]).into());
            put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
            put(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2".into(),
            );
            put(tags::ROWS, VR::US, PrimitiveValue::from(ny as u16));
            put(tags::COLUMNS, VR::US, PrimitiveValue::from(nx as u16));
            put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
            put(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16));
            put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
            put(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(1u16),
            );
            put(tags::RESCALE_INTERCEPT, VR::DS, "0".into());
            put(tags::RESCALE_SLOPE, VR::DS, "1".into());
            let px: Vec<u16> = vol
                .hu
                .index_axis(Axis(0), z)
                .iter()
                .map(|&v| v as u16)
                .collect();
            put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(px.into()));
            let file = o
                .with_meta(
                    FileMetaTableBuilder::new()
                        .transfer_syntax("1.2.840.10008.1.2.1")
                        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                        .media_storage_sop_instance_uid(sop),
                )
                .map_err(std::io::Error::other)?;
            file.write_to_file(dir.join(format!("slice_{:04}.dcm", z + 1)))
                .map_err(std::io::Error::other)
        })?;
    Ok(nz)
}

fn grow_tree(
    out: &mut Vec<Tube>,
    lung: &Ellipsoid,
    start: [f64; 3],
    dir: [f64; 3],
    r: f64,
    depth: usize,
    rng: &mut Rng,
) {
    if r < 0.6 || depth > 7 {
        return;
    }
    let n = norm(dir);
    let d = [dir[0] / n, dir[1] / n, dir[2] / n];
    let len = 10.0 + 5.0 * r + rng.range(0.0, 8.0);
    let mut end = [
        start[0] + d[0] * len,
        start[1] + d[1] * len,
        start[2] + d[2] * len,
    ];
    // Shorten until the segment ends inside the lung with a margin.
    let mut l = len;
    while lung.rho(end) > 0.93 && l > 2.0 {
        l *= 0.7;
        end = [
            start[0] + d[0] * l,
            start[1] + d[1] * l,
            start[2] + d[2] * l,
        ];
    }
    if lung.rho(end) > 0.93 {
        return;
    }
    out.push(Tube {
        p0: start,
        p1: end,
        r,
        hu: VESSEL_HU,
    });
    for _ in 0..2 {
        let jitter = [
            rng.range(-0.7, 0.7),
            rng.range(-0.7, 0.7),
            rng.range(-0.7, 0.7),
        ];
        let nd = [d[0] + jitter[0], d[1] + jitter[1], d[2] + jitter[2]];
        grow_tree(out, lung, end, nd, r * 0.74, depth + 1, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicom_round_trip() {
        let mut cfg = PhantomConfig::small(5);
        cfg.shape = [6, 64, 64];
        cfg.nodules.clear();
        let p = generate(&cfg);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_dicom_series(&p.volume, dir.path()).unwrap(), 6);
        let v = Volume::from_dicom_files(&[dir.path()]).unwrap();
        assert_eq!(v.hu, p.volume.hu);
        for k in 0..3 {
            assert!((v.geometry.origin[k] - p.volume.geometry.origin[k]).abs() < 1e-5);
            assert!((v.geometry.spacing[k] - p.volume.geometry.spacing[k]).abs() < 1e-5);
        }
    }

    #[test]
    fn phantom_is_deterministic_and_places_nodules() {
        let mut cfg = PhantomConfig::small(7);
        cfg.shape = [80, 384, 384];
        cfg.spacing = [2.5, 0.8, 0.8];
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.volume.hu, b.volume.hu);
        assert_eq!(a.nodules.len(), cfg.nodules.len());
        for n in &a.nodules {
            let v = a.volume.world_to_voxel(n.center_world_mm);
            let idx = [
                v[0].round() as usize,
                v[1].round() as usize,
                v[2].round() as usize,
            ];
            let hu = a.volume.hu[idx];
            let expect = match n.spec.kind {
                NoduleType::GroundGlass => -560.0,
                NoduleType::Calcified => 420.0,
                _ => 30.0,
            };
            assert!((hu as f64 - expect).abs() < 120.0, "{:?}: {hu}", n.spec);
        }
        // Lung parenchyma and outside air present.
        assert_eq!(a.volume.hu[[40, 0, 0]], -1024);
        let lung = a.lung_labels.iter().filter(|&&l| l > 0).count() as f64;
        let ml = lung * a.volume.geometry.voxel_volume_mm3() / 1000.0;
        let expect = a.lung_volumes_ml[0] + a.lung_volumes_ml[1];
        // The ellipsoids are clipped by the volume at the ends only slightly.
        assert!((ml / expect - 1.0).abs() < 0.1, "{ml} vs {expect}");
    }
}
