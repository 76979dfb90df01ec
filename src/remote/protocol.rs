//! The edgecert agent protocol, version 1 (specified in `docs/protocol.md`): length-prefixed
//! frames of a JSON header and a binary body over TCP, shared by the agent and the `remote`
//! backend so both sides read and bound frames the same way.
//!
//! Every frame is hostile until read whole: header and body lengths are checked against limits
//! before anything is allocated, and a frame must arrive before a deadline, so a slow or
//! malformed peer costs a bounded amount of memory and time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::engine::Tensor;
use crate::model::TensorInfo;

/// The protocol's name, in the greeting and in the authenticated message.
pub const PROTOCOL: &str = "edgecert-agent";
/// The protocol versions this build speaks.
pub const VERSION: u32 = 2;

/// Every version this build speaks: 2 is 1 with `infer_batch`.
pub const VERSIONS: [u32; 2] = [1, 2];
/// Largest JSON header a peer may send.
pub const MAX_HEADER_BYTES: u32 = 64 * 1024;
/// Largest tensor body (an inference request or its outputs).
pub const MAX_TENSOR_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// Most samples one `infer_batch` may carry.
pub const MAX_BATCH_SAMPLES: usize = 1024;
/// Shortest shared token accepted: anything shorter is guessable.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Time a frame may take to arrive once its first byte has, before any body allowance.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(30);
/// Bytes of body allocated at a time while it arrives.
const BODY_CHUNK: u64 = 1 << 20;
/// A body may arrive no slower than this (bytes per second) before the frame times out.
const MIN_BODY_RATE: u64 = 1024 * 1024;

/// What the agent says first, before the client has sent anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Greeting {
    pub protocol: String,
    pub versions: Vec<u32>,
    /// 32 random bytes, hex: the client proves it holds the token by keying an HMAC over it.
    pub nonce: String,
    pub auth_required: bool,
    pub agent: String,
}

/// What the device behind an agent is, as certificates record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// The name the agent was given (`--device-name`), else the host name.
    pub name: String,
    pub arch: String,
    pub os: String,
    /// The runtime that runs models on the device, with its version (e.g. "tract 0.21.7").
    pub engine: String,
    pub agent_version: String,
    /// The power meter the agent reads on request (`edgecert agent --power-meter`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_meter: Option<String>,
    /// What the device says of itself, read when the client connects (board, kernel, CPU,
    /// governor, clocks, NPU driver versions; see [`crate::device::SystemRoot::facts`]), and the
    /// facts its operator stated (`agent --device-fact NAME=VALUE`, as `stated.NAME`). Bounded:
    /// at most [`MAX_FACTS`] of at most [`MAX_FACT_BYTES`] each.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facts: std::collections::BTreeMap<String, String>,
}

use crate::device::{MAX_FACTS, MAX_FACT_BYTES};

impl DeviceInfo {
    /// A short stable identity: outputs journalled from one device never answer for another.
    /// Its facts are left out: a clock or a governor changes between runs, the device does not.
    pub fn id(&self) -> String {
        let json = serde_json::to_string(&DeviceInfo { facts: Default::default(), ..self.clone() })
            .expect("plain data");
        crate::vocab::hash::sha256_hex(json.as_bytes())[..16].to_string()
    }

    /// The device's facts, bounded (a hostile agent cannot grow a certificate without limit):
    /// past [`MAX_FACTS`], or longer than [`MAX_FACT_BYTES`], a fact is dropped.
    pub fn facts(&self) -> std::collections::BTreeMap<String, String> {
        self.facts
            .iter()
            .filter(|(k, v)| k.len() <= MAX_FACT_BYTES && v.len() <= MAX_FACT_BYTES)
            .take(MAX_FACTS)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn describe(&self) -> String {
        format!("{} ({} {}, {})", self.name, self.os, self.arch, self.engine)
    }
}

/// One tensor's place in a frame body: its shape; its data is `∏ shape` little-endian f32s
/// following the previous tensor's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorShape {
    pub shape: Vec<usize>,
}

/// Client to agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The answer to the greeting: the version chosen and, where the agent asks, the HMAC.
    Hello {
        version: u32,
        auth: Option<String>,
    },
    /// Whether the agent's store holds a model with this digest.
    Has {
        sha256: String,
    },
    /// The model file is the body; the agent stores it only if it hashes to `sha256`.
    Upload {
        sha256: String,
    },
    /// Load the stored model, with these fixed input shapes.
    Load {
        sha256: String,
        inputs: Vec<WireTensorInfo>,
    },
    /// Run the loaded model once on the tensors in the body.
    Infer {
        inputs: Vec<TensorShape>,
    },
    /// Run the loaded model on each sample in turn, back to back on the device: the body is the
    /// samples' tensors one after another. One `outputs` frame answers each sample as it
    /// finishes; a `failed` frame ends the batch early (the samples answered before it stand).
    InferBatch {
        samples: Vec<Vec<TensorShape>>,
    },
    Health,
    /// Start the agent's power meter (on this connection; it stops when the connection ends).
    MeterStart,
    /// The meter's clock now and its last sample's time.
    MeterRead,
    /// Stop the meter: the trace comes back as the body, (seconds, watts) f64 LE pairs.
    MeterStop,
    /// Read the device's thermal zones and clocks now (a soak asks once a second, on a
    /// connection of its own).
    Sensors,
    Bye,
}

