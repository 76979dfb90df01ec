//! The harness side of the remote protocol: the device behind an agent as an [`Engine`], so
//! the golden replay takes the compressed model's outputs from the device itself, and its
//! timed runs take their latency from the device's clock.
//!
//! Each loaded model has its own connection. The digest the agent reports for what it loaded
//! must be the certified model's; every finished sample goes to the [`Journal`] before the
//! replay moves on, so a dead agent or link loses nothing already done.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::journal::{input_digest, DeviceJournal};
use super::protocol::{
    decode_points, decode_tensors, encode_batch, encode_tensors, prove, read_frame, write_frame, DeviceInfo,
    Frame, FrameLimits, Greeting, Request, Response, WireTensorInfo, FRAME_DEADLINE, MAX_TENSOR_BODY_BYTES,
    PROTOCOL, VERSION, VERSIONS,
};
use crate::engine::{Engine, EngineChoice, LoadedModel, Tensor};
use crate::model::TensorInfo;
use crate::power::{PowerReading, PowerSource};
use crate::vocab::{Error, PowerTrace, Result};

/// Where the device is and how to prove the right to use it.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    pub addr: String,
    pub token: Option<Vec<u8>>,
    /// Where device outputs are journalled (a resumed run reads them back).
    pub journal_dir: PathBuf,
    /// How long one request may take to be answered (an upload, a load, an inference).
    pub timeout: Duration,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One authenticated connection to an agent.
struct Session {
    stream: TcpStream,
    addr: String,
    timeout: Duration,
    /// The protocol version chosen at hello: below 2, one `infer` per sample.
    version: u32,
}

impl Session {
    /// Connects, reads the greeting, answers it with the version and the token's proof.
    fn open(target: &RemoteTarget) -> std::result::Result<(Session, DeviceInfo), String> {
        let addr = target
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve: {e}"))?
            .next()
            .ok_or("the name resolves to no address")?;
        let stream =
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| format!("cannot connect: {e}"))?;
        stream.set_write_timeout(Some(target.timeout)).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let mut session =
            Session { stream, addr: target.addr.clone(), timeout: target.timeout, version: VERSION };
        let limits = FrameLimits { idle: CONNECT_TIMEOUT, frame: FRAME_DEADLINE, max_body: 0 };
        let greeting: Greeting = read_frame(&mut session.stream, limits)
            .map_err(|e| format!("no greeting from an edgecert agent: {e}"))?
            .message;
        let version = VERSIONS.into_iter().rev().find(|v| greeting.versions.contains(v));
        let Some(version) = version.filter(|_| greeting.protocol == PROTOCOL) else {
            return Err(format!(
                "the peer speaks {} versions {:?}; this harness speaks {PROTOCOL} versions {VERSIONS:?}",
                greeting.protocol, greeting.versions
            ));
        };
        session.version = version;
        let auth = match (&target.token, greeting.auth_required) {
            (Some(token), _) => Some(prove(token, version, &greeting.nonce)),
            (None, true) => return Err("the agent requires a shared token: give --token-file".into()),
            (None, false) => None,
        };
        match session.call(&Request::Hello { version, auth }, &[])? {
            Frame { message: Response::Welcome { device, .. }, .. } => Ok((session, device)),
            other => Err(format!("unexpected answer to hello: {:?}", other.message)),
        }
    }

    /// Sends one request and reads its answer; a `failed` answer is an error with its message.
    fn call(&mut self, request: &Request, body: &[u8]) -> std::result::Result<Frame<Response>, String> {
        write_frame(&mut self.stream, request, body).map_err(|e| format!("sending: {e}"))?;
        self.receive()
    }

    /// Reads the next answer; a `failed` answer is an error with its message.
    fn receive(&mut self) -> std::result::Result<Frame<Response>, String> {
        let limits =
            FrameLimits { idle: self.timeout, frame: FRAME_DEADLINE, max_body: MAX_TENSOR_BODY_BYTES };
        let frame = read_frame::<Response>(&mut self.stream, limits)
            .map_err(|e| format!("waiting for the answer: {e}"))?;
        match frame.message {
            Response::Failed { code, message, .. } => Err(format!("the agent refused ({code:?}): {message}")),
            _ => Ok(frame),
        }
    }
}

/// The device behind an agent, as the engine the compressed model runs on.
pub struct RemoteEngine {
    target: RemoteTarget,
    device: DeviceInfo,
    name: String,
}

