//! `edgecert golden init`: a complete golden set from a user's model pair and sample inputs, with
//! no code: the models and samples are copied into the new folder, `family.toml` is written with
//! metric `output_agreement` (no labels needed), the input shape and preprocessing, and the
//! dataset digest; the result is loaded back exactly as `certify` will load it. The folder is
//! built under a temporary name and renamed into place, so a failure leaves nothing behind.

use std::path::{Path, PathBuf};

use super::{GoldenSet, Preprocess, SampleFormat};
use crate::model::{InputShape, InputShapes, ModelInventory};
use crate::vocab::{Error, Result};

/// What `golden init` needs.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The golden-set folder to create (must not exist, or be empty).
    pub dir: PathBuf,
    pub reference: PathBuf,
    pub compressed: PathBuf,
    /// A folder of PNG/JPEG images, or one stacked float32 `.npy` array `[N, ...]`.
    pub inputs: PathBuf,
    /// The input's name and one sample's shape, batch first, when the model's input shape is
    /// not fixed (`--input-shape NAME:1x3x224x224`).
    pub input_shape: Option<InputShape>,
    pub preprocess: Preprocess,
    /// The single-inference latency budget (p99), if the user has one.
    pub latency_p99_ms: Option<f64>,
    /// How samples become an 8-bit integer input's codes, where the model does not say
    /// (`--input-quant SCALE:ZERO_POINT`).
    pub input_quant: Option<crate::model::InputQuantization>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub dir: PathBuf,
    pub name: String,
    pub samples: usize,
    pub sha256: String,
}

/// Default agreement limits: the cosine similarity vendor accuracy-analysis tools treat as
/// healthy for int8, and MLPerf's 99 % for arg-max agreement.
const DEFAULT_COSINE_MIN: f64 = 0.99;
const DEFAULT_TOP1_AGREEMENT_MIN: f64 = 0.99;

pub fn init(req: &InitRequest) -> Result<InitReport> {
    if req.dir.exists() && std::fs::read_dir(&req.dir).map_err(|e| Error::io(&req.dir, e))?.next().is_some() {
        return Err(Error::Usage(format!(
            "{} already exists and is not empty: choose a new folder",
            req.dir.display()
        )));
    }
    let name = family_name(&req.dir)?;
    let shapes = InputShapes::new(req.input_shape.iter().cloned().collect());
    let reference = ModelInventory::load_with(&req.reference, &shapes)?;
    let compressed = ModelInventory::load_with(&req.compressed, &shapes)?;
    let (input_name, shape) =
        input_of(&reference, &compressed, req.input_quant, &req.dir.join("family.toml"))?;
    model_file_names(&reference, &compressed)?;
    let parent = req.dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = parent.join(format!(".{name}.init-{}", std::process::id()));
    let built = build(req, &staging, &name, &input_name, &shape, (&reference, &compressed));
    let result = built.and_then(|_| {
        let _ = std::fs::remove_dir(&req.dir); // an empty folder the user made is fine to replace
        std::fs::rename(&staging, &req.dir).map_err(|e| Error::io(&req.dir, e))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let golden = GoldenSet::load(&req.dir)?;
    Ok(InitReport { dir: req.dir.clone(), name, samples: golden.len(), sha256: golden.sha256 })
}

/// Copies models and samples into `staging`, writes `family.toml` with the digest, and loads
/// the result back.
fn build(
    req: &InitRequest,
    staging: &Path,
    name: &str,
    input_name: &str,
    shape: &[usize],
    (reference, compressed): (&ModelInventory, &ModelInventory),
) -> Result<()> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
    copy_artifact(reference, staging)?;
    copy_artifact(compressed, staging)?;
    let (reference, compressed) = (file_name(&reference.path), file_name(&compressed.path));
    let (format, path, samples) = copy_samples(&req.inputs, staging)?;
    if format.is_image() && !matches!(shape, [1, 1 | 3, _, _]) {
        return Err(Error::Usage(format!(
            "images fill a [1, C, H, W] input with C = 1 or 3, but the input shape is {shape:?}: pass --input-shape {input_name}:1x3xHxW, or give an .npy stack"
        )));
    }
    let manifest = staging.join("family.toml");
    let text =
        manifest_text(req, name, input_name, shape, (format, &path, samples), (&reference, &compressed));
    std::fs::write(&manifest, text).map_err(|e| Error::io(&manifest, e))?;
    GoldenSet::rehash(staging)?;
    GoldenSet::load(staging).map(|_| ())
}

/// The family name: the folder's name, which must be usable in report paths and check ids.
fn family_name(dir: &Path) -> Result<String> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if crate::config::is_identifier(&name) {
        Ok(name)
    } else {
        Err(Error::Usage(format!(
            "{}: the folder's name becomes the family name in check ids and report paths; use a-z, 0-9, - and _",
            dir.display()
        )))
    }
}

