//! onnxruntime behind the [`Engine`] seam, loaded at run time: `libonnxruntime.so` comes from
//! `ORT_DYLIB_PATH`, or from an installed `onnxruntime` wheel's `capi/` folder. Nothing is
//! downloaded or linked when edgecert is built, so tract stays the zero-setup engine.
//!
//! onnxruntime runs integer kernels on QDQ models (as a chip does), where tract simulates them
//! in float; that difference is why `certify --cross-check` exists.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use half::f16;
use ndarray::ArrayD;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, PrimitiveTensorElementType, Tensor as OrtTensor, TensorElementType, ValueType};

use super::{Engine, LoadedModel, Tensor};
use crate::model::TensorInfo;
use crate::vocab::{Error, Result};

/// The library's file name (`libonnxruntime.so` on Linux), versioned suffixes allowed.
const LIBRARY_STEM: &str = "libonnxruntime.so";

/// A loaded onnxruntime: one per process (onnxruntime allows one environment).
struct Runtime {
    environment: ort::environment::Environment,
    name: String,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// onnxruntime, found and loaded once per process.
pub struct OnnxruntimeEngine {
    runtime: &'static Runtime,
}

impl OnnxruntimeEngine {
    /// Finds and loads onnxruntime; `Err` says where it looked, or why the library found could
    /// not be used.
    pub fn load_runtime() -> std::result::Result<Self, String> {
        RUNTIME
            .get_or_init(|| locate().and_then(|path| start(&path)))
            .as_ref()
            .map(|runtime| Self { runtime })
            .map_err(Clone::clone)
    }
}

/// Where `libonnxruntime.so` is: `ORT_DYLIB_PATH` when set (and then only there), else the
/// `capi/` folder of an `onnxruntime` wheel in the active virtualenv, the user's and the
/// system's site-packages, or wherever the `python3` on `PATH` would import it from.
pub fn locate() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!("ORT_DYLIB_PATH names `{}`, which is not a file", path.display())),
        };
    }
    let roots = site_package_roots();
    roots
        .iter()
        .find_map(|site| library_in(&site.join("onnxruntime").join("capi")))
        .or_else(|| python_capi_folder().and_then(|capi| library_in(&capi)))
        .ok_or_else(|| {
            format!(
                "no onnxruntime library found: set ORT_DYLIB_PATH to a libonnxruntime.so, or \
                 `pip install onnxruntime` (looked in ORT_DYLIB_PATH, {} site-packages folder(s) \
                 and the python3 on PATH)",
                roots.len()
            )
        })
}

/// Site-packages folders where a wheel may be installed, most specific first.
fn site_package_roots() -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    prefixes.extend(std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
    prefixes.extend(std::env::var_os("CONDA_PREFIX").map(PathBuf::from));
    prefixes.extend(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local")));
    prefixes.extend(["/usr/local", "/usr"].map(PathBuf::from));
    let mut roots = Vec::new();
    for lib in prefixes.iter().map(|p| p.join("lib")) {
        let Ok(entries) = std::fs::read_dir(&lib) else { continue };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons {
            roots.push(python.join("site-packages"));
            roots.push(python.join("dist-packages"));
        }
    }
    roots
}

/// The `onnxruntime` package folder of the `python3` on `PATH`, found without importing it.
fn python_capi_folder() -> Option<PathBuf> {
    let script = "import importlib.util as u; s = u.find_spec('onnxruntime'); \
                  print(s.submodule_search_locations[0] if s else '')";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let folder = String::from_utf8(out.stdout).ok()?;
    let folder = folder.trim();
    (out.status.success() && !folder.is_empty()).then(|| PathBuf::from(folder).join("capi"))
}

/// `libonnxruntime.so` or a versioned `libonnxruntime.so.1.x.y` in `folder`.
fn library_in(folder: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(LIBRARY_STEM))
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Loads the library and creates the process's onnxruntime environment.
fn start(path: &Path) -> std::result::Result<Runtime, String> {
    let version = library_version(path)?;
    let builder = ort::init_from(path).map_err(|e| format!("onnxruntime at `{}`: {e}", path.display()))?;
    let environment = builder
        .with_name("edgecert")
        .build()
        .map_err(|e| format!("onnxruntime at `{}` could not start: {e}", path.display()))?;
    Ok(Runtime { environment, name: format!("onnxruntime {version}") })
}

/// The version the library reports of itself (`OrtGetApiBase()->GetVersionString()`).
fn library_version(path: &Path) -> std::result::Result<String, String> {
    let failed = |why: String| format!("`{}` is not a usable onnxruntime library: {why}", path.display());
    // SAFETY: loading runs the library's initialisers; this is the library the user pointed
    // edgecert at (or the one their onnxruntime wheel ships), as ort itself would load it.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| failed(e.to_string()))?;
    // SAFETY: `OrtGetApiBase` is onnxruntime's one exported entry point, with this signature
    // in every release; the version string it returns is static and NUL-terminated.
    let version = unsafe {
        let get_api_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            library.get(b"OrtGetApiBase").map_err(|e| failed(e.to_string()))?;
        let base = get_api_base();
        if base.is_null() {
            return Err(failed("OrtGetApiBase returned nothing".into()));
        }
        CStr::from_ptr(((*base).GetVersionString)()).to_string_lossy().into_owned()
    };
    // The library stays loaded for the process: ort loads it again and uses it.
    std::mem::forget(library);
    Ok(version)
}

impl Engine for OnnxruntimeEngine {
    fn choice(&self) -> super::EngineChoice {
        super::EngineChoice::Onnxruntime
    }

    fn name(&self) -> &str {
        &self.runtime.name
    }

    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>> {
        let model = OrtModel::new(self.runtime, path, inputs, ModelSource::File(path.to_path_buf()))?;
        Ok(Box::new(model))
    }

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        if tensors.is_empty() {
            return self.load(path, inputs);
        }
        let bytes = with_outputs(path, tensors)?;
        let model = OrtModel::new(self.runtime, path, inputs, ModelSource::Bytes(bytes))?;
        Ok(Box::new(model))
    }
}

