//! `edgecert agent`: the device side of the remote protocol. It stores uploaded models by
//! digest, loads one per connection on the device's engine, runs inferences one at a time and
//! times them on the device, and answers health queries.
//!
//! Every connection gets its own thread, up to a bound; a malformed, oversized or slow frame
//! ends that connection (with a `failed` frame saying why where the socket still takes one)
//! and never the agent.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{
    decode_batch, decode_tensors, encode_tensors, read_frame, verify_proof, write_frame, DeviceInfo,
    FailureCode, Frame, FrameError, FrameLimits, Greeting, Request, Response, FRAME_DEADLINE,
    MAX_TENSOR_BODY_BYTES, PROTOCOL, VERSION, VERSIONS,
};
use crate::engine::{select, Engine, EngineChoice, LoadedModel, Tensor};
use crate::model::TensorInfo;
use crate::power::{PowerMeter, RunningMeter};
use crate::vocab::{Error, Result};

/// How an agent serves.
pub struct AgentConfig {
    pub listen: String,
    /// The shared token clients must prove they hold; `None` serves anyone who connects.
    pub token: Option<Vec<u8>>,
    /// Serve without a token on a non-loopback address (refused by default).
    pub allow_unauthenticated: bool,
    /// Where uploaded models are kept, by digest.
    pub store: PathBuf,
    pub engine: EngineChoice,
    pub device_name: Option<String>,
    /// Facts the operator states about the device (`--device-fact NAME=VALUE`: firmware
    /// build, ambient temperature, cooling), reported as `stated.NAME` beside what it reads.
    pub stated_facts: Vec<(String, String)>,
    /// Where the device's `/proc` and `/sys` are read (`/`; a recorded tree in tests).
    pub system_root: crate::device::SystemRoot,
    pub max_model_bytes: u64,
    /// Most bytes the store may hold: an upload past it is refused, never a full disk.
    pub store_max_bytes: u64,
    pub max_connections: usize,
    /// How long a connection may sit between requests.
    pub idle: Duration,
    /// How long a begun frame may take to arrive (plus a second per MiB of body).
    pub frame: Duration,
    /// Exit the process on the inference after this many (fault injection for resume tests).
    pub exit_after_inferences: Option<u64>,
    /// A meter on the device, read on a client's request.
    pub power_meter: Option<PowerMeter>,
    /// The protocol versions served (all this build speaks, unless narrowed for a test).
    pub versions: Vec<u32>,
}

impl AgentConfig {
    pub fn new(listen: String, store: PathBuf) -> Self {
        AgentConfig {
            listen,
            token: None,
            allow_unauthenticated: false,
            store,
            engine: EngineChoice::Tract,
            device_name: None,
            stated_facts: Vec::new(),
            system_root: crate::device::SystemRoot::live(),
            max_model_bytes: 1 << 30,
            store_max_bytes: 8 << 30,
            max_connections: 8,
            idle: Duration::from_secs(300),
            frame: FRAME_DEADLINE,
            exit_after_inferences: None,
            versions: VERSIONS.to_vec(),
            power_meter: None,
        }
    }
}

/// What every connection shares.
struct Shared {
    config: AgentConfig,
    engine: Box<dyn Engine>,
    device: DeviceInfo,
    started: Instant,
    inferences: AtomicU64,
    connections: AtomicUsize,
}

