//! `lumen analyze` and `lumen eval`: the command-line face of the chest CT AI engine.

/// Arguments of `lumen analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A series folder or DICOM files.
    pub paths: Vec<std::path::PathBuf>,
    /// Write the findings as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
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
    /// Detections CSV (seriesuid,coordX,coordY,coordZ,probability).
    pub detections: std::path::PathBuf,
}

/// Runs `lumen analyze`.
pub fn run_analyze(_args: AnalyzeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

/// Runs `lumen eval`.
pub fn run_eval(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
