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
    decode_points, decode_tensors, encode_tensors, prove, read_frame, write_frame, DeviceInfo, Frame,
    FrameLimits, Greeting, Request, Response, WireTensorInfo, FRAME_DEADLINE, MAX_TENSOR_BODY_BYTES,
    PROTOCOL, VERSION,
};
use crate::engine::{Engine, EngineChoice, LoadedModel, Tensor};
use crate::error::{Error, Result};
use crate::model::TensorInfo;
use crate::power::{PowerReading, PowerSource, PowerTrace};

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
        let mut session = Session { stream, addr: target.addr.clone(), timeout: target.timeout };
        let limits = FrameLimits { idle: CONNECT_TIMEOUT, frame: FRAME_DEADLINE, max_body: 0 };
        let greeting: Greeting = read_frame(&mut session.stream, limits)
            .map_err(|e| format!("no greeting from an edgecert agent: {e}"))?
            .message;
        if greeting.protocol != PROTOCOL || !greeting.versions.contains(&VERSION) {
            return Err(format!(
                "the peer speaks {} versions {:?}; this harness speaks {PROTOCOL} version {VERSION}",
                greeting.protocol, greeting.versions
            ));
        }
        let auth = match (&target.token, greeting.auth_required) {
            (Some(token), _) => Some(prove(token, &greeting.nonce)),
            (None, true) => return Err("the agent requires a shared token: give --token-file".into()),
            (None, false) => None,
        };
        match session.call(&Request::Hello { version: VERSION, auth }, &[])? {
            Frame { message: Response::Welcome { device, .. }, .. } => Ok((session, device)),
            other => Err(format!("unexpected answer to hello: {:?}", other.message)),
        }
    }

    /// Sends one request and reads its answer; a `failed` answer is an error with its message.
    fn call(&mut self, request: &Request, body: &[u8]) -> std::result::Result<Frame<Response>, String> {
        write_frame(&mut self.stream, request, body).map_err(|e| format!("sending: {e}"))?;
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
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let sha256 = crate::hash::sha256_hex(&bytes);
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

impl RemoteModel {
    /// One inference on the device: its outputs and the device's latency.
    fn infer(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        if let Some(why) = self.journal.failed() {
            return Err(self.journal.fail(why));
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let (shapes, body) = encode_tensors(inputs);
        let answer =
            session.call(&Request::Infer { inputs: shapes }, &body).and_then(|frame| match frame.message {
                Response::Outputs { latency_ms, outputs } => {
                    decode_tensors(&outputs, &frame.body).map(|outputs| (outputs, latency_ms))
                }
                other => Err(format!("unexpected answer to infer: {other:?}")),
            });
        answer.map_err(|why| self.journal.fail(format!("the agent at {}: {why}", session.addr)))
    }
}

impl LoadedModel for RemoteModel {
    /// The journalled outputs for these inputs, else the device's, journalled before return.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let digest = input_digest(inputs);
        if let Some(outputs) = self.journal.lookup(&[digest])?.remove(0) {
            return Ok(outputs);
        }
        let (outputs, _) = self.infer(inputs)?;
        self.journal.record([(digest, outputs.as_slice())])?;
        Ok(outputs)
    }

    /// Always on the device, never from the journal; the outputs are compared with the
    /// journalled ones (TEST01).
    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        let (outputs, latency_ms) = self.infer(inputs)?;
        self.journal.compare_timed([(inputs, outputs.as_slice())])?;
        Ok((outputs, latency_ms))
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
