//! The model zoo: standard edge architectures at their usual input sizes, with random weights
//! (latency does not depend on them), quantized to int8 QDQ, for the emulator's fidelity
//! report. Written to `target/zoo/`, never committed.

use edgecert::engine::Tensor;
use edgecert::model::writer::{Attr, Graph};
use edgecert::stats::SplitMix64;
use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb;

/// A graph under construction with a seeded source of weights.
struct Net {
    g: Graph,
    rng: SplitMix64,
    channels: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Act {
    None,
    Relu,
    Relu6,
    Silu,
}

impl Net {
    fn new(input: [usize; 4]) -> (Net, String) {
        let mut g = Graph::default();
        let x = g.input("input", &input);
        (Net { g, rng: SplitMix64::new(0x200), channels: input[1] }, x)
    }

    fn weights(&mut self, n: usize, fan_in: usize) -> Vec<f32> {
        let sd = (2.0 / fan_in as f64).sqrt();
        (0..n).map(|_| (self.rng.normal() * sd) as f32).collect()
    }

    fn act(&mut self, y: String, act: Act) -> String {
        match act {
            Act::None => y,
            Act::Relu => self.g.node("Relu", &[&y], vec![]),
            Act::Relu6 => {
                let lo = self.g.init_f32("clip_lo", &[], &[0.0]);
                let hi = self.g.init_f32("clip_hi", &[], &[6.0]);
                self.g.node("Clip", &[&y, &lo, &hi], vec![])
            }
            Act::Silu => {
                let s = self.g.node("Sigmoid", &[&y], vec![]);
                self.g.node("Mul", &[&y, &s], vec![])
            }
        }
    }

    /// Conv k×k with `out` channels (`groups` = input channels for depthwise), bias, activation.
    fn conv(&mut self, x: &str, out: usize, k: usize, stride: usize, groups: usize, act: Act) -> String {
        let inp = self.channels;
        let w = self.weights(out * inp / groups * k * k, inp / groups * k * k);
        let w = self.g.init_f32("w", &[out, inp / groups, k, k], &w);
        let b = self.g.init_f32("b", &[out], &vec![0.0; out]);
        let p = (k / 2) as i64;
        let y = self.g.node(
            "Conv",
            &[x, &w, &b],
            vec![
                ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
                ("strides", Attr::Ints(vec![stride as i64, stride as i64])),
                ("pads", Attr::Ints(vec![p, p, p, p])),
                ("group", Attr::Int(groups as i64)),
            ],
        );
        self.channels = out;
        self.act(y, act)
    }

    fn pool_max(&mut self, x: &str, k: usize, stride: usize) -> String {
        let p = (k / 2) as i64;
        self.g.node(
            "MaxPool",
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
                ("strides", Attr::Ints(vec![stride as i64, stride as i64])),
                ("pads", Attr::Ints(vec![p, p, p, p])),
            ],
        )
    }

    fn classifier(mut self, x: &str, classes: usize) -> Graph {
        let p = self.g.node("GlobalAveragePool", &[x], vec![]);
        let f = self.g.node("Flatten", &[&p], vec![("axis", Attr::Int(1))]);
        let w = self.weights(classes * self.channels, self.channels);
        let w = self.g.init_f32("fc_w", &[classes, self.channels], &w);
        let b = self.g.init_f32("fc_b", &[classes], &vec![0.0; classes]);
        let y = self.g.node("Gemm", &[&f, &w, &b], vec![("transB", Attr::Int(1))]);
        self.g.output(&y, Some(&[1, classes]));
        self.g
    }
}

fn mobilenet_v1() -> Graph {
    let (mut n, x) = Net::new([1, 3, 224, 224]);
    let mut y = n.conv(&x, 32, 3, 2, 1, Act::Relu);
    let plan = [
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    ];
    for (c, s) in plan {
        let dw = n.channels;
        y = n.conv(&y, dw, 3, s, dw, Act::Relu);
        y = n.conv(&y, c, 1, 1, 1, Act::Relu);
    }
    n.classifier(&y, 1000)
}

/// MobileNetV2's inverted residual stages (expansion, channels, repeats, stride).
const MBV2: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

fn mobilenet_v2_backbone(n: &mut Net, x: &str) -> String {
    let mut y = n.conv(x, 32, 3, 2, 1, Act::Relu6);
    for (t, c, reps, s) in MBV2 {
        for r in 0..reps {
            let stride = if r == 0 { s } else { 1 };
            let inp = n.channels;
            let mut h = y.clone();
            if t != 1 {
                h = n.conv(&h, inp * t, 1, 1, 1, Act::Relu6);
            }
            let e = n.channels;
            h = n.conv(&h, e, 3, stride, e, Act::Relu6);
            h = n.conv(&h, c, 1, 1, 1, Act::None);
            y = if stride == 1 && inp == c { n.g.node("Add", &[&y, &h], vec![]) } else { h };
        }
    }
    y
}

