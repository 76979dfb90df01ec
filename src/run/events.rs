//! What the runner tells its reporters, in order: the run started (with its plan), a check
//! started, an observation was recorded, a check finished (with its verdict), a certificate was
//! issued, the run finished. Reporters (terminal, certificate JSON, JUnit, summary, an event
//! stream) consume these and nothing else, as nextest's reporters consume its test events.

use std::path::PathBuf;

use serde::Serialize;

use super::plan::{CheckId, Plan};
use crate::certificate::schema::{Certificate, CheckRecord, CheckStatus};
use crate::vocab::{Basis, Outcome, Result};

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    RunStarted {
        plan: &'a Plan,
        selected: usize,
        /// The engine every output comes from, and the second one under `--cross-check`.
        engine: &'a str,
        cross_check_engine: Option<&'a str>,
        /// Why the engine is not the one asked for (`--engine auto` without onnxruntime).
        engine_note: Option<&'a str>,
    },
    CheckStarted {
        id: &'a CheckId,
    },
    ObservationRecorded {
        family: &'a str,
        profile: Option<&'a str>,
        observation: &'a Observation,
    },
    CheckFinished {
        id: &'a CheckId,
        record: &'a CheckRecord,
    },
    /// A certificate and the bytes of the raw observations it is bound to (written beside it;
    /// left out of the event stream, whose readers get the certificate).
    CertificateIssued {
        certificate: &'a Certificate,
        #[serde(skip)]
        observations: &'a [u8],
    },
    RunFinished {
        summary: &'a RunSummary,
    },
}

/// Something a backend observed, summarised for the event stream (the full figures go into
/// the certificate).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// Single-inference latencies of the compressed model.
    Latency { basis: Basis, samples: usize, p50_ms: f64, p99_ms: f64, what: String },
    /// The golden set replayed through both models: the task metric of each (when the family
    /// has one) and how many output tensors were compared for agreement.
    /// `reference_cached`: the reference's contributions came from the cache.
    Replay {
        engine: String,
        samples: usize,
        metric: Option<TaskValues>,
        outputs_compared: usize,
        reference_cached: bool,
        /// The compressed model's primary metric on the cross-check engine.
        cross_check: Option<CrossCheckValues>,
    },
    /// An observation that could not be made.
    Unavailable { what: String, reason: String },
}

/// The primary task-metric value of both models.
#[derive(Debug, Clone, Serialize)]
pub struct TaskValues {
    pub metric: String,
    pub compressed: f64,
    pub reference: f64,
}

/// The compressed model on the second engine of `--cross-check`.
#[derive(Debug, Clone, Serialize)]
pub struct CrossCheckValues {
    pub engine: String,
    pub compressed: Option<f64>,
}

/// A file a reporter wants written; the run writes all of them at once, or none.
#[derive(Debug, Clone)]
pub struct ReportFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A consumer of run events.
pub trait Reporter {
    fn handle(&mut self, event: &Event<'_>) -> Result<()>;
    /// Files to write once the run has finished.
    fn finish(&mut self) -> Vec<ReportFile> {
        Vec::new()
    }
}

/// The counts of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub passed: usize,
    pub failed: usize,
    pub inconclusive: usize,
    /// Checks stopped by an internal error (also counted as inconclusive).
    pub errors: usize,
    pub filtered_out: usize,
    pub skipped: usize,
    /// Overall verdicts of the certificates issued.
    pub certificates: Vec<Outcome>,
    /// (family, chip) of each certificate issued, in the same order: where to read them back.
    #[serde(skip)]
    pub issued: Vec<(String, String)>,
    pub elapsed_s: f64,
}

impl RunSummary {
    pub(super) fn count(&mut self, record: &CheckRecord) {
        match record.verdict {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail => self.failed += 1,
            Outcome::Inconclusive => self.inconclusive += 1,
        }
        if record.status == CheckStatus::Error {
            self.errors += 1;
        }
    }

    /// The run's outcome: FAIL when a check failed, PASS when every certificate passed,
    /// INCONCLUSIVE otherwise (a run that issued none included).
    pub fn outcome(&self) -> Outcome {
        if self.failed > 0 || self.certificates.contains(&Outcome::Fail) {
            Outcome::Fail
        } else if !self.certificates.is_empty() && self.certificates.iter().all(|c| *c == Outcome::Pass) {
            Outcome::Pass
        } else {
            Outcome::Inconclusive
        }
    }

    /// The run's word, as cargo test says it: `ok`, `FAILED` or `INCONCLUSIVE`.
    pub fn result(&self) -> &'static str {
        match self.outcome() {
            Outcome::Pass => "ok",
            Outcome::Fail => "FAILED",
            Outcome::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// Every certificate issued passed.
    pub fn certified(&self) -> bool {
        self.outcome() == Outcome::Pass
    }

    /// `certify result: FAILED. 120 passed; 3 failed; 122 inconclusive; ...`
    pub fn closing_line(&self) -> String {
        self.closing_line_of("certify")
    }

    /// The closing line as `command` says it (`merge result: ...`).
    pub fn closing_line_of(&self, command: &str) -> String {
        let mut line = format!(
            "{command} result: {}. {} passed; {} failed; {} inconclusive",
            self.result(),
            self.passed,
            self.failed,
            self.inconclusive
        );
        if self.errors > 0 {
            line.push_str(&format!(" ({} errors)", self.errors));
        }
        line.push_str(&format!(
            "; {} filtered out; {} skipped; finished in {:.2}s",
            self.filtered_out, self.skipped, self.elapsed_s
        ));
        line
    }
}
