//! Output agreement: how closely the compressed model's outputs follow the FP32 reference's on
//! the same inputs, per output tensor, with no labels — the task-agnostic accuracy measure for
//! any model (OCR, segmentation, audio, a custom detector).
//!
//! Per output tensor and per sample: cosine similarity of the flattened outputs, signal and
//! noise energy (for the SNR in dB), the largest and the summed absolute error, and, when the
//! output is a score vector, whether the arg-max agrees. Each statistic gets an interval over
//! samples: a paired percentile bootstrap for the means and the SNR, binomial order statistics
//! for the 99th percentile of the per-sample maximum error.

use serde::{Deserialize, Serialize};

use super::argmax;
use crate::engine::Tensor;
use crate::stats::{bootstrap_interval, percentile_interval, proportion_interval, Direction};
use crate::vocab::{percentiles, Interval};

/// SNR reported when the outputs are identical (no noise at all).
pub const SNR_CEILING_DB: f64 = 200.0;

/// Limits on the agreement statistics, applied to every output tensor (`[limits.agreement]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementLimits {
    /// Mean cosine similarity must be at least this (e.g. 0.99).
    pub cosine_min: Option<f64>,
    /// Signal-to-noise ratio of compressed vs FP32 outputs, in dB, at least this.
    pub snr_db_min: Option<f64>,
    /// The 99th percentile over samples of the largest absolute error, at most this.
    pub max_abs_error_max: Option<f64>,
    /// Mean absolute error over every element, at most this.
    pub mean_abs_error_max: Option<f64>,
    /// Share of samples whose arg-max agrees, for score-vector outputs, at least this.
    pub top1_agreement_min: Option<f64>,
}

impl AgreementLimits {
    /// The limits that are set, as (statistic, limit).
    pub fn set(&self) -> Vec<(Statistic, f64)> {
        [
            (Statistic::Cosine, self.cosine_min),
            (Statistic::SnrDb, self.snr_db_min),
            (Statistic::MaxAbsError, self.max_abs_error_max),
            (Statistic::MeanAbsError, self.mean_abs_error_max),
            (Statistic::Top1Agreement, self.top1_agreement_min),
        ]
        .into_iter()
        .filter_map(|(s, l)| Some((s, l?)))
        .collect()
    }
}

/// One agreement statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    Cosine,
    SnrDb,
    MaxAbsError,
    MeanAbsError,
    Top1Agreement,
}

impl Statistic {
    pub const ALL: [Statistic; 5] = [
        Statistic::Cosine,
        Statistic::SnrDb,
        Statistic::MaxAbsError,
        Statistic::MeanAbsError,
        Statistic::Top1Agreement,
    ];

    /// The key in certificates and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Statistic::Cosine => "cosine",
            Statistic::SnrDb => "snr_db",
            Statistic::MaxAbsError => "max_abs_error",
            Statistic::MeanAbsError => "mean_abs_error",
            Statistic::Top1Agreement => "top1_agreement",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Statistic::Cosine => "cosine similarity",
            Statistic::SnrDb => "SNR (dB)",
            Statistic::MaxAbsError => "max abs error (p99 over samples)",
            Statistic::MeanAbsError => "mean abs error",
            Statistic::Top1Agreement => "top-1 agreement",
        }
    }

    /// Which side of its limit a passing value lies on.
    pub fn direction(self) -> Direction {
        match self {
            Statistic::MaxAbsError | Statistic::MeanAbsError => Direction::AtMost,
            _ => Direction::AtLeast,
        }
    }
}

/// Per-sample figures of one output tensor, compressed against FP32: the raw observations every
/// agreement statistic is computed from (and recomputed from, by `verify --recompute`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSamples {
    pub output: String,
    #[serde(with = "crate::vocab::serde_float::vec")]
    cosine: Vec<f64>,
    #[serde(with = "crate::vocab::serde_float::vec")]
    signal: Vec<f64>,
    #[serde(with = "crate::vocab::serde_float::vec")]
    noise: Vec<f64>,
    #[serde(with = "crate::vocab::serde_float::vec")]
    max_abs: Vec<f64>,
    #[serde(with = "crate::vocab::serde_float::vec")]
    sum_abs: Vec<f64>,
    elements: usize,
    /// Per sample: the arg-max agrees; `None` when the output is not a score vector.
    top1: Option<Vec<bool>>,
}

