//! The `smt` family: SMT precision metrics for PCB assembly inspection. Each golden sample is a
//! 3×64×64 top-view crop (40 µm per pixel) of a 0603 chip component on its two pads, with a
//! defect class — good, insufficient solder, excess solder, missing component, tombstone,
//! misaligned — and the placement offset in µm. Defects are injected procedurally, as the public
//! PCB benchmarks themselves inject them; their size spans normal to micro (a few pixels),
//! the slice where compression is expected to hurt first.
//!
//! The model: a fixed convolutional trunk (random filters), 4×4 spatial pooling, and a
//! ridge-regression read-out for six class scores and the (x, y) offset.

use edgecert::metrics::{MetricKind, SMT_CLASSES};
use edgecert::model::writer::{Attr, Graph};
use edgecert::stats::SplitMix64;
use ndarray::{ArrayD, IxDyn};

use crate::family::{FamilyBuilder, Format, Meta, Split, Trained};
use crate::layers::{conv3x3_relu, he_filters, pool2};
use crate::train::{features_of, fit_readout, one_hot};

pub const SIZE: usize = 64;
const UM_PER_PX: f64 = 40.0;
const CHANNELS: [usize; 4] = [16, 32, 48, 64];

type Rgb = [f64; 3];

struct Canvas {
    px: Vec<Rgb>,
}

impl Canvas {
    fn new(fill: Rgb) -> Self {
        Canvas { px: vec![fill; SIZE * SIZE] }
    }

    /// Paints every pixel whose centre satisfies `inside(x, y)` (coordinates in pixels).
    fn paint(&mut self, colour: Rgb, inside: impl Fn(f64, f64) -> bool) {
        for y in 0..SIZE {
            for x in 0..SIZE {
                if inside(x as f64 + 0.5, y as f64 + 0.5) {
                    self.px[y * SIZE + x] = colour;
                }
            }
        }
    }
}

/// Axis-aligned rectangle test around a centre, optionally rotated by `theta`.
fn in_rect(cx: f64, cy: f64, hw: f64, hh: f64, theta: f64) -> impl Fn(f64, f64) -> bool {
    let (s, c) = theta.sin_cos();
    move |x, y| {
        let (dx, dy) = (x - cx, y - cy);
        let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
        u.abs() <= hw && v.abs() <= hh
    }
}

struct Sample {
    pixels: Vec<Rgb>,
    class: usize,
    offset_um: (f64, f64),
    micro: bool,
}