impl RemoteEngine {
    /// Connects once to learn the device; an agent that cannot be reached or refuses the
    /// token is bad input (exit 2, nothing run).
    pub fn connect(target: RemoteTarget) -> Result<RemoteEngine> {
        let (mut session, device) =
            Session::open(&target).map_err(|why| Error::Usage(format!("--device {}: {why}", target.addr)))?;
        let _ = write_frame(&mut session.stream, &Request::Bye, &[]);
        let name = format!("{} on {} via edgecert agent at {}", device.engine, device.name, target.addr);
        Ok(RemoteEngine { target, device, name })
    }

    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    pub fn addr(&self) -> &str {
        &self.target.addr
    }

    /// The device's own meter, where the agent has one.
    pub fn meter(&self) -> Option<RemoteMeter> {
        self.device.power_meter.as_ref().map(|_| RemoteMeter { target: self.target.clone() })
    }
}

/// The thermal zones and clocks of the device behind an agent, read on a connection of its own
/// (a soak reads them while the model runs on another).
pub struct RemoteSensors {
    addr: String,
    session: Mutex<Session>,
}

impl RemoteEngine {
    /// The device's sensors, on a new connection; an agent that cannot be reached is bad input.
    pub fn sensors(&self) -> Result<RemoteSensors> {
        let (session, _) = Session::open(&self.target).map_err(|why| {
            Error::Usage(format!("--device {} (sensors for --soak): {why}", self.target.addr))
        })?;
        Ok(RemoteSensors { addr: self.target.addr.clone(), session: Mutex::new(session) })
    }
}

impl crate::device::Sensors for RemoteSensors {
    /// A reading the agent could not give is an empty one: the check says no zone was read.
    fn sample(&self, t_s: f64) -> crate::vocab::ThermalSample {
        use crate::device::{MAX_FACTS, MAX_FACT_BYTES};
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let (zones_c, clocks_mhz, unreadable) = match session.call(&Request::Sensors, &[]).map(|f| f.message)
        {
            Ok(Response::Sensors { zones_c, clocks_mhz, unreadable }) => (
                zones_c.into_iter().take(MAX_FACTS).collect(),
                clocks_mhz.into_iter().take(MAX_FACTS).collect(),
                unreadable
                    .into_iter()
                    .take(MAX_FACTS)
                    .map(|u| u.chars().take(MAX_FACT_BYTES).collect())
                    .collect(),
            ),
            Ok(other) => {
                (Default::default(), Default::default(), vec![format!("the agent answered {other:?}")])
            }
            Err(why) => (Default::default(), Default::default(), vec![format!("the agent's sensors: {why}")]),
        };
        crate::vocab::ThermalSample { t_s, zones_c, clocks_mhz, unreadable }
    }

    fn describe(&self) -> String {
        format!("the device's /sys via edgecert agent at {}", self.addr)
    }
}

/// The power meter on the device behind an agent, read on a connection of its own.
pub struct RemoteMeter {
    target: RemoteTarget,
}

impl PowerSource for RemoteMeter {
    fn begin(&self) -> Result<Box<dyn PowerReading>> {
        let fail =
            |why: String| Error::Usage(format!("the device's power meter at {}: {why}", self.target.addr));
        let (mut session, _) = Session::open(&self.target).map_err(fail)?;
        let source = match session.call(&Request::MeterStart, &[]).map_err(fail)?.message {
            Response::MeterStarted { source } => source,
            other => return Err(fail(format!("unexpected answer to meter_start: {other:?}"))),
        };
        Ok(Box::new(RemoteReading { session: Mutex::new(session), source }))
    }
}

struct RemoteReading {
    session: Mutex<Session>,
    source: String,
}

impl RemoteReading {
    /// The meter's clock and its last sample's time (NaN clock where the agent did not say).
    fn read(&self) -> (f64, Option<f64>) {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        match session.call(&Request::MeterRead, &[]).map(|f| f.message) {
            Ok(Response::MeterNow { now_s, last_sample_s }) => (now_s, last_sample_s),
            _ => (f64::NAN, None),
        }
    }
}

impl PowerReading for RemoteReading {
    fn now_s(&self) -> f64 {
        self.read().0
    }