/// A bound agent, ready to serve.
pub struct Agent {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Agent {
    /// Binds the address and the engine. Refuses to serve a non-loopback address without a
    /// token unless told to: a lab agent must not run models for anyone who connects.
    pub fn bind(config: AgentConfig) -> Result<Agent> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| Error::Usage(format!("--listen {}: cannot bind: {e}", config.listen)))?;
        let addr =
            listener.local_addr().map_err(|e| Error::Usage(format!("--listen {}: {e}", config.listen)))?;
        if config.token.is_none() && !addr.ip().is_loopback() && !config.allow_unauthenticated {
            return Err(Error::Usage(format!(
                "--listen {addr} is not a loopback address: give --token-file so only holders of the token can run models here (or --allow-unauthenticated on a closed network)"
            )));
        }
        std::fs::create_dir_all(&config.store).map_err(|e| Error::io(&config.store, e))?;
        // The agent serves whatever model it is sent, so it names its engine for both formats.
        use crate::model::ModelFormat;
        let engine = select(config.engine, &[ModelFormat::Onnx, ModelFormat::Tflite])?.engine;
        let device = DeviceInfo {
            name: config.device_name.clone().unwrap_or_else(host_name),
            arch: std::env::consts::ARCH.into(),
            os: std::env::consts::OS.into(),
            engine: engine.name().to_string(),
            agent_version: format!("edgecert {}", env!("CARGO_PKG_VERSION")),
            power_meter: config.power_meter.as_ref().map(|m| m.to_string()),
            facts: Default::default(),
        };
        let shared = Shared {
            config,
            engine,
            device,
            started: Instant::now(),
            inferences: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
        };
        Ok(Agent { listener, shared: Arc::new(shared) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// One line for the operator: where, which protocol, engine and authentication.
    pub fn banner(&self) -> String {
        let s = &self.shared;
        format!(
            "edgecert agent listening on {} (protocol {PROTOCOL} versions {:?}, device {}, {}, store {})",
            self.local_addr(),
            s.config.versions,
            s.device.describe(),
            if s.config.token.is_some() { "token required" } else { "NO authentication" },
            s.config.store.display()
        )
    }

    /// Serves until the process ends.
    pub fn serve(self) -> Result<()> {
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            let shared = Arc::clone(&self.shared);
            if shared.connections.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
                shared.connections.fetch_sub(1, Ordering::SeqCst);
                refuse_busy(stream, shared.config.max_connections);
                continue;
            }
            std::thread::spawn(move || {
                let slot = Slot(&shared.connections);
                let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                if let Err(why) = Connection::serve(stream, &shared) {
                    eprintln!("edgecert agent: connection from {peer} ended: {why}");
                }
                drop(slot);
            });
        }
        Ok(())
    }
}

/// A taken connection slot, given back however its thread ends (a panic included).
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refuse_busy(mut stream: TcpStream, max: usize) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let message = format!("the agent serves at most {max} connections at once; try again later");
    let _ =
        write_frame(&mut stream, &Response::Failed { code: FailureCode::Busy, message, fatal: true }, &[]);
}

impl Shared {
    /// The device as a client connecting now sees it: its clocks and governor read now.
    fn device_now(&self) -> DeviceInfo {
        let mut facts = self.config.system_root.facts();
        facts.extend(self.config.stated_facts.iter().map(|(k, v)| (format!("stated.{k}"), v.clone())));
        DeviceInfo { facts, ..self.device.clone() }
    }
}

fn host_name() -> String {
    crate::device::host_name("unnamed device")
}

/// One client's session: at most one loaded model.
struct Connection<'s> {
    stream: TcpStream,
    shared: &'s Shared,
    loaded: Option<(String, Box<dyn LoadedModel>)>,
    /// The device's meter while this client reads it.
    meter: Option<RunningMeter>,
    /// The protocol version the client chose at hello.
    version: u32,
}

/// How long a connection reading the meter may wait between requests (a timed run may last
/// hours); a closed connection still stops the meter at once.
const METERING_IDLE: Duration = Duration::from_secs(24 * 3600);

/// Time a client has to answer the greeting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

impl<'s> Connection<'s> {
    fn serve(stream: TcpStream, shared: &'s Shared) -> std::result::Result<(), String> {
        stream.set_write_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection { stream, shared, loaded: None, meter: None, version: VERSION };
        connection.handshake()?;
        let limits = FrameLimits {
            idle: shared.config.idle,
            frame: shared.config.frame,
            max_body: shared.config.max_model_bytes.max(MAX_TENSOR_BODY_BYTES),
        };
        loop {
            // A client reading the meter is idle while its timed run goes on elsewhere.
            let idle = if connection.meter.is_some() { METERING_IDLE } else { limits.idle };
            let frame = match read_frame::<Request>(&mut connection.stream, FrameLimits { idle, ..limits }) {
                Ok(frame) => frame,
                Err(FrameError::Closed) => return Ok(()),
                Err(FrameError::Malformed(code, why)) => {
                    return connection.fail(code, why.clone(), true).and(Err(why))
                }
                Err(e) => return Err(e.to_string()),
            };
            if frame.message == Request::Bye {
                return Ok(());
            }
            if let Request::InferBatch { samples } = &frame.message {
                if connection.version < 2 {
                    let why = "`infer_batch` is version 2; this connection speaks version 1".to_string();
                    return connection.refuse(FailureCode::Malformed, why);
                }
                connection.infer_batch(&frame, samples)?;
                continue;
            }
            let (response, body) = connection.answer(frame);
            let fatal = matches!(response, Response::Failed { fatal: true, .. });
            write_frame(&mut connection.stream, &response, &body).map_err(|e| e.to_string())?;
            if fatal {
                return Err(format!("{response:?}"));
            }
        }
    }