/// Agent to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Welcome {
        version: u32,
        device: DeviceInfo,
    },
    /// Each thermal zone (°C) and clock (MHz) the device exposes, by name; at most
    /// [`MAX_FACTS`] of each (a client drops any beyond).
    Sensors {
        zones_c: std::collections::BTreeMap<String, f64>,
        clocks_mhz: std::collections::BTreeMap<String, f64>,
        /// Zones that could not be read, each named with why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unreadable: Vec<String>,
    },
    Have {
        present: bool,
    },
    Stored {
        sha256: String,
        size_bytes: u64,
    },
    /// `sha256` is the digest of the file the agent actually loaded, hashed as it loaded it.
    Loaded {
        sha256: String,
        cold_load_ms: f64,
        warm_load_ms: f64,
    },
    /// Outputs in the body; `latency_ms` is timed on the device around the runtime's call.
    Outputs {
        latency_ms: f64,
        outputs: Vec<TensorShape>,
    },
    Status {
        uptime_s: f64,
        loaded: Option<String>,
        inferences: u64,
    },
    MeterStarted {
        source: String,
    },
    MeterNow {
        now_s: f64,
        last_sample_s: Option<f64>,
    },
    /// The points follow as the body.
    MeterTrace {
        source: String,
        points: usize,
    },
    /// The request failed; `fatal` says the agent closes the connection after this frame.
    Failed {
        code: FailureCode,
        message: String,
        fatal: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    Unauthorized,
    UnsupportedVersion,
    Malformed,
    TooLarge,
    Busy,
    DigestMismatch,
    UnknownModel,
    NoModelLoaded,
    LoadFailed,
    InferenceFailed,
    NoMeter,
    MeterFailed,
    Internal,
}

/// [`TensorInfo`] as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
}

impl From<&TensorInfo> for WireTensorInfo {
    fn from(t: &TensorInfo) -> Self {
        WireTensorInfo { name: t.name.clone(), shape: t.shape.clone(), dtype: t.dtype.clone() }
    }
}

impl From<&WireTensorInfo> for TensorInfo {
    fn from(t: &WireTensorInfo) -> Self {
        // The host feeds an integer input its codes before they cross the wire (see
        // `engine::with_input_codes`), so the agent casts them as they come.
        TensorInfo {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.clone(),
            quantization: None,
        }
    }
}

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    Closed,
    /// No frame began within the idle timeout, or one did not finish within its deadline.
    TimedOut(String),
    /// Too large, not JSON, or not a message this version knows.
    Malformed(FailureCode, String),
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "the connection was closed"),
            FrameError::TimedOut(what) => write!(f, "timed out: {what}"),
            FrameError::Malformed(_, what) => write!(f, "malformed frame: {what}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A decoded frame: its header message and its body.
pub struct Frame<T> {
    pub message: T,
    pub body: Vec<u8>,
}

/// Writes one frame: u32 BE header length, the JSON header, u64 BE body length, the body.
pub fn write_frame<T: Serialize>(stream: &mut impl Write, message: &T, body: &[u8]) -> std::io::Result<()> {
    let header = serde_json::to_vec(message).expect("plain data");
    let mut frame = Vec::with_capacity(12 + header.len() + body.len());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)?;
    stream.flush()
}

/// How long a peer may take and how much it may send.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Time for a frame to begin.
    pub idle: Duration,
    /// Time for a begun frame to finish, plus a second per MiB of declared body.
    pub frame: Duration,
    pub max_body: u64,
}

