//! Fitting a linear read-out (ridge regression on one-hot targets), solved in closed form.
//! Deterministic and fast: the reference models' convolutional trunks are fixed filters, and
//! this is the part that learns.

/// Solves (XᵀX + λI) W = XᵀY for W, with X [n, d] (a bias column is added) and Y one-hot
/// [n, k]. Returns W as [d + 1, k], the last row being the bias.
pub fn ridge(features: &[Vec<f32>], targets: &[usize], classes: usize, lambda: f64) -> Vec<Vec<f64>> {
    let d = features[0].len() + 1;
    let row = |x: &Vec<f32>| x.iter().map(|&v| v as f64).chain(std::iter::once(1.0)).collect::<Vec<f64>>();
    let mut a = vec![vec![0.0; d]; d];
    let mut b = vec![vec![0.0; classes]; d];
    for (x, &y) in features.iter().zip(targets) {
        let r = row(x);
        for i in 0..d {
            for j in 0..d {
                a[i][j] += r[i] * r[j];
            }
            b[i][y] += r[i];
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
        let w = ridge(&xs, &ys, 2, 1e-3);
        let score = |x: &Vec<f32>, k: usize| x[0] as f64 * w[0][k] + x[1] as f64 * w[1][k] + w[2][k];
        let correct = xs.iter().zip(&ys).filter(|(x, &y)| (score(x, 1) > score(x, 0)) == (y == 1)).count();
        assert!(correct >= 38, "{correct}");
    }
}
