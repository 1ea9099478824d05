//! Scoring an analysis against phantom ground truth: sensitivity, false positives and
//! measurement errors by nodule size and type.

use crate::phantom::{Phantom, PhantomNodule};
use crate::pipeline::{Analysis, Nodule};

/// How one true nodule fared.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TruthMatch {
    /// The true nodule.
    pub truth: PhantomNodule,
    /// The best-scored finding within the nodule radius (LUNA16 hit rule, radius at least 2 mm).
    pub found: Option<Nodule>,
}

impl TruthMatch {
    /// Mean-diameter error (found - true), mm.
    pub fn diameter_error_mm(&self) -> Option<f64> {
        self.found
            .as_ref()
            .map(|f| f.mean_diameter_mm - self.truth.spec.diameter_mm)
    }
    /// Relative volume error (found / true - 1).
    pub fn volume_error(&self) -> Option<f64> {
        self.found
            .as_ref()
            .map(|f| f.volume_mm3 / self.truth.volume_mm3 - 1.0)
    }
}

/// Result of matching one analysis to one phantom at a score threshold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhantomScore {
    /// Per true nodule.
    pub matches: Vec<TruthMatch>,
    /// Findings at or above the threshold that match no true nodule.
    pub false_positives: usize,
    /// Threshold used.
    pub threshold: f64,
}

/// Matches findings with score >= `threshold` to the phantom's nodules.
pub fn score_phantom(a: &Analysis, p: &Phantom, threshold: f64) -> PhantomScore {
    let kept: Vec<&Nodule> = a.nodules.iter().filter(|n| n.score >= threshold).collect();
    let mut used = vec![false; kept.len()];
    let mut matches = Vec::new();
    for t in &p.nodules {
        let r = (t.spec.diameter_mm / 2.0).max(2.0);
        let mut best: Option<usize> = None;
        for (i, n) in kept.iter().enumerate() {
            let d2: f64 = (0..3)
                .map(|k| (n.center_world_mm[k] - t.center_world_mm[k]).powi(2))
                .sum();
            if d2 < r * r {
                used[i] = true;
                if best.is_none_or(|b| kept[b].score < n.score) {
                    best = Some(i);
                }
            }
        }
        matches.push(TruthMatch {
            truth: t.clone(),
            found: best.map(|b| kept[b].clone()),
        });
    }
    PhantomScore {
        matches,
        false_positives: used.iter().filter(|u| !**u).count(),
        threshold,
    }
}