fn crop(rng: &mut SplitMix64) -> Sample {
    let class = if rng.next_f64() < 0.4 { 0 } else { 1 + rng.below(5) };
    let light = 0.8 + rng.next_f64() * 0.4;
    let mask: Rgb =
        [0.12 + rng.next_f64() * 0.08, 0.35 + rng.next_f64() * 0.15, 0.18 + rng.next_f64() * 0.06];
    let pad: Rgb = [0.80, 0.66, 0.35];
    let solder: Rgb = [0.86, 0.86, 0.88];
    let paste: Rgb = [0.55, 0.55, 0.57];
    let body: Rgb = if rng.below(2) == 0 { [0.12, 0.12, 0.13] } else { [0.70, 0.58, 0.42] };
    let terminal: Rgb = [0.74, 0.74, 0.76];
    let mut c = Canvas::new(mask);
    let (pad_x, pad_hw, pad_hh) = (17.0, 8.0, 10.0);
    for side in [-1.0, 1.0] {
        c.paint(pad, in_rect(32.0 + side * pad_x, 32.0, pad_hw, pad_hh, 0.0));
    }
    let mut micro = false;
    // Placement: good parts sit within ±40 µm; misaligned ones well beyond, micro ones barely.
    let (mut dx, mut dy, mut theta) =
        (rng.normal() * 0.4, rng.normal() * 0.4, (rng.normal() * 1.0f64).to_radians());
    if class == 5 {
        micro = rng.next_f64() < 0.4;
        let magnitude = if micro { 2.5 + rng.next_f64() * 1.0 } else { 4.0 + rng.next_f64() * 4.0 };
        let angle = rng.next_f64() * std::f64::consts::TAU;
        dx = magnitude * angle.cos();
        dy = magnitude * angle.sin();
        if !micro && rng.below(3) == 0 {
            theta = (if rng.below(2) == 0 { 1.0 } else { -1.0 } * (6.0 + rng.next_f64() * 10.0)).to_radians();
        }
    }
    let (cx, cy) = (32.0 + dx, 32.0 + dy);
    let (body_hw, body_hh, term_w) = (20.0, 10.0, 6.0);
    match class {
        3 => {
            for side in [-1.0, 1.0] {
                c.paint(paste, in_rect(32.0 + side * pad_x, 32.0, pad_hw - 2.0, pad_hh - 2.0, 0.0));
            }
            return finish(c, class, (0.0, 0.0), false, light, rng);
        }
        4 => {
            // Tombstone: one end lifted, seen from above as a shorter body over one pad, the
            // other pad bare with paste.
            let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
            let shrink = 0.45 + rng.next_f64() * 0.2;
            let hw = body_hw * shrink;
            let bx = cx + side * (body_hw - hw);
            c.paint(paste, in_rect(32.0 - side * pad_x, 32.0, pad_hw - 2.0, pad_hh - 2.0, 0.0));
            c.paint(solder, in_rect(32.0 + side * (pad_x + 3.0), cy, 5.0, pad_hh - 1.0, 0.0));
            c.paint(body, in_rect(bx, cy, hw, body_hh, theta));
            c.paint([0.9, 0.9, 0.92], in_rect(bx - side * (hw - 2.0), cy, 2.0, body_hh, theta));
            return finish(c, class, (dx * UM_PER_PX, dy * UM_PER_PX), false, light, rng);
        }
        _ => {}
    }
    // Fillets: solder from each terminal out to the pad's outer edge.
    let mut fillet = [5.0, 5.0];
    if class == 1 {
        let end = rng.below(2);
        micro = rng.next_f64() < 0.4;
        fillet[end] = if micro { 2.0 + rng.next_f64() } else { 0.0 };
    }
    for (k, side) in [-1.0, 1.0].iter().enumerate() {
        if fillet[k] > 0.0 {
            let x = cx + side * (body_hw + fillet[k] / 2.0 - 1.0);
            c.paint(solder, in_rect(x, cy, fillet[k] / 2.0 + 1.0, pad_hh - 1.5, 0.0));
        }
    }
    if class == 2 {
        // Excess: a solder blob bulging past the pad; micro blobs are a few pixels across.
        micro = rng.next_f64() < 0.4;
        let r = if micro { 2.0 + rng.next_f64() * 1.5 } else { 5.0 + rng.next_f64() * 4.0 };
        let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
        let (bx, by) = (32.0 + side * (pad_x + pad_hw - 1.0), 32.0 + (rng.next_f64() - 0.5) * 2.0 * pad_hh);
        c.paint(solder, move |x, y| (x - bx).powi(2) + (y - by).powi(2) <= r * r);
    }
    c.paint(body, in_rect(cx, cy, body_hw, body_hh, theta));
    for side in [-1.0, 1.0] {
        let tx = cx + side * (body_hw - term_w / 2.0) * theta.cos();
        let ty = cy + side * (body_hw - term_w / 2.0) * theta.sin();
        c.paint(terminal, in_rect(tx, ty, term_w / 2.0, body_hh, theta));
    }
    finish(c, class, (dx * UM_PER_PX, dy * UM_PER_PX), micro, light, rng)
}