/// Reads one frame within bounds: waits up to `idle` for it to begin, then gives the rest a
/// deadline that grows with the declared body length (never beyond `max_body` bytes).
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut TcpStream,
    limits: FrameLimits,
) -> Result<Frame<T>, FrameError> {
    let FrameLimits { idle, frame, max_body } = limits;
    let mut len = [0u8; 4];
    stream.set_read_timeout(Some(idle)).map_err(FrameError::Io)?;
    match stream.read(&mut len[..1]) {
        Ok(0) => return Err(FrameError::Closed),
        Ok(_) => {}
        Err(e) if is_timeout(&e) => return Err(FrameError::TimedOut(format!("no request within {idle:?}"))),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let mut deadline = Instant::now() + frame;
    read_by(stream, &mut len[1..], deadline)?;
    let header_len = u32::from_be_bytes(len);
    if header_len == 0 || header_len > MAX_HEADER_BYTES {
        return Err(FrameError::Malformed(
            FailureCode::TooLarge,
            format!("header of {header_len} bytes (expected 1..={MAX_HEADER_BYTES})"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    read_by(stream, &mut header, deadline)?;
    let mut body_len = [0u8; 8];
    read_by(stream, &mut body_len, deadline)?;
    let body_len = u64::from_be_bytes(body_len);
    if body_len > max_body {
        return Err(FrameError::Malformed(
            FailureCode::TooLarge,
            format!("body of {body_len} bytes (at most {max_body} here)"),
        ));
    }
    deadline += Duration::from_secs(body_len / MIN_BODY_RATE);
    // Grown as bytes arrive: a declared length costs nothing until the peer sends it.
    let mut body = Vec::new();
    while (body.len() as u64) < body_len {
        let at = body.len();
        let chunk = (body_len - at as u64).min(BODY_CHUNK) as usize;
        body.resize(at + chunk, 0);
        read_by(stream, &mut body[at..], deadline)?;
    }
    let message = serde_json::from_slice(&header).map_err(|e| {
        FrameError::Malformed(
            FailureCode::Malformed,
            format!("header is not a message of version {VERSION}: {e}"),
        )
    })?;
    Ok(Frame { message, body })
}

/// Fills `buf` unless `deadline` passes first (a peer trickling bytes cannot hold a thread).
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FrameError::TimedOut(format!(
                "frame incomplete after {filled} of {} bytes",
                buf.len()
            )));
        }
        stream.set_read_timeout(Some(left)).map_err(FrameError::Io)?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(FrameError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed mid-frame after {filled} of {} bytes", buf.len()),
                )))
            }
            Ok(n) => filled += n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// The tensors as a frame body and their shapes for the header.
pub fn encode_tensors(tensors: &[Tensor]) -> (Vec<TensorShape>, Vec<u8>) {
    let mut body = Vec::with_capacity(tensors.iter().map(|t| t.len() * 4).sum());
    for t in tensors {
        body.extend(t.iter().flat_map(|x| x.to_le_bytes()));
    }
    (tensors.iter().map(|t| TensorShape { shape: t.shape().to_vec() }).collect(), body)
}

/// The tensors a body holds, checked against the shapes its header declares.
pub fn decode_tensors(shapes: &[TensorShape], body: &[u8]) -> Result<Vec<Tensor>, String> {
    let mut offset = 0usize;
    let mut tensors = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let bytes = s
            .shape
            .iter()
            .try_fold(4usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= body.len() - offset)
            .ok_or_else(|| {
                format!(
                    "tensor {i} of shape {:?} needs more than the {} bytes left in the body",
                    s.shape,
                    body.len() - offset
                )
            })?;
        let data = body[offset..offset + bytes]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        offset += bytes;
        tensors.push(Tensor::from_shape_vec(s.shape.clone(), data).map_err(|e| format!("tensor {i}: {e}"))?);
    }
    if offset != body.len() {
        return Err(format!("{} bytes left over after {} tensors", body.len() - offset, shapes.len()));
    }
    Ok(tensors)
}

/// A batch's samples as one frame body and their shapes for the header.
pub fn encode_batch(samples: &[Vec<Tensor>]) -> (Vec<Vec<TensorShape>>, Vec<u8>) {
    let mut body = Vec::new();
    let shapes = samples
        .iter()
        .map(|sample| {
            let (shapes, bytes) = encode_tensors(sample);
            body.extend_from_slice(&bytes);
            shapes
        })
        .collect();
    (shapes, body)
}

/// The samples a batch body holds, each checked against its declared shapes.
pub fn decode_batch(samples: &[Vec<TensorShape>], body: &[u8]) -> Result<Vec<Vec<Tensor>>, String> {
    if samples.len() > MAX_BATCH_SAMPLES {
        return Err(format!("{} samples in one batch (at most {MAX_BATCH_SAMPLES})", samples.len()));
    }
    let mut offset = 0usize;
    samples
        .iter()
        .enumerate()
        .map(|(k, shapes)| {
            let bytes = shapes
                .iter()
                .try_fold(0usize, |total, s| {
                    s.shape
                        .iter()
                        .try_fold(4usize, |n, &d| n.checked_mul(d))
                        .and_then(|n| total.checked_add(n))
                })
                .filter(|&n| n <= body.len() - offset)
                .ok_or_else(|| {
                    format!("sample {k} needs more than the {} bytes left in the body", body.len() - offset)
                })?;
            let tensors = decode_tensors(shapes, &body[offset..offset + bytes])
                .map_err(|why| format!("sample {k}: {why}"))?;
            offset += bytes;
            Ok(tensors)
        })
        .collect::<Result<Vec<_>, String>>()
        .and_then(|decoded| match body.len() - offset {
            0 => Ok(decoded),
            left => Err(format!("{left} bytes left over after {} samples", samples.len())),
        })
}

