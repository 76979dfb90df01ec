//! Top-1 classification accuracy, with per-class recall.

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::{Evaluation, Scorer, PRIMARY};
use crate::engine::Tensor;

/// Index of the largest value; NaN never wins, so a model emitting NaN scores as wrong.
pub fn argmax<'a>(values: impl Iterator<Item = &'a f32>) -> Option<usize> {
    values.enumerate().filter(|(_, v)| !v.is_nan()).max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
}

/// Per sample: the predicted class (`None`: no finite score) and the labelled one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Top1Scorer {
    predicted: Vec<Option<usize>>,
    truth: Vec<usize>,
    classes: Vec<String>,
}

impl Top1Scorer {
    pub fn new(outputs: &[Vec<Tensor>], labels: &ArrayD<f32>, classes: &[String]) -> Self {
        Top1Scorer {
            predicted: outputs.iter().map(|o| argmax(o[0].iter())).collect(),
            truth: labels.iter().map(|&l| l as usize).collect(),
            classes: classes.to_vec(),
        }
    }
}

impl Top1Scorer {
    pub(super) fn lengths(&self) -> Vec<(&'static str, usize)> {
        vec![("truth", self.truth.len()), ("predicted", self.predicted.len())]
    }
}

impl Scorer for Top1Scorer {
    fn len(&self) -> usize {
        self.truth.len()
    }

    fn evaluate(&self, idx: &[usize]) -> Evaluation {
        let hits = idx.iter().filter(|&&i| self.predicted[i] == Some(self.truth[i])).count();
        let mut e = Evaluation::new();
        e.insert(PRIMARY.into(), hits as f64 / idx.len().max(1) as f64);
        for (c, name) in self.classes.iter().enumerate() {
            let of_class: Vec<usize> = idx.iter().copied().filter(|&i| self.truth[i] == c).collect();
            let hit = of_class.iter().filter(|&&i| self.predicted[i] == Some(c)).count();
            if !of_class.is_empty() {
                e.insert(format!("recall.{name}"), hit as f64 / of_class.len() as f64);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn logits(v: &[f32]) -> Vec<Tensor> {
        vec![ArrayD::from_shape_vec(IxDyn(&[1, v.len()]), v.to_vec()).unwrap()]
    }

    #[test]
    fn top1_accuracy_counts_argmax_hits_and_nan_is_wrong() {
        let outputs = vec![
            logits(&[0.1, 0.9]),
            logits(&[0.8, 0.2]),
            logits(&[0.3, 0.7]),
            logits(&[f32::NAN, f32::NAN]),
        ];
        let labels = ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 1.0, 1.0, 0.0]).unwrap();
        let s = Top1Scorer::new(&outputs, &labels, &["a".into(), "b".into()]);
        let e = s.evaluate_all();
        assert_eq!(e[PRIMARY], 0.5);
        assert_eq!(e["recall.b"], 2.0 / 3.0);
        assert_eq!(e["recall.a"], 0.0);
        assert_eq!(s.evaluate(&[0, 0, 2])[PRIMARY], 1.0);
    }
}