/// A statistic's value over the golden set with its interval.
#[derive(Debug, Clone)]
pub struct StatisticValue {
    pub statistic: Statistic,
    pub value: f64,
    pub ci: Interval,
}

/// Every statistic defined for one output over the golden set, with intervals: what the check
/// decides on and the certificate records, computed once.
#[derive(Debug, Clone)]
pub struct OutputStatistics {
    pub output: String,
    pub samples: usize,
    pub values: Vec<StatisticValue>,
}

impl OutputStatistics {
    pub fn get(&self, statistic: Statistic) -> Option<&StatisticValue> {
        self.values.iter().find(|v| v.statistic == statistic)
    }
}

/// Compares the two models' outputs, sample by sample. `names` names the output tensors.
/// Errors when the models disagree on the number or shape of outputs.
pub fn compare_outputs(
    compressed: &[Vec<Tensor>],
    reference: &[Vec<Tensor>],
    names: &[String],
) -> Result<Vec<OutputSamples>, String> {
    let outputs = reference.first().map_or(0, |r| r.len());
    if compressed.len() != reference.len() {
        return Err(format!("{} compressed vs {} reference output sets", compressed.len(), reference.len()));
    }
    (0..outputs)
        .map(|k| {
            let name = names.get(k).cloned().unwrap_or_else(|| format!("output {k}"));
            let pairs: Vec<(&Tensor, &Tensor)> = compressed
                .iter()
                .zip(reference)
                .map(|(c, r)| match (c.get(k), r.get(k)) {
                    (Some(c), Some(r)) if c.shape() == r.shape() => Ok((c, r)),
                    (Some(c), Some(r)) => Err(format!(
                        "output `{name}`: the compressed model gives shape {:?}, FP32 {:?}",
                        c.shape(),
                        r.shape()
                    )),
                    _ => Err(format!("output `{name}` is missing from one model's outputs")),
                })
                .collect::<Result<_, _>>()?;
            Ok(OutputSamples::new(name, &pairs))
        })
        .collect()
}

/// A tensor is a score vector when exactly one dimension is larger than 1.
fn is_score_vector(t: &Tensor) -> bool {
    t.shape().iter().filter(|&&d| d > 1).count() == 1
}

impl OutputSamples {
    fn new(output: String, pairs: &[(&Tensor, &Tensor)]) -> Self {
        let mut s = OutputSamples {
            output,
            cosine: Vec::with_capacity(pairs.len()),
            signal: Vec::with_capacity(pairs.len()),
            noise: Vec::with_capacity(pairs.len()),
            max_abs: Vec::with_capacity(pairs.len()),
            sum_abs: Vec::with_capacity(pairs.len()),
            elements: pairs.first().map_or(0, |(c, _)| c.len()),
            top1: pairs.first().is_some_and(|(_, r)| is_score_vector(r)).then(Vec::new),
        };
        for (c, r) in pairs {
            s.push(c, r);
        }
        s
    }

    fn push(&mut self, c: &Tensor, r: &Tensor) {
        let (mut dot, mut cc, mut rr, mut noise, mut max_abs, mut sum_abs) =
            (0.0, 0.0, 0.0, 0.0, 0.0f64, 0.0);
        for (&a, &b) in c.iter().zip(r.iter()) {
            let (a, b) = (a as f64, b as f64);
            let d = (a - b).abs();
            dot += a * b;
            cc += a * a;
            rr += b * b;
            noise += d * d;
            // A NaN anywhere is as far from agreement as it gets.
            max_abs = if d.is_nan() { f64::INFINITY } else { max_abs.max(d) };
            sum_abs += if d.is_nan() { f64::INFINITY } else { d };
        }
        let cosine = match (cc > 0.0, rr > 0.0) {
            _ if dot.is_nan() || cc.is_nan() => -1.0,
            (false, false) => 1.0,
            (true, true) => dot / (cc.sqrt() * rr.sqrt()),
            _ => 0.0,
        };
        self.cosine.push(if cosine.is_nan() { -1.0 } else { cosine });
        self.signal.push(rr);
        self.noise.push(if noise.is_nan() { f64::INFINITY } else { noise });
        self.max_abs.push(max_abs);
        self.sum_abs.push(sum_abs);
        if let Some(top1) = &mut self.top1 {
            top1.push(argmax(c.iter()) == argmax(r.iter()));
        }
    }

