//! The `exec` backend's runtime: a vendor's command-line tool (RKNN's, QNN's `qnn-net-run`,
//! CANN's `msame`, ...) driven as its adapter file says. Each invocation gets a batch of
//! samples written as files, runs under a timeout in a process group of its own, and its output
//! files and timing lines are read back. The runtime's outputs feed the accuracy checks; each
//! finished sample is journalled before the next batch, so a crashing or hung runtime loses
//! nothing already done and the same command resumes.

pub mod adapter;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use adapter::Adapter;
use adapter::{Format, LineTemplate, TimingMode};

use crate::engine::{Engine, EngineChoice, LoadedModel, Tensor};
use crate::model::{ModelInventory, OutputInfo, TensorInfo};
use crate::remote::{input_digest, DeviceJournal};
use crate::vocab::{Error, Result};

/// Time the runtime has to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// A command-line runtime as an engine.
pub struct ExecEngine {
    adapter: Adapter,
    /// The runtime and its version as `version_command` prints them.
    name: String,
    journal_dir: PathBuf,
    /// Digest of what decides the runtime's outputs, as far as edgecert can see it: the
    /// adapter, the version line, and every file its commands name under the adapter's folder.
    identity: String,
}

impl ExecEngine {
    /// Loads the adapter and asks the runtime its version (a runtime that cannot even say it
    /// is bad input, exit 2).
    pub fn new(adapter_path: &Path, journal_dir: PathBuf) -> Result<ExecEngine> {
        let adapter = Adapter::load(adapter_path)?;
        let argv = &adapter.file.adapter.version_command;
        let version = match argv.is_empty() {
            true => String::new(),
            false => {
                let (stdout, _) = run_command(argv, &adapter.file.run.env, &adapter.dir(), VERSION_TIMEOUT)
                    .map_err(|why| {
                    Error::Usage(format!("{}: adapter.version_command: {why}", adapter_path.display()))
                })?;
                stdout.lines().next().unwrap_or("").trim().to_string()
            }
        };
        let name = match version.is_empty() {
            true => adapter.file.adapter.name.clone(),
            false => format!("{} ({version})", adapter.file.adapter.name),
        };
        let identity = identity(&adapter, &name);
        Ok(ExecEngine { adapter, name, journal_dir, identity })
    }
}

/// Seconds a `sensors_command` may take to answer.
const SENSORS_TIMEOUT: Duration = Duration::from_secs(5);

/// The device's thermal zones and clocks as the adapter's `sensors_command` prints them.
pub struct ExecSensors {
    argv: Vec<String>,
    env: std::collections::BTreeMap<String, String>,
    dir: PathBuf,
    adapter: PathBuf,
}

impl ExecEngine {
    /// The device's sensors, for a soak; `None` when the adapter has no `sensors_command`.
    pub fn sensors(&self) -> Option<ExecSensors> {
        let file = &self.adapter.file;
        (!file.adapter.sensors_command.is_empty()).then(|| ExecSensors {
            argv: file.adapter.sensors_command.clone(),
            env: file.run.env.clone(),
            dir: self.adapter.dir(),
            adapter: self.adapter.path.clone(),
        })
    }
}

impl crate::device::Sensors for ExecSensors {
    /// A command that fails gives an empty reading naming why.
    fn sample(&self, t_s: f64) -> crate::vocab::ThermalSample {
        let mut sample = crate::vocab::ThermalSample {
            t_s,
            zones_c: Default::default(),
            clocks_mhz: Default::default(),
            unreadable: Vec::new(),
        };
        match run_command(&self.argv, &self.env, &self.dir, SENSORS_TIMEOUT) {
            Ok((stdout, _)) => parse_sensors(&stdout, &mut sample),
            Err(why) => sample.unreadable.push(format!("adapter.sensors_command: {why}")),
        }
        sample
    }

    fn describe(&self) -> String {
        format!("the device's sensors via the sensors_command of adapter {}", self.adapter.display())
    }
}

