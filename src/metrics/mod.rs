//! Task metrics. A metric is bound to one model's outputs on one golden set as a [`Scorer`],
//! which can evaluate any resample of the samples: the bootstrap behind every accuracy verdict
//! resamples indices, and the paired checks evaluate two models on the same indices.

mod agreement;
mod classification;
mod detection;
mod labels;
mod regression;
mod smt;

use std::collections::BTreeMap;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::engine::Tensor;

pub use agreement::{
    compare_outputs, AgreementLimits, OutputSamples, OutputStatistics, Statistic, StatisticValue,
    SNR_CEILING_DB,
};
pub use classification::{argmax, Top1Scorer};
pub use detection::{average_precision, decode_grid, iou, Box2, Detection, DetectionScorer, GroundTruth};
pub use labels::{LabelContext, LabelFault};
pub use regression::{friction_slice, SideslipScorer};
pub use smt::{SmtScorer, SMT_CLASSES};

/// Named metric values; always holds [`PRIMARY`], and `slice.<name>` for each slice.
pub type Evaluation = BTreeMap<String, f64>;

/// Key of the headline value the floors apply to.
pub const PRIMARY: &str = "primary";

/// A metric bound to one model's outputs on one golden set.
pub trait Scorer: Send + Sync {
    fn evaluate(&self, idx: &[usize]) -> Evaluation;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn evaluate_all(&self) -> Evaluation {
        self.evaluate(&(0..self.len()).collect::<Vec<_>>())
    }
}

/// The metric a golden set is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Share of samples whose arg-max class equals the label.
    Top1Accuracy,
    /// Sideslip angle estimation: RMSE in degrees (also max abs error), sliced by road friction.
    SideslipRmse,
    /// Solder-joint inspection: balanced accuracy (mean per-class recall), with escape rate,
    /// false-call ppm and placement-offset MAE; sliced by defect size.
    SmtInspection,
    /// Object detection: mean AP at IoU 0.5 over classes, sliced by object height.
    DetectionMap50,
    /// No task metric: the compressed model's outputs are compared with FP32's on the same
    /// inputs (cosine, SNR, errors, top-1 agreement), against `[limits.agreement]`. No labels.
    OutputAgreement,
}

impl MetricKind {
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Top1Accuracy => "top-1 accuracy",
            MetricKind::SideslipRmse => "sideslip RMSE",
            MetricKind::SmtInspection => "balanced accuracy",
            MetricKind::DetectionMap50 => "mAP@0.5",
            MetricKind::OutputAgreement => "output agreement",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            MetricKind::SideslipRmse => "deg",
            MetricKind::OutputAgreement => "-",
            _ => "fraction",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, MetricKind::SideslipRmse)
    }

    /// A task metric scores outputs against labels; `output_agreement` does not.
    pub fn is_task(self) -> bool {
        self != MetricKind::OutputAgreement
    }

    /// Binds the metric to a model's outputs (one entry per sample) and the golden labels;
    /// `None` for `output_agreement`, which has no scorer. `input_shape` is one sample's shape
    /// (`[1, C, H, W]` for images).
    pub fn scorer(
        self,
        outputs: &[Vec<Tensor>],
        labels: &ArrayD<f32>,
        classes: &[String],
        input_shape: &[usize],
    ) -> Option<Contributions> {
        Some(match self {
            MetricKind::Top1Accuracy => {
                Contributions::Top1Accuracy(Top1Scorer::new(outputs, labels, classes))
            }
            MetricKind::SideslipRmse => Contributions::SideslipRmse(SideslipScorer::new(outputs, labels)),
            MetricKind::SmtInspection => Contributions::SmtInspection(SmtScorer::new(outputs, labels)),
            MetricKind::DetectionMap50 => {
                let width = input_shape.last().copied().unwrap_or(1);
                Contributions::DetectionMap50(DetectionScorer::new(outputs, labels, classes, width))
            }
            MetricKind::OutputAgreement => return None,
        })
    }

    /// The shape labels must have, given N samples (`None` in a slot: any size); `None` when
    /// the metric reads no labels.
    pub fn label_shape(self) -> Option<&'static [Option<usize>]> {
        match self {
            MetricKind::Top1Accuracy => Some(&[None]),
            MetricKind::SideslipRmse => Some(&[None, Some(2)]),
            MetricKind::SmtInspection => Some(&[None, Some(4)]),
            MetricKind::DetectionMap50 => Some(&[None, None, Some(5)]),
            MetricKind::OutputAgreement => None,
        }
    }

    /// The samples of slice `name` (for `analyze --slice`), where the slice is a set of samples.
    pub fn slice_samples(self, labels: &ArrayD<f32>, name: &str) -> Option<Vec<usize>> {
        let rows = labels.shape().first().copied().unwrap_or(0);
        let column = |c: usize| (0..rows).map(move |i| (i, labels[[i, c]]));
        let pick = |keep: &dyn Fn(f32) -> bool, c: usize| {
            column(c).filter(|(_, v)| keep(*v)).map(|(i, _)| i).collect()
        };
        match (self, name) {
            (MetricKind::SmtInspection, "micro") => Some(pick(&|v| v > 0.5, 3)),
            (MetricKind::SmtInspection, "normal") => Some(pick(&|v| v <= 0.5, 3)),
            (MetricKind::SideslipRmse, "dry" | "wet" | "snow") => {
                Some(pick(&|mu| regression::friction_slice(mu) == name, 1))
            }
            _ => None,
        }
    }
}