fn mobilenet_v2() -> Graph {
    let (mut n, x) = Net::new([1, 3, 224, 224]);
    let y = mobilenet_v2_backbone(&mut n, &x);
    let y = n.conv(&y, 1280, 1, 1, 1, Act::Relu6);
    n.classifier(&y, 1000)
}

fn resnet(blocks: [usize; 4], bottleneck: bool) -> Graph {
    let (mut n, x) = Net::new([1, 3, 224, 224]);
    let y = n.conv(&x, 64, 7, 2, 1, Act::Relu);
    let mut y = n.pool_max(&y, 3, 2);
    for (stage, &reps) in blocks.iter().enumerate() {
        let width = 64 << stage;
        let out = if bottleneck { width * 4 } else { width };
        for r in 0..reps {
            let stride = if r == 0 && stage > 0 { 2 } else { 1 };
            let inp = n.channels;
            let shortcut = if stride != 1 || inp != out {
                let s = n.conv(&y, out, 1, stride, 1, Act::None);
                n.channels = inp;
                s
            } else {
                y.clone()
            };
            let h = if bottleneck {
                let h = n.conv(&y, width, 1, 1, 1, Act::Relu);
                let h = n.conv(&h, width, 3, stride, 1, Act::Relu);
                n.conv(&h, out, 1, 1, 1, Act::None)
            } else {
                let h = n.conv(&y, width, 3, stride, 1, Act::Relu);
                n.conv(&h, width, 3, 1, 1, Act::None)
            };
            let sum = n.g.node("Add", &[&shortcut, &h], vec![]);
            y = n.g.node("Relu", &[&sum], vec![]);
        }
    }
    n.classifier(&y, 1000)
}

/// A CSP-Darknet-style detector (YOLOv5/v8 family): width and depth multipliers, SiLU,
/// residual bottleneck blocks, a two-level neck with upsampling, and 1×1 detection heads at
/// strides 8, 16 and 32.
fn yolo_like(size: usize, width: f64, depth: f64, classes: usize) -> Graph {
    let (mut n, x) = Net::new([1, 3, size, size]);
    let ch = |c: usize| ((c as f64 * width) as usize).max(8);
    let reps = |r: usize| ((r as f64 * depth).round() as usize).max(1);
    let mut y = n.conv(&x, ch(64), 3, 2, 1, Act::Silu);
    let mut taps = Vec::new();
    for (i, (c, r)) in [(128, 3), (256, 6), (512, 6), (1024, 3)].into_iter().enumerate() {
        y = n.conv(&y, ch(c), 3, 2, 1, Act::Silu);
        y = csp(&mut n, &y, ch(c), reps(r));
        if i >= 1 {
            taps.push((y.clone(), n.channels));
        }
    }
    let pooled = n.pool_max(&y, 5, 1);
    let (p3, c3) = taps[0].clone();
    let (p4, c4) = taps[1].clone();
    let up = n.g.init_f32("up", &[4], &[1.0, 1.0, 2.0, 2.0]);
    let u = n.g.node("Resize", &[&pooled, "", &up], vec![("mode", Attr::Str("nearest"))]);
    let cat4 = n.g.node("Concat", &[&u, &p4], vec![("axis", Attr::Int(1))]);
    n.channels += c4;
    let n4 = csp(&mut n, &cat4, ch(512), reps(3));
    let u = n.g.node("Resize", &[&n4, "", &up], vec![("mode", Attr::Str("nearest"))]);
    let cat3 = n.g.node("Concat", &[&u, &p3], vec![("axis", Attr::Int(1))]);
    n.channels += c3;
    let n3 = csp(&mut n, &cat3, ch(256), reps(3));
    let mut outputs = Vec::new();
    for (feat, c) in [(n3, ch(256)), (n4, ch(512)), (pooled, ch(1024))] {
        n.channels = c;
        outputs.push(n.conv(&feat, 3 * (5 + classes), 1, 1, 1, Act::None));
    }
    for o in &outputs {
        n.g.output(o, None);
    }
    n.g
}

/// Cross-stage-partial block: a 1×1 split, `reps` residual bottlenecks on one branch, concat,
/// 1×1 fuse.
fn csp(n: &mut Net, x: &str, out: usize, reps: usize) -> String {
    let inp = n.channels;
    let half = out / 2;
    let mut a = n.conv(x, half, 1, 1, 1, Act::Silu);
    n.channels = inp;
    let b = n.conv(x, half, 1, 1, 1, Act::Silu);
    for _ in 0..reps {
        let h = n.conv(&a, half, 1, 1, 1, Act::Silu);
        let h = n.conv(&h, half, 3, 1, 1, Act::Silu);
        a = n.g.node("Add", &[&a, &h], vec![]);
    }
    let cat = n.g.node("Concat", &[&a, &b], vec![("axis", Attr::Int(1))]);
    n.channels = out;
    n.conv(&cat, out, 1, 1, 1, Act::Silu)
}