/// `zone NAME: °C` and `clock NAME: MHz` lines into the reading; any other line is named as
/// unreadable. Bounded as a device's facts are.
fn parse_sensors(text: &str, sample: &mut crate::vocab::ThermalSample) {
    use crate::device::{MAX_FACTS, MAX_FACT_BYTES};
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).take(2 * MAX_FACTS) {
        let parsed = line.split_once(':').and_then(|(key, value)| {
            let (kind, name) = key.trim().split_once(' ')?;
            let value: f64 = value.trim().parse().ok().filter(|v: &f64| v.is_finite())?;
            Some((kind, name.trim(), value))
                .filter(|(_, name, _)| !name.is_empty() && name.len() <= MAX_FACT_BYTES)
        });
        match parsed {
            Some(("zone", name, c)) => drop(sample.zones_c.insert(name.to_string(), c)),
            Some(("clock", name, mhz)) => drop(sample.clocks_mhz.insert(name.to_string(), mhz)),
            _ => {
                let shown: String = line.chars().take(64).collect();
                sample.unreadable.push(format!(
                    "adapter.sensors_command line {}: `{shown}` is not `zone NAME: °C` or `clock NAME: MHz`",
                    n + 1
                ));
            }
        }
    }
}

impl ExecEngine {
    /// The device's facts as the adapter's `device_command` prints them (`name: value` lines;
    /// none without one). A command that fails, or a line that is not a fact, is bad input.
    pub fn device_facts(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let argv = &self.adapter.file.adapter.device_command;
        if argv.is_empty() {
            return Ok(Default::default());
        }
        let bad = |why: String| {
            Error::Usage(format!("{}: adapter.device_command: {why}", self.adapter.path.display()))
        };
        let (stdout, _) = run_command(argv, &self.adapter.file.run.env, &self.adapter.dir(), VERSION_TIMEOUT)
            .map_err(bad)?;
        parse_facts(&stdout).map_err(bad)
    }

    /// How its latencies are measured, for the report.
    pub fn timing_note(&self) -> &'static str {
        match self.adapter.file.timing.mode {
            TimingMode::Line => "timed by the runtime's own per-sample lines",
            TimingMode::Wall => {
                "timed by the wall clock of one invocation per query, start-up and load included (an upper bound)"
            }
        }
    }
}