fn finish(
    c: Canvas,
    class: usize,
    offset_um: (f64, f64),
    micro: bool,
    light: f64,
    rng: &mut SplitMix64,
) -> Sample {
    let noise = 0.015 + rng.next_f64() * 0.02;
    let pixels = c.px.iter().map(|p| p.map(|v| (v * light + noise * rng.normal()).clamp(0.0, 1.0))).collect();
    Sample { pixels, class, offset_um, micro }
}

/// `n` crops from `seed`: inputs [1, 3, 64, 64] (8-bit quantised, as PNG stores them) and
/// labels [N, 4] (class, offset x µm, offset y µm, micro flag).
fn crops(seed: u64, n: usize) -> Split {
    let mut rng = SplitMix64::new(seed);
    let mut inputs = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n * 4);
    for _ in 0..n {
        let s = crop(&mut rng);
        let mut t = ArrayD::zeros(IxDyn(&[1, 3, SIZE, SIZE]));
        for (i, p) in s.pixels.iter().enumerate() {
            for ch in 0..3 {
                t[[0, ch, i / SIZE, i % SIZE]] = ((p[ch] * 255.0).round() / 255.0) as f32;
            }
        }
        inputs.push(t);
        labels.extend([
            s.class as f32,
            s.offset_um.0 as f32,
            s.offset_um.1 as f32,
            f32::from(u8::from(s.micro)),
        ]);
    }
    Split { inputs, labels: ArrayD::from_shape_vec(IxDyn(&[n, 4]), labels).expect("N x 4") }
}

fn trunk(g: &mut Graph, filters: &[Vec<f32>]) -> String {
    let mut x = g.input("input", &[1, 3, SIZE, SIZE]);
    let mut inp = 3;
    for (i, (&out, w)) in CHANNELS.iter().zip(filters).enumerate() {
        let y = conv3x3_relu(g, &x, w, out, inp);
        let pool = if i + 1 < CHANNELS.len() { "MaxPool" } else { "AveragePool" };
        x = pool2(g, pool, &y);
        inp = out;
    }
    g.node("Flatten", &[&x], vec![("axis", Attr::Int(1))])
}

pub struct Smt;

impl FamilyBuilder for Smt {
    fn meta(&self) -> Meta {
        Meta {
            name: "smt",
            task: "inspection",
            description: "SMT precision metrics: 0603 chip-component solder-joint crops (40 um/px), defect class and placement offset (um); defects from normal to micro size.",
            classes: SMT_CLASSES.to_vec(),
            input_shape: vec![1, 3, SIZE, SIZE],
            format: Format::Png,
            metric: MetricKind::SmtInspection,
            hardest_slice: Some("micro"),
            // 500 crops/s single-stream leaves 2 ms per crop.
            latency_p99_ms: 2.0,
            abs_floor: 0.8,
            rel_floor: 0.98,
        }
    }

    fn golden(&self) -> Split {
        crops(0x901d_5347, 2000)
    }

    fn train(&self) -> anyhow::Result<Trained> {
        let mut rng = SplitMix64::new(0x5eed_5347);
        let filters = he_filters(&mut rng, &CHANNELS, 3);
        let train = crops(0x7a11_5347, 8000);
        let calibration = crops(0xca11_5347, 200).inputs;
        let mut g = Graph::default();
        let feats = trunk(&mut g, &filters);
        g.output(&feats, None);
        let features = features_of(&g.into_model("probe"), &train.inputs)?;
        let targets: Vec<Vec<f32>> = (0..train.inputs.len())
            .map(|i| {
                let mut t = one_hot(train.labels[[i, 0]] as usize, SMT_CLASSES.len());
                t.extend([train.labels[[i, 1]], train.labels[[i, 2]]]);
                t
            })
            .collect();
        let readout = fit_readout(&features, &targets, 10.0);
        let mut g = Graph::default();
        let feats = trunk(&mut g, &filters);
        let out = readout.gemm(&mut g, &feats);
        g.output(&out, Some(&[1, SMT_CLASSES.len() + 2]));
        Ok(Trained { fp32: g.into_model("edgecert-xtask smt"), calibration })
    }
}