/// MobileNetV2 backbone at 300 px with SSDLite-style extra layers and depthwise heads.
fn ssd_mobilenet_v2() -> Graph {
    let (mut n, x) = Net::new([1, 3, 300, 300]);
    let mut y = mobilenet_v2_backbone(&mut n, &x);
    y = n.conv(&y, 1280, 1, 1, 1, Act::Relu6);
    let mut feats = vec![(y.clone(), 1280)];
    for c in [512, 256, 256, 128] {
        y = n.conv(&y, c / 2, 1, 1, 1, Act::Relu6);
        let e = n.channels;
        y = n.conv(&y, e, 3, 2, e, Act::Relu6);
        y = n.conv(&y, c, 1, 1, 1, Act::Relu6);
        feats.push((y.clone(), c));
    }
    for (f, c) in feats {
        n.channels = c;
        let d = n.conv(&f, c, 3, 1, c, Act::Relu6);
        let o = n.conv(&d, 6 * (4 + 91), 1, 1, 1, Act::None);
        n.g.output(&o, None);
    }
    n.g
}

pub struct ZooModel {
    pub name: &'static str,
    pub input: [usize; 4],
    pub build: fn() -> Graph,
}

pub fn models() -> Vec<ZooModel> {
    vec![
        ZooModel { name: "mobilenet_v1", input: [1, 3, 224, 224], build: mobilenet_v1 },
        ZooModel { name: "mobilenet_v2", input: [1, 3, 224, 224], build: mobilenet_v2 },
        ZooModel { name: "resnet18", input: [1, 3, 224, 224], build: || resnet([2, 2, 2, 2], false) },
        ZooModel { name: "resnet50", input: [1, 3, 224, 224], build: || resnet([3, 4, 6, 3], true) },
        ZooModel { name: "yolov5s_like", input: [1, 3, 640, 640], build: || yolo_like(640, 0.5, 0.33, 80) },
        // v8's C2f blocks run deeper than v5's C3 at the same scale.
        ZooModel { name: "yolov8n_like", input: [1, 3, 640, 640], build: || yolo_like(640, 0.25, 0.66, 80) },
        ZooModel { name: "yolov8s_like", input: [1, 3, 640, 640], build: || yolo_like(640, 0.5, 0.66, 80) },
        ZooModel { name: "ssd_mobilenet_v2_like", input: [1, 3, 300, 300], build: ssd_mobilenet_v2 },
    ]
}

/// FP32 and int8 QDQ (calibrated on one random image: latency does not depend on values).
pub fn build(m: &ZooModel) -> anyhow::Result<(pb::ModelProto, pb::ModelProto)> {
    let fp32 = (m.build)().into_model(&format!("edgecert-xtask zoo {}", m.name));
    let mut rng = SplitMix64::new(7);
    let n: usize = m.input.iter().product();
    let sample: Tensor =
        ArrayD::from_shape_vec(IxDyn(&m.input), (0..n).map(|_| rng.next_f64() as f32).collect())?;
    let int8 = crate::quantize::quantize_qdq(&fp32, &[sample])?;
    Ok((fp32, int8))
}

/// Quantizes every zoo model again with onnxruntime's `quantize_static` (`xtask/ort_quantize.py`)
/// into `<name>_ort_int8.onnx`, where a python3 importing onnxruntime and onnx is on PATH: the
/// export users' pipelines produce (ReLU/Clip folded into the quantization ranges), which must
/// predict as edgecert's own export does. Without that python it says so and goes on.
pub fn quantize_with_onnxruntime(dir: &std::path::Path) -> anyhow::Result<()> {
    let python = std::process::Command::new("python3").args(["-c", "import onnxruntime, onnx"]).status();
    if !python.is_ok_and(|s| s.success()) {
        println!("onnxruntime-quantized exports skipped: no python3 importing onnxruntime and onnx on PATH");
        return Ok(());
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ort_quantize.py");
    for m in models() {
        let (fp32, out) =
            (dir.join(format!("{}_fp32.onnx", m.name)), dir.join(format!("{}_ort_int8.onnx", m.name)));
        let status =
            std::process::Command::new("python3").arg(&script).arg(&fp32).arg(&out).arg("7").status()?;
        anyhow::ensure!(status.success(), "{} failed on {}: {status}", script.display(), fp32.display());
        println!("{}: onnxruntime quantize_static export written to {}", m.name, out.display());
    }
    Ok(())
}
