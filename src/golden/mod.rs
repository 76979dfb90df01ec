//! Golden sets: `golden/<family>/family.toml` plus the samples it names. A golden set holds the
//! inputs, the expected labels, the FP32 reference and compressed models of one model family,
//! and the limits the family is certified against.
//!
//! On disk: inputs are either a folder of PNG images (`format = "png"`, one file per sample,
//! sorted by name, scaled to `[0, 1]` and laid out C×H×W) or one stacked `.npy` array
//! (`format = "npy"`, shape `[N, ...]`); labels are one `.npy` array with N rows.

pub mod npy;

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, IxDyn};
use serde::{Deserialize, Serialize};

use crate::config::{load_toml, Diagnostic, Document};
use crate::engine::Tensor;
use crate::error::{read_bytes, Error, Result};
use crate::hash::sha256_of_parts;
use crate::metrics::MetricKind;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyManifest {
    pub schema_version: u32,
    pub family: FamilyInfo,
    pub models: Models,
    pub input: InputSpec,
    pub labels: LabelSpec,
    pub metric: MetricSpec,
    pub limits: Limits,
    pub dataset: DatasetInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyInfo {
    pub name: String,
    pub task: String,
    pub description: Option<String>,
}

/// Paths relative to the family folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Models {
    pub reference: String,
    pub compressed: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    Png,
    Npy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    /// Shape of one sample as the model takes it, batch dimension first (`[1, 3, 64, 64]`).
    pub shape: Vec<usize>,
    pub format: SampleFormat,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelSpec {
    pub path: String,
    /// Class names, for classification tasks.
    #[serde(default)]
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricSpec {
    pub kind: MetricKind,
    /// The slice where compression is expected to hurt first (`micro`, `hard`, `snow`): the
    /// compressed model's retention vs FP32 is judged there as well as overall.
    pub hardest_slice: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Largest allowed model artifact; the field's target is under 50 MB.
    #[serde(default = "default_size_limit")]
    pub size_bytes: u64,
    pub latency_p99_ms: Option<f64>,
    /// Inferences per second in operation (camera FPS, control-loop rate, line rate); power and
    /// heat are judged at this rate. Defaults to the rate the latency budget implies.
    pub rate_hz: Option<f64>,
    /// The compressed model's metric must reach this on its own.
    pub metric_abs_floor: f64,
    /// The compressed model's metric must reach this fraction of the FP32 reference's
    /// (MLPerf's 99 %); for lower-is-better metrics, at most 1/this of it.
    pub metric_rel_floor: f64,
    /// Two-sided confidence level of every interval a verdict rests on.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_size_limit() -> u64 {
    50_000_000
}

fn default_confidence() -> f64 {
    0.95
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub samples: usize,
    /// SHA-256 over the sample and label files (name and bytes, in sorted order).
    pub sha256: String,
    pub generator: Option<String>,
}

/// A file's path (relative to the family folder) and bytes, as they enter the dataset digest.
pub type HashedFile = (String, Vec<u8>);

/// A golden set loaded into memory and verified against its recorded digest.
#[derive(Debug, Clone)]
pub struct GoldenSet {
    pub dir: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: FamilyManifest,
    pub inputs: Vec<Tensor>,
    pub labels: ArrayD<f32>,
    pub sha256: String,
}

impl GoldenSet {
    pub fn name(&self) -> &str {
        &self.manifest.family.name
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    pub fn reference_model(&self) -> PathBuf {
        self.dir.join(&self.manifest.models.reference)
    }

    pub fn compressed_model(&self) -> PathBuf {
        self.dir.join(&self.manifest.models.compressed)
    }

    /// Loads `dir/family.toml` and every sample, checking shapes, counts and the digest.
    pub fn load(dir: &Path) -> Result<GoldenSet> {
        let manifest_path = dir.join("family.toml");
        let (manifest, doc): (FamilyManifest, Document) = load_toml(&manifest_path)?;
        let diags = manifest.validate(&doc);
        if !diags.is_empty() {
            return Err(Error::Config(diags));
        }
        let generator = manifest.dataset.generator.as_deref().unwrap_or("its generator");
        let missing = |path: &Path| {
            Error::golden(
                path,
                format!("golden data not found: generate it with `{generator}` (or `cargo xtask golden`)"),
            )
        };
        let input_path = dir.join(&manifest.input.path);
        if !input_path.exists() {
            return Err(missing(&input_path));
        }
        let (inputs, mut hashed) = load_inputs(dir, &manifest.input)?;
        let labels_path = dir.join(&manifest.labels.path);
        if !labels_path.exists() {
            return Err(missing(&labels_path));
        }
        let label_bytes = read_bytes(&labels_path)?;
        let labels = npy::decode(&labels_path, &label_bytes)?;
        hashed.push((manifest.labels.path.clone(), label_bytes));
        check_counts(&manifest_path, &manifest, inputs.len(), &labels)?;
        check_label_shape(&labels_path, manifest.metric.kind, &labels)?;
        let sha256 = dataset_digest(&hashed);
        if sha256 != manifest.dataset.sha256 {
            return Err(Error::golden(
                &manifest_path,
                format!(
                    "dataset.sha256 is {} but the files hash to {sha256}: the golden set changed (regenerate it with `cargo xtask golden`, or record the new digest)",
                    manifest.dataset.sha256
                ),
            ));
        }
        Ok(GoldenSet { dir: dir.to_path_buf(), manifest_path, manifest, inputs, labels, sha256 })
    }
}

impl Limits {
    /// The operating rate: `rate_hz`, else one inference per latency budget, else 1/s.
    pub fn operating_rate_hz(&self) -> f64 {
        self.rate_hz.or(self.latency_p99_ms.map(|ms| 1000.0 / ms)).unwrap_or(1.0)
    }
}

impl FamilyManifest {
    fn validate(&self, doc: &Document) -> Vec<Diagnostic> {
        let mut d = Vec::new();
        let mut err = |field: &str, msg: String| d.push(doc.error(field, msg));
        if self.schema_version != SCHEMA_VERSION {
            err("schema_version", format!("expected {SCHEMA_VERSION}, found {}", self.schema_version));
        }
        if self.input.shape.is_empty() || self.input.shape.contains(&0) {
            err("input.shape", format!("expected positive dimensions, found {:?}", self.input.shape));
        }
        if self.input.format == SampleFormat::Png && !matches!(self.input.shape.as_slice(), [1, 1 | 3, _, _])
        {
            err(
                "input.shape",
                format!(
                    "PNG samples need a [1, C, H, W] shape with C = 1 or 3, found {:?}",
                    self.input.shape
                ),
            );
        }
        let l = &self.limits;
        if !(l.metric_rel_floor > 0.0 && l.metric_rel_floor <= 1.0) {
            err(
                "limits.metric_rel_floor",
                format!("expected a fraction in (0, 1], found {}", l.metric_rel_floor),
            );
        }
        if !(l.confidence > 0.5 && l.confidence < 1.0) {
            err("limits.confidence", format!("expected a level in (0.5, 1), found {}", l.confidence));
        }
        if let Some(ms) = l.latency_p99_ms {
            if ms.is_nan() || ms <= 0.0 {
                err("limits.latency_p99_ms", format!("must be positive, found {ms}"));
            }
        }
        if self.dataset.samples == 0 {
            err("dataset.samples", "a golden set needs at least one sample".into());
        }
        d
    }
}

fn check_counts(manifest_path: &Path, m: &FamilyManifest, inputs: usize, labels: &ArrayD<f32>) -> Result<()> {
    if inputs != m.dataset.samples {
        return Err(Error::golden(
            manifest_path,
            format!("dataset.samples says {} but {} input samples were found", m.dataset.samples, inputs),
        ));
    }
    let rows = labels.shape().first().copied().unwrap_or(0);
    if rows != inputs {
        return Err(Error::golden(
            manifest_path,
            format!("{} has {rows} label rows for {inputs} input samples", m.labels.path),
        ));
    }
    Ok(())
}

fn check_label_shape(path: &Path, kind: MetricKind, labels: &ArrayD<f32>) -> Result<()> {
    let want = kind.label_shape();
    let fits = labels.ndim() == want.len()
        && want.iter().zip(labels.shape()).all(|(w, &d)| w.is_none_or(|w| w == d));
    if fits {
        return Ok(());
    }
    let want: Vec<String> = want.iter().map(|w| w.map_or("N".to_string(), |w| w.to_string())).collect();
    Err(Error::golden(
        path,
        format!(
            "labels have shape {:?}; metric `{}` needs [{}]",
            labels.shape(),
            kind.name(),
            want.join(", ")
        ),
    ))
}

/// Inputs, and the (name, bytes) pairs that go into the dataset digest.
fn load_inputs(dir: &Path, spec: &InputSpec) -> Result<(Vec<Tensor>, Vec<HashedFile>)> {
    let path = dir.join(&spec.path);
    match spec.format {
        SampleFormat::Npy => {
            let bytes = read_bytes(&path)?;
            let stacked = npy::decode(&path, &bytes)?;
            let inputs = unstack(&path, &stacked, &spec.shape)?;
            Ok((inputs, vec![(spec.path.clone(), bytes)]))
        }
        SampleFormat::Png => load_pngs(dir, spec),
    }
}

fn unstack(path: &Path, stacked: &ArrayD<f32>, shape: &[usize]) -> Result<Vec<Tensor>> {
    let per_sample = &shape[1..];
    if stacked.ndim() != shape.len() || &stacked.shape()[1..] != per_sample {
        return Err(Error::golden(
            path,
            format!(
                "samples have shape {:?}, expected [N, {}] to match input.shape {shape:?}",
                stacked.shape(),
                join(per_sample)
            ),
        ));
    }
    Ok(stacked
        .axis_iter(Axis(0))
        .map(|s| s.to_owned().into_shape_with_order(IxDyn(shape)).expect("same element count"))
        .collect())
}

fn join(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

fn load_pngs(dir: &Path, spec: &InputSpec) -> Result<(Vec<Tensor>, Vec<HashedFile>)> {
    let folder = dir.join(&spec.path);
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .map_err(|e| Error::io(&folder, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    let mut inputs = Vec::with_capacity(names.len());
    let mut hashed = Vec::with_capacity(names.len());
    for name in names {
        let file = folder.join(&name);
        let bytes = read_bytes(&file)?;
        inputs.push(decode_png(&file, &bytes, &spec.shape)?);
        hashed.push((format!("{}/{name}", spec.path), bytes));
    }
    Ok((inputs, hashed))
}

/// A PNG as a `[1, C, H, W]` tensor scaled to [0, 1], checked against the declared shape.
pub fn decode_png(file: &Path, bytes: &[u8], shape: &[usize]) -> Result<Tensor> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| Error::golden(file, format!("not a readable PNG: {e}")))?;
    let (c, h, w) = (shape[1], shape[2], shape[3]);
    if (img.height() as usize, img.width() as usize) != (h, w) {
        return Err(Error::golden(
            file,
            format!(
                "image is {}x{} (W x H), expected {w}x{h} to match input.shape {shape:?}",
                img.width(),
                img.height()
            ),
        ));
    }
    let pixels: Vec<u8> = if c == 1 { img.to_luma8().into_raw() } else { img.to_rgb8().into_raw() };
    let mut t = ArrayD::zeros(IxDyn(shape));
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                t[[0, ch, y, x]] = pixels[(y * w + x) * c + ch] as f32 / 255.0;
            }
        }
    }
    Ok(t)
}

pub fn dataset_digest(parts: &[HashedFile]) -> String {
    let mut sorted: Vec<&HashedFile> = parts.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sha256_of_parts(sorted.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

/// Every folder under `root` that holds a `family.toml`, sorted by name.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("family.toml").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::Usage(format!("no golden sets (*/family.toml) under {}", root.display())));
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(samples: usize, sha: &str, shape: &str) -> String {
        format!(
            r#"schema_version = 1
[family]
name = "tiny"
task = "regression"
[models]
reference = "a.onnx"
compressed = "b.onnx"
[input]
name = "x"
shape = {shape}
format = "npy"
path = "inputs.npy"
[labels]
path = "labels.npy"
[metric]
kind = "top1_accuracy"
[limits]
metric_abs_floor = 0.5
metric_rel_floor = 0.99
[dataset]
samples = {samples}
sha256 = "{sha}"
"#
        )
    }

    /// Writes a 3-sample npy golden set; returns the folder and the digest of its files.
    fn npy_set(dir: &Path) -> String {
        let inputs = ArrayD::from_shape_vec(IxDyn(&[3, 2, 4]), (0..24).map(|i| i as f32).collect()).unwrap();
        let labels = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, 1.0, 0.0]).unwrap();
        let (a, b) = (npy::encode(&inputs), npy::encode(&labels));
        std::fs::write(dir.join("inputs.npy"), &a).unwrap();
        std::fs::write(dir.join("labels.npy"), &b).unwrap();
        dataset_digest(&[("inputs.npy".into(), a), ("labels.npy".into(), b)])
    }

    #[test]
    fn npy_golden_sets_unstack_into_samples() {
        let dir = tempfile::tempdir().unwrap();
        let sha = npy_set(dir.path());
        std::fs::write(dir.path().join("family.toml"), manifest(3, &sha, "[1, 2, 4]")).unwrap();
        let g = GoldenSet::load(dir.path()).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.inputs[1].shape(), &[1, 2, 4]);
        assert_eq!(g.inputs[1][[0, 1, 3]], 15.0);
        assert_eq!(g.sha256, sha);
    }

    #[test]
    fn npy_samples_of_the_wrong_shape_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sha = npy_set(dir.path());
        std::fs::write(dir.path().join("family.toml"), manifest(3, &sha, "[1, 4, 2]")).unwrap();
        let err = GoldenSet::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("inputs.npy") && err.contains("[3, 2, 4]"), "{err}");
    }

    #[test]
    fn sample_counts_must_match_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let sha = npy_set(dir.path());
        std::fs::write(dir.path().join("family.toml"), manifest(4, &sha, "[1, 2, 4]")).unwrap();
        let err = GoldenSet::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("dataset.samples says 4 but 3"), "{err}");
    }
}