impl ExecEngine {
    /// Refuses a template that gives two tensors of a batch one file (`{name}` made file-safe
    /// can collide; `{index}{k}` is ambiguous): one file would answer for both.
    fn distinct_files(&self, field: &str, template: &str, tensors: &[&str]) -> Result<()> {
        let mut seen = std::collections::HashMap::new();
        for index in 0..self.adapter.file.run.batch.min(1000) {
            for (k, &name) in tensors.iter().enumerate() {
                let file = tensor_file(template, index, name, k);
                if let Some((i, other)) = seen.insert(file.clone(), (index, name)) {
                    return Err(Error::Usage(format!(
                        "{}: {field} `{template}` names `{file}` for both `{other}` of sample {i} and `{name}` of sample {index}: use {{k}}, or separate the placeholders",
                        self.adapter.path.display(),
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Engine for ExecEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn choice(&self) -> EngineChoice {
        EngineChoice::Tract
    }

    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>> {
        let outputs = ModelInventory::load(path)?.outputs;
        let input_names: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).collect();
        self.distinct_files("inputs.file", &self.adapter.file.inputs.file, &input_names)?;
        let output_names: Vec<&str> = outputs.iter().map(|t| t.name.as_str()).collect();
        self.distinct_files("outputs.file", &self.adapter.file.outputs.file, &output_names)?;
        let bytes = crate::vocab::read_bytes(path)?;
        let id = &self.identity;
        let journal_name =
            format!("{}-exec-{}.journal", &crate::vocab::hash::sha256_hex(&bytes)[..16], &id[..16]);
        Ok(Box::new(ExecModel {
            adapter: self.adapter.clone(),
            model: path.canonicalize().map_err(|e| Error::io(path, e))?,
            inputs: inputs.to_vec(),
            outputs,
            journal: DeviceJournal::open(path, &self.journal_dir.join(journal_name), &self.name)?,
            overheads_ms: Mutex::new(Vec::new()),
        }))
    }

    fn load_exposing(&self, path: &Path, _: &[TensorInfo], _: &[String]) -> Result<Box<dyn LoadedModel>> {
        Err(crate::engine::no_layer_analysis(path, "a runtime command"))
    }
}

struct ExecModel {
    adapter: Adapter,
    model: PathBuf,
    inputs: Vec<TensorInfo>,
    outputs: Vec<OutputInfo>,
    /// Finished samples, and the runtime's first failure: later calls fail at once with it
    /// instead of starting it again.
    journal: DeviceJournal,
    /// Per invocation: its wall clock less the inference times it reported (start-up and load).
    overheads_ms: Mutex<Vec<f64>>,
}

/// One invocation's results: per sample, outputs and milliseconds.
type Invoked = Vec<(Vec<Tensor>, f64)>;

impl ExecModel {
    /// Runs `samples` through the runtime, a batch per invocation.
    fn invoke_all(&self, samples: &[Vec<Tensor>]) -> Result<Invoked> {
        let mut results = Vec::with_capacity(samples.len());
        for batch in samples.chunks(self.adapter.file.run.batch) {
            if let Some(why) = self.journal.failed() {
                return Err(self.journal.fail(why));
            }
            results.extend(invoke(self, batch).map_err(|why| self.journal.fail(why))?);
        }
        Ok(results)
    }
}

impl LoadedModel for ExecModel {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(self.run_batch(&[inputs.to_vec()])?.remove(0))
    }

    fn preferred_batch(&self) -> usize {
        self.adapter.file.run.batch
    }

    /// Journalled outputs where there are any; the rest through the runtime, each batch
    /// journalled as it finishes.
    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        let digests: Vec<_> = samples.iter().map(|s| input_digest(s)).collect();
        let mut outputs = self.journal.lookup(&digests)?;
        let missing: Vec<usize> = (0..samples.len()).filter(|&i| outputs[i].is_none()).collect();
        for chunk in missing.chunks(self.adapter.file.run.batch) {
            let batch: Vec<Vec<Tensor>> = chunk.iter().map(|&i| samples[i].clone()).collect();
            let done = self.invoke_all(&batch)?;
            self.journal
                .record(chunk.iter().zip(&done).map(|(&i, (out, _))| (digests[i], out.as_slice())))?;
            for (&i, (out, _)) in chunk.iter().zip(done) {
                outputs[i] = Some(out);
            }
        }
        Ok(outputs.into_iter().map(|o| o.expect("every sample answered")).collect())
    }

    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        Ok(self.run_timed_batch(&[inputs.to_vec()])?.remove(0))
    }

    /// Always through the runtime; outputs compared with the journalled ones (TEST01). Timed
    /// by the wall clock, each query is an invocation of its own: a batch's clock divided over
    /// its samples would be a mean, and a p99 of means hides the tail.
    fn run_timed_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<(Vec<Tensor>, f64)>> {
        let done = match self.adapter.file.timing.mode {
            TimingMode::Line => self.invoke_all(samples)?,
            TimingMode::Wall => {
                let one = |s: &Vec<Tensor>| self.invoke_all(std::slice::from_ref(s)).map(|mut r| r.remove(0));
                samples.iter().map(one).collect::<Result<_>>()?
            }
        };
        self.journal
            .compare_timed(samples.iter().zip(&done).map(|(s, (out, _))| (s.as_slice(), out.as_slice())))?;
        Ok(done)
    }

    /// Cold: the first invocation's start-up and load; warm: the median of the later ones.
    fn device_load_times_ms(&self) -> Option<(f64, f64)> {
        if self.adapter.file.timing.mode == TimingMode::Wall {
            return None;
        }
        let overheads = self.overheads_ms.lock().unwrap_or_else(|p| p.into_inner());
        let (first, later) = overheads.split_first()?;
        let [warm] = crate::vocab::percentiles(later, [0.5]);
        Some((*first, if later.is_empty() { *first } else { warm }))
    }

    fn timed_output_consistency(&self) -> Option<(usize, usize)> {
        Some(self.journal.consistency())
    }
}

/// The runtime's identity: outputs journalled under one never answer for another (a wrapper
/// script fixed under `{adapter_dir}` changes it).
fn identity(adapter: &Adapter, name: &str) -> String {
    let dir = adapter.dir();
    let mut parts = vec![
        ("adapter".to_string(), adapter.sha256.clone().into_bytes()),
        ("name".into(), name.as_bytes().to_vec()),
    ];
    let file = &adapter.file;
    for arg in file.run.command.iter().chain(&file.adapter.version_command) {
        let path = PathBuf::from(arg.replace("{adapter_dir}", &dir.display().to_string()));
        if path.starts_with(&dir) && path.is_file() {
            parts.push((arg.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    crate::vocab::hash::sha256_of_parts(parts.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

/// A scratch folder for one invocation, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::result::Result<Scratch, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "edgecert-exec-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("in")).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::create_dir_all(dir.join("out")).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One invocation of the runtime on `batch`: inputs written, the command run under its timeout,
/// outputs and times read back. `Err` says what went wrong, naming the command and the file.
fn invoke(model: &ExecModel, batch: &[Vec<Tensor>]) -> std::result::Result<Invoked, String> {
    let file = &model.adapter.file;
    let scratch = Scratch::new()?;
    let (in_dir, out_dir) = (scratch.0.join("in"), scratch.0.join("out"));
    let mut list = String::new();
    for (index, sample) in batch.iter().enumerate() {
        let mut paths = Vec::new();
        for (k, tensor) in sample.iter().enumerate() {
            let name = model.inputs.get(k).map_or("input", |t| t.name.as_str());
            let path = in_dir.join(tensor_file(&file.inputs.file, index, name, k));
            write_tensor(&path, tensor, file.inputs.format)?;
            paths.push(path.display().to_string());
        }
        list.push_str(&paths.join(" "));
        list.push('\n');
    }
    let list_path = scratch.0.join("input_list.txt");
    std::fs::write(&list_path, list).map_err(|e| format!("{}: {e}", list_path.display()))?;
    let fill = |arg: &String| {
        arg.replace("{model}", &model.model.display().to_string())
            .replace("{input_list}", &list_path.display().to_string())
            .replace("{input_dir}", &in_dir.display().to_string())
            .replace("{output_dir}", &out_dir.display().to_string())
            .replace("{count}", &batch.len().to_string())
            .replace("{adapter_dir}", &model.adapter.dir().display().to_string())
    };
    let argv: Vec<String> = file.run.command.iter().map(fill).collect();
    let clock = Instant::now();
    let (stdout, _) =
        run_command(&argv, &file.run.env, &scratch.0, Duration::from_secs_f64(file.run.timeout_s))?;
    let wall_ms = clock.elapsed().as_secs_f64() * 1e3;
    let times = match file.timing.mode {
        TimingMode::Wall => vec![wall_ms / batch.len() as f64; batch.len()],
        TimingMode::Line => {
            let template = LineTemplate::new(file.timing.line.as_deref().unwrap_or("{ms}"));
            sample_times(&stdout, &template, batch.len())?
        }
    };
    if file.timing.mode == TimingMode::Line {
        let overhead = (wall_ms - times.iter().sum::<f64>()).max(0.0);
        model.overheads_ms.lock().unwrap_or_else(|p| p.into_inner()).push(overhead);
    }
    (0..batch.len())
        .map(|index| {
            let outputs = model
                .outputs
                .iter()
                .enumerate()
                .map(|(k, info)| {
                    let path = out_dir.join(tensor_file(&file.outputs.file, index, &info.name, k));
                    read_tensor(&path, info, file.outputs.format)
                        .map_err(|why| format!("`{}` on sample {index} of its batch: {why}", argv[0]))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((outputs, times[index]))
        })
        .collect()
}

/// The tensor file's path under its folder: the template with `{index}`, `{name}` (file-safe)
/// and `{k}` filled.
fn tensor_file(template: &str, index: usize, name: &str, k: usize) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let safe = if safe.is_empty() || safe.starts_with('.') { format!("t{k}") } else { safe };
    template.replace("{index}", &index.to_string()).replace("{name}", &safe).replace("{k}", &k.to_string())
}

fn write_tensor(path: &Path, tensor: &Tensor, format: Format) -> std::result::Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bytes = match format {
        Format::Raw => tensor.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Format::Npy => crate::golden::npy::encode(tensor),
    };
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// An output file, checked against the graph output it answers for.
fn read_tensor(path: &Path, info: &OutputInfo, format: Format) -> std::result::Result<Tensor, String> {
    let bytes = crate::vocab::read_bytes(path)
        .map_err(|e| format!("no output file {} for `{}` ({e})", path.display(), info.name))?;
    match format {
        Format::Npy => crate::golden::npy::decode(path, &bytes).map_err(|e| e.to_string()),
        Format::Raw => {
            let Some(shape) = info.known_shape().filter(|s| !s.is_empty()) else {
                return Err(format!(
                    "raw output `{}` needs a concrete shape and the model gives {}: use outputs.format = \"npy\"",
                    info.name,
                    info.shape_text()
                ));
            };
            let want = shape.iter().product::<usize>() * 4;
            if bytes.len() != want {
                return Err(format!(
                    "{} holds {} bytes; output `{}` of shape {shape:?} is {want} bytes of float32",
                    path.display(),
                    bytes.len(),
                    info.name,
                ));
            }
            let data = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Tensor::from_shape_vec(shape, data).map_err(|e| e.to_string())
        }
    }
}

/// Per-sample milliseconds from the runtime's output lines that match the template.
fn sample_times(
    stdout: &str,
    template: &LineTemplate,
    count: usize,
) -> std::result::Result<Vec<f64>, String> {
    let mut times = vec![None; count];
    for (next, (index, ms)) in stdout.lines().filter_map(|l| template.matches(l)).enumerate() {
        let at = index.unwrap_or(next);
        match times.get_mut(at) {
            Some(slot) => *slot = Some(ms),
            None => return Err(format!("the runtime timed sample {at}, but the batch has {count}")),
        }
    }
    times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.ok_or_else(|| {
                format!("the runtime printed no timing line for sample {i} of {count} (timing.line)")
            })
        })
        .collect()
}

/// How long a finished runtime's output may take to drain.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Standard output and error kept, at most (a runaway runtime cannot fill memory).
const KEPT_OUTPUT: u64 = 16 << 20;

/// Runs `argv` in its own process group; kills the group if it outlives `timeout`.
fn run_command(
    argv: &[String],
    env: &std::collections::BTreeMap<String, String>,
    cwd: &Path,
    timeout: Duration,
) -> std::result::Result<(String, String), String> {
    let shown = argv.join(" ");
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child =
        command.spawn().map_err(|e| format!("the runtime command `{}` cannot start: {e}", argv[0]))?;
    // Each stream is kept up to a bound and the rest drained (closing the pipe would kill a
    // verbose runtime with SIGPIPE); the text comes back on a channel, waited for with a
    // deadline, since a process that left the group may hold the pipe open for ever.
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut s) = stream {
                let _ = (&mut s).take(KEPT_OUTPUT).read_to_end(&mut text);
                let _ = std::io::copy(&mut s, &mut std::io::sink());
            }
            let _ = sender.send(String::from_utf8_lossy(&text).into_owned());
        });
        receiver
    };
    let stdout = reader(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!(
                    "the runtime command `{shown}` gave no result within {} s and was killed (run.timeout_s)",
                    timeout.as_secs_f64()
                ));
            }
        }
    };
    // Whatever the runtime left running in its group must not hold the pipes open.
    kill_group(child.id());
    let read = |r: std::sync::mpsc::Receiver<String>| r.recv_timeout(PIPE_GRACE).unwrap_or_default();
    let (stdout, stderr) = (read(stdout), read(stderr));
    if !status.success() {
        return Err(format!("the runtime command `{shown}` failed ({status}): {}", tail(&stderr, 600)));
    }
    Ok((stdout, stderr))
}

fn kill_group(pid: u32) {
    if let Ok(group) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; a group already gone
        // gives ESRCH, nothing to act on.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// The last `chars` characters of `text`, on one line.
fn tail(text: &str, chars: usize) -> String {
    let text = text.trim();
    let start = text.char_indices().rev().nth(chars).map_or(0, |(i, _)| i);
    let tail = text[start..].replace('\n', " | ");
    if tail.is_empty() {
        "nothing on stderr".into()
    } else {
        tail
    }
}

/// `name: value` lines, blank lines skipped, each within the bounds of a device fact.
fn parse_facts(text: &str) -> std::result::Result<std::collections::BTreeMap<String, String>, String> {
    use crate::device::{MAX_FACTS, MAX_FACT_BYTES};
    let mut facts = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("line {} is not `name: value`: {line:?}", n + 1))?;
        if name.len() > MAX_FACT_BYTES || value.len() > MAX_FACT_BYTES {
            return Err(format!("line {}: a name or value longer than {MAX_FACT_BYTES} bytes", n + 1));
        }
        if facts.len() == MAX_FACTS {
            return Err(format!("more than {MAX_FACTS} facts"));
        }
        facts.insert(name.to_string(), value.to_string());
    }
    Ok(facts)
}