/// The model with `tensors` as its only graph outputs, in that order: onnxruntime returns any
/// tensor named as a graph output. A model whose weights live in side files cannot be loaded
/// from memory with them, so it is refused with the engine that can.
fn with_outputs(path: &Path, tensors: &[String]) -> Result<Vec<u8>> {
    use prost::Message;
    let bytes = crate::vocab::read_bytes(path)?;
    let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::model(path, format!("not an ONNX model: {e}")))?;
    let graph = proto.graph.as_mut().ok_or_else(|| Error::model(path, "the model has no graph"))?;
    if graph.initializer.iter().any(|i| i.data_location == Some(1)) {
        return Err(Error::model(
            path,
            "the onnxruntime engine cannot expose intermediate tensors of a model with external \
             weights; use --engine tract",
        ));
    }
    graph.output = tensors
        .iter()
        .map(|name| tract_onnx::pb::ValueInfoProto { name: name.clone(), ..Default::default() })
        .collect();
    Ok(proto.encode_to_vec())
}

enum ModelSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A model loaded in onnxruntime. A session runs one call at a time (`Session::run` takes
/// `&mut`), so there is one single-threaded session per replay thread, made on first use:
/// samples run in parallel across cores, as they do under tract.
struct OrtModel {
    runtime: &'static Runtime,
    path: PathBuf,
    source: ModelSource,
    sessions: Vec<OnceLock<std::result::Result<Mutex<Session>, String>>>,
    input_types: Vec<TensorElementType>,
}

impl OrtModel {
    fn new(
        runtime: &'static Runtime,
        path: &Path,
        inputs: &[TensorInfo],
        source: ModelSource,
    ) -> Result<Self> {
        let slots = rayon::current_num_threads().max(1);
        let mut model = OrtModel {
            runtime,
            path: path.to_path_buf(),
            source,
            sessions: (0..slots).map(|_| OnceLock::new()).collect(),
            input_types: Vec::new(),
        };
        // The first session is made now, so a model onnxruntime refuses fails at load.
        model.input_types = model.declared_inputs()?;
        if model.input_types.len() != inputs.len() {
            return Err(Error::model(
                path,
                format!(
                    "onnxruntime sees {} input(s), the inventory {}",
                    model.input_types.len(),
                    inputs.len()
                ),
            ));
        }
        Ok(model)
    }

    /// The element type of each input, as the model declares it.
    fn declared_inputs(&self) -> Result<Vec<TensorElementType>> {
        let first = self.session(0).map_err(|e| Error::model(&self.path, e))?;
        let session = first.lock().map_err(|_| Error::model(&self.path, "a session lock was poisoned"))?;
        session
            .inputs()
            .iter()
            .map(|outlet| match outlet.dtype() {
                ValueType::Tensor { ty, .. } => Ok(*ty),
                other => Err(Error::model(
                    &self.path,
                    format!("input `{}` is {other:?}, not a tensor: edgecert feeds tensors", outlet.name()),
                )),
            })
            .collect()
    }

    /// Session `slot`, made on first use.
    fn session(&self, slot: usize) -> std::result::Result<&Mutex<Session>, String> {
        self.sessions[slot].get_or_init(|| self.open().map(Mutex::new)).as_ref().map_err(Clone::clone)
    }

    fn open(&self) -> std::result::Result<Session, String> {
        let failed = |e: String| format!("onnxruntime could not load the model: {e}");
        let mut builder = Session::builder(&self.runtime.environment)
            .map_err(|e| failed(e.to_string()))
            .and_then(|b| configure(b).map_err(failed))?;
        match &self.source {
            ModelSource::File(path) => builder.commit_from_file(path),
            ModelSource::Bytes(bytes) => builder.commit_from_memory(bytes),
        }
        .map_err(|e| failed(e.to_string()))
    }
}

/// One intra-op thread (replay parallelises across samples), full graph optimisation, and
/// onnxruntime's own log quiet below errors.
fn configure(builder: SessionBuilder) -> std::result::Result<SessionBuilder, String> {
    let step = |e: ort::Error<SessionBuilder>| e.to_string();
    builder
        .with_intra_threads(1)
        .map_err(step)?
        .with_inter_threads(1)
        .map_err(step)?
        .with_parallel_execution(false)
        .map_err(step)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(step)?
        .with_log_level(ort::logging::LogLevel::Error)
        .map_err(step)
}

impl LoadedModel for OrtModel {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let failed = |message: String| Error::Inference { path: self.path.clone(), message };
        let slot = rayon::current_thread_index().unwrap_or(0) % self.sessions.len();
        let session = self.session(slot).map_err(failed)?;
        let values = inputs
            .iter()
            .zip(self.input_types.iter().chain(std::iter::repeat(&TensorElementType::Float32)))
            .map(|(t, ty)| input_value(t, *ty))
            .collect::<std::result::Result<Vec<SessionInputValue<'_>>, String>>()
            .map_err(failed)?;
        let mut session = session.lock().map_err(|_| failed("a session lock was poisoned".into()))?;
        let outputs = session.run(values.as_slice()).map_err(|e| failed(e.to_string()))?;
        outputs.values().map(|v| output_tensor(&v).map_err(failed)).collect()
    }
}

