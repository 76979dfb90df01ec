//! Layers the reference models share: 3×3 Conv + ReLU, 2×2 pooling, He-initialised random
//! filters for fixed random-feature trunks.

use edgecert::model::writer::{Attr, Graph};
use edgecert::stats::SplitMix64;

/// 3×3 convolution (padding 1, zero bias) followed by ReLU.
pub fn conv3x3_relu(g: &mut Graph, x: &str, w: &[f32], out: usize, inp: usize) -> String {
    let w = g.init_f32("conv_w", &[out, inp, 3, 3], w);
    let b = g.init_f32("conv_b", &[out], &vec![0.0; out]);
    let y = g.node(
        "Conv",
        &[x, &w, &b],
        vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
    );
    g.node("Relu", &[&y], vec![])
}

/// 2×2 pooling with stride 2 (`MaxPool` or `AveragePool`).
pub fn pool2(g: &mut Graph, op: &str, x: &str) -> String {
    g.node(op, &[x], vec![("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))])
}

/// He-initialised 3×3 filters for a chain of layers with `channels` outputs, starting from
/// `input` channels.
pub fn he_filters(rng: &mut SplitMix64, channels: &[usize], input: usize) -> Vec<Vec<f32>> {
    let mut inp = input;
    channels
        .iter()
        .map(|&out| {
            let sd = (2.0 / (inp * 9) as f64).sqrt();
            let w = (0..out * inp * 9).map(|_| (rng.normal() * sd) as f32).collect();
            inp = out;
            w
        })
        .collect()
}