/// A power trace's points as a frame body: (seconds, watts) as f64 LE pairs.
pub fn encode_points(points: &[(f64, f64)]) -> Vec<u8> {
    points.iter().flat_map(|(t, w)| t.to_le_bytes().into_iter().chain(w.to_le_bytes())).collect()
}

/// The points a body holds; every one must be finite, and times ascending.
pub fn decode_points(body: &[u8], declared: usize) -> Result<Vec<(f64, f64)>, String> {
    if body.len() != declared.saturating_mul(16) {
        return Err(format!("{} bytes for {declared} points of 16", body.len()));
    }
    let f = |c: &[u8]| f64::from_le_bytes(c.try_into().expect("8 bytes"));
    let points: Vec<(f64, f64)> = body.chunks_exact(16).map(|c| (f(&c[..8]), f(&c[8..]))).collect();
    let ordered = points.windows(2).all(|w| w[0].0 <= w[1].0);
    if !ordered || points.iter().any(|(t, w)| !t.is_finite() || !w.is_finite()) {
        return Err("the points must be finite with times ascending".into());
    }
    Ok(points)
}

/// Proof of the token: HMAC-SHA256 keyed by it over the protocol name, the version the hello
/// chooses and the nonce, so the token itself never crosses the wire, a recorded proof does not
/// answer a new nonce, and a proof for one version does not pass for another.
pub fn prove(token: &[u8], version: u32, nonce: &str) -> String {
    crate::vocab::hash::hex(&proof_mac(token, version, nonce).finalize().into_bytes())
}

/// Whether `proof` is [`prove`]'s for this token, version and nonce, compared in constant time.
pub fn verify_proof(token: &[u8], version: u32, nonce: &str, proof: &str) -> bool {
    let Some(bytes) = unhex(proof) else { return false };
    proof_mac(token, version, nonce).verify_slice(&bytes).is_ok()
}

fn proof_mac(token: &[u8], version: u32, nonce: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token).expect("HMAC takes any key length");
    mac.update(format!("{PROTOCOL}/{version}/{nonce}").as_bytes());
    mac
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Reads a token file: its contents, trimmed, at least [`MIN_TOKEN_BYTES`] long.
pub fn read_token(path: &std::path::Path) -> crate::vocab::Result<Vec<u8>> {
    let text = crate::vocab::read_to_string(path)?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_BYTES {
        return Err(crate::vocab::Error::Usage(format!(
            "{}: the token is {} bytes; a shared token needs at least {MIN_TOKEN_BYTES} (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
            path.display(),
            token.len(),
            path.display()
        )));
    }
    Ok(token.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_cross_the_wire_unchanged_and_a_short_body_is_refused() {
        let t = Tensor::from_shape_vec(vec![2, 3], vec![1.0, -2.5, f32::NAN, 0.0, 7.0, 1e-30]).unwrap();
        let (shapes, body) = encode_tensors(std::slice::from_ref(&t));
        let back = decode_tensors(&shapes, &body).unwrap();
        assert_eq!(back[0].shape(), t.shape());
        let bits = |t: &Tensor| t.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back[0]), bits(&t));
        let err = decode_tensors(&shapes, &body[..20]).unwrap_err();
        assert!(err.contains("tensor 0 of shape [2, 3]"), "{err}");
        let huge = [TensorShape { shape: vec![usize::MAX, 2] }];
        assert!(decode_tensors(&huge, &body).is_err());
        let err = decode_tensors(&[], &body).unwrap_err();
        assert!(err.contains("24 bytes left over"), "{err}");
    }

    #[test]
    fn a_proof_answers_only_its_own_token_and_nonce() {
        let proof = prove(b"0123456789abcdef", 2, "n1");
        assert!(verify_proof(b"0123456789abcdef", 2, "n1", &proof));
        assert!(!verify_proof(b"0123456789abcdeF", 2, "n1", &proof));
        assert!(!verify_proof(b"0123456789abcdef", 2, "n2", &proof));
        assert!(!verify_proof(b"0123456789abcdef", 1, "n1", &proof), "a proof is bound to its version");
        assert!(!verify_proof(b"0123456789abcdef", 2, "n1", "zz"));
    }
}
