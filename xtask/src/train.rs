//! Fitting a linear read-out (ridge regression), solved in closed form. Deterministic and fast:
//! the reference models' trunks are fixed filters or random features, and the read-out is the
//! part that learns, folded into a Gemm of the exported model.

use edgecert::engine::Tensor;
use edgecert::model::writer::{Attr, Graph};
use tract_onnx::pb;

use crate::run::run_model;

/// Runs a trunk (a model whose single output is a [1, d] or [1, d, ...] feature tensor) and
/// returns each sample's features flattened.
pub fn features_of(trunk: &pb::ModelProto, inputs: &[Tensor]) -> anyhow::Result<Vec<Vec<f32>>> {
    Ok(run_model(trunk, inputs)?.into_iter().map(|o| o[0].iter().copied().collect()).collect())
}

pub fn one_hot(class: usize, classes: usize) -> Vec<f32> {
    (0..classes).map(|c| f32::from(u8::from(c == class))).collect()
}

/// A fitted linear map on standardised features: y = W ((x − μ) / σ) + b.
///
/// The standardisation stays in the graph as Sub and Mul nodes rather than being folded into W:
/// folded, a low-variance feature gets a huge weight, and the int8 quantization step of its
/// input (shared per tensor with high-variance features) swamps it. Standardised, every feature
/// the quantized Gemm reads has unit scale.
pub struct Readout {
    /// [outputs, features], row-major.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub mean: Vec<f32>,
    pub inv_sd: Vec<f32>,
}

impl Readout {
    fn standardise(&self, g: &mut Graph, x: &str, shape: &[usize]) -> String {
        let m = g.init_f32("feature_mean", shape, &self.mean);
        let s = g.init_f32("feature_inv_sd", shape, &self.inv_sd);
        let centred = g.node("Sub", &[x, &m], vec![]);
        g.node("Mul", &[&centred, &s], vec![])
    }

    /// This read-out's outputs followed by `other`'s (same standardisation).
    pub fn stacked(&self, other: &Readout) -> Readout {
        Readout {
            weights: [self.weights.clone(), other.weights.clone()].concat(),
            bias: [self.bias.clone(), other.bias.clone()].concat(),
            mean: self.mean.clone(),
            inv_sd: self.inv_sd.clone(),
        }
    }

    /// Appends the read-out to a [1, d] feature tensor and returns its [1, k] output.
    pub fn gemm(&self, g: &mut Graph, x: &str) -> String {
        let (k, d) = (self.bias.len(), self.mean.len());
        let z = self.standardise(g, x, &[1, d]);
        let w = g.init_f32("fc_w", &[k, d], &self.weights);
        let b = g.init_f32("fc_b", &[k], &self.bias);
        g.node("Gemm", &[&z, &w, &b], vec![("transB", Attr::Int(1))])
    }

    /// Appends the read-out at every position of a [1, d, H, W] map (a 1x1 Conv head).
    pub fn conv1x1(&self, g: &mut Graph, x: &str) -> String {
        let (k, d) = (self.bias.len(), self.mean.len());
        let z = self.standardise(g, x, &[1, d, 1, 1]);
        let w = g.init_f32("head_w", &[k, d, 1, 1], &self.weights);
        let b = g.init_f32("head_b", &[k], &self.bias);
        g.node("Conv", &[&z, &w, &b], vec![("kernel_shape", Attr::Ints(vec![1, 1]))])
    }
}

/// Per-feature centring and scaling of a read-out's input.
///
/// A feature whose spread is below a few int8 steps of the feature tensor's range would be
/// drowned by quantization noise in the compressed model, so its scale is floored there: the
/// read-out cannot lean on detail that int8 cannot carry.
pub struct Standardisation {
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
}

impl Standardisation {
    pub fn of(features: &[Vec<f32>]) -> Self {
        let (mean, sd) = standardise(features);
        let (lo, hi) =
            features.iter().flatten().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let step = (hi - lo) / 255.0;
        let sd = sd.iter().map(|&s| s.max(QUANT_FLOOR_STEPS * step)).collect();
        Standardisation { mean, sd }
    }
}

/// Ridge regression of `targets` on standardised `features`.
pub fn fit_readout(features: &[Vec<f32>], targets: &[Vec<f32>], lambda: f64) -> Readout {
    fit_readout_with(features, targets, lambda, &Standardisation::of(features))
}

