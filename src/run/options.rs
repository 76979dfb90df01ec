//! What a run is asked to do beyond its inputs and filters, as a type that holds only valid
//! combinations where it can (a remote backend carries its device, an exec one its adapter),
//! and [`RunOptions::validate`] for the rules a type cannot hold. The CLI parses into these and
//! calls; a library caller gets the same rules and the same messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cache::ReferenceCache;
use crate::backend::BackendKind;
use crate::certificate::observations::ReplayRecord;
use crate::engine::EngineChoice;
use crate::vocab::{Error, Observed, Result};

/// The longest single-stream run `--min-duration` may ask for: a day.
pub const MAX_MIN_DURATION_S: f64 = 86_400.0;

/// The backend a run observes the model on, with what it needs to reach it.
#[derive(Debug, Clone)]
pub enum BackendTarget {
    /// Real inference on the host for outputs; latency from the chip cost model.
    Emulated,
    /// Real inference and wall-clock latency on the host CPU.
    Host,
    /// The device agent of `--backend remote --device ADDR:PORT`.
    Remote(crate::remote::RemoteTarget),
    /// The runtime adapter of `--backend exec --adapter ADAPTER.toml`, and where its outputs
    /// are journalled.
    Exec { adapter: PathBuf, journal_dir: PathBuf },
}

/// Where a device backend journals the device's outputs, under the run's output folder: the
/// same command run again finds them and resumes.
pub const DEVICE_JOURNAL_DIR: &str = "device-journal";

/// What a caller says of the backend, as the command line's flags say it.
#[derive(Debug, Clone)]
pub struct BackendFlags<'a> {
    pub kind: BackendKind,
    /// The agent of `--backend remote` (`ADDR:PORT`).
    pub device: Option<&'a str>,
    /// The shared token the agent asks for.
    pub token_file: Option<&'a Path>,
    /// Seconds one request to the agent may take (at least 1).
    pub device_timeout_s: u64,
    /// The runtime adapter of `--backend exec`.
    pub adapter: Option<&'a Path>,
}

impl BackendTarget {
    /// The backend the flags name, journalling device outputs under `out`. A device flag given
    /// to another backend, or a device backend without its flag, is refused naming the flag.
    pub fn from_flags(flags: &BackendFlags<'_>, out: &Path) -> Result<Self> {
        let usage = |message: &str| Err(Error::Usage(message.into()));
        let journal_dir = out.join(DEVICE_JOURNAL_DIR);
        match (flags.kind, flags.device, flags.adapter) {
            (kind, Some(_), _) if kind != BackendKind::Remote => {
                usage("--device names an agent for --backend remote")
            }
            (kind, _, Some(_)) if kind != BackendKind::Exec => {
                usage("--adapter describes a runtime for --backend exec")
            }
            (BackendKind::Remote, None, _) => usage("--backend remote needs --device ADDR:PORT"),
            (BackendKind::Exec, _, None) => usage("--backend exec needs --adapter ADAPTER.toml"),
            (BackendKind::Remote, Some(addr), _) => Ok(BackendTarget::Remote(crate::remote::RemoteTarget {
                addr: addr.to_string(),
                token: flags.token_file.map(crate::remote::protocol::read_token).transpose()?,
                journal_dir,
                timeout: Duration::from_secs(flags.device_timeout_s.max(1)),
            })),
            (BackendKind::Exec, _, Some(adapter)) => {
                Ok(BackendTarget::Exec { adapter: adapter.to_path_buf(), journal_dir })
            }
            (BackendKind::Emulated, ..) => Ok(BackendTarget::Emulated),
            (BackendKind::Host, ..) => Ok(BackendTarget::Host),
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            BackendTarget::Emulated => BackendKind::Emulated,
            BackendTarget::Host => BackendKind::Host,
            BackendTarget::Remote(_) => BackendKind::Remote,
            BackendTarget::Exec { .. } => BackendKind::Exec,
        }
    }
}

/// How checks are observed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The backend, with what it needs to reach a device.
    pub backend: BackendTarget,
    /// Ambient temperature for the thermal model (default: the profile's, else 25 °C).
    pub ambient_c: Option<f64>,
    /// Signs every certificate issued.
    pub sign_with: Option<ed25519_dalek::SigningKey>,
    /// Who issues every certificate (`--issuer`): sealed into each.
    pub issuer: Option<crate::certificate::issuer::Issuer>,
    /// Shows a progress bar on golden replays (only ever drawn on a terminal).
    pub progress: bool,
    /// Where the FP32 reference's contributions are cached (`None`: `--no-cache`).
    pub reference_cache: Option<ReferenceCache>,
    /// The engine every output comes from.
    pub engine: EngineChoice,
    /// Replay the compressed model on the other engine too, and decide accuracy on both.
    pub cross_check: bool,
    /// A power meter read beside the host backend's timed run (`--power-meter`).
    pub power_meter: Option<crate::power::PowerMeter>,
    /// Golden replays already made, by family name (`merge` of sample shards): the runner
    /// judges these instead of replaying.
    pub given_replays: Option<BTreeMap<String, Observed<ReplayRecord>>>,
    /// The shortest single-stream run of a measured backend, in seconds (`--min-duration`).
    pub min_duration_s: f64,
    /// A sustained-load run after the timed one (`--soak`), on a measured backend.
    pub soak: Option<SoakOptions>,
    /// The worst-case ambient (°C) the thermal verdict must hold at (`--ambient-max`): a
    /// measured temperature is moved there linearly in its rise over the stated `--ambient`.
    pub ambient_max_c: Option<f64>,
}

