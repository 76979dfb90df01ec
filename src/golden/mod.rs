//! Golden sets: `golden/<family>/family.toml` plus the samples it names. A golden set holds the
//! inputs, the expected labels, the FP32 reference and compressed models of one model family,
//! and the limits the family is certified against.
//!
//! On disk: inputs are either a folder of PNG images (`format = "png"`, one file per sample,
//! sorted by name, scaled to `[0, 1]` and laid out C×H×W) or one stacked `.npy` array
//! (`format = "npy"`, shape `[N, ...]`); labels are one `.npy` array with N rows.

mod init;
pub mod npy;
pub mod raster;

pub use init::{init, InitReport, InitRequest};

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{load_toml, Diagnostic, Document};
use crate::engine::Tensor;
use crate::metrics::{AgreementLimits, LabelContext, MetricKind};
use crate::vocab::hash::sha256_of_parts;
use crate::vocab::{read_bytes, Error, Result};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyManifest {
    pub schema_version: u32,
    pub family: FamilyInfo,
    pub models: Models,
    pub input: InputSpec,
    /// Optional: `output_agreement` needs no labels; task metrics do.
    pub labels: Option<LabelSpec>,
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
    /// A folder of PNG images.
    Png,
    /// A folder of PNG or JPEG images.
    Images,
    /// One stacked float32 `.npy` array `[N, ...]`.
    Npy,
}

impl SampleFormat {
    pub fn is_image(self) -> bool {
        self != SampleFormat::Npy
    }

    /// The file endings a sample folder of this format may hold.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            SampleFormat::Png => &["png"],
            SampleFormat::Images => &["png", "jpg", "jpeg"],
            SampleFormat::Npy => &["npy"],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    /// Shape of one sample as the model takes it, batch dimension first (`[1, 3, 64, 64]`).
    pub shape: Vec<usize>,
    pub format: SampleFormat,
    pub path: String,
    /// How image samples become tensors (ignored for `.npy` stacks).
    #[serde(default)]
    pub preprocess: Preprocess,
    /// For a model whose input is 8-bit integers and does not say how they are read: how the
    /// (float) samples become its codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<crate::model::InputQuantization>,
}

/// Image preprocessing, as the model was trained with it: pixels scaled to [0, 1], optionally
/// resized to the input's H×W, channels in the stated order, then `(x - mean) / std` per channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Resize every image to the input's H×W (bilinear) instead of requiring that size.
    #[serde(default)]
    pub resize: bool,
    /// `rgb` (default) or `bgr`, for 3-channel inputs.
    #[serde(default)]
    pub channels: ChannelOrder,
    /// Per-channel mean subtracted after scaling to [0, 1] (one value, or one per channel).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean (one value, or one per channel).
    #[serde(default)]
    pub std: Vec<f32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
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
    /// The compressed model's metric must reach this on its own (task metrics).
    pub metric_abs_floor: Option<f64>,
    /// The compressed model's metric must reach this fraction of the FP32 reference's
    /// (MLPerf's 99 %); for lower-is-better metrics, at most 1/this of it (task metrics).
    pub metric_rel_floor: Option<f64>,
    /// Limits on how closely the compressed model's outputs follow FP32's, per output tensor.
    pub agreement: Option<AgreementLimits>,
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

/// A golden set verified against its recorded digest. Its samples stay on disk and are decoded
/// one at a time as a replay consumes them ([`GoldenSet::sample`]), so memory does not grow with
/// the set; the labels (a few numbers per sample) are held.
#[derive(Debug, Clone)]
pub struct GoldenSet {
    pub dir: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: FamilyManifest,
    samples: SampleStore,
    /// `None` when the manifest names no labels (`output_agreement`).
    pub labels: Option<ArrayD<f32>>,
    pub sha256: String,
}