    fn wait_for_sample_after(&self, t: f64, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline && !self.read().1.is_some_and(|last| last >= t) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(self: Box<Self>) -> Result<PowerTrace> {
        let mut session = self.session.into_inner().unwrap_or_else(|p| p.into_inner());
        let fail = |why: String| Error::Usage(format!("the device's power meter ({}): {why}", self.source));
        let frame = session.call(&Request::MeterStop, &[]).map_err(fail)?;
        match frame.message {
            Response::MeterTrace { source, points } => Ok(PowerTrace {
                source: format!("device {source}"),
                points: decode_points(&frame.body, points).map_err(fail)?,
            }),
            other => Err(fail(format!("unexpected answer to meter_stop: {other:?}"))),
        }
    }
}

impl Engine for RemoteEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn choice(&self) -> EngineChoice {
        if self.device.engine.starts_with("onnxruntime") {
            EngineChoice::Onnxruntime
        } else {
            EngineChoice::Tract
        }
    }

    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>> {
        let fail = |message: String| Error::Inference { path: path.to_path_buf(), message };
        let bytes = crate::vocab::read_bytes(path)?;
        let sha256 = crate::vocab::hash::sha256_hex(&bytes);
        let (mut session, device) =
            Session::open(&self.target).map_err(|why| fail(format!("{}: {why}", self.target.addr)))?;
        let present =
            match session.call(&Request::Has { sha256: sha256.clone() }, &[]).map_err(&fail)?.message {
                Response::Have { present } => present,
                other => return Err(fail(format!("unexpected answer to has: {other:?}"))),
            };
        if !present {
            session.call(&Request::Upload { sha256: sha256.clone() }, &bytes).map_err(&fail)?;
        }
        let inputs = inputs.iter().map(WireTensorInfo::from).collect();
        let (loaded, cold_load_ms, warm_load_ms) = match session
            .call(&Request::Load { sha256: sha256.clone(), inputs }, &[])
            .map_err(&fail)?
            .message
        {
            Response::Loaded { sha256, cold_load_ms, warm_load_ms } => (sha256, cold_load_ms, warm_load_ms),
            other => return Err(fail(format!("unexpected answer to load: {other:?}"))),
        };
        if loaded != sha256 {
            return Err(fail(format!(
                "the device loaded a model with sha256 {loaded}, not the certified model's {sha256}: its store holds a different file under that name"
            )));
        }
        let journal_path = self.target.journal_dir.join(format!("{}-{}.journal", &sha256[..16], device.id()));
        Ok(Box::new(RemoteModel {
            session: Mutex::new(session),
            journal: DeviceJournal::open(path, &journal_path, &device.name)?,
            load_times_ms: (cold_load_ms, warm_load_ms),
        }))
    }

    fn load_exposing(&self, path: &Path, _: &[TensorInfo], _: &[String]) -> Result<Box<dyn LoadedModel>> {
        Err(crate::engine::no_layer_analysis(path, "the remote backend"))
    }
}

/// A model loaded on the device.
struct RemoteModel {
    /// The connection: after a failure (kept by the journal) every call fails at once with
    /// the first reason, rather than waiting out a timeout per sample.
    session: Mutex<Session>,
    journal: DeviceJournal,
    load_times_ms: (f64, f64),
}

/// Samples per `infer_batch` request, and the most input bytes one carries.
const BATCH_SAMPLES: usize = 32;
const BATCH_BODY_BYTES: usize = 64 << 20;