/// Ridge regression with a given standardisation (so several read-outs can share one input).
pub fn fit_readout_with(
    features: &[Vec<f32>],
    targets: &[Vec<f32>],
    lambda: f64,
    std: &Standardisation,
) -> Readout {
    let z: Vec<Vec<f32>> = features
        .iter()
        .map(|x| x.iter().zip(&std.mean).zip(&std.sd).map(|((v, m), s)| (v - m) / s).collect())
        .collect();
    let d = std.mean.len();
    let k = targets[0].len();
    let w = ridge(&z, targets, lambda);
    let weights = (0..k).flat_map(|c| (0..d).map(move |j| (c, j))).map(|(c, j)| w[j][c] as f32).collect();
    let bias = (0..k).map(|c| w[d][c] as f32).collect();
    Readout { weights, bias, mean: std.mean.clone(), inv_sd: std.sd.iter().map(|s| 1.0 / s).collect() }
}

/// Floor on a feature's standard deviation, in int8 steps of the feature tensor's range.
const QUANT_FLOOR_STEPS: f32 = 4.0;

/// Solves (XᵀX + λI) W = XᵀY for W, with X [n, d] (a bias column is added, not penalised)
/// and Y [n, k]. Returns W as [d + 1, k], the last row being the bias.
pub fn ridge(features: &[Vec<f32>], targets: &[Vec<f32>], lambda: f64) -> Vec<Vec<f64>> {
    let d = features[0].len() + 1;
    let classes = targets[0].len();
    let row = |x: &Vec<f32>| x.iter().map(|&v| v as f64).chain(std::iter::once(1.0)).collect::<Vec<f64>>();
    let mut a = vec![vec![0.0; d]; d];
    let mut b = vec![vec![0.0; classes]; d];
    for (x, y) in features.iter().zip(targets) {
        let r = row(x);
        for (i, &ri) in r.iter().enumerate() {
            if ri == 0.0 {
                continue;
            }
            a[i].iter_mut().zip(&r).for_each(|(v, &rj)| *v += ri * rj);
            b[i].iter_mut().zip(y).for_each(|(v, &yk)| *v += ri * yk as f64);
        }
    }
    for (i, ai) in a.iter_mut().enumerate().take(d - 1) {
        ai[i] += lambda;
    }
    solve(a, b)
}

/// Gauss–Jordan elimination with partial pivoting for a small dense system A X = B.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).expect("non-empty");
        a.swap(col, pivot);
        b.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= p);
        b[col].iter_mut().for_each(|v| *v /= p);
        let (pivot_a, pivot_b) = (a[col].clone(), b[col].clone());
        for i in (0..n).filter(|&i| i != col) {
            let f = a[i][col];
            if f == 0.0 {
                continue;
            }
            a[i].iter_mut().zip(&pivot_a).for_each(|(v, pv)| *v -= f * pv);
            b[i].iter_mut().zip(&pivot_b).for_each(|(v, pv)| *v -= f * pv);
        }
    }
    b
}

/// Mean and standard deviation of each feature, to standardise before fitting.
pub fn standardise(features: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let d = features[0].len();
    let n = features.len() as f32;
    let mean: Vec<f32> = (0..d).map(|j| features.iter().map(|x| x[j]).sum::<f32>() / n).collect();
    let sd: Vec<f32> = (0..d)
        .map(|j| (features.iter().map(|x| (x[j] - mean[j]).powi(2)).sum::<f32>() / n).sqrt().max(1e-6))
        .collect();
    (mean, sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_separates_two_linearly_separable_classes() {
        let xs: Vec<Vec<f32>> = (0..40).map(|i| vec![i as f32 / 40.0, 1.0 - i as f32 / 40.0]).collect();
        let ys: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
        let targets: Vec<Vec<f32>> = ys.iter().map(|&y| one_hot(y, 2)).collect();
        let w = ridge(&xs, &targets, 1e-3);
        let score = |x: &Vec<f32>, k: usize| x[0] as f64 * w[0][k] + x[1] as f64 * w[1][k] + w[2][k];
        let correct = xs.iter().zip(&ys).filter(|(x, &y)| (score(x, 1) > score(x, 0)) == (y == 1)).count();
        assert!(correct >= 38, "{correct}");
    }
}
