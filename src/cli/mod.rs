//! Command-line interface. Exit codes: 0 every check PASS, 1 some check FAIL or INCONCLUSIVE,
//! 2 bad input or usage (nothing written).

mod certify;
mod inspect;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::backend::BackendKind;
use crate::error::{exit_code, Result};

#[derive(Parser, Debug)]
#[command(name = "edgecert", version, about = "Certify compressed ONNX models against edge-chip profiles")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Certify models against chip profiles. With no model, runs the reference program: every
    /// golden set under --golden-dir against every profile under --profiles-dir.
    Certify(Box<CertifyArgs>),
    /// Print a model's inventory: ops, parameters, weight bytes, MACs, activations.
    Inspect {
        model: PathBuf,
        /// Machine-readable JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Emulated latency, memory and per-node placement of one model on one chip.
    Estimate {
        model: PathBuf,
        #[arg(long)]
        profile: PathBuf,
        #[arg(long)]
        json: bool,
        /// Inferences per second for the average-power figure.
        #[arg(long, default_value_t = 30.0)]
        rate: f64,
        /// NPU compute mode from the profile's `npu.modes` (default: the profile's main figures).
        #[arg(long)]
        npu_mode: Option<String>,
    },
    /// Chip-profile tools.
    #[command(subcommand)]
    Profile(ProfileCommand),
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Validate a profile; every error names file, line and field.
    Check { profiles: Vec<PathBuf> },
}

#[derive(clap::Args, Debug)]
pub struct CertifyArgs {
    /// Chip profile(s) to certify against (default: every profile in --profiles-dir).
    #[arg(long = "profile")]
    pub profiles: Vec<PathBuf>,
    /// A compressed model to certify instead of the golden set's own (needs --golden).
    #[arg(long, requires = "golden")]
    pub model: Option<PathBuf>,
    /// Golden-set folder(s) (default: every family under --golden-dir).
    #[arg(long)]
    pub golden: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "emulated")]
    pub backend: BackendKind,
    /// NPU compute mode, applied to every profile that lists it in `npu.modes`.
    #[arg(long)]
    pub npu_mode: Option<String>,
    /// Ambient temperature (°C) for the thermal model (default: the profile's, else 25).
    #[arg(long)]
    pub ambient: Option<f64>,
    /// Where reports go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    #[arg(long, default_value = "profiles")]
    pub profiles_dir: PathBuf,
    #[arg(long, default_value = "golden")]
    pub golden_dir: PathBuf,
    /// libtest-style options: a name filter, --list, --exact, --skip, -q, --format ...
    #[command(flatten)]
    pub test: libtest_mimic::Arguments,
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_code::BAD_INPUT } else { exit_code::PASS };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Certify(args) => certify::run(*args),
        Command::Inspect { model, json } => inspect::inspect(&model, json),
        Command::Estimate { model, profile, json, rate, npu_mode } => {
            inspect::estimate(&model, &profile, json, rate, npu_mode.as_deref())
        }
        Command::Profile(ProfileCommand::Check { profiles }) => inspect::check_profiles(&profiles),
    }
}