impl RemoteModel {
    /// Runs the samples on the device, back to back in as few requests as the bounds allow:
    /// per sample its outputs and the device's latency. `finished` sees each sample as its
    /// frame arrives, so a link lost mid-batch keeps what the device already answered.
    fn infer(
        &self,
        samples: &[Vec<Tensor>],
        finished: &mut dyn FnMut(usize, &[Tensor]) -> Result<()>,
    ) -> Result<Vec<(Vec<Tensor>, f64)>> {
        if let Some(why) = self.journal.failed() {
            return Err(self.journal.fail(why));
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = Vec::with_capacity(samples.len());
        // A version-1 agent takes one sample per `infer`.
        let batched = session.version >= 2;
        let ranges = match batched {
            true => requests(samples),
            false => (0..samples.len()).map(|i| i..i + 1).collect(),
        };
        for request in ranges {
            let (message, body) = match batched {
                true => {
                    let (shapes, body) = encode_batch(&samples[request.clone()]);
                    (Request::InferBatch { samples: shapes }, body)
                }
                false => {
                    let (shapes, body) = encode_tensors(&samples[request.start]);
                    (Request::Infer { inputs: shapes }, body)
                }
            };
            let sent = write_frame(&mut session.stream, &message, &body).map_err(|e| format!("sending: {e}"));
            if let Err(why) = sent {
                return Err(self.journal.fail(format!("the agent at {}: {why}", session.addr)));
            }
            for index in request {
                let answer = session.receive().and_then(|frame| match frame.message {
                    Response::Outputs { latency_ms, outputs } => {
                        decode_tensors(&outputs, &frame.body).map(|outputs| (outputs, latency_ms))
                    }
                    other => Err(format!("unexpected answer to infer_batch: {other:?}")),
                });
                let (outputs, latency_ms) = answer
                    .map_err(|why| self.journal.fail(format!("the agent at {}: {why}", session.addr)))?;
                finished(index, &outputs)?;
                done.push((outputs, latency_ms));
            }
        }
        Ok(done)
    }
}

/// The samples' ranges, one per request: at most [`BATCH_SAMPLES`] samples and
/// [`BATCH_BODY_BYTES`] of inputs (one larger sample goes alone).
fn requests(samples: &[Vec<Tensor>]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, sample) in samples.iter().enumerate() {
        let size: usize = sample.iter().map(|t| t.len() * 4).sum();
        if i > start && (i - start == BATCH_SAMPLES || bytes + size > BATCH_BODY_BYTES) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < samples.len() {
        ranges.push(start..samples.len());
    }
    ranges
}

impl LoadedModel for RemoteModel {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(self.run_batch(&[inputs.to_vec()])?.remove(0))
    }

    fn preferred_batch(&self) -> usize {
        BATCH_SAMPLES
    }

    /// The journalled outputs where there are any, else the device's, each journalled as its
    /// frame arrives.
    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        let digests: Vec<_> = samples.iter().map(|s| input_digest(s)).collect();
        let mut outputs = self.journal.lookup(&digests)?;
        let missing: Vec<usize> = (0..samples.len()).filter(|&i| outputs[i].is_none()).collect();
        let batch: Vec<Vec<Tensor>> = missing.iter().map(|&i| samples[i].clone()).collect();
        let mut keep = |k: usize, out: &[Tensor]| self.journal.record([(digests[missing[k]], out)]);
        for (&i, (out, _)) in missing.iter().zip(self.infer(&batch, &mut keep)?) {
            outputs[i] = Some(out);
        }
        Ok(outputs.into_iter().map(|o| o.expect("every sample answered")).collect())
    }

    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        Ok(self.run_timed_batch(&[inputs.to_vec()])?.remove(0))
    }

    /// Always on the device, never from the journal, back to back as the device runs them;
    /// the outputs are compared with the journalled ones (TEST01).
    fn run_timed_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<(Vec<Tensor>, f64)>> {
        let done = self.infer(samples, &mut |_, _| Ok(()))?;
        self.journal
            .compare_timed(samples.iter().zip(&done).map(|(s, (out, _))| (s.as_slice(), out.as_slice())))?;
        Ok(done)
    }

    fn device_load_times_ms(&self) -> Option<(f64, f64)> {
        Some(self.load_times_ms)
    }

    fn timed_output_consistency(&self) -> Option<(usize, usize)> {
        Some(self.journal.consistency())
    }
}

impl Drop for RemoteModel {
    /// A run that lost no request says goodbye (its journal goes with it; one cut short keeps
    /// it, to resume from).
    fn drop(&mut self) {
        if self.journal.failed().is_none() {
            let session = self.session.get_mut().unwrap_or_else(|p| p.into_inner());
            let _ = write_frame(&mut session.stream, &Request::Bye, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_split_at_its_sample_count_and_byte_bounds() {
        let small = vec![Tensor::zeros(vec![1, 4])];
        let ranges = requests(&vec![small.clone(); 70]);
        assert_eq!(ranges, vec![0..32, 32..64, 64..70]);
        // 40 MiB samples: two would pass the 64 MiB bound, so each goes alone; a huge one too.
        let big = vec![Tensor::zeros(vec![10 << 20])];
        let huge = vec![Tensor::zeros(vec![20 << 20])];
        assert_eq!(requests(&[small.clone(), big.clone(), big, huge, small]), vec![0..2, 2..3, 3..4, 4..5]);
        assert!(requests(&[]).is_empty());
    }
}
