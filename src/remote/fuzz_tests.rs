//! Property-based fuzzing of everything the remote side reads from outside: the tensors of a
//! frame body, frames off a real loopback socket, the outputs journal on disk, and a live
//! agent fed garbage. Each property says what must hold for any input, so the cases the
//! hand-written tests thought of are not the only ones tried.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use sha2::{Digest, Sha256};

use super::journal::{input_digest, Journal};
use super::protocol::{
    decode_batch, decode_tensors, encode_batch, encode_tensors, read_frame, write_frame, FailureCode,
    FrameError, FrameLimits, Greeting, Request, Response, TensorShape, WireTensorInfo, VERSION,
};
use super::{Agent, AgentConfig};
use crate::engine::Tensor;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn bits(tensors: &[Tensor]) -> Vec<(Vec<usize>, Vec<u32>)> {
    tensors.iter().map(|t| (t.shape().to_vec(), t.iter().map(|x| x.to_bits()).collect())).collect()
}

// ---- decode_tensors ----------------------------------------------------------------------

/// Dimensions a hostile header may declare: small, zero, and ones whose products overflow.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..6,
        1 => Just(0usize),
        1 => Just(usize::MAX),
        1 => Just(usize::MAX / 4 + 1),
        1 => Just(1usize << 31),
        1 => Just(isize::MAX as usize),
        1 => any::<usize>(),
    ]
}

fn shapes() -> impl Strategy<Value = Vec<TensorShape>> {
    let shape = prop_oneof![
        3 => prop::collection::vec(dim(), 0..6),
        // Many dimensions, mostly of one, so some still fit a small body.
        1 => prop::collection::vec(prop_oneof![8 => Just(1usize), 1 => 0usize..3, 1 => dim()], 0..64),
    ];
    prop::collection::vec(shape.prop_map(|shape| TensorShape { shape }), 0..5)
}

/// A body for `shapes`: often exactly the size they need (so `Ok` is reached), else a few
/// bytes off, else arbitrary.
fn shapes_and_body() -> impl Strategy<Value = (Vec<TensorShape>, Vec<u8>)> {
    (shapes(), -5i64..5, prop::collection::vec(any::<u8>(), 0..256), any::<bool>()).prop_map(
        |(shapes, off, noise, arbitrary)| {
            let need = shapes
                .iter()
                .map(|s| s.shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d)))
                .try_fold(0usize, |sum, n| sum.checked_add(n?))
                .filter(|&n| n <= 4096);
            let body = match need {
                Some(need) if !arbitrary => {
                    let len = (need as i64 + off).max(0) as usize;
                    noise.iter().copied().cycle().chain(std::iter::repeat(7)).take(len).collect()
                }
                _ => noise,
            };
            (shapes, body)
        },
    )
}