/// The single input both models take, and one sample's shape.
fn input_of(
    reference: &ModelInventory,
    compressed: &ModelInventory,
    input_quant: Option<crate::model::InputQuantization>,
    manifest: &Path,
) -> Result<(String, Vec<usize>)> {
    let only = |m: &ModelInventory| match m.inputs.as_slice() {
        [one] => Ok(one.clone()),
        inputs => Err(Error::model(
            &m.path,
            format!("edgecert replays single-input models; this one has {} inputs", inputs.len()),
        )),
    };
    let (r, c) = (only(reference)?, only(compressed)?);
    reference.clone().resolve_input_feeds(input_quant, manifest)?;
    compressed.clone().resolve_input_feeds(input_quant, manifest)?;
    let shape = r.shape.clone();
    if r.shape != c.shape {
        return Err(Error::model(
            &compressed.path,
            format!(
                "takes `{}` of shape {:?} but the reference takes {:?}: the pair must take the same input",
                c.name, c.shape, r.shape
            ),
        ));
    }
    if shape.is_empty() || shape.contains(&0) {
        return Err(Error::Usage(format!("input shape {shape:?} has no samples' worth of elements")));
    }
    Ok((r.name, shape))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Both models' artifacts go into one folder: no file of one may share a name with the other's.
fn model_file_names(reference: &ModelInventory, compressed: &ModelInventory) -> Result<()> {
    let names = |m: &ModelInventory| -> Vec<String> {
        std::iter::once(file_name(&m.path)).chain(m.files.iter().map(|f| f.path.clone())).collect()
    };
    let theirs = names(compressed);
    match names(reference).into_iter().find(|n| theirs.contains(n)) {
        Some(clash) => Err(Error::Usage(format!(
            "the reference and the compressed model both have a file named `{clash}`: rename one so both fit in one folder"
        ))),
        None => Ok(()),
    }
}

/// Copies a model file and its external-data files, keeping their relative places.
fn copy_artifact(model: &ModelInventory, staging: &Path) -> Result<()> {
    let folder = model.path.parent().unwrap_or(Path::new("."));
    let model_name = file_name(&model.path);
    copy(&model.path, &staging.join(&model_name))?;
    for file in model.files.iter().filter(|f| f.path != model_name) {
        let to = staging.join(&file.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        copy(&folder.join(&file.path), &to)?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| Error::io(from, e))
}

/// Copies the samples: an image folder to `samples/`, an `.npy` stack to `inputs.npy`; returns
/// the format, the path in the golden set and the sample count.
fn copy_samples(inputs: &Path, staging: &Path) -> Result<(SampleFormat, String, usize)> {
    if inputs.is_dir() {
        let names = super::sample_files(inputs, SampleFormat::Images)?;
        if names.is_empty() {
            return Err(Error::golden(inputs, "no PNG or JPEG images in this folder"));
        }
        let folder = staging.join("samples");
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        for name in &names {
            copy(&inputs.join(name), &folder.join(name))?;
        }
        let all_png = names.iter().all(|n| n.to_ascii_lowercase().ends_with(".png"));
        Ok((if all_png { SampleFormat::Png } else { SampleFormat::Images }, "samples".into(), names.len()))
    } else if inputs.extension().is_some_and(|e| e == "npy") {
        let samples = super::npy::read(inputs)?.shape().first().copied().unwrap_or(0);
        copy(inputs, &staging.join("inputs.npy"))?;
        Ok((SampleFormat::Npy, "inputs.npy".into(), samples))
    } else {
        Err(Error::golden(inputs, "expected a folder of PNG/JPEG images or a stacked float32 .npy file"))
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn floats(v: &[f32]) -> String {
    format!("[{}]", v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", "))
}

fn manifest_text(
    req: &InitRequest,
    name: &str,
    input_name: &str,
    shape: &[usize],
    (format, path, samples): (SampleFormat, &str, usize),
    (reference, compressed): (&str, &str),
) -> String {
    let format = match format {
        SampleFormat::Png => "png",
        SampleFormat::Images => "images",
        SampleFormat::Npy => "npy",
    };
    let p = &req.preprocess;
    let mut preprocess = String::new();
    if format != "npy" && *p != Preprocess::default() {
        preprocess = format!(
            "\n[input.preprocess]\nresize = {}\nchannels = {}\nmean = {}\nstd = {}\n",
            p.resize,
            quoted(if p.channels == super::ChannelOrder::Bgr { "bgr" } else { "rgb" }),
            floats(&p.mean),
            floats(&p.std)
        );
    }
    let quantization = req.input_quant.map_or(String::new(), |q| {
        format!("\n[input.quantization]      # how samples become the model's 8-bit codes\nscale = {:?}\nzero_point = {}\n", q.scale, q.zero_point)
    });
    let latency = req.latency_p99_ms.map_or_else(
        || {
            "# latency_p99_ms = 33.0      # set your budget: without one, latency is INCONCLUSIVE\n"
                .to_string()
        },
        |ms| format!("latency_p99_ms = {ms:?}\n"),
    );
    format!(
        r#"# Written by `edgecert golden init`. Edit the limits to your requirements; after changing any
# sample, record the new digest with `edgecert golden rehash <this folder>`.
schema_version = 1

[family]
name = {name}
task = "custom"

[models]
reference = {reference}
compressed = {compressed}

[input]
name = {input_name}
shape = {shape:?}
format = "{format}"
path = {path}
{preprocess}{quantization}
[metric]
kind = "output_agreement"    # compressed vs FP32 outputs on the same inputs; no labels needed

[limits]
size_bytes = 50_000_000
{latency}confidence = 0.95

[limits.agreement]           # applied to every output tensor
cosine_min = {DEFAULT_COSINE_MIN:?}
top1_agreement_min = {DEFAULT_TOP1_AGREEMENT_MIN:?}  # only where an output is a score vector
# snr_db_min = 20.0
# max_abs_error_max = 0.5    # p99 over samples of the largest absolute error
# mean_abs_error_max = 0.05

[dataset]
samples = {samples}
sha256 = ""
"#,
        name = quoted(name),
        reference = quoted(reference),
        compressed = quoted(compressed),
        input_name = quoted(input_name),
        path = quoted(path),
    )
}