/// `--soak S [--soak-rate HZ] [--thermal-root DIR]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakOptions {
    pub seconds: f64,
    pub rate_hz: Option<f64>,
    /// Where the thermal zones and clocks are read (`None`: this machine's `/sys`).
    pub thermal_root: Option<std::path::PathBuf>,
}

/// The longest soak, in seconds: a day.
pub const MAX_SOAK_S: f64 = 86_400.0;

/// The engine a run replays on when the caller names none: a chip runs integer kernels, so
/// cross-checked accuracy rests on onnxruntime's; tract otherwise (nothing to install).
pub fn default_engine(cross_check: bool) -> EngineChoice {
    if cross_check {
        EngineChoice::Onnxruntime
    } else {
        EngineChoice::Tract
    }
}

/// An emulated run on tract with no cache, signature, meter or progress bar: the reference
/// certification's options, which a library caller changes field by field.
impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backend: BackendTarget::Emulated,
            ambient_c: None,
            sign_with: None,
            issuer: None,
            progress: false,
            reference_cache: None,
            engine: EngineChoice::Tract,
            cross_check: false,
            power_meter: None,
            given_replays: None,
            min_duration_s: 0.0,
            soak: None,
            ambient_max_c: None,
        }
    }
}

impl RunOptions {
    /// The rules no field's type holds: a power meter needs a measured run, and the shortest
    /// single-stream run is a number of seconds within a day.
    pub fn validate(&self) -> Result<()> {
        if self.power_meter.is_some() && matches!(self.backend, BackendTarget::Emulated) {
            return Err(Error::Usage(
                "--power-meter reads a meter beside a measured run: add --backend host or remote (emulated power comes from the cost model)".into(),
            ));
        }
        if let Some(soak) = &self.soak {
            self.validate_soak(soak)?;
        }
        if let Some(c) = self.ambient_max_c.filter(|c| !(c.is_finite() && (-60.0..=150.0).contains(c))) {
            return Err(Error::Usage(format!("--ambient-max {c}: expected °C in -60..=150")));
        }
        if !(self.min_duration_s.is_finite() && (0.0..=MAX_MIN_DURATION_S).contains(&self.min_duration_s)) {
            return Err(Error::Usage(format!(
                "--min-duration {}: expected seconds in 0..={MAX_MIN_DURATION_S}",
                self.min_duration_s
            )));
        }
        Ok(())
    }
}

impl RunOptions {
    /// A soak measures a device's heat where edgecert can read its sensors: the host it runs on
    /// (or a recorded tree), a device's agent, or an adapter's `sensors_command`; an emulated
    /// run has no device at all.
    fn validate_soak(&self, soak: &SoakOptions) -> Result<()> {
        match self.backend {
            BackendTarget::Host => {}
            BackendTarget::Remote(_) | BackendTarget::Exec { .. } if soak.thermal_root.is_some() => {
                return Err(Error::Usage(
                    "--thermal-root reads a tree here, but a device's soak reads its own sensors (the agent's --system-root, the adapter's sensors_command)".into(),
                ))
            }
            BackendTarget::Remote(_) | BackendTarget::Exec { .. } => {}
            BackendTarget::Emulated => {
                return Err(Error::Usage(
                    "--soak runs the model under sustained load on a device: add --backend host, remote or exec (the emulated thermal model needs no soak)".into(),
                ))
            }
        }
        if !(soak.seconds.is_finite() && soak.seconds > 0.0 && soak.seconds <= MAX_SOAK_S) {
            return Err(Error::Usage(format!(
                "--soak {}: expected seconds in (0, {MAX_SOAK_S}]",
                soak.seconds
            )));
        }
        if let Some(rate) = soak.rate_hz.filter(|r| !(r.is_finite() && *r > 0.0 && *r <= 1e6)) {
            return Err(Error::Usage(format!(
                "--soak-rate {rate}: expected inferences per second in (0, 1e6]"
            )));
        }
        if let Some(root) = &soak.thermal_root {
            if !root.is_dir() {
                return Err(Error::Usage(format!(
                    "--thermal-root {}: not a folder (expected a tree holding sys/class/thermal)",
                    root.display()
                )));
            }
        }
        Ok(())
    }
}