/// Values reported beside a family metric that are errors or failure rates whatever that
/// metric's direction (SMT's escape rate, false calls and offset error; the sideslip max abs
/// error), as `smt.rs` and `regression.rs` name them: smaller is better.
pub const LOWER_IS_BETTER_VALUES: [&str; 4] =
    ["escape_rate", "false_call_ppm", "offset_mae_um", "max_abs_deg"];

/// Whether a larger value of `metrics.values[key]` is better: the primary value, its slices and
/// the per-class scores (recall, F1, AP) go the family metric's way, except the error values of
/// [`LOWER_IS_BETTER_VALUES`].
///
/// ```
/// use edgecert::metrics::value_higher_is_better;
/// assert!(value_higher_is_better(true, "slice.micro"));
/// assert!(!value_higher_is_better(true, "escape_rate"));
/// assert!(!value_higher_is_better(false, "slice.snow")); // RMSE
/// ```
pub fn value_higher_is_better(metric_higher_is_better: bool, key: &str) -> bool {
    metric_higher_is_better && !LOWER_IS_BETTER_VALUES.contains(&key)
}

/// One model's per-sample contributions to a task metric: what each golden sample adds to the
/// metric once the model's outputs are read against the labels (a prediction and its truth, an
/// error, a set of detections). It is the metric's scorer, and it is what a certificate's raw
/// observations record, so a verifier recomputes every accuracy figure from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum Contributions {
    Top1Accuracy(Top1Scorer),
    SideslipRmse(SideslipScorer),
    SmtInspection(SmtScorer),
    DetectionMap50(DetectionScorer),
}

impl Contributions {
    fn scorer(&self) -> &dyn Scorer {
        match self {
            Contributions::Top1Accuracy(s) => s,
            Contributions::SideslipRmse(s) => s,
            Contributions::SmtInspection(s) => s,
            Contributions::DetectionMap50(s) => s,
        }
    }

    /// The metric these contributions belong to.
    pub fn kind(&self) -> MetricKind {
        match self {
            Contributions::Top1Accuracy(_) => MetricKind::Top1Accuracy,
            Contributions::SideslipRmse(_) => MetricKind::SideslipRmse,
            Contributions::SmtInspection(_) => MetricKind::SmtInspection,
            Contributions::DetectionMap50(_) => MetricKind::DetectionMap50,
        }
    }

    /// Appends `other`'s samples after these (the contributions of a set, gathered sample by
    /// sample as a streaming replay makes them); `Err` when the metrics differ.
    pub fn extend(&mut self, other: Contributions) -> Result<(), String> {
        match (self, other) {
            (Contributions::Top1Accuracy(a), Contributions::Top1Accuracy(b)) => a.extend(b),
            (Contributions::SideslipRmse(a), Contributions::SideslipRmse(b)) => a.extend(b),
            (Contributions::SmtInspection(a), Contributions::SmtInspection(b)) => a.extend(b),
            (Contributions::DetectionMap50(a), Contributions::DetectionMap50(b)) => a.extend(b),
            (a, b) => return Err(format!("cannot append {} to {}", b.kind().name(), a.kind().name())),
        }
        Ok(())
    }

    /// Read from a file, the per-sample vectors must agree in length (a scorer indexes them
    /// together); `Err` names the one that does not.
    pub fn check_consistent(&self) -> Result<(), String> {
        let lengths: Vec<(&str, usize)> = match self {
            Contributions::Top1Accuracy(s) => s.lengths(),
            Contributions::SideslipRmse(s) => s.lengths(),
            Contributions::SmtInspection(s) => s.lengths(),
            Contributions::DetectionMap50(s) => s.lengths(),
        };
        let (first, n) = lengths[0];
        match lengths.iter().find(|(_, len)| *len != n) {
            Some((name, len)) => Err(format!("`{name}` has {len} samples but `{first}` has {n}")),
            None => Ok(()),
        }
    }
}

impl Scorer for Contributions {
    fn evaluate(&self, idx: &[usize]) -> Evaluation {
        self.scorer().evaluate(idx)
    }

    fn len(&self) -> usize {
        self.scorer().len()
    }
}

/// Mean of per-sample values over a (re)sample of indices.
pub fn mean_over(values: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len().max(1) as f64
}
