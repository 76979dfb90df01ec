//! The `shapes` reference family: a small CNN that classifies procedural shapes (circle,
//! square, triangle, cross) in 32×32 grayscale images. It exercises the whole certification
//! path with real inference until the industrial families land, and costs seconds to build.

use edgecert::engine::Tensor;
use edgecert::stats::SplitMix64;
use ndarray::{ArrayD, IxDyn};

use edgecert::metrics::MetricKind;
use edgecert::model::writer::{Attr, Graph};

use crate::family::{FamilyBuilder, Format, Meta, Split, Trained};
use crate::layers::{conv3x3_relu, he_filters, pool2};
use crate::train::{features_of, fit_readout, one_hot};

pub const SIZE: usize = 32;
pub const CLASSES: [&str; 4] = ["circle", "square", "triangle", "cross"];

/// One procedural sample: pixel values in [0, 1] and the class index.
pub fn sample(rng: &mut SplitMix64) -> (Vec<f32>, usize) {
    let class = rng.below(CLASSES.len());
    let r = 6.0 + rng.next_f64() * 7.0;
    let margin = r + 1.0;
    let cx = margin + rng.next_f64() * (SIZE as f64 - 2.0 * margin);
    let cy = margin + rng.next_f64() * (SIZE as f64 - 2.0 * margin);
    let background = rng.next_f64() * 0.3;
    let ink = 0.6 + rng.next_f64() * 0.4;
    let noise = 0.02 + rng.next_f64() * 0.05;
    let mut pixels = Vec::with_capacity(SIZE * SIZE);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let inside = match class {
                0 => dx * dx + dy * dy <= r * r,
                1 => dx.abs() <= 0.8 * r && dy.abs() <= 0.8 * r,
                2 => dy.abs() <= r && dx.abs() <= (dy + r) / 2.0,
                _ => (dx.abs() <= r / 3.5 && dy.abs() <= r) || (dy.abs() <= r / 3.5 && dx.abs() <= r),
            };
            let v = if inside { ink } else { background } + noise * rng.normal();
            pixels.push(v.clamp(0.0, 1.0) as f32);
        }
    }
    (pixels, class)
}

/// Quantises to 8-bit as the PNG stores it, so training sees exactly what the golden set holds.
pub fn to_tensor(pixels: &[f32]) -> Tensor {
    let v = pixels.iter().map(|p| (p * 255.0).round() / 255.0).collect();
    ArrayD::from_shape_vec(IxDyn(&[1, 1, SIZE, SIZE]), v).expect("32x32")
}

fn dataset(seed: u64, n: usize) -> (Vec<Tensor>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| sample(&mut rng)).map(|(p, c)| (to_tensor(&p), c)).unzip()
}

/// Eight oriented edge detectors (±x, ±y, ±two diagonals): fixed, interpretable first layer.
fn edge_filters() -> Vec<f32> {
    let sx = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];
    let sy = [-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0];
    let d1 = [0.0, 1.0, 2.0, -1.0, 0.0, 1.0, -2.0, -1.0, 0.0];
    let d2 = [2.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -2.0];
    [sx, sy, d1, d2].iter().flat_map(|f| f.iter().copied().chain(f.iter().map(|v| -v))).collect()
}

const C1: usize = 8;
const C2: usize = 24;
const C3: usize = 48;

struct Trunk {
    w1: Vec<f32>,
    w2: Vec<f32>,
    w3: Vec<f32>,
}

/// Builds the trunk into `g`; returns the [1, C3] feature tensor.
fn trunk(g: &mut Graph, t: &Trunk) -> String {
    let x = g.input("input", &[1, 1, SIZE, SIZE]);
    let a = conv3x3_relu(g, &x, &t.w1, C1, 1);
    let a = pool2(g, "MaxPool", &a);
    let a = conv3x3_relu(g, &a, &t.w2, C2, C1);
    let a = pool2(g, "MaxPool", &a);
    let a = conv3x3_relu(g, &a, &t.w3, C3, C2);
    let a = g.node("GlobalAveragePool", &[&a], vec![]);
    g.node("Flatten", &[&a], vec![("axis", Attr::Int(1))])
}

pub struct Shapes;

impl FamilyBuilder for Shapes {
    fn meta(&self) -> Meta {
        Meta {
            name: "shapes",
            task: "classification",
            description: "Reference family: a small CNN classifying procedural shapes (circle, square, triangle, cross) in 32x32 grayscale images.",
            classes: CLASSES.to_vec(),
            input_shape: vec![1, 1, SIZE, SIZE],
            format: Format::Png,
            metric: MetricKind::Top1Accuracy,
            hardest_slice: None,
            latency_p99_ms: 5.0,
            abs_floor: 0.85,
            rel_floor: 0.99,
        }
    }

    fn golden(&self) -> Split {
        let (inputs, y) = dataset(0x901d_0001, 500);
        let labels =
            ArrayD::from_shape_vec(IxDyn(&[y.len()]), y.iter().map(|&c| c as f32).collect()).expect("N");
        Split { inputs, labels }
    }

    fn train(&self) -> anyhow::Result<Trained> {
        let mut rng = SplitMix64::new(0x5eed_0001);
        let mut random = he_filters(&mut rng, &[C2, C3], C1).into_iter();
        let t = Trunk {
            w1: edge_filters(),
            w2: random.next().expect("2 layers"),
            w3: random.next().expect("2 layers"),
        };
        let (train_x, train_y) = dataset(0x7a11_0001, 3000);
        let (calibration, _) = dataset(0xca11_b001, 200);
        let mut g = Graph::default();
        let feats = trunk(&mut g, &t);
        g.output(&feats, Some(&[1, C3]));
        let features = features_of(&g.into_model("probe"), &train_x)?;
        let targets: Vec<Vec<f32>> = train_y.iter().map(|&c| one_hot(c, CLASSES.len())).collect();
        let readout = fit_readout(&features, &targets, 1.0);
        let mut g = Graph::default();
        let feats = trunk(&mut g, &t);
        let logits = readout.gemm(&mut g, &feats);
        g.output(&logits, Some(&[1, CLASSES.len()]));
        Ok(Trained { fp32: g.into_model("edgecert-xtask shapes"), calibration })
    }
}
