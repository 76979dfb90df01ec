//! The raw observations file beside a certificate (`observations.json`), read only for the
//! per-sample latencies the report plots. It is hostile input: bounded size, only the `timing`
//! member parsed, and a file that cannot be read makes the report say so rather than fail.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::schema::Basis;

/// The file's name, beside `certificate.json`.
pub const OBSERVATIONS_FILE: &str = "observations.json";

/// The largest observations file read.
pub const MAX_OBSERVATIONS_BYTES: u64 = 256 * 1024 * 1024;

/// What the report knows of per-sample latencies.
pub enum LatencyObservations {
    /// No observations file beside the certificate.
    Absent,
    /// The file exists but says no timing was recorded (`"timing": null`).
    NotRecorded,
    /// The file exists and could not be used; the error says why.
    Unreadable {
        path: PathBuf,
        error: String,
    },
    Present(Timing),
}

/// Per-sample single-inference latencies.
#[derive(Debug, Clone, Deserialize)]
pub struct Timing {
    pub basis: Basis,
    pub what: String,
    pub latencies_ms: Vec<f64>,
}

/// Only `timing`: the other members (outputs, per-sample metrics) are not the report's business.
#[derive(Deserialize)]
struct ObservationsTiming {
    #[serde(default)]
    timing: Option<Timing>,
}

/// Reads the latencies of `observations.json` in the certificate's folder.
pub fn read_latencies(certificate: &Path) -> LatencyObservations {
    let path = certificate.parent().unwrap_or(Path::new(".")).join(OBSERVATIONS_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return LatencyObservations::Absent,
        Err(e) => return LatencyObservations::Unreadable { path, error: e.to_string() },
    };
    let unreadable = |error: String| LatencyObservations::Unreadable { path: path.clone(), error };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_OBSERVATIONS_BYTES + 1).read_to_end(&mut bytes) {
        return unreadable(e.to_string());
    }
    if bytes.len() as u64 > MAX_OBSERVATIONS_BYTES {
        return unreadable(format!("larger than {MAX_OBSERVATIONS_BYTES} bytes"));
    }
    match serde_json::from_slice::<ObservationsTiming>(&bytes) {
        Err(e) => {
            unreadable(format!("not the observations format (line {}, column {}): {e}", e.line(), e.column()))
        }
        Ok(ObservationsTiming { timing: None }) => LatencyObservations::NotRecorded,
        Ok(ObservationsTiming { timing: Some(timing) }) => {
            if timing.latencies_ms.is_empty() {
                unreadable("timing.latencies_ms is empty".into())
            } else if let Some(bad) = timing.latencies_ms.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                unreadable(format!("timing.latencies_ms holds {bad}, not a latency"))
            } else {
                LatencyObservations::Present(timing)
            }
        }
    }
}