/// A sample (always f32) as the type the model declares: fp16 exports take fp16, as on the chip.
fn input_value(t: &Tensor, ty: TensorElementType) -> std::result::Result<SessionInputValue<'static>, String> {
    let value = match ty {
        TensorElementType::Float32 => OrtTensor::from_array(t.clone()).map(DynValue::from),
        TensorElementType::Float16 => OrtTensor::from_array(t.mapv(f16::from_f32)).map(DynValue::from),
        other => return Err(format!("the model takes {other:?} input; golden samples are float")),
    };
    value.map(SessionInputValue::from).map_err(|e| e.to_string())
}

/// An output as f32, whatever its element type (class ids and counts come as integers).
fn output_tensor(value: &DynValue) -> std::result::Result<Tensor, String> {
    match value.dtype().tensor_type() {
        Some(TensorElementType::Float32) => as_f32(value, |x: f32| x),
        Some(TensorElementType::Float16) => as_f32(value, |x: f16| x.to_f32()),
        Some(TensorElementType::Float64) => as_f32(value, |x: f64| x as f32),
        Some(TensorElementType::Int64) => as_f32(value, |x: i64| x as f32),
        Some(TensorElementType::Int32) => as_f32(value, |x: i32| x as f32),
        Some(TensorElementType::Int8) => as_f32(value, |x: i8| f32::from(x)),
        Some(TensorElementType::Uint8) => as_f32(value, |x: u8| f32::from(x)),
        Some(TensorElementType::Bool) => as_f32(value, |x: bool| f32::from(u8::from(x))),
        other => Err(format!("an output of type {other:?}, which edgecert cannot score")),
    }
}

fn as_f32<T: PrimitiveTensorElementType + Copy>(
    value: &DynValue,
    convert: impl Fn(T) -> f32,
) -> std::result::Result<ArrayD<f32>, String> {
    value.try_extract_array::<T>().map(|a| a.mapv(convert)).map_err(|e| e.to_string())
}
