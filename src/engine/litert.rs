//! LiteRT (TensorFlow Lite's interpreter, `ai-edge-litert` from PyPI) behind the [`Engine`]
//! seam, loaded at run time: a Python worker (`litert_worker.py`, built into edgecert) runs the
//! interpreter in its own process and exchanges float32 tensors over pipes. Nothing is linked
//! when edgecert is built; the wheel's own C API is not a stable interface, its Python one is.
//!
//! LiteRT runs TFLite's integer kernels (what the QCS6490's LiteRT path and the Edge TPU's host
//! fall back to), where tract runs a subset of TFLite's operators: it is the engine for what
//! tract cannot run and the other side of `certify --cross-check` for TFLite files.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{ArrayD, IxDyn};

use super::{Engine, LoadedModel, Tensor};
use crate::model::shapes::MAX_ELEMENTS;
use crate::model::TensorInfo;
use crate::vocab::{Error, Result};

const WORKER: &str = include_str!("litert_worker.py");

/// Longest JSON line a worker may answer; the rest of a frame is sized by it.
const MAX_LINE: u64 = 1 << 20;

/// Python that imports `ai_edge_litert`, and the wheel's version.
struct Runtime {
    python: PathBuf,
    name: String,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

pub struct LitertEngine {
    runtime: &'static Runtime,
}

impl LitertEngine {
    /// Finds a Python with `ai-edge-litert` installed, once per process; `Err` says where it
    /// looked.
    pub fn load_runtime() -> std::result::Result<Self, String> {
        RUNTIME.get_or_init(locate).as_ref().map(|runtime| Self { runtime }).map_err(Clone::clone)
    }
}

/// `LITERT_PYTHON` when set (and then only it), else the active virtualenv's or conda's Python,
/// else `python3` on `PATH`: the first that imports `ai_edge_litert`.
fn locate() -> std::result::Result<Runtime, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    match std::env::var_os("LITERT_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => candidates.push(p.into()),
        None => {
            for prefix in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
                candidates
                    .extend(std::env::var_os(prefix).map(|p| PathBuf::from(p).join("bin").join("python3")));
            }
            candidates.push("python3".into());
        }
    }
    let probe =
        "import importlib.metadata as m, ai_edge_litert.interpreter; print(m.version('ai-edge-litert'))";
    candidates
        .iter()
        .find_map(|python| {
            let out = Command::new(python).args(["-c", probe]).stderr(Stdio::null()).output().ok()?;
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !version.is_empty())
                .then(|| Runtime { python: python.clone(), name: format!("LiteRT {version}") })
        })
        .ok_or_else(|| {
            format!(
                "no LiteRT found: `pip install ai-edge-litert` in the active virtualenv, or set LITERT_PYTHON to a Python that has it (looked in {})",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })
}

impl Engine for LitertEngine {
    fn name(&self) -> &str {
        &self.runtime.name
    }

    fn choice(&self) -> super::EngineChoice {
        super::EngineChoice::Litert
    }

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        let bytes = crate::vocab::read_bytes(path)?;
        crate::model::tflite::verified(path, &bytes)?;
        Ok(Box::new(Worker::start(&self.runtime.python, path, inputs, tensors)?))
    }
}

/// One worker process with its model loaded; requests are served one at a time.
struct Worker {
    path: PathBuf,
    input_sizes: Vec<usize>,
    pipes: Mutex<Pipes>,
    /// The worker's standard error, kept (bounded) for the message when it fails.
    stderr: Arc<Mutex<String>>,
}