    fn fail(&mut self, code: FailureCode, message: String, fatal: bool) -> std::result::Result<(), String> {
        write_frame(&mut self.stream, &Response::Failed { code, message, fatal }, &[])
            .map_err(|e| e.to_string())
    }

    /// Greets with a fresh nonce and checks the client's version and proof of the token.
    fn handshake(&mut self) -> std::result::Result<(), String> {
        let mut nonce = [0u8; 32];
        getrandom::getrandom(&mut nonce).map_err(|e| e.to_string())?;
        let nonce = crate::vocab::hash::hex(&nonce);
        let greeting = Greeting {
            protocol: PROTOCOL.into(),
            versions: self.shared.config.versions.clone(),
            nonce: nonce.clone(),
            auth_required: self.shared.config.token.is_some(),
            agent: self.shared.device.agent_version.clone(),
        };
        write_frame(&mut self.stream, &greeting, &[]).map_err(|e| e.to_string())?;
        let idle = HELLO_TIMEOUT.min(self.shared.config.idle);
        let limits = FrameLimits { idle, frame: self.shared.config.frame, max_body: 0 };
        let hello = read_frame::<Request>(&mut self.stream, limits);
        let (version, auth) = match hello {
            Ok(Frame { message: Request::Hello { version, auth }, .. }) => (version, auth),
            Ok(_) => return self.refuse(FailureCode::Malformed, "the first request must be `hello`".into()),
            Err(FrameError::Malformed(code, why)) => return self.refuse(code, why),
            Err(e) => return Err(e.to_string()),
        };
        let versions = &self.shared.config.versions;
        if !versions.contains(&version) {
            let why =
                format!("protocol version {version} is not spoken here (this agent speaks {versions:?})");
            return self.refuse(FailureCode::UnsupportedVersion, why);
        }
        self.version = version;
        if let Some(token) = &self.shared.config.token {
            if !auth.is_some_and(|proof| verify_proof(token, version, &nonce, &proof)) {
                return self.refuse(
                    FailureCode::Unauthorized,
                    "this agent requires its shared token (certify --token-file): the proof was missing or wrong".into(),
                );
            }
        }
        let welcome = Response::Welcome { version, device: self.shared.device_now() };
        write_frame(&mut self.stream, &welcome, &[]).map_err(|e| e.to_string())
    }

    fn refuse(&mut self, code: FailureCode, message: String) -> std::result::Result<(), String> {
        self.fail(code, message.clone(), true)?;
        Err(message)
    }

    /// The response to one request and its body. A panic in the engine answers `internal`.
    fn answer(&mut self, frame: Frame<Request>) -> (Response, Vec<u8>) {
        unpanicked(|| self.dispatch(frame))
    }

    /// Most body bytes `request` may carry.
    fn body_bound(&self, request: &Request) -> u64 {
        match request {
            Request::Upload { .. } => self.shared.config.max_model_bytes,
            Request::Infer { .. } | Request::InferBatch { .. } => MAX_TENSOR_BODY_BYTES,
            _ => 0,
        }
    }

    fn dispatch(&mut self, frame: Frame<Request>) -> (Response, Vec<u8>) {
        let failed = |code, message: String| (Response::Failed { code, message, fatal: false }, Vec::new());
        if let Err(why) = self.check_body(&frame) {
            return failed(FailureCode::TooLarge, why);
        }
        let store = &self.shared.config.store;
        match frame.message {
            Request::Hello { .. } => failed(FailureCode::Malformed, "already greeted".into()),
            Request::Has { sha256 } => match stored_path(store, &sha256) {
                Ok(path) => (Response::Have { present: path.is_file() }, Vec::new()),
                Err(why) => failed(FailureCode::Malformed, why),
            },
            Request::Upload { sha256 } => {
                match store_model(store, &sha256, &frame.body, self.shared.config.store_max_bytes) {
                    Ok(()) => (Response::Stored { sha256, size_bytes: frame.body.len() as u64 }, Vec::new()),
                    Err((code, why)) => failed(code, why),
                }
            }
            Request::Load { sha256, inputs } => {
                let inputs: Vec<TensorInfo> = inputs.iter().map(TensorInfo::from).collect();
                match self.load(&sha256, &inputs) {
                    Ok(response) => (response, Vec::new()),
                    Err((code, why)) => failed(code, why),
                }
            }
            Request::Infer { inputs } => {
                self.infer(&inputs, &frame.body).unwrap_or_else(|(code, why)| failed(code, why))
            }
            Request::Health => (
                Response::Status {
                    uptime_s: self.shared.started.elapsed().as_secs_f64(),
                    loaded: self.loaded.as_ref().map(|(sha, _)| sha.clone()),
                    inferences: self.shared.inferences.load(Ordering::SeqCst),
                },
                Vec::new(),
            ),
            Request::MeterStart | Request::MeterRead | Request::MeterStop => {
                self.meter(&frame.message).unwrap_or_else(|(code, why)| failed(code, why))
            }
            Request::Sensors => {
                let sample = self.shared.config.system_root.thermal_sample(0.0);
                let (zones_c, clocks_mhz, unreadable) =
                    (sample.zones_c, sample.clocks_mhz, sample.unreadable);
                (Response::Sensors { zones_c, clocks_mhz, unreadable }, Vec::new())
            }
            Request::Bye | Request::InferBatch { .. } => unreachable!("handled by the loop"),
        }
    }

