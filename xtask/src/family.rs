//! A reference family on disk: `cargo xtask golden` writes its golden split (samples, labels,
//! `family.toml` with the digest); `cargo xtask train` fits its FP32 model, quantizes it to
//! int8 QDQ and writes both. Each family implements [`FamilyBuilder`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use edgecert::engine::Tensor;
use edgecert::golden::{dataset_digest, npy, HashedFile};
use edgecert::metrics::{MetricKind, Scorer, PRIMARY};
use edgecert::model::writer::encode;
use ndarray::{ArrayD, Axis};
use tract_onnx::pb;

use crate::quantize::quantize_qdq;
use crate::run::run_model;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Npy,
}

/// What `family.toml` says about a family besides its data.
pub struct Meta {
    pub name: &'static str,
    pub task: &'static str,
    pub description: &'static str,
    pub classes: Vec<&'static str>,
    pub input_shape: Vec<usize>,
    pub format: Format,
    pub metric: MetricKind,
    pub hardest_slice: Option<&'static str>,
    pub latency_p99_ms: f64,
    pub abs_floor: f64,
    pub rel_floor: f64,
}

/// Samples and their labels.
pub struct Split {
    pub inputs: Vec<Tensor>,
    pub labels: ArrayD<f32>,
}

/// A trained FP32 model and the calibration inputs for its quantization (never golden data).
pub struct Trained {
    pub fp32: pb::ModelProto,
    pub calibration: Vec<Tensor>,
}

pub trait FamilyBuilder {
    fn meta(&self) -> Meta;
    /// The golden split, deterministic from a fixed seed.
    fn golden(&self) -> Split;
    /// Trains on data generated apart from the golden split.
    fn train(&self) -> anyhow::Result<Trained>;
}

fn png_bytes(t: &Tensor) -> anyhow::Result<Vec<u8>> {
    let (c, h, w) = (t.shape()[1], t.shape()[2], t.shape()[3]);
    let px = |y: usize, x: usize, ch: usize| (t[[0, ch, y, x]] * 255.0).round().clamp(0.0, 255.0) as u8;
    let pixels: Vec<u8> =
        (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..c).map(move |ch| px(y, x, ch)))).collect();
    Ok(edgecert::golden::raster::encode_png(w, h, c, &pixels))
}

/// The files of a golden split: (path relative to the family folder, bytes).
fn golden_files(meta: &Meta, split: &Split) -> anyhow::Result<Vec<HashedFile>> {
    let mut files = Vec::new();
    match meta.format {
        Format::Png => {
            for (i, img) in split.inputs.iter().enumerate() {
                files.push((format!("samples/{i:05}.png"), png_bytes(img)?));
            }
        }
        Format::Npy => {
            let views: Vec<_> = split.inputs.iter().map(|t| t.view().index_axis_move(Axis(0), 0)).collect();
            let stacked = ndarray::stack(Axis(0), &views)?;
            files.push(("inputs.npy".to_string(), npy::encode(&stacked)));
        }
    }
    files.push(("labels.npy".to_string(), npy::encode(&split.labels)));
    Ok(files)
}

/// Writes the golden split and `family.toml` into `dir`; returns the dataset digest.
pub fn write_golden(meta: &Meta, split: &Split, dir: &Path) -> anyhow::Result<String> {
    let files = golden_files(meta, split)?;
    let _ = std::fs::remove_dir_all(dir.join("samples"));
    std::fs::create_dir_all(dir)?;
    for (rel, bytes) in &files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("inside the family folder"))?;
        std::fs::write(path, bytes)?;
    }
    let digest = dataset_digest(&files);
    std::fs::write(dir.join("family.toml"), manifest(meta, split.inputs.len(), &digest))?;
    Ok(digest)
}

pub fn model_paths(meta: &Meta, dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(format!("{}_fp32.onnx", meta.name)), dir.join(format!("{}_int8.onnx", meta.name)))
}

/// Quantizes a trained model, writes both models, and reports both on the golden split.
pub fn write_models(meta: &Meta, trained: &Trained, golden: &Split, dir: &Path) -> anyhow::Result<String> {
    let int8 = quantize_qdq(&trained.fp32, &trained.calibration)?;
    let (fp32_path, int8_path) = model_paths(meta, dir);
    std::fs::write(&fp32_path, encode(&trained.fp32))?;
    std::fs::write(&int8_path, encode(&int8))?;
    let score = |model: &pb::ModelProto| -> anyhow::Result<f64> {
        let outputs = run_model(model, &golden.inputs)?;
        let classes: Vec<String> = meta.classes.iter().map(|c| c.to_string()).collect();
        let scorer = meta
            .metric
            .scorer(&outputs, &golden.labels, &classes, &meta.input_shape)
            .ok_or_else(|| anyhow::anyhow!("{}: a reference family needs a task metric", meta.name))?;
        Ok(scorer.evaluate_all()[PRIMARY])
    };
    let (f, q) = (score(&trained.fp32)?, score(&int8)?);
    Ok(format!(
        "{}: {} FP32 {f:.4}, int8 {q:.4} on {} golden samples",
        meta.name,
        meta.metric.name(),
        golden.inputs.len()
    ))
}

fn manifest(m: &Meta, samples: usize, digest: &str) -> String {
    let mut s = String::new();
    let classes: Vec<String> = m.classes.iter().map(|c| format!("\"{c}\"")).collect();
    let metric = serde_json::to_value(m.metric).expect("enum").as_str().expect("unit variant").to_string();
    let (format, path) = match m.format {
        Format::Png => ("png", "samples"),
        Format::Npy => ("npy", "inputs.npy"),
    };
    let _ = writeln!(s, "# Generated by `cargo xtask golden`; do not edit by hand (the digest is checked).");
    let _ = writeln!(s, "schema_version = 1\n");
    let _ = writeln!(
        s,
        "[family]\nname = \"{}\"\ntask = \"{}\"\ndescription = \"{}\"\n",
        m.name, m.task, m.description
    );
    let _ = writeln!(s, "[models]\nreference = \"{0}_fp32.onnx\"\ncompressed = \"{0}_int8.onnx\"\n", m.name);
    let _ = writeln!(
        s,
        "[input]\nname = \"input\"\nshape = {:?}\nformat = \"{format}\"\npath = \"{path}\"\n",
        m.input_shape
    );
    let _ = writeln!(s, "[labels]\npath = \"labels.npy\"\nclasses = [{}]\n", classes.join(", "));
    let _ = write!(s, "[metric]\nkind = \"{metric}\"\n");
    if let Some(h) = m.hardest_slice {
        let _ = writeln!(s, "hardest_slice = \"{h}\"");
    }
    let _ = writeln!(
        s,
        "\n[limits]\nsize_bytes = 50_000_000\nlatency_p99_ms = {:?}\nmetric_abs_floor = {:?}\nmetric_rel_floor = {:?}\nconfidence = 0.95\n",
        m.latency_p99_ms, m.abs_floor, m.rel_floor
    );
    let _ = writeln!(
        s,
        "[dataset]\nsamples = {samples}\nsha256 = \"{digest}\"\ngenerator = \"cargo xtask golden {}\"",
        m.name
    );
    s
}
