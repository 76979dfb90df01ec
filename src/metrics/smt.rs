//! SMT solder-joint inspection: defect classification plus placement offset, scored as a
//! factory would: per-class recall, escape rate (defects passed as good), false-call rate in ppm
//! (good parts rejected per inspected component), offset MAE in µm, and accuracy per defect-size
//! slice (micro defects of a few pixels are where compression hurts first).

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::{argmax, Evaluation, Scorer, PRIMARY};
use crate::engine::Tensor;

pub const SMT_CLASSES: [&str; 6] = ["good", "insufficient", "excess", "missing", "tombstone", "misaligned"];
const GOOD: usize = 0;
const MISSING: usize = 3;

/// Model output: 6 class scores, then the placement offset (x, y) in µm. Per sample: the
/// predicted and labelled class, the offset error, and whether the defect is micro-sized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtScorer {
    predicted: Vec<Option<usize>>,
    truth: Vec<usize>,
    /// Mean absolute offset error in µm, for samples with a component.
    #[serde(with = "crate::vocab::serde_float::vec_option")]
    offset_error: Vec<Option<f64>>,
    micro: Vec<bool>,
}

impl SmtScorer {
    /// `labels` is [N, 4]: class, offset x (µm), offset y (µm), micro-defect flag.
    pub fn new(outputs: &[Vec<Tensor>], labels: &ArrayD<f32>) -> Self {
        let mut s = SmtScorer { predicted: vec![], truth: vec![], offset_error: vec![], micro: vec![] };
        for (i, o) in outputs.iter().enumerate() {
            let v: Vec<f32> = o[0].iter().copied().collect();
            let truth = labels[[i, 0]] as usize;
            s.predicted.push(argmax(v.iter().take(SMT_CLASSES.len())));
            s.truth.push(truth);
            let err = ((v.get(6).copied().unwrap_or(f32::NAN) - labels[[i, 1]]).abs()
                + (v.get(7).copied().unwrap_or(f32::NAN) - labels[[i, 2]]).abs())
                as f64
                / 2.0;
            let err = if err.is_finite() { err } else { 1e4 };
            s.offset_error.push((truth != MISSING).then_some(err));
            s.micro.push(labels[[i, 3]] > 0.5);
        }
        s
    }

    fn correct(&self, i: usize) -> bool {
        self.predicted[i] == Some(self.truth[i])
    }
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl SmtScorer {
    pub(super) fn extend(&mut self, other: Self) {
        self.predicted.extend(other.predicted);
        self.truth.extend(other.truth);
        self.offset_error.extend(other.offset_error);
        self.micro.extend(other.micro);
    }

    pub(super) fn lengths(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("truth", self.truth.len()),
            ("predicted", self.predicted.len()),
            ("offset_error", self.offset_error.len()),
            ("micro", self.micro.len()),
        ]
    }
}

impl Scorer for SmtScorer {
    fn len(&self) -> usize {
        self.truth.len()
    }

    fn evaluate(&self, idx: &[usize]) -> Evaluation {
        let mut e = Evaluation::new();
        let mut recalls = Vec::new();
        for (c, name) in SMT_CLASSES.iter().enumerate() {
            let of_class: Vec<usize> = idx.iter().copied().filter(|&i| self.truth[i] == c).collect();
            let hits = of_class.iter().filter(|&&i| self.correct(i)).count();
            let called = idx.iter().filter(|&&i| self.predicted[i] == Some(c)).count();
            if let Some(r) = ratio(hits, of_class.len()) {
                e.insert(format!("recall.{name}"), r);
                recalls.push(r);
                let p = ratio(hits, called).unwrap_or(0.0);
                e.insert(format!("f1.{name}"), if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 });
            }
        }
        e.insert(PRIMARY.into(), recalls.iter().sum::<f64>() / recalls.len().max(1) as f64);
        let defects: Vec<usize> = idx.iter().copied().filter(|&i| self.truth[i] != GOOD).collect();
        let escapes = defects.iter().filter(|&&i| self.predicted[i] == Some(GOOD)).count();
        e.insert("escape_rate".into(), ratio(escapes, defects.len()).unwrap_or(0.0));
        let false_calls =
            idx.iter().filter(|&&i| self.truth[i] == GOOD && self.predicted[i] != Some(GOOD)).count();
        e.insert("false_call_ppm".into(), ratio(false_calls, idx.len()).unwrap_or(0.0) * 1e6);
        let offsets: Vec<f64> = idx.iter().filter_map(|&i| self.offset_error[i]).collect();
        e.insert("offset_mae_um".into(), offsets.iter().sum::<f64>() / offsets.len().max(1) as f64);
        for (slice, micro) in [("micro", true), ("normal", false)] {
            let members: Vec<usize> = idx.iter().copied().filter(|&i| self.micro[i] == micro).collect();
            if let Some(acc) = ratio(members.iter().filter(|&&i| self.correct(i)).count(), members.len()) {
                e.insert(format!("slice.{slice}"), acc);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn out(class: usize, dx: f32, dy: f32) -> Vec<Tensor> {
        let mut v = vec![0.0f32; 8];
        v[class] = 1.0;
        v[6] = dx;
        v[7] = dy;
        vec![ArrayD::from_shape_vec(IxDyn(&[1, 8]), v).unwrap()]
    }

    #[test]
    fn factory_metrics_follow_the_confusion_matrix() {
        // truth: good, good, good, good, insufficient(micro), excess, missing, misaligned(micro)
        // pred:  good, good, good, excess, good (escape),     excess, missing, misaligned
        let truth = [0, 0, 0, 0, 1, 2, 3, 5];
        let pred = [0, 0, 0, 2, 0, 2, 3, 5];
        let micro = [0, 0, 0, 0, 1, 0, 0, 1];
        let outputs: Vec<_> = pred.iter().map(|&p| out(p, 10.0, -20.0)).collect();
        let mut labels = Vec::new();
        for i in 0..8 {
            labels.extend([truth[i] as f32, 0.0, 0.0, micro[i] as f32]);
        }
        let labels = ArrayD::from_shape_vec(IxDyn(&[8, 4]), labels).unwrap();
        let e = SmtScorer::new(&outputs, &labels).evaluate_all();
        assert_eq!(e["recall.good"], 0.75);
        assert_eq!(e["recall.insufficient"], 0.0);
        assert_eq!(e["recall.excess"], 1.0);
        // excess: 1 of 1 found, 1 of 2 calls right → P 0.5, R 1, F1 2/3; good: P 3/4, R 3/4.
        assert!((e["f1.excess"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((e["f1.good"] - 0.75).abs() < 1e-12);
        assert_eq!(e["f1.insufficient"], 0.0);
        // Balanced accuracy over the 5 classes present: (0.75 + 0 + 1 + 1 + 1) / 5.
        assert!((e[PRIMARY] - 0.75).abs() < 1e-12);
        assert_eq!(e["escape_rate"], 0.25); // 1 of 4 defects passed as good
        assert_eq!(e["false_call_ppm"], 125_000.0); // 1 good rejected of 8 inspected
        assert_eq!(e["offset_mae_um"], 15.0); // (10 + 20) / 2 on the 7 with a component
        assert_eq!(e["slice.micro"], 0.5);
        assert_eq!(e["slice.normal"], 5.0 / 6.0);
    }
}