    /// The device's meter: started, read, or stopped with its trace as the body.
    fn meter(
        &mut self,
        request: &Request,
    ) -> std::result::Result<(Response, Vec<u8>), (FailureCode, String)> {
        let Some(meter) = &self.shared.config.power_meter else {
            return Err((
                FailureCode::NoMeter,
                "this agent has no power meter (edgecert agent --power-meter)".into(),
            ));
        };
        let failed = |e: crate::vocab::Error| (FailureCode::MeterFailed, e.to_string());
        match (request, self.meter.as_ref()) {
            (Request::MeterStart, _) => {
                self.meter = Some(meter.start().map_err(failed)?);
                Ok((Response::MeterStarted { source: meter.to_string() }, Vec::new()))
            }
            (Request::MeterRead, Some(running)) => Ok((
                Response::MeterNow { now_s: running.now_s(), last_sample_s: running.last_sample_s() },
                Vec::new(),
            )),
            (Request::MeterStop, Some(_)) => {
                let trace = self.meter.take().expect("running").stop().map_err(failed)?;
                let body = super::protocol::encode_points(&trace.points);
                Ok((Response::MeterTrace { source: trace.source, points: trace.points.len() }, body))
            }
            _ => Err((FailureCode::NoMeter, "the meter is not running: send meter_start first".into())),
        }
    }

    /// Loads a stored model (cold), then again (warm), and keeps the first. The digest
    /// reported is of the bytes on disk as loaded, not of the name they are stored under.
    fn load(
        &mut self,
        sha256: &str,
        inputs: &[TensorInfo],
    ) -> std::result::Result<Response, (FailureCode, String)> {
        let path =
            stored_path(&self.shared.config.store, sha256).map_err(|why| (FailureCode::Malformed, why))?;
        let bytes = std::fs::read(&path).map_err(|e| {
            (FailureCode::UnknownModel, format!("no stored model {sha256} ({e}): upload it first"))
        })?;
        let actual = crate::vocab::hash::sha256_hex(&bytes);
        let load = |what: &str| {
            let clock = Instant::now();
            let model = self
                .shared
                .engine
                .load(&path, inputs)
                .map_err(|e| (FailureCode::LoadFailed, format!("{what} load: {e}")))?;
            Ok::<_, (FailureCode, String)>((model, clock.elapsed().as_secs_f64() * 1e3))
        };
        self.loaded = None;
        let (model, cold_load_ms) = load("cold")?;
        let (_, warm_load_ms) = load("warm")?;
        self.loaded = Some((actual.clone(), model));
        Ok(Response::Loaded { sha256: actual, cold_load_ms, warm_load_ms })
    }

    fn check_body(&self, frame: &Frame<Request>) -> std::result::Result<(), String> {
        let bound = self.body_bound(&frame.message);
        match frame.body.len() as u64 > bound {
            true => {
                Err(format!("a body of {} bytes where this request takes at most {bound}", frame.body.len()))
            }
            false => Ok(()),
        }
    }

    fn infer(
        &mut self,
        shapes: &[super::protocol::TensorShape],
        body: &[u8],
    ) -> std::result::Result<(Response, Vec<u8>), (FailureCode, String)> {
        self.model()?;
        let inputs = decode_tensors(shapes, body).map_err(|why| (FailureCode::Malformed, why))?;
        self.run_one(&inputs)
    }

    fn model(&self) -> std::result::Result<&dyn LoadedModel, (FailureCode, String)> {
        match &self.loaded {
            Some((_, model)) => Ok(model.as_ref()),
            None => Err((FailureCode::NoModelLoaded, "load a model before `infer`".into())),
        }
    }