    pub fn len(&self) -> usize {
        self.cosine.len()
    }

    /// Appends `other`'s samples after these (gathered sample by sample in a streaming replay).
    pub fn extend(&mut self, other: OutputSamples) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.cosine.extend(other.cosine);
        self.signal.extend(other.signal);
        self.noise.extend(other.noise);
        self.max_abs.extend(other.max_abs);
        self.sum_abs.extend(other.sum_abs);
        match (&mut self.top1, other.top1) {
            (Some(mine), Some(theirs)) => mine.extend(theirs),
            // A sample whose output is no score vector: arg-max agreement is undefined here.
            (mine, _) => *mine = None,
        }
    }

    /// Read from a file, the per-sample vectors must agree in length; `Err` says which does not.
    pub fn check_consistent(&self) -> Result<(), String> {
        let n = self.len();
        let lengths = [
            ("signal", self.signal.len()),
            ("noise", self.noise.len()),
            ("max_abs", self.max_abs.len()),
            ("sum_abs", self.sum_abs.len()),
            ("top1", self.top1.as_ref().map_or(n, Vec::len)),
        ];
        match lengths.iter().find(|(_, len)| *len != n) {
            Some((name, len)) => {
                Err(format!("output `{}`: `{name}` has {len} samples, `cosine` {n}", self.output))
            }
            None => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cosine.is_empty()
    }

    /// Whether `statistic` is defined for this output (top-1 needs a score vector).
    pub fn has(&self, statistic: Statistic) -> bool {
        statistic != Statistic::Top1Agreement || self.top1.is_some()
    }

    fn value_on(&self, statistic: Statistic, idx: &[usize]) -> f64 {
        let mean = |v: &[f64]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len().max(1) as f64;
        match statistic {
            Statistic::Cosine => mean(&self.cosine),
            Statistic::SnrDb => {
                let (signal, noise): (f64, f64) =
                    idx.iter().fold((0.0, 0.0), |(s, n), &i| (s + self.signal[i], n + self.noise[i]));
                let db = 10.0 * (signal / noise).log10();
                if noise == 0.0 {
                    SNR_CEILING_DB
                } else if db.is_nan() {
                    // NaN or infinite outputs: no signal can be told from the noise.
                    -SNR_CEILING_DB
                } else {
                    db.clamp(-SNR_CEILING_DB, SNR_CEILING_DB)
                }
            }
            Statistic::MeanAbsError => mean(&self.sum_abs) / self.elements.max(1) as f64,
            Statistic::Top1Agreement => {
                let top1 = self.top1.as_deref().unwrap_or_default();
                idx.iter().filter(|&&i| top1.get(i).copied().unwrap_or(false)).count() as f64
                    / idx.len().max(1) as f64
            }
            Statistic::MaxAbsError => {
                let v: Vec<f64> = idx.iter().map(|&i| self.max_abs[i]).collect();
                let [p99] = percentiles(&v, [0.99]);
                p99
            }
        }
    }

    /// The statistic over every sample.
    pub fn value(&self, statistic: Statistic) -> f64 {
        self.value_on(statistic, &(0..self.len()).collect::<Vec<_>>())
    }

    /// Every statistic defined for this output, each with its interval; `seed` seeds the
    /// resampling (each statistic draws its own stream).
    pub fn statistics(&self, confidence: f64, seed: u64) -> OutputStatistics {
        OutputStatistics {
            output: self.output.clone(),
            samples: self.len(),
            values: Statistic::ALL
                .into_iter()
                .filter(|s| self.has(*s))
                .map(|s| self.statistic(s, confidence, seed ^ s as u64))
                .collect(),
        }
    }

    /// The statistic over every sample, with its interval at `confidence`.
    pub fn statistic(&self, statistic: Statistic, confidence: f64, seed: u64) -> StatisticValue {
        let all: Vec<usize> = (0..self.len()).collect();
        let value = self.value_on(statistic, &all);
        let ci = match statistic {
            Statistic::Top1Agreement => {
                let agreed = self.top1.as_deref().unwrap_or_default().iter().filter(|a| **a).count();
                proportion_interval(agreed, self.len(), confidence)
            }
            Statistic::MaxAbsError => {
                let mut sorted = self.max_abs.clone();
                sorted.sort_by(f64::total_cmp);
                percentile_interval(&sorted, 0.99, confidence)
            }
            _ => bootstrap_interval(self.len(), confidence, seed, |idx| self.value_on(statistic, idx)),
        };
        StatisticValue { statistic, value, ci }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn t(v: &[f32]) -> Tensor {
        ArrayD::from_shape_vec(IxDyn(&[1, v.len()]), v.to_vec()).unwrap()
    }

    fn samples(c: &[&[f32]], r: &[&[f32]]) -> OutputSamples {
        let c: Vec<Vec<Tensor>> = c.iter().map(|v| vec![t(v)]).collect();
        let r: Vec<Vec<Tensor>> = r.iter().map(|v| vec![t(v)]).collect();
        compare_outputs(&c, &r, &["scores".into()]).unwrap().remove(0)
    }

    #[test]
    fn identical_outputs_agree_perfectly() {
        let s = samples(&[&[1.0, 2.0, 3.0], &[0.0, 1.0, 0.0]], &[&[1.0, 2.0, 3.0], &[0.0, 1.0, 0.0]]);
        assert_eq!(s.value_on(Statistic::Cosine, &[0, 1]), 1.0);
        assert_eq!(s.value_on(Statistic::SnrDb, &[0, 1]), SNR_CEILING_DB);
        assert_eq!(s.value_on(Statistic::MeanAbsError, &[0, 1]), 0.0);
        assert_eq!(s.value_on(Statistic::Top1Agreement, &[0, 1]), 1.0);
    }

    #[test]
    fn hand_computed_values() {
        // Sample 0: c = (1, 0), r = (0, 1): cosine 0, |Δ| = (1, 1), arg-max differs.
        // Sample 1: c = (3, 4), r = (3, 4): cosine 1, no error.
        let s = samples(&[&[1.0, 0.0], &[3.0, 4.0]], &[&[0.0, 1.0], &[3.0, 4.0]]);
        let all = [0, 1];
        assert_eq!(s.value_on(Statistic::Cosine, &all), 0.5);
        // Signal 1 + 25 = 26, noise 2: 10·log10(13).
        assert!((s.value_on(Statistic::SnrDb, &all) - 10.0 * 13f64.log10()).abs() < 1e-12);
        // Summed |Δ| 2 over 2 samples × 2 elements.
        assert_eq!(s.value_on(Statistic::MeanAbsError, &all), 0.5);
        assert_eq!(s.value_on(Statistic::Top1Agreement, &all), 0.5);
        assert_eq!(s.value_on(Statistic::MaxAbsError, &all), 1.0);
    }

    #[test]
    fn nan_outputs_count_as_total_disagreement() {
        let s = samples(&[&[f32::NAN, 1.0]], &[&[0.5, 1.0]]);
        assert_eq!(s.value_on(Statistic::Cosine, &[0]), -1.0);
        assert_eq!(s.value_on(Statistic::MaxAbsError, &[0]), f64::INFINITY);
    }

    #[test]
    fn nan_or_infinite_outputs_never_reach_the_snr_ceiling() {
        let nan_reference = samples(&[&[1.0, 1.0]], &[&[f32::NAN, 1.0]]);
        assert_eq!(nan_reference.value_on(Statistic::SnrDb, &[0]), -SNR_CEILING_DB);
        let both_infinite = samples(&[&[f32::INFINITY, 1.0]], &[&[f32::INFINITY, 1.0]]);
        assert_eq!(both_infinite.value_on(Statistic::SnrDb, &[0]), -SNR_CEILING_DB);
    }

    #[test]
    fn a_feature_map_is_not_a_score_vector() {
        let c = vec![vec![ArrayD::zeros(IxDyn(&[1, 2, 3, 3]))]];
        let s = compare_outputs(&c, &c, &["map".into()]).unwrap().remove(0);
        assert!(!s.has(Statistic::Top1Agreement));
        assert!(s.has(Statistic::Cosine));
    }

    #[test]
    fn mismatched_shapes_are_named() {
        let c = vec![vec![t(&[1.0, 2.0])]];
        let r = vec![vec![t(&[1.0, 2.0, 3.0])]];
        let err = compare_outputs(&c, &r, &["logits".into()]).unwrap_err();
        assert!(err.contains("`logits`") && err.contains("[1, 2]") && err.contains("[1, 3]"), "{err}");
    }
}
