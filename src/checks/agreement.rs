//! Output agreement with FP32, per output tensor and per limit set in `[limits.agreement]`:
//! each (output, statistic) is decided by the same rule as every other check, and the check is
//! FAIL if any pair fails, PASS if every pair passes, INCONCLUSIVE otherwise.

use super::{CheckKind, Verdict};
use crate::metrics::{AgreementLimits, OutputStatistics, Statistic};
use crate::stats::{decide, samples_to_decide, Direction};
use crate::vocab::{Basis, Outcome};

/// One (output, statistic) decision.
struct Pair<'a> {
    output: &'a str,
    statistic: Statistic,
    value: f64,
    limit: f64,
    ci: &'a crate::vocab::Interval,
    outcome: Outcome,
}

/// Fewer samples than this give bootstrap intervals too narrow to trust (with one sample every
/// resample is the same): the check then says how many it needs instead of deciding.
pub const MIN_SAMPLES: usize = 20;

pub fn agreement_check(outputs: &[OutputStatistics], limits: &AgreementLimits) -> Verdict {
    let name = CheckKind::OutputAgreement;
    let n = outputs.first().map_or(0, |o| o.samples);
    if n < MIN_SAMPLES {
        let why = format!("{n} golden samples; output agreement is judged on at least {MIN_SAMPLES}");
        let mut v = Verdict::inconclusive(name, "-", Basis::Measured, why);
        v.samples = Some(n);
        v.samples_to_decide = Some(MIN_SAMPLES);
        return v;
    }
    let mut findings = Vec::new();
    let mut pairs = Vec::new();
    for out in outputs {
        for (statistic, limit) in limits.set() {
            let Some(v) = out.get(statistic) else {
                findings.push(format!(
                    "output `{}`: {} not applicable (not a score vector)",
                    out.output,
                    statistic.name()
                ));
                continue;
            };
            let outcome = decide(&v.ci, limit, statistic.direction());
            let (word, sign) = match statistic.direction() {
                Direction::AtLeast => ("floor", "≥"),
                Direction::AtMost => ("ceiling", "≤"),
            };
            findings.push(format!(
                "output `{}`: {} {:.6} [{:.6}, {}] {sign} {limit} ({word}): {}",
                out.output,
                statistic.name(),
                v.value,
                v.ci.low,
                v.ci.high.map_or("unbounded".into(), |h| format!("{h:.6}")),
                outcome.as_str()
            ));
            pairs.push(Pair { output: &out.output, statistic, value: v.value, limit, ci: &v.ci, outcome });
        }
    }
    // The pair that decides: the first failure, else the first undecided pair, else the first.
    let deciding = pairs
        .iter()
        .find(|p| p.outcome == Outcome::Fail)
        .or_else(|| pairs.iter().find(|p| p.outcome == Outcome::Inconclusive))
        .or(pairs.first());
    let Some(p) = deciding else {
        let mut v =
            Verdict::inconclusive(name, "-", Basis::Measured, "no agreement limit applies to these outputs");
        v.findings = findings;
        return v;
    };
    let outcome = p.outcome;
    let reason = match outcome {
        Outcome::Pass => {
            format!("all {} (output, statistic) pairs meet their limits on {n} samples", pairs.len())
        }
        _ => format!(
            "output `{}`: {} {:.6}, {:.0} % interval [{:.6}, {}], limit {}: {}",
            p.output,
            p.statistic.name(),
            p.value,
            p.ci.confidence * 100.0,
            p.ci.low,
            p.ci.high.map_or("unbounded".into(), |h| format!("{h:.6}")),
            p.limit,
            outcome.as_str()
        ),
    };
    let mut v = Verdict::new(name, outcome, p.statistic.name(), Basis::Measured, reason)
        .with_values(p.value, Some(p.limit));
    v.ci = Some(p.ci.clone());
    v.samples = Some(n);
    if outcome == Outcome::Inconclusive {
        v.samples_to_decide = samples_to_decide(n, p.value, p.ci, p.limit);
    }
    v.findings = findings;
    v
}