    /// One inference timed on this device's clock, its outputs as the body.
    fn run_one(&self, inputs: &[Tensor]) -> std::result::Result<(Response, Vec<u8>), (FailureCode, String)> {
        let model = self.model()?;
        let done = self.shared.inferences.fetch_add(1, Ordering::SeqCst);
        if self.shared.config.exit_after_inferences.is_some_and(|n| done >= n) {
            eprintln!("edgecert agent: exiting after {done} inferences (--exit-after-inferences)");
            std::process::exit(70);
        }
        let clock = Instant::now();
        let outputs = model.run(inputs).map_err(|e| (FailureCode::InferenceFailed, e.to_string()))?;
        let latency_ms = clock.elapsed().as_secs_f64() * 1e3;
        let (shapes, body) = encode_tensors(&outputs);
        Ok((Response::Outputs { latency_ms, outputs: shapes }, body))
    }

    /// Runs a batch back to back, writing each sample's `outputs` frame as it finishes; a
    /// failure is a `failed` frame that ends the batch (the connection goes on).
    fn infer_batch(
        &mut self,
        frame: &Frame<Request>,
        samples: &[Vec<super::protocol::TensorShape>],
    ) -> std::result::Result<(), String> {
        let failed = |(code, message)| (Response::Failed { code, message, fatal: false }, Vec::new());
        let decoded = self
            .check_body(frame)
            .map_err(|why| (FailureCode::TooLarge, why))
            .and_then(|()| self.model().map(|_| ()))
            .and_then(|()| decode_batch(samples, &frame.body).map_err(|why| (FailureCode::Malformed, why)));
        let inputs = match decoded {
            Ok(inputs) => inputs,
            Err(e) => return self.write(failed(e)),
        };
        for sample in &inputs {
            let (response, body) = unpanicked(|| self.run_one(sample).unwrap_or_else(failed));
            let stop = matches!(response, Response::Failed { .. });
            self.write((response, body))?;
            if stop {
                break;
            }
        }
        Ok(())
    }

    fn write(&mut self, (response, body): (Response, Vec<u8>)) -> std::result::Result<(), String> {
        write_frame(&mut self.stream, &response, &body).map_err(|e| e.to_string())
    }
}

/// `f`'s answer; a panic in the engine answers `internal`.
fn unpanicked(f: impl FnOnce() -> (Response, Vec<u8>)) -> (Response, Vec<u8>) {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the engine panicked".into());
        (Response::Failed { code: FailureCode::Internal, message, fatal: false }, Vec::new())
    })
}

/// The store's file for a digest; anything but 64 lowercase hex digits is refused, so a name
/// can never reach outside the store.
fn stored_path(store: &Path, sha256: &str) -> std::result::Result<PathBuf, String> {
    let valid =
        sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(format!("`{}` is not a SHA-256 digest (64 lowercase hex digits)", sha256.escape_debug()));
    }
    Ok(store.join(format!("{sha256}.onnx")))
}

/// Stores an uploaded model under its digest once it hashes to it (temp file, then rename), if
/// the store stays within `max_bytes`.
fn store_model(
    store: &Path,
    sha256: &str,
    bytes: &[u8],
    max_bytes: u64,
) -> std::result::Result<(), (FailureCode, String)> {
    let path = stored_path(store, sha256).map_err(|why| (FailureCode::Malformed, why))?;
    let held = store_bytes(store);
    if held.saturating_add(bytes.len() as u64) > max_bytes {
        return Err((
            FailureCode::TooLarge,
            format!(
                "the store holds {held} bytes; this {}-byte model would pass its {max_bytes}-byte quota (agent --store-max-mb): remove models from {}",
                bytes.len(),
                store.display()
            ),
        ));
    }
    let actual = crate::vocab::hash::sha256_hex(bytes);
    if actual != sha256 {
        return Err((
            FailureCode::DigestMismatch,
            format!("the upload hashes to {actual}, not the {sha256} it was sent as (corrupted in transit?)"),
        ));
    }
    static UPLOADS: AtomicU64 = AtomicU64::new(0);
    // Two connections may upload the same model at once: each writes its own temp file.
    let temp = path.with_extension(format!(
        "upload-{}-{}",
        std::process::id(),
        UPLOADS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&temp, bytes).and_then(|_| std::fs::rename(&temp, &path)).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        (FailureCode::Internal, format!("storing {}: {e}", path.display()))
    })
}

/// Bytes of the files in the store now.
fn store_bytes(store: &Path) -> u64 {
    std::fs::read_dir(store)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}