proptest! {
    #![proptest_config(config(2000))]

    /// Never panics; an accepted body is exactly the declared tensors, bit for bit.
    #[test]
    fn decode_tensors_accepts_exactly_the_bytes_its_shapes_declare((shapes, body) in shapes_and_body()) {
        if let Ok(tensors) = decode_tensors(&shapes, &body) {
            prop_assert_eq!(tensors.len(), shapes.len());
            let elements: usize = tensors.iter().map(|t| t.len()).sum();
            prop_assert_eq!(elements * 4, body.len());
            prop_assert_eq!(body.len() % 4, 0);
            for (t, s) in tensors.iter().zip(&shapes) {
                prop_assert_eq!(t.shape(), &s.shape[..]);
            }
            let (again, bytes) = encode_tensors(&tensors);
            prop_assert_eq!(again, shapes);
            prop_assert_eq!(bytes, body);
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// A batch body is accepted only when it is exactly its samples' tensors, one after another;
    /// each accepted sample is what its own shapes decode on their own.
    #[test]
    fn decode_batch_splits_exactly_at_each_samples_bytes(
        samples in prop::collection::vec(shapes_and_body(), 0..4),
        joined_right in any::<bool>(),
    ) {
        let shapes: Vec<Vec<TensorShape>> = samples.iter().map(|(s, _)| s.clone()).collect();
        let mut body: Vec<u8> = samples.iter().flat_map(|(_, b)| b.clone()).collect();
        if !joined_right {
            body.push(0);
        }
        let alone: Option<Vec<Vec<Tensor>>> =
            samples.iter().map(|(s, b)| decode_tensors(s, b).ok()).collect();
        match (decode_batch(&shapes, &body), alone) {
            (Ok(decoded), alone) => {
                let (again, bytes) = encode_batch(&decoded);
                prop_assert_eq!(again, shapes);
                prop_assert_eq!(bytes, body);
                if let (true, Some(alone)) = (joined_right, alone) {
                    prop_assert_eq!(bits(&decoded.concat()), bits(&alone.concat()));
                }
            }
            (Err(_), alone) => prop_assert!(!joined_right || alone.is_none(), "a well-formed batch refused"),
        }
    }
}

// ---- read_frame over a socket --------------------------------------------------------------

const LIMITS: FrameLimits =
    FrameLimits { idle: Duration::from_millis(200), frame: Duration::from_millis(200), max_body: 4096 };

fn loopback_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn frame_bytes(request: &Request, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_frame(&mut bytes, request, body).unwrap();
    bytes
}

fn requests() -> impl Strategy<Value = Request> {
    let text = "\\PC{0,70}";
    let shape = prop::collection::vec(0usize..4, 0..4).prop_map(|shape| TensorShape { shape });
    let info = (text, prop::collection::vec(0usize..4, 0..4), text)
        .prop_map(|(name, shape, dtype)| WireTensorInfo { name, shape, dtype });
    prop_oneof![
        (any::<u32>(), prop::option::of(text)).prop_map(|(version, auth)| Request::Hello { version, auth }),
        text.prop_map(|sha256| Request::Has { sha256 }),
        text.prop_map(|sha256| Request::Upload { sha256 }),
        (text, prop::collection::vec(info, 0..3))
            .prop_map(|(sha256, inputs)| Request::Load { sha256, inputs }),
        prop::collection::vec(shape.clone(), 0..3).prop_map(|inputs| Request::Infer { inputs }),
        prop::collection::vec(prop::collection::vec(shape, 0..3), 0..4)
            .prop_map(|samples| Request::InferBatch { samples }),
        Just(Request::Health),
        Just(Request::Bye),
    ]
}

/// Bytes a peer might send: garbage, garbage behind a plausible header length, a valid frame
/// cut anywhere, or a valid frame with garbage after it.
fn fed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let garbage = || prop::collection::vec(any::<u8>(), 0..400);
    let frame =
        || (requests(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(r, b)| frame_bytes(&r, &b));
    prop_oneof![
        garbage(),
        (1u32..300, garbage()).prop_map(|(len, rest)| [&len.to_be_bytes()[..], &rest].concat()),
        (frame(), any::<Index>()).prop_map(|(f, cut)| f[..cut.index(f.len() + 1)].to_vec()),
        (frame(), garbage()).prop_map(|(f, rest)| [f, rest].concat()),
    ]
}

/// What a frame reader must make of `bytes` once they have all arrived.
#[derive(Debug)]
enum Expect {
    /// Nothing was sent.
    Nothing,
    /// The bytes stop mid-frame.
    Incomplete,
    TooLarge,
    Whole {
        header: Vec<u8>,
        body: Vec<u8>,
    },
}

/// A slice-based reading of the frame format, independent of the socket reader.
fn expect(bytes: &[u8], max_body: u64) -> Expect {
    if bytes.is_empty() {
        return Expect::Nothing;
    }
    let Some(len) = bytes.get(..4) else { return Expect::Incomplete };
    let header_len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
    if header_len == 0 || header_len > 64 * 1024 {
        return Expect::TooLarge;
    }
    let Some(header) = bytes.get(4..4 + header_len) else { return Expect::Incomplete };
    let Some(body_len) = bytes.get(4 + header_len..12 + header_len) else { return Expect::Incomplete };
    let body_len = u64::from_be_bytes(body_len.try_into().unwrap());
    if body_len > max_body {
        return Expect::TooLarge;
    }
    let start = 12 + header_len;
    match bytes.get(start..start + body_len as usize) {
        Some(body) => Expect::Whole { header: header.to_vec(), body: body.to_vec() },
        None => Expect::Incomplete,
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Whatever arrives, `read_frame` returns within its deadlines and says what the bytes
    /// were: a whole frame, too large, malformed, cut short (peer closed) or timed out (peer
    /// silent).
    #[test]
    fn read_frame_bounds_any_bytes_in_time(bytes in fed_bytes(), close in any::<bool>()) {
        let (mut client, mut server) = loopback_pair();
        client.write_all(&bytes).unwrap();
        if close {
            client.shutdown(Shutdown::Write).unwrap();
        }
        let clock = Instant::now();
        let got = read_frame::<Request>(&mut server, LIMITS);
        let took = clock.elapsed();
        // Generous slack: the machine may be busy, but a reader that ignores its deadline
        // blocks for ever, not for a second.
        prop_assert!(took < LIMITS.idle + LIMITS.frame + Duration::from_secs(1), "took {took:?}");
        match (expect(&bytes, LIMITS.max_body), got) {
            (Expect::Nothing, Err(FrameError::Closed)) if close => {}
            (Expect::Nothing | Expect::Incomplete, Err(FrameError::TimedOut(_))) if !close => {}
            (Expect::Incomplete, Err(FrameError::Io(e))) if close => {
                prop_assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
            }
            (Expect::TooLarge, Err(FrameError::Malformed(FailureCode::TooLarge, _))) => {}
            (Expect::Whole { header, body }, got) => match serde_json::from_slice::<Request>(&header) {
                Ok(request) => {
                    let frame = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(frame.message, request);
                    prop_assert_eq!(frame.body, body);
                }
                Err(_) => prop_assert!(matches!(got, Err(FrameError::Malformed(FailureCode::Malformed, _)))),
            },
            (expected, got) => {
                let got = got.map(|f| f.message);
                prop_assert!(false, "expected {expected:?} (closed: {close}), got {got:?}");
            }
        }
    }
}

// ---- the journal ---------------------------------------------------------------------------

fn outputs() -> impl Strategy<Value = Vec<Tensor>> {
    let tensor = (prop::collection::vec(0usize..4, 0..3), prop::collection::vec(any::<u32>(), 64)).prop_map(
        |(shape, words)| {
            let n = shape.iter().product();
            Tensor::from_shape_vec(shape, words[..n].iter().map(|w| f32::from_bits(*w)).collect()).unwrap()
        },
    );
    prop::collection::vec(tensor, 0..3)
}

/// A sample's inputs, distinct for distinct `i`.
fn digest_of(i: usize) -> [u8; 32] {
    input_digest(&[Tensor::from_elem(vec![1], i as f32)])
}

/// After opening, the file is the prefix the journal kept, and a new record is counted once
/// it is appended and the journal reopened.
fn append_and_reopen(path: &Path, kept: usize) -> Result<(), TestCaseError> {
    let mut journal = Journal::open(path).unwrap();
    prop_assert_eq!(journal.len(), kept);
    journal.append(digest_of(usize::MAX), &[Tensor::from_elem(vec![2], 1.5)]).unwrap();
    drop(journal);
    prop_assert_eq!(Journal::open(path).unwrap().len(), kept + 1);
    Ok(())
}

/// A record with a sound length and checksum around an arbitrary payload, so the payload
/// decoder itself is reached.
fn sealed(payload: &[u8]) -> Vec<u8> {
    [&(payload.len() as u32).to_le_bytes()[..], payload, &Sha256::digest(payload)].concat()
}

fn payloads() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        shapes().prop_map(|s| serde_json::to_vec(&s).unwrap()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120),
        (any::<[u8; 32]>(), any::<u32>(), header.clone(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(
                |(digest, len, header, body)| [&digest[..], &len.to_le_bytes(), &header, &body].concat()
            ),
        (any::<[u8; 32]>(), header, prop::collection::vec(any::<u8>(), 0..40)).prop_map(
            |(digest, header, body)| {
                [&digest[..], &(header.len() as u32).to_le_bytes(), &header, &body].concat()
            }
        ),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A file of anything opens; the journal keeps a prefix of it and goes on appending.
    #[test]
    fn a_journal_of_arbitrary_bytes_opens_to_a_prefix(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            prop::collection::vec(payloads().prop_map(|p| sealed(&p)), 1..4).prop_map(|r| r.concat()),
        ]
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.bin");
        std::fs::write(&path, &bytes).unwrap();
        let kept = Journal::open(&path).unwrap().len();
        let now = std::fs::read(&path).unwrap();
        prop_assert!(bytes.starts_with(&now), "the journal kept {} bytes that were not a prefix", now.len());
        append_and_reopen(&path, kept)?;
    }

    /// Flipped bytes and a cut anywhere in a valid journal keep exactly the records before the
    /// first damaged one, each with its own outputs.
    #[test]
    fn a_damaged_journal_keeps_exactly_its_intact_leading_records(
        records in prop::collection::vec(outputs(), 0..6),
        flips in prop::collection::vec((any::<Index>(), 1u8..=255), 0..3),
        cut in prop::option::of(any::<Index>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.bin");
        let mut journal = Journal::open(&path).unwrap();
        let mut ends = vec![0u64];
        for (i, outputs) in records.iter().enumerate() {
            journal.append(digest_of(i), outputs).unwrap();
            ends.push(std::fs::metadata(&path).unwrap().len());
        }
        drop(journal);
        let whole = std::fs::read(&path).unwrap();
        let mut bytes = whole.clone();
        if !bytes.is_empty() {
            for (at, x) in &flips {
                let at = at.index(bytes.len());
                bytes[at] ^= x;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        std::fs::write(&path, &bytes).unwrap();
        // Two flips of one byte may cancel: damage is where the bytes differ, or end.
        let damaged_from = whole.iter().zip(&bytes).position(|(a, b)| a != b).unwrap_or(bytes.len()) as u64;
        let intact = ends[1..].iter().take_while(|&&end| end <= damaged_from).count();

        let journal = Journal::open(&path).unwrap();
        prop_assert_eq!(journal.len(), intact);
        prop_assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[intact]);
        for (i, outputs) in records.iter().enumerate() {
            let got = journal.get(&digest_of(i)).unwrap();
            if i < intact {
                prop_assert_eq!(bits(&got.unwrap()), bits(outputs));
            } else {
                prop_assert!(got.is_none(), "record {i} was damaged but kept");
            }
        }
        drop(journal);
        append_and_reopen(&path, intact)?;
    }
}

// ---- a live agent --------------------------------------------------------------------------

/// An agent on loopback with short timeouts, serving for the rest of the test process.
fn spawn_agent(idle: Duration) -> SocketAddr {
    let store = tempfile::tempdir().unwrap().keep();
    let mut config = AgentConfig::new("127.0.0.1:0".into(), store);
    config.idle = idle;
    config.frame = Duration::from_millis(300);
    let agent = Agent::bind(config).unwrap();
    let addr = agent.local_addr();
    std::thread::spawn(move || agent.serve());
    addr
}

/// A well-behaved client's handshake and health query, retried briefly while the agent is
/// still counting down connections that just closed (it answers `busy` meanwhile).
fn healthy_session(addr: SocketAddr) -> Result<TcpStream, String> {
    let limits = FrameLimits { idle: Duration::from_secs(5), frame: Duration::from_secs(5), max_body: 0 };
    let mut last = String::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        match read_frame::<Greeting>(&mut stream, limits) {
            Ok(_) => {}
            Err(e) => {
                last = format!("no greeting: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        write_frame(&mut stream, &Request::Hello { version: VERSION, auth: None }, &[])
            .map_err(|e| e.to_string())?;
        let welcome = read_frame::<Response>(&mut stream, limits).map_err(|e| e.to_string())?.message;
        if !matches!(welcome, Response::Welcome { .. }) {
            return Err(format!("answered hello with {welcome:?}"));
        }
        write_frame(&mut stream, &Request::Health, &[]).map_err(|e| e.to_string())?;
        let status = read_frame::<Response>(&mut stream, limits).map_err(|e| e.to_string())?.message;
        if !matches!(status, Response::Status { .. }) {
            return Err(format!("answered health with {status:?}"));
        }
        return Ok(stream);
    }
    Err(last)
}

/// A connection's worth of hostile bytes: garbage, or a proper hello followed by requests
/// (an upload that hashes right, so loading it feeds garbage to the engine) and garbage.
fn connection_bytes() -> impl Strategy<Value = Vec<u8>> {
    let hello = frame_bytes(&Request::Hello { version: VERSION, auth: None }, &[]);
    let upload = prop::collection::vec(any::<u8>(), 0..200).prop_map(|model| {
        let sha256 = crate::vocab::hash::sha256_hex(&model);
        let load = Request::Load { sha256: sha256.clone(), inputs: vec![] };
        [frame_bytes(&Request::Upload { sha256 }, &model), frame_bytes(&load, &[])].concat()
    });
    let request = prop_oneof![
        3 => (requests(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(r, b)| frame_bytes(&r, &b)),
        1 => upload,
    ];
    prop_oneof![
        fed_bytes(),
        (prop::collection::vec(request, 0..5), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(move |(requests, tail)| [hello.clone(), requests.concat(), tail].concat()),
    ]
}

/// Sends `bytes` on a fresh connection, then hangs up and waits for the agent to close its end.
fn hit(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The agent may hang up first (on a malformed frame): later writes may fail, and that is fine.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.read_to_end(&mut Vec::new());
}

proptest! {
    #![proptest_config(config(64))]

    /// No byte string sent to an agent stops it answering a well-behaved client.
    #[test]
    fn an_agent_fed_garbage_keeps_serving(cases in prop::collection::vec(connection_bytes(), 1..4)) {
        static AGENT: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();
        let addr = *AGENT.get_or_init(|| spawn_agent(Duration::from_millis(300)));
        for bytes in &cases {
            hit(addr, bytes);
        }
        healthy_session(addr).map_err(TestCaseError::fail)?;
    }
}

/// After garbage, the agent still has every connection slot to give: a connection that died
/// on bad input must not keep its slot.
#[test]
fn an_agent_fed_garbage_still_serves_its_full_connection_count() {
    // Idle long enough that the sessions below are all open at once.
    let addr = spawn_agent(Duration::from_secs(5));
    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    for _ in 0..64 {
        let bytes = connection_bytes().new_tree(&mut runner).unwrap().current();
        hit(addr, &bytes);
    }
    let slots = AgentConfig::new(String::new(), Default::default()).max_connections;
    let sessions: Vec<TcpStream> = (0..slots).map(|_| healthy_session(addr).unwrap()).collect();
    assert_eq!(sessions.len(), slots);
}
