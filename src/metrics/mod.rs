//! Task metrics, computed over any subset of golden samples so that the bootstrap can resample
//! them. Each metric knows whether higher is better.

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::engine::Tensor;

/// The metric a golden set is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Share of samples whose arg-max class equals the label.
    Top1Accuracy,
}

impl MetricKind {
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Top1Accuracy => "top-1 accuracy",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            MetricKind::Top1Accuracy => "fraction",
        }
    }

    pub fn higher_is_better(self) -> bool {
        match self {
            MetricKind::Top1Accuracy => true,
        }
    }

    /// Per-sample scores whose mean is the metric (decomposable metrics).
    pub fn per_sample(self, outputs: &[Vec<Tensor>], labels: &ArrayD<f32>) -> Vec<f64> {
        match self {
            MetricKind::Top1Accuracy => outputs
                .iter()
                .enumerate()
                .map(|(i, out)| f64::from(u8::from(argmax(out[0].iter()) == Some(labels[[i]] as usize))))
                .collect(),
        }
    }
}

/// Mean of per-sample scores over a (re)sample of indices.
pub fn mean_over(scores: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| scores[i]).sum::<f64>() / idx.len().max(1) as f64
}

/// Index of the largest value; NaN never wins, so a model emitting NaN scores as wrong.
pub fn argmax<'a>(values: impl Iterator<Item = &'a f32>) -> Option<usize> {
    values.enumerate().filter(|(_, v)| !v.is_nan()).max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn logits(v: &[f32]) -> Vec<Tensor> {
        vec![ArrayD::from_shape_vec(IxDyn(&[1, v.len()]), v.to_vec()).unwrap()]
    }

    #[test]
    fn top1_accuracy_counts_argmax_hits() {
        let outputs = vec![
            logits(&[0.1, 0.9]),
            logits(&[0.8, 0.2]),
            logits(&[0.3, 0.7]),
            logits(&[f32::NAN, f32::NAN]),
        ];
        let labels = ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 1.0, 1.0, 0.0]).unwrap();
        let s = MetricKind::Top1Accuracy.per_sample(&outputs, &labels);
        assert_eq!(s, vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!(mean_over(&s, &[0, 1, 2, 3]), 0.5);
        assert_eq!(mean_over(&s, &[0, 0, 2]), 1.0);
    }
}