impl GoldenSet {
    pub fn name(&self) -> &str {
        &self.manifest.family.name
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i`, read and decoded now, in the model's input shape.
    pub fn sample(&self, i: usize) -> Result<Tensor> {
        let shape = &self.manifest.input.shape;
        match &self.samples {
            SampleStore::Npy { path, layout } => {
                let row = layout.read_row(path, i)?;
                ArrayD::from_shape_vec(IxDyn(shape), row).map_err(|e| Error::golden(path, e.to_string()))
            }
            SampleStore::Images { files } => {
                let file = &files[i];
                decode_image(file, &read_bytes(file)?, shape, &self.manifest.input.preprocess)
            }
        }
    }

    pub fn reference_model(&self) -> PathBuf {
        self.dir.join(&self.manifest.models.reference)
    }

    pub fn compressed_model(&self) -> PathBuf {
        self.dir.join(&self.manifest.models.compressed)
    }

    /// Loads `dir/family.toml` and every sample, checking shapes, counts and the digest.
    pub fn load(dir: &Path) -> Result<GoldenSet> {
        let (golden, _) = GoldenSet::read(dir)?;
        let m = &golden.manifest;
        check_counts(&golden.manifest_path, m, golden.len())?;
        if golden.sha256 != m.dataset.sha256 {
            let regenerate = m
                .dataset
                .generator
                .as_deref()
                .map_or(String::new(), |g| format!(" (or regenerate it with `{g}`)"));
            return Err(Error::golden(
                &golden.manifest_path,
                format!(
                    "dataset.sha256 is {} but the files hash to {}: the golden set changed. If the change is intended, record the new digest with `edgecert golden rehash {}`{regenerate}",
                    m.dataset.sha256,
                    golden.sha256,
                    dir.display(),
                ),
            ));
        }
        Ok(golden)
    }

    /// Reads the manifest and every sample and label file, checking what the files themselves
    /// must satisfy; the recorded sample count and digest are not compared yet (`sha256` is
    /// what the files hash to).
    fn read(dir: &Path) -> Result<(GoldenSet, Document)> {
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
        let (samples, mut parts) = sample_store(dir, &manifest.input)?;
        let labels = match &manifest.labels {
            Some(spec) => {
                let labels_path = dir.join(&spec.path);
                if !labels_path.exists() {
                    return Err(missing(&labels_path));
                }
                let labels = npy::read(&labels_path)?;
                parts.push((spec.path.clone(), labels_path.clone()));
                check_label_rows(&labels_path, &labels, samples.len())?;
                check_label_shape(&labels_path, manifest.metric.kind, &labels)?;
                check_label_values(&labels_path, &manifest, &labels)?;
                Some(labels)
            }
            None => None,
        };
        let sha256 = files_digest(parts)?;
        let golden = GoldenSet { dir: dir.to_path_buf(), manifest_path, manifest, samples, labels, sha256 };
        golden.check_samples_decode()?;
        Ok((golden, doc))
    }

    /// What the golden set's files hash to now (not compared with the recorded digest).
    pub fn files_sha256(dir: &Path) -> Result<String> {
        Ok(GoldenSet::read(dir)?.0.sha256)
    }

    /// Records the files' present digest and sample count in `family.toml` (after a deliberate
    /// change to a hand-made golden set), keeping the rest of the file as it is. Returns the
    /// new digest.
    pub fn rehash(dir: &Path) -> Result<String> {
        let (golden, doc) = GoldenSet::read(dir)?;
        let text = doc
            .with_value("dataset.sha256", &toml::Value::String(golden.sha256.clone()).to_string())
            .and_then(|d| d.with_value("dataset.samples", &golden.len().to_string()))
            .ok_or_else(|| {
                Error::golden(&golden.manifest_path, "no dataset.sha256 and dataset.samples to update")
            })?;
        crate::vocab::write_all_atomically(&[(golden.manifest_path.clone(), text.text.into_bytes())])?;
        Ok(golden.sha256)
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
        if !crate::config::is_identifier(&self.family.name) {
            err(
                "family.name",
                "expected a short identifier of a-z, 0-9, '-' or '_' (it names check ids and report folders)"
                    .into(),
            );
        }
        if self.input.shape.first() != Some(&1) {
            err(
                "input.shape",
                format!(
                    "edgecert feeds one sample at a time: the batch dimension must be 1, found {:?}",
                    self.input.shape
                ),
            );
        }
        if self.input.shape.is_empty() || self.input.shape.contains(&0) {
            err("input.shape", format!("expected positive dimensions, found {:?}", self.input.shape));
        }
        if self.input.format.is_image() && !matches!(self.input.shape.as_slice(), [1, 1 | 3, _, _]) {
            err(
                "input.shape",
                format!(
                    "image samples need a [1, C, H, W] shape with C = 1 or 3, found {:?}",
                    self.input.shape
                ),
            );
        }
        let l = &self.limits;
        if self.metric.kind.is_task() {
            if self.labels.is_none() {
                err(
                    "labels",
                    format!(
                        "metric `{}` scores against labels: add a [labels] table",
                        self.metric.kind.name()
                    ),
                );
            }
            match (l.metric_abs_floor, l.metric_rel_floor) {
                (None, _) => err(
                    "limits",
                    format!("metric `{}` needs limits.metric_abs_floor", self.metric.kind.name()),
                ),
                (_, None) => err(
                    "limits",
                    format!("metric `{}` needs limits.metric_rel_floor", self.metric.kind.name()),
                ),
                _ => {}
            }
        } else {
            if l.agreement.as_ref().is_none_or(|a| a.set().is_empty()) {
                err("limits.agreement", "metric `output_agreement` needs at least one limit in [limits.agreement] (e.g. cosine_min = 0.99)".into());
            }
            if self.metric.hardest_slice.is_some() {
                err(
                    "metric.hardest_slice",
                    "slices belong to task metrics, not to `output_agreement`".into(),
                );
            }
        }
        if let Some(slice) = self.metric.hardest_slice.as_deref().filter(|_| self.metric.kind.is_task()) {
            let names = self.metric.kind.slice_names();
            if !names.contains(&slice) {
                let known = if names.is_empty() {
                    "it reports no slices".to_string()
                } else {
                    format!(
                        "its slices are {}",
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    )
                };
                err(
                    "metric.hardest_slice",
                    format!("metric `{}` has no slice `{slice}`: {known}", self.metric.kind.name()),
                );
            }
        }
        if let Some(rel) = l.metric_rel_floor {
            if !(rel > 0.0 && rel <= 1.0) {
                err("limits.metric_rel_floor", format!("expected a fraction in (0, 1], found {rel}"));
            }
        }
        let p = &self.input.preprocess;
        let channels = self.input.shape.get(1).copied().unwrap_or(0);
        for (field, values) in [("input.preprocess.mean", &p.mean), ("input.preprocess.std", &p.std)] {
            if !(values.is_empty() || values.len() == 1 || values.len() == channels) {
                err(
                    field,
                    format!("expected 1 or {channels} values (one per channel), found {}", values.len()),
                );
            }
        }
        if let Some(why) = self.input.quantization.as_ref().and_then(|q| q.check().err()) {
            err("input.quantization", why);
        }
        if p.std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            err("input.preprocess.std", format!("every value must be positive, found {:?}", p.std));
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

fn check_counts(manifest_path: &Path, m: &FamilyManifest, inputs: usize) -> Result<()> {
    if inputs != m.dataset.samples {
        return Err(Error::golden(
            manifest_path,
            format!("dataset.samples says {} but {} input samples were found", m.dataset.samples, inputs),
        ));
    }
    Ok(())
}

fn check_label_rows(labels_path: &Path, labels: &ArrayD<f32>, inputs: usize) -> Result<()> {
    let rows = labels.shape().first().copied().unwrap_or(0);
    if rows != inputs {
        return Err(Error::golden(
            labels_path,
            format!("{rows} label rows for {inputs} input samples: expected one row per sample"),
        ));
    }
    Ok(())
}

fn check_label_shape(path: &Path, kind: MetricKind, labels: &ArrayD<f32>) -> Result<()> {
    let Some(want) = kind.label_shape() else { return Ok(()) };
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

/// Every label value the family's metric reads, against its classes and its input image.
fn check_label_values(path: &Path, manifest: &FamilyManifest, labels: &ArrayD<f32>) -> Result<()> {
    let context = LabelContext {
        classes: manifest.labels.as_ref().map_or(0, |l| l.classes.len()),
        image_hw: match manifest.input.shape.as_slice() {
            [_, _, h, w] => Some((*h, *w)),
            _ => None,
        },
    };
    manifest.metric.kind.check_labels(labels, context).map_err(|fault| {
        Error::golden(
            path,
            format!("row {}: {} (metric `{}`)", fault.row, fault.problem, manifest.metric.kind.name()),
        )
    })
}

/// Where each sample is read from.
#[derive(Debug, Clone)]
enum SampleStore {
    /// A stacked `.npy`: sample `i` is row `i`, read from the file on demand.
    Npy { path: PathBuf, layout: npy::Layout },
    /// One image file per sample, sorted by name.
    Images { files: Vec<PathBuf> },
}

impl SampleStore {
    fn len(&self) -> usize {
        match self {
            SampleStore::Npy { layout, .. } => layout.shape.first().copied().unwrap_or(0),
            SampleStore::Images { files } => files.len(),
        }
    }
}

/// The samples' store, and the (name in the digest, file) pairs they contribute to the dataset
/// digest.
fn sample_store(dir: &Path, spec: &InputSpec) -> Result<(SampleStore, Vec<(String, PathBuf)>)> {
    let path = dir.join(&spec.path);
    match spec.format {
        SampleFormat::Npy => {
            let layout = npy::Layout::of_file(&path)?;
            check_stack_shape(&path, &layout.shape, &spec.shape)?;
            Ok((SampleStore::Npy { path: path.clone(), layout }, vec![(spec.path.clone(), path)]))
        }
        SampleFormat::Png | SampleFormat::Images => {
            let names = sample_files(&path, spec.format)?;
            let parts = names.iter().map(|n| (format!("{}/{n}", spec.path), path.join(n))).collect();
            Ok((SampleStore::Images { files: names.iter().map(|n| path.join(n)).collect() }, parts))
        }
    }
}

/// The dataset digest of `(name, file)` parts, each file streamed through the hash (never held
/// whole); the same value [`dataset_digest`] gives for the files' bytes.
fn files_digest(mut parts: Vec<(String, PathBuf)>) -> Result<String> {
    use std::io::Read;
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = crate::vocab::hash::PartsHasher::default();
    let mut buffer = vec![0u8; 1 << 20];
    for (name, path) in &parts {
        let mut file = crate::vocab::open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        hasher.start(name, len);
        let mut seen = 0u64;
        loop {
            let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            hasher.update(&buffer[..n]);
        }
        if seen != len {
            return Err(Error::golden(path, "the file changed size while it was being read"));
        }
    }
    Ok(hasher.finish())
}

impl GoldenSet {
    /// Every sample must decode to the input shape: a bad one is bad input (exit 2) now, not a
    /// failed replay later. Decoded in parallel and dropped at once, so memory stays flat.
    fn check_samples_decode(&self) -> Result<()> {
        if matches!(self.samples, SampleStore::Npy { .. }) {
            return Ok(()); // the layout check covered every row's shape
        }
        // The first bad sample in order, so the message does not depend on thread timing.
        match (0..self.len()).into_par_iter().find_map_first(|i| self.sample(i).err()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn check_stack_shape(path: &Path, stacked: &[usize], shape: &[usize]) -> Result<()> {
    let per_sample = &shape[1..];
    if stacked.len() != shape.len() || &stacked[1..] != per_sample {
        return Err(Error::golden(
            path,
            format!(
                "samples have shape {stacked:?}, expected [N, {}] to match input.shape {shape:?}",
                join(per_sample)
            ),
        ));
    }
    Ok(())
}

fn join(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// Every file of a sample folder, sorted by name; anything that is not an image of the format
/// (another file, a folder, a link) is an error naming it: a golden set holds what it claims.
fn sample_files(folder: &Path, format: SampleFormat) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let entry = entry.map_err(|e| Error::io(folder, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if !kind.is_file() || !format.extensions().contains(&ext.as_str()) {
            let what = if kind.is_dir() {
                "a folder"
            } else if kind.is_symlink() {
                "a symbolic link"
            } else {
                "a file"
            };
            return Err(Error::golden(
                &path,
                format!(
                    "{what} that is not a sample: the folder may hold only {} images",
                    format.extensions().join(" or ")
                ),
            ));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// A PNG as a `[1, C, H, W]` tensor scaled to [0, 1], checked against the declared shape.
pub fn decode_png(file: &Path, bytes: &[u8], shape: &[usize]) -> Result<Tensor> {
    decode_image(file, bytes, shape, &Preprocess::default())
}

/// An image (PNG or JPEG, by its content) as a `[1, C, H, W]` tensor: scaled to [0, 1],
/// resized or checked against H×W, channels in order, then normalised.
pub fn decode_image(file: &Path, bytes: &[u8], shape: &[usize], pre: &Preprocess) -> Result<Tensor> {
    let &[1, c @ (1 | 3), h, w] = shape else {
        return Err(Error::golden(
            file,
            format!("image samples need a [1, C, H, W] shape with C = 1 or 3, found {shape:?}"),
        ));
    };
    let raster = raster::decode(bytes)
        .map_err(|e| Error::golden(file, format!("not a readable PNG or JPEG image: {e}")))?;
    let raster = if pre.resize {
        raster.resized(w, h)
    } else if (raster.height, raster.width) != (h, w) {
        return Err(Error::golden(
            file,
            format!(
                "image is {}x{} (W x H), expected {w}x{h} to match input.shape {shape:?} (or set input.preprocess.resize = true)",
                raster.width, raster.height
            ),
        ));
    } else {
        raster
    };
    let pixels = raster.into_channels(c);
    let per_channel =
        |v: &[f32], ch: usize, default: f32| v.get(ch).or(v.first()).copied().unwrap_or(default);
    // Planar NCHW filled plane by plane from the interleaved pixels: one pass over contiguous
    // memory (indexing a dynamic-rank array per pixel was a tenth of a detection replay).
    let mut planes = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        let source = if pre.channels == ChannelOrder::Bgr && c == 3 { 2 - ch } else { ch };
        let (mean, std) = (per_channel(&pre.mean, ch, 0.0), per_channel(&pre.std, ch, 1.0));
        planes.extend(pixels.iter().skip(source).step_by(c).map(|&p| (p as f32 / 255.0 - mean) / std));
    }
    ArrayD::from_shape_vec(IxDyn(shape), planes)
        .map_err(|e| Error::golden(file, format!("input.shape {shape:?} is not [1, C, H, W]: {e}")))
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
        let second = g.sample(1).unwrap();
        assert_eq!(second.shape(), &[1, 2, 4]);
        assert_eq!(second[[0, 1, 3]], 15.0);
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
    fn images_are_resized_reordered_and_normalised_as_declared() {
        // A 2×1 RGB image: left pixel pure red, right pixel pure blue.
        let png = raster::encode_png(2, 1, 3, &[255, 0, 0, 0, 0, 255]);
        let pre = Preprocess {
            resize: false,
            channels: ChannelOrder::Bgr,
            mean: vec![0.5],
            std: vec![0.5, 0.25, 0.5],
        };
        let t = decode_image(Path::new("x.png"), &png, &[1, 3, 1, 2], &pre).unwrap();
        // BGR: channel 0 is blue. (v - 0.5) / std.
        assert_eq!(t[[0, 0, 0, 0]], -1.0); // blue of the red pixel: (0 - 0.5) / 0.5
        assert_eq!(t[[0, 0, 0, 1]], 1.0); // blue of the blue pixel
        assert_eq!(t[[0, 2, 0, 0]], 1.0); // red of the red pixel
        assert_eq!(t[[0, 1, 0, 0]], -2.0); // green: (0 - 0.5) / 0.25
        let resized = decode_image(
            Path::new("x.png"),
            &png,
            &[1, 3, 2, 4],
            &Preprocess { resize: true, ..Preprocess::default() },
        )
        .unwrap();
        assert_eq!(resized.shape(), &[1, 3, 2, 4]);
        for shape in [&[1, 2, 1, 2][..], &[1, 3, 2], &[2, 3, 1, 2]] {
            let err = decode_image(Path::new("x.png"), &png, shape, &pre).unwrap_err().to_string();
            assert!(err.contains("x.png") && err.contains("need a [1, C, H, W] shape"), "{err}");
        }
        let err = decode_image(Path::new("x.png"), &png, &[1, 3, 2, 4], &Preprocess::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.png") && err.contains("expected 4x2") && err.contains("resize = true"),
            "{err}"
        );
    }

    #[test]
    fn sample_counts_must_match_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let sha = npy_set(dir.path());
        std::fs::write(dir.path().join("family.toml"), manifest(4, &sha, "[1, 2, 4]")).unwrap();
        let err = GoldenSet::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("dataset.samples says 4 but 3"), "{err}");
    }

    /// A 4-class top-1 set of one-value samples with these labels; returns its digest.
    fn classification_set(dir: &Path, labels: &[f32]) -> String {
        let n = labels.len();
        let inputs = ArrayD::from_shape_vec(IxDyn(&[n, 1]), vec![0.5; n]).unwrap();
        let labels = ArrayD::from_shape_vec(IxDyn(&[n]), labels.to_vec()).unwrap();
        let (a, b) = (npy::encode(&inputs), npy::encode(&labels));
        std::fs::write(dir.join("inputs.npy"), &a).unwrap();
        std::fs::write(dir.join("labels.npy"), &b).unwrap();
        let sha = dataset_digest(&[("inputs.npy".into(), a), ("labels.npy".into(), b)]);
        let named = manifest(n, &sha, "[1, 1]").replace(
            "path = \"labels.npy\"",
            "path = \"labels.npy\"\nclasses = [\"a\", \"b\", \"c\", \"d\"]",
        );
        std::fs::write(dir.join("family.toml"), named).unwrap();
        sha
    }

    use proptest::prelude::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, failure_persistence: None, ..Default::default() })]
        /// One label a classification task cannot read, anywhere in the file, and the set is
        /// refused naming the file, the row and the value; without it the same set loads.
        #[test]
        fn a_label_file_with_one_unreadable_class_is_refused_naming_row_and_value(
            classes in proptest::collection::vec(0u8..4, 1..12),
            row in 0usize..12,
            bad in proptest::prop_oneof![
                proptest::strategy::Just(f32::NAN),
                proptest::strategy::Just(f32::NEG_INFINITY),
                (4u32..100_000).prop_map(|c| c as f32),
                (-1000i32..0).prop_map(|c| c as f32),
                (0u32..4).prop_map(|c| c as f32 + 0.25),
            ],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut labels: Vec<f32> = classes.iter().map(|&c| f32::from(c)).collect();
            classification_set(dir.path(), &labels);
            prop_assert!(GoldenSet::load(dir.path()).is_ok());
            let row = row % labels.len();
            labels[row] = bad;
            classification_set(dir.path(), &labels);
            let err = GoldenSet::load(dir.path()).unwrap_err();
            prop_assert_eq!(err.exit_code(), 2);
            let message = err.to_string();
            let expected = format!("row {row}: class {bad} is not an integer in [0, 4)");
            prop_assert!(message.contains("labels.npy") && message.contains(&expected), "{}", message);
        }
    }

    #[test]
    fn a_hardest_slice_the_metric_does_not_report_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let sha = npy_set(dir.path());
        let toml = manifest(3, &sha, "[1, 2, 4]")
            .replace("kind = \"top1_accuracy\"", "kind = \"detection_map50\"\nhardest_slice = \"night\"");
        std::fs::write(dir.path().join("family.toml"), toml).unwrap();
        let err = GoldenSet::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("metric.hardest_slice")
                && err.contains(
                    "metric `mAP@0.5` has no slice `night`: its slices are `easy`, `moderate`, `hard`"
                ),
            "{err}"
        );
    }
}
