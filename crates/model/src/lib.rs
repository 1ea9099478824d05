//! Lumen's clinical model: the types every layer agrees on, with no I/O.
//!
//! - [`NoduleType`] and the Lung-RADS v2022 / Fleischner 2017 rules ([`lungrads`]);
//! - a radiologist's findings ([`finding`]): who proposed them ([`Origin`]), where the review
//!   stands ([`FindingStatus`]), and their [`Measures`], recomputed by the rules when a doctor
//!   corrects them;
//! - the audit trail's record ([`audit`]): who did what to which study, when, how it ended;
//! - what the AI engine concluded for a series ([`ai`]): the versioned [`AiJobResult`] that the
//!   index stores, and the study-level [`AiState`].
//!
//! The serde forms are the documented JSON contract of the web API and of the index, so they
//! are kept stable; [`ai::AI_RESULT_SCHEMA`] versions the stored AI result.

pub mod ai;
pub mod audit;
pub mod finding;
pub mod lungrads;

pub use ai::{AiAnalysis, AiJobResult, AiNodule, AiState};
pub use audit::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};
pub use finding::{Finding, FindingId, FindingStatus, Measures, ModelError, Origin};
pub use lungrads::{Lang, LungRads, NoduleSize};

/// The kind of a nodule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoduleType {
    /// Solid soft-tissue density.
    Solid,
    /// Ground-glass halo with a solid core.
    PartSolid,
    /// Ground-glass (non-solid) density.
    GroundGlass,
    /// Calcified (benign pattern).
    Calcified,
}

impl NoduleType {
    /// Short lower-case name, as serialised.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoduleType::Solid => "solid",
            NoduleType::PartSolid => "part-solid",
            NoduleType::GroundGlass => "ground-glass",
            NoduleType::Calcified => "calcified",
        }
    }

    /// True for subsolid types (part-solid, ground-glass).
    pub fn is_subsolid(&self) -> bool {
        matches!(self, NoduleType::PartSolid | NoduleType::GroundGlass)
    }
}

impl std::str::FromStr for NoduleType {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "solid" => NoduleType::Solid,
            "part-solid" => NoduleType::PartSolid,
            "ground-glass" => NoduleType::GroundGlass,
            "calcified" => NoduleType::Calcified,
            _ => {
                return Err(ModelError::Invalid(
                    "type must be solid, part-solid, ground-glass or calcified".into(),
                ));
            }
        })
    }
}
