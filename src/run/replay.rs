//! A golden replay judged: from the per-sample contributions of both models (as the runner
//! reads them from real inference, or as `verify --recompute` reads them back from a
//! certificate's raw observations) to the paired task-metric evaluation and the per-output
//! agreement statistics every accuracy and agreement verdict reads. One function serves both,
//! so a recomputed verdict is the same code's answer on the same numbers.

use crate::certificate::observations::ReplayRecord;
use crate::certificate::schema::{CrossCheckReport, MetricsReport, OutputAgreementRecord, StatisticRecord};
use crate::checks::{EngineCrossCheck, PairedEvaluation};
use crate::golden::FamilyManifest;
use crate::metrics::{Contributions, OutputStatistics, Scorer};
use crate::vocab::Unobserved;

/// What the golden replay through both models gives: the per-sample record, the paired
/// task-metric evaluation (with the values the certificate reports) and the agreement of the
/// two models' outputs, each when the golden set asks for it.
pub(super) struct Replay {
    pub record: ReplayRecord,
    pub task: Option<(PairedEvaluation, MetricsReport)>,
    pub agreement: Option<Vec<OutputStatistics>>,
    /// The reference's contributions came from the cache (its model did not run).
    pub reference_cached: bool,
    /// The compressed model on the second engine, when the run cross-checks engines.
    pub cross_check: Option<CrossCheck>,
}

/// The second engine's replay judged: its task metric (for the accuracy checks) and how its
/// outputs follow the first engine's.
pub(super) struct CrossCheck {
    pub accuracy: Option<EngineCrossCheck>,
    pub metrics: Option<MetricsReport>,
    pub agreement: Vec<OutputStatistics>,
}

impl Replay {
    /// Judges the record under the golden set's metric; `Err` when the record does not belong
    /// to that metric.
    pub fn judge(record: ReplayRecord, manifest: &FamilyManifest) -> Result<Replay, String> {
        let paired = |compressed: &Option<Contributions>| match (compressed, &record.reference) {
            (Some(c), Some(r)) => paired_evaluation(c, r, &record, manifest).map(Some),
            _ => Ok(None),
        };
        let task = paired(&record.compressed)?;
        let agreement = record
            .agreement
            .as_ref()
            .map(|outputs| outputs.iter().map(|o| o.statistics(record.confidence, record.seed)).collect());
        let cross_check = match &record.cross_check {
            Some(x) => {
                let other = paired(&x.compressed)?;
                Some(CrossCheck {
                    metrics: other.as_ref().map(|(_, m)| m.clone()),
                    accuracy: other.map(|(paired, _)| EngineCrossCheck {
                        primary: record.engine.clone(),
                        other: x.engine.clone(),
                        paired,
                    }),
                    agreement: x
                        .agreement
                        .iter()
                        .map(|o| o.statistics(record.confidence, record.seed))
                        .collect(),
                })
            }
            None => None,
        };
        Ok(Replay { record, task, agreement, reference_cached: false, cross_check })
    }
}

/// The paired evaluation of one set of compressed contributions against the reference's, and
/// the values the certificate reports.
fn paired_evaluation(
    c: &Contributions,
    r: &Contributions,
    record: &ReplayRecord,
    manifest: &FamilyManifest,
) -> Result<(PairedEvaluation, MetricsReport), String> {
    let kind = manifest.metric.kind;
    if let Some(other) = [c, r].into_iter().map(|x| x.kind()).find(|k| *k != kind) {
        return Err(format!(
            "the replay holds {} contributions but the golden set is judged by {}",
            other.name(),
            kind.name()
        ));
    }
    if c.len() != r.len() {
        return Err(format!("{} compressed vs {} FP32 contributions", c.len(), r.len()));
    }
    let paired = PairedEvaluation::new(kind, c, r, record.confidence, record.seed);
    let metrics = MetricsReport {
        metric: kind.name().to_string(),
        unit: kind.unit().to_string(),
        higher_is_better: kind.higher_is_better(),
        hardest_slice: manifest.metric.hardest_slice.clone(),
        values: paired.values(),
    };
    Ok((paired, metrics))
}

impl Replay {
    /// Both models' task-metric values, paired, for the accuracy checks.
    pub fn paired(&self) -> Result<&PairedEvaluation, Unobserved> {
        self.task
            .as_ref()
            .map(|(p, _)| p)
            .ok_or_else(|| Unobserved::measured("the golden set has no task metric and labels"))
    }

    /// The agreement statistics of every output, for the agreement check.
    pub fn agreement(&self) -> Result<&[OutputStatistics], Unobserved> {
        self.agreement
            .as_deref()
            .ok_or_else(|| Unobserved::measured("the golden set sets no [limits.agreement]"))
    }

    /// Every agreement statistic of every output, for the certificate.
    pub fn agreement_records(&self) -> Option<Vec<OutputAgreementRecord>> {
        self.agreement.as_ref().map(|outputs| outputs.iter().map(agreement_record).collect())
    }

    /// The second engine's figures, for the certificate.
    pub fn cross_check_report(&self) -> Option<CrossCheckReport> {
        let x = self.cross_check.as_ref()?;
        let other = self.record.cross_check.as_ref()?;
        Some(CrossCheckReport {
            verdict_engine: self.record.engine.clone(),
            engine: other.engine.clone(),
            metrics: x.metrics.clone(),
            agreement: x.agreement.iter().map(agreement_record).collect(),
        })
    }
}

fn agreement_record(out: &OutputStatistics) -> OutputAgreementRecord {
    OutputAgreementRecord {
        output: out.output.clone(),
        samples: out.samples,
        statistics: out
            .values
            .iter()
            .map(|v| StatisticRecord {
                statistic: v.statistic.key().to_string(),
                value: v.value,
                ci: v.ci.clone(),
            })
            .collect(),
    }
}
