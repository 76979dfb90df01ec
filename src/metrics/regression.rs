//! Sideslip-angle estimation error: RMSE and max absolute error in degrees, sliced by the road
//! friction of the manoeuvre (dry, wet, snow), since low friction is where estimators break.

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::{Evaluation, Scorer, PRIMARY};
use crate::engine::Tensor;

/// Friction bands: μ ≥ 0.9 dry, ≥ 0.5 wet, else snow.
pub fn friction_slice(mu: f32) -> &'static str {
    if mu >= 0.9 {
        "dry"
    } else if mu >= 0.5 {
        "wet"
    } else {
        "snow"
    }
}

/// Per sample: the estimation error in degrees and the road-friction slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideslipScorer {
    #[serde(with = "crate::vocab::serde_float::vec")]
    error: Vec<f64>,
    slice: Vec<String>,
}

impl SideslipScorer {
    /// `labels` is [N, 2]: β in degrees and the road friction μ.
    pub fn new(outputs: &[Vec<Tensor>], labels: &ArrayD<f32>) -> Self {
        let error = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let predicted = o[0].iter().next().copied().unwrap_or(f32::NAN) as f64;
                let e = predicted - labels[[i, 0]] as f64;
                // A NaN estimate is as wrong as it gets: count it as a 90° error.
                if e.is_finite() {
                    e
                } else {
                    90.0
                }
            })
            .collect();
        let slice = (0..outputs.len()).map(|i| friction_slice(labels[[i, 1]]).to_string()).collect();
        SideslipScorer { error, slice }
    }
}

fn rmse(errors: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = errors.fold((0.0, 0usize), |(s, n), e| (s + e * e, n + 1));
    (n > 0).then(|| (sum / n as f64).sqrt())
}

impl SideslipScorer {
    pub(super) fn extend(&mut self, other: Self) {
        self.error.extend(other.error);
        self.slice.extend(other.slice);
    }

    pub(super) fn lengths(&self) -> Vec<(&'static str, usize)> {
        vec![("error", self.error.len()), ("slice", self.slice.len())]
    }
}

impl Scorer for SideslipScorer {
    fn len(&self) -> usize {
        self.error.len()
    }

    fn evaluate(&self, idx: &[usize]) -> Evaluation {
        let mut e = Evaluation::new();
        e.insert(PRIMARY.into(), rmse(idx.iter().map(|&i| self.error[i])).unwrap_or(0.0));
        e.insert("max_abs_deg".into(), idx.iter().map(|&i| self.error[i].abs()).fold(0.0, f64::max));
        for slice in ["dry", "wet", "snow"] {
            if let Some(r) = rmse(idx.iter().filter(|&&i| self.slice[i] == slice).map(|&i| self.error[i])) {
                e.insert(format!("slice.{slice}"), r);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn rmse_and_max_error_match_a_hand_computation() {
        let outputs: Vec<Vec<Tensor>> =
            [1.0f32, 2.0, -1.0, 0.5].iter().map(|&b| vec![ArrayD::from_elem(IxDyn(&[1, 1]), b)]).collect();
        // truths 0, 2, 1, 0.5 → errors 1, 0, -2, 0 → RMSE sqrt(5/4); frictions dry, dry, snow, wet.
        let labels =
            ArrayD::from_shape_vec(IxDyn(&[4, 2]), vec![0.0, 1.0, 2.0, 1.0, 1.0, 0.3, 0.5, 0.8]).unwrap();
        let e = SideslipScorer::new(&outputs, &labels).evaluate_all();
        assert!((e[PRIMARY] - (5.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!(e["max_abs_deg"], 2.0);
        assert!((e["slice.dry"] - (0.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(e["slice.snow"], 2.0);
        assert_eq!(e["slice.wet"], 0.0);
    }
}