struct Pipes {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(p) = self.pipes.get_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

#[derive(serde::Deserialize)]
struct Hello {
    error: Option<String>,
    #[serde(default)]
    inputs: Vec<Described>,
}

#[derive(serde::Deserialize)]
struct Described {
    shape: Vec<usize>,
}

#[derive(serde::Deserialize)]
struct Answer {
    error: Option<String>,
    #[serde(default)]
    ms: f64,
    #[serde(default)]
    shapes: Vec<Vec<usize>>,
}

impl Worker {
    /// The worker for `path`, answering the model's outputs, or the named `tensors` when given.
    fn start(python: &Path, path: &Path, inputs: &[TensorInfo], tensors: &[String]) -> Result<Worker> {
        let shapes = serde_json::to_string(&inputs.iter().map(|i| &i.shape).collect::<Vec<_>>())
            .expect("shapes serialise");
        let exposed = serde_json::to_string(tensors).expect("names serialise");
        let mut child = Command::new(python)
            .args(["-c", WORKER])
            .arg(path)
            .arg(shapes)
            .arg(exposed)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::model(path, format!("could not start LiteRT's worker ({}): {e}", python.display()))
            })?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped");
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                let mut s = kept.lock().unwrap_or_else(|e| e.into_inner());
                if s.len() < 16 * 1024 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let pipes = Pipes {
            stdin: child.stdin.take().expect("piped"),
            stdout: BufReader::new(child.stdout.take().expect("piped")),
            child,
        };
        let mut worker =
            Worker { path: path.to_path_buf(), input_sizes: Vec::new(), pipes: Mutex::new(pipes), stderr };
        let hello: Hello = {
            let pipes = worker.pipes.get_mut().unwrap_or_else(|e| e.into_inner());
            worker_line(&mut pipes.stdout)
                .and_then(|line| serde_json::from_str(&line).map_err(|e| e.to_string()))
        }
        .map_err(|why| worker.failed("load", &why))?;
        if let Some(why) = hello.error {
            return Err(Error::model(path, format!("LiteRT could not load the model: {why}")));
        }
        worker.input_sizes = hello.inputs.iter().map(|i| i.shape.iter().product()).collect();
        Ok(worker)
    }

    /// The error for a worker that stopped answering, with what it wrote to standard error.
    fn failed(&self, stage: &str, why: &str) -> Error {
        let stderr = self.stderr.lock().map(|s| s.trim().to_string()).unwrap_or_default();
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        Error::Inference {
            path: self.path.clone(),
            message: format!("LiteRT's worker failed to {stage} the model: {why}; its last words: {tail}"),
        }
    }

    fn exchange(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        if inputs.len() != self.input_sizes.len()
            || inputs.iter().zip(&self.input_sizes).any(|(t, &n)| t.len() != n)
        {
            return Err(Error::Inference {
                path: self.path.clone(),
                message: format!(
                    "LiteRT's model takes inputs of {:?} elements, given {:?}",
                    self.input_sizes,
                    inputs.iter().map(|t| t.len()).collect::<Vec<_>>()
                ),
            });
        }
        let mut pipes = self.pipes.lock().unwrap_or_else(|e| e.into_inner());
        let request: Vec<u8> = inputs.iter().flat_map(|t| t.iter().flat_map(|v| v.to_le_bytes())).collect();
        pipes
            .stdin
            .write_all(&request)
            .and_then(|()| pipes.stdin.flush())
            .map_err(|e| self.failed("run", &e.to_string()))?;
        let answer: Answer = worker_line(&mut pipes.stdout)
            .and_then(|line| serde_json::from_str(&line).map_err(|e| format!("{e} in `{line}`")))
            .map_err(|why| self.failed("run", &why))?;
        if let Some(why) = answer.error {
            return Err(Error::Inference { path: self.path.clone(), message: format!("LiteRT: {why}") });
        }
        let outputs = answer
            .shapes
            .iter()
            .map(|shape| read_tensor(&mut pipes.stdout, shape))
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|why| self.failed("run", &why))?;
        Ok((outputs, answer.ms))
    }
}

/// One answer line, bounded; `Err` at end of stream.
fn worker_line(stdout: &mut BufReader<ChildStdout>) -> std::result::Result<String, String> {
    let mut line = String::new();
    let n = stdout.take(MAX_LINE).read_line(&mut line).map_err(|e| e.to_string())?;
    match n {
        0 => Err("it exited".into()),
        _ if !line.ends_with('\n') => Err(format!("an answer line longer than {MAX_LINE} bytes")),
        _ => Ok(line),
    }
}

/// One output tensor's float32 elements, the count bounded as every tensor edgecert reads.
fn read_tensor(stdout: &mut BufReader<ChildStdout>, shape: &[usize]) -> std::result::Result<Tensor, String> {
    let elements =
        shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).filter(|&n| n <= MAX_ELEMENTS / 4);
    let elements =
        elements.ok_or_else(|| format!("an output of shape {shape:?} is larger than edgecert reads"))?;
    let mut raw = vec![0u8; elements as usize * 4];
    stdout.read_exact(&mut raw).map_err(|e| format!("output of shape {shape:?} cut short: {e}"))?;
    let values = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())
}

impl LoadedModel for Worker {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.exchange(inputs).map(|(outputs, _)| outputs)
    }

    /// The interpreter's own time around `invoke`, measured in the worker: the pipes' copies
    /// are the host's transport, as a device's link is.
    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        self.exchange(inputs)
    }

    /// One worker serves one request at a time: samples go in order.
    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        samples.iter().map(|s| self.run(s)).collect()
    }
}
