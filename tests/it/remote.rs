//! The remote backend against a real `edgecert agent` process on loopback: it certifies with
//! the host backend's accuracy verdicts from the device's own outputs, keeps finished samples
//! when the agent dies and resumes from them, refuses clients without the token, survives
//! malformed, slow and oversized frames, and refuses a device that loaded another model.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edgecert::engine::Tensor;
use edgecert::remote::protocol::{
    decode_tensors, encode_batch, encode_tensors, prove, read_frame, write_frame, FailureCode, FrameLimits,
    Greeting, Request, Response, WireTensorInfo, VERSION,
};

/// An agent process, killed when dropped.
struct Agent {
    child: Child,
    addr: String,
}

impl Agent {
    fn start(store: &Path, extra: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgecert"))
            .args(["agent", "--listen", "127.0.0.1:0", "--store", s(store)])
            .args(extra)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent starts");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).unwrap();
        let addr = banner.split_whitespace().nth(4).expect("listening on ADDR").to_string();
        assert!(banner.contains("protocol edgecert-agent versions ["), "{banner}");
        Agent { child, addr }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn certify_on(out: &Path, backend: &[&str], filters: &[&str]) -> Run {
    certify_quietly(out, "profiles/rk3588.toml", "golden/shapes", &[backend, filters].concat())
}

fn figure(cert: &serde_json::Value, name: &str) -> (String, f64) {
    let c = check(cert, name);
    (c["verdict"].as_str().unwrap().to_string(), c["measured"].as_f64().unwrap_or(f64::NAN))
}

#[test]
fn a_device_agent_on_loopback_certifies_with_the_host_backends_accuracy_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    // The device's /proc and /sys: a recorded ROCK 5B tree, and a fact its operator states.
    let tree = ["--system-root", "tests/fixtures/sysfs/rock5b", "--device-fact", "ambient_c=23"];
    let agent = Agent::start(&dir.path().join("store"), &tree);
    let remote_out = dir.path().join("remote");
    let backend = ["--backend", "remote", "--device", &agent.addr, "--min-duration", "1.5"];
    let run = certify_on(&remote_out, &backend, &["accuracy", "latency"]);
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let host_out = dir.path().join("host");
    let run = certify_on(&host_out, &["--backend", "host"], &["accuracy"]);
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);

    let (remote, host) =
        (certificate(&remote_out, "shapes", "rk3588"), certificate(&host_out, "shapes", "rk3588"));
    for name in ["accuracy", "accuracy_vs_fp32"] {
        assert_eq!(figure(&remote, name), figure(&host, name), "{name}");
        assert_eq!(figure(&remote, name).0, "PASS");
    }
    assert_eq!(remote["backend"]["kind"], "remote");
    // ISO/IEC 17025 §7.8.3: the device's conditions as it reports them; the host run has none.
    let device = &remote["environment"]["device"];
    assert!(device["reported_by"].as_str().unwrap().starts_with("edgecert agent at 127.0.0.1:"), "{device}");
    let facts = &device["facts"];
    assert_eq!(facts["board"], "Radxa ROCK 5B");
    assert_eq!(facts["kernel"], "5.10.160-rockchip-rk3588");
    assert_eq!(facts["driver.rknpu"], "0.9.6");
    assert_eq!(facts["clock.fdab0000.npu"], "1000 MHz (max 1000 MHz)");
    assert_eq!(facts["stated.ambient_c"], "23");
    assert!(host["environment"]["device"].is_null(), "the host backend has no device under test");
    let latency = check(&remote, "latency");
    assert_eq!(latency["basis"], "measured");
    assert!(latency["reason"].as_str().unwrap().contains("timed on the device"), "{latency}");

    let observations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(remote_out.join("shapes/rk3588/observations.json")).unwrap())
            .unwrap();
    let engine = observations["replay"]["value"]["engine"].as_str().unwrap();
    assert!(engine.contains("via edgecert agent at 127.0.0.1:"), "the outputs are the device's: {engine}");
    let scenarios = &observations["timing"]["value"]["scenarios"];
    assert_eq!(scenarios["compliance_enforced"], true);
    let test01 = &scenarios["timed_outputs"];
    assert!(test01["compared"].as_u64().unwrap() >= 700, "{test01}");
    assert_eq!(test01["differing"], 0, "{test01}");
    // The single-stream run lasted the minimum asked, however fast 700 queries are.
    assert!(scenarios["single_stream_s"].as_f64().unwrap() >= 1.5, "{scenarios}");
    let findings = latency["findings"].to_string();
    assert!(findings.contains("in 1.") && findings.contains("and 2 s asked"), "{findings}");

    // ISO/IEC 17025 §7.8.2.1 p: the device is an external provider; the host run has none.
    let html = |out: &std::path::Path| {
        let cert = out.join("shapes/rk3588/certificate.json");
        let run = edgecert(&["report", s(&cert)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        std::fs::read_to_string(cert.with_file_name("report.en.html")).unwrap()
    };
    let (remote_html, host_html) = (html(&remote_out), html(&host_out));
    assert!(
        remote_html.contains("the device behind the edgecert agent (")
            && remote_html.contains("produced the compressed model’s outputs and latencies"),
        "the remote report does not name its external provider"
    );
    assert!(host_html.contains("none: every figure was produced by edgecert"));
    assert!(
        remote_html.contains("Device under test (as it reports itself)")
            && remote_html.contains("board = Radxa ROCK 5B")
    );
    assert!(!host_html.contains("Device under test"));
    assert!(host_html.contains("host: measured on the host CPU edgecert ran on, not on the chip"));
    assert!(!host_html.contains("measured on the device"), "the host backend is not the device");
}

#[test]
fn a_killed_agent_keeps_the_finished_samples_and_the_same_command_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut dying = Agent::start(&dir.path().join("store"), &["--exit-after-inferences", "30"]);
    let run = certify_on(&out, &["--backend", "remote", "--device", &dying.addr], &["accuracy"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(&out, "shapes", "rk3588");
    let accuracy = check(&cert, "accuracy");
    assert_eq!(accuracy["verdict"], "INCONCLUSIVE");
    let reason = accuracy["reason"].as_str().unwrap();
    assert!(reason.contains("the connection was closed"), "{reason}");
    assert!(reason.contains("30 finished samples are kept in"), "{reason}");
    assert!(reason.contains("run the same command again to resume"), "{reason}");
    assert_eq!(dying.child.wait().unwrap().code(), Some(70), "the agent died on the 31st inference");

    let agent = Agent::start(&dir.path().join("store"), &[]);
    let run = certify_on(&out, &["--backend", "remote", "--device", &agent.addr], &["accuracy"]);
    // Exit 1 is the filtered-out checks: a certificate covering part of its plan never passes.
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("resuming from 30 finished samples"), "{}", run.stderr);
    let host_out = dir.path().join("host");
    certify_on(&host_out, &["--backend", "host"], &["accuracy"]);
    let (resumed, host) = (certificate(&out, "shapes", "rk3588"), certificate(&host_out, "shapes", "rk3588"));
    assert_eq!(figure(&resumed, "accuracy"), figure(&host, "accuracy"));
    assert_eq!(figure(&resumed, "accuracy").0, "PASS");
}

#[test]
fn an_agent_with_a_token_serves_only_clients_that_prove_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-lab-token-0123456789\n").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-lab-token-0123456789\n").unwrap();
    let agent = Agent::start(&dir.path().join("store"), &["--token-file", s(&token)]);
    let out = dir.path().join("out");
    let remote = |token: Option<&Path>| {
        let mut backend = vec!["--backend", "remote", "--device", agent.addr.as_str()];
        if let Some(t) = token {
            backend.extend(["--token-file", s(t)]);
        }
        certify_on(&out, &backend, &["size"])
    };
    let anonymous = remote(None);
    assert_eq!(anonymous.code, 2);
    assert!(
        anonymous.stderr.contains("the agent requires a shared token: give --token-file"),
        "{}",
        anonymous.stderr
    );
    let impostor = remote(Some(&wrong));
    assert_eq!(impostor.code, 2);
    assert!(impostor.stderr.contains("Unauthorized"), "{}", impostor.stderr);
    assert!(!out.exists(), "nothing is written for a refused client");
    let holder = remote(Some(&token));
    assert_eq!(holder.code, 1, "{}\n{}", holder.stdout, holder.stderr);
    assert_eq!(check(&certificate(&out, "shapes", "rk3588"), "size")["verdict"], "PASS");

    // Bound beyond loopback without a token, the agent refuses to start.
    let open = edgecert(&["agent", "--listen", "0.0.0.0:0", "--store", s(&dir.path().join("s2"))]);
    assert_eq!(open.code, 2);
    assert!(open.stderr.contains("is not a loopback address: give --token-file"), "{}", open.stderr);
    let short = dir.path().join("short");
    std::fs::write(&short, "abc").unwrap();
    let weak = edgecert(&["agent", "--listen", "127.0.0.1:0", "--token-file", s(&short)]);
    assert_eq!(weak.code, 2);
    assert!(weak.stderr.contains("needs at least 16"), "{}", weak.stderr);
}

const LIMITS: FrameLimits =
    FrameLimits { idle: Duration::from_secs(5), frame: Duration::from_secs(5), max_body: 1 << 20 };

/// A connection that has read the greeting, and said hello (in the newest version) unless told
/// not to.
fn connect(agent: &Agent, hello: bool) -> TcpStream {
    connect_speaking(agent, hello.then_some(VERSION))
}

fn connect_speaking(agent: &Agent, version: Option<u32>) -> TcpStream {
    let mut stream = TcpStream::connect(&agent.addr).unwrap();
    let greeting: Greeting = read_frame(&mut stream, LIMITS).unwrap().message;
    assert!(!greeting.auth_required);
    if let Some(version) = version {
        write_frame(&mut stream, &Request::Hello { version, auth: None }, &[]).unwrap();
        let welcome: Response = read_frame(&mut stream, LIMITS).unwrap().message;
        assert!(matches!(welcome, Response::Welcome { version: v, .. } if v == version), "{welcome:?}");
    }
    stream
}

fn answer(stream: &mut TcpStream) -> Response {
    read_frame::<Response>(stream, LIMITS).expect("an answer frame").message
}

fn failure(stream: &mut TcpStream) -> (FailureCode, String, bool) {
    match answer(stream) {
        Response::Failed { code, message, fatal } => (code, message, fatal),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The agent closes the connection: a read returns end of file (or a reset) promptly.
fn closed_within(stream: &mut TcpStream, limit: Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit + Duration::from_secs(2))).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(start.elapsed() < limit + Duration::from_secs(1), "closed after {:?}", start.elapsed());
}

#[test]
fn malformed_slow_and_oversized_frames_end_their_connection_and_never_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&dir.path().join("store"), &["--frame-seconds", "1", "--idle-seconds", "3"]);

    // A header length past the bound is refused before anything is allocated.
    let mut huge = connect(&agent, false);
    huge.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let (code, message, fatal) = failure(&mut huge);
    assert_eq!((code, fatal), (FailureCode::TooLarge, true), "{message}");
    assert!(message.contains("header of 4294967295 bytes"), "{message}");

    // So is a body past the upload bound, declared in a well-formed header.
    let mut big = connect(&agent, true);
    let header = serde_json::to_vec(&Request::Upload { sha256: "0".repeat(64) }).unwrap();
    big.write_all(&(header.len() as u32).to_be_bytes()).unwrap();
    big.write_all(&header).unwrap();
    big.write_all(&(1u64 << 40).to_be_bytes()).unwrap();
    let (code, message, _) = failure(&mut big);
    assert_eq!(code, FailureCode::TooLarge, "{message}");

    // A header that is not a message of this version.
    let mut garbled = connect(&agent, true);
    garbled.write_all(&5u32.to_be_bytes()).unwrap();
    garbled.write_all(b"{\"x\":").unwrap();
    garbled.write_all(&0u64.to_be_bytes()).unwrap();
    let (code, message, _) = failure(&mut garbled);
    assert_eq!(code, FailureCode::Malformed, "{message}");

    // A client trickling a frame is cut off at the frame deadline; a silent one at idle.
    let mut slow = connect(&agent, true);
    slow.write_all(&[0, 0]).unwrap();
    closed_within(&mut slow, Duration::from_secs(1));
    let mut silent = connect(&agent, false);
    closed_within(&mut silent, Duration::from_secs(3));

    // Requests that fail leave a good connection usable; a digest never escapes the store.
    let mut good = connect(&agent, true);
    write_frame(&mut good, &Request::Infer { inputs: vec![] }, &[]).unwrap();
    assert_eq!(failure(&mut good).0, FailureCode::NoModelLoaded);
    write_frame(&mut good, &Request::Has { sha256: "../../etc/passwd".into() }, &[]).unwrap();
    let (code, message, fatal) = failure(&mut good);
    assert_eq!((code, fatal), (FailureCode::Malformed, false));
    assert!(message.contains("is not a SHA-256 digest"), "{message}");
    write_frame(&mut good, &Request::Upload { sha256: "a".repeat(64) }, b"not that").unwrap();
    assert_eq!(failure(&mut good).0, FailureCode::DigestMismatch);
    write_frame(&mut good, &Request::Health, &[]).unwrap();
    assert!(matches!(answer(&mut good), Response::Status { loaded: None, .. }));

    // An upload past the store's quota is refused, naming it, and nothing is stored.
    let small = Agent::start(&dir.path().join("small-store"), &["--store-max-mb", "1"]);
    let mut full = connect(&small, true);
    let model = vec![7u8; 3 << 19];
    let sha256 = edgecert::vocab::hash::sha256_hex(&model);
    write_frame(&mut full, &Request::Upload { sha256: sha256.clone() }, &model).unwrap();
    let (code, message, fatal) = failure(&mut full);
    assert_eq!((code, fatal), (FailureCode::TooLarge, false), "{message}");
    assert!(message.contains("quota (agent --store-max-mb)"), "{message}");
    write_frame(&mut full, &Request::Has { sha256 }, &[]).unwrap();
    assert!(matches!(answer(&mut full), Response::Have { present: false }));

    // A wrong proof, or a version this agent does not speak, is refused at hello.
    let mut stranger = connect(&agent, false);
    write_frame(
        &mut stranger,
        &Request::Hello { version: 9, auth: Some(prove(b"0123456789abcdef", 9, "x")) },
        &[],
    )
    .unwrap();
    assert_eq!(failure(&mut stranger).0, FailureCode::UnsupportedVersion);
}

/// Uploads and loads the shapes INT8 model on a fresh connection.
fn loaded_shapes_model(agent: &Agent) -> TcpStream {
    let mut stream = connect(agent, true);
    let model = std::fs::read(root().join("golden/shapes/shapes_int8.onnx")).unwrap();
    let sha256 = edgecert::vocab::hash::sha256_hex(&model);
    write_frame(&mut stream, &Request::Upload { sha256: sha256.clone() }, &model).unwrap();
    assert!(matches!(answer(&mut stream), Response::Stored { .. }));
    let input = WireTensorInfo { name: "input".into(), shape: vec![1, 1, 32, 32], dtype: "f32".into() };
    write_frame(&mut stream, &Request::Load { sha256, inputs: vec![input] }, &[]).unwrap();
    assert!(matches!(answer(&mut stream), Response::Loaded { .. }));
    stream
}

fn outputs_of(stream: &mut TcpStream) -> (Vec<Tensor>, f64) {
    let frame = read_frame::<Response>(stream, LIMITS).unwrap();
    match frame.message {
        Response::Outputs { latency_ms, outputs } => {
            (decode_tensors(&outputs, &frame.body).unwrap(), latency_ms)
        }
        other => panic!("expected outputs, got {other:?}"),
    }
}

#[test]
fn a_batch_is_answered_one_frame_per_sample_with_what_single_inferences_give() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&dir.path().join("store"), &[]);
    let mut stream = loaded_shapes_model(&agent);
    let samples: Vec<Vec<Tensor>> = (0..5)
        .map(|k| {
            vec![Tensor::from_shape_fn(vec![1, 1, 32, 32], |i| ((i[2] * 7 + i[3] * k) % 11) as f32 / 10.0)]
        })
        .collect();
    let (shapes, body) = encode_batch(&samples);
    write_frame(&mut stream, &Request::InferBatch { samples: shapes }, &body).unwrap();
    let batched: Vec<(Vec<Tensor>, f64)> = samples.iter().map(|_| outputs_of(&mut stream)).collect();
    for (sample, (outputs, latency_ms)) in samples.iter().zip(&batched) {
        assert!(*latency_ms > 0.0);
        let (shapes, body) = encode_tensors(sample);
        write_frame(&mut stream, &Request::Infer { inputs: shapes }, &body).unwrap();
        let (single, _) = outputs_of(&mut stream);
        assert_eq!(encode_tensors(outputs), encode_tensors(&single), "batched and single outputs differ");
    }
    let distinct = batched.windows(2).any(|w| encode_tensors(&w[0].0) != encode_tensors(&w[1].0));
    assert!(distinct, "the samples differ, so some outputs must");

    // A body short of its declared samples is refused whole, before anything runs, and the
    // connection goes on.
    let (shapes, body) = encode_batch(&samples[..2]);
    write_frame(&mut stream, &Request::InferBatch { samples: shapes }, &body[..body.len() - 4]).unwrap();
    let (code, message, fatal) = failure(&mut stream);
    assert_eq!((code, fatal), (FailureCode::Malformed, false), "{message}");
    assert!(message.contains("sample 1"), "{message}");
    write_frame(&mut stream, &Request::Health, &[]).unwrap();
    assert!(matches!(answer(&mut stream), Response::Status { inferences: 10, .. }));

    // On a version-1 connection `infer_batch` is an unknown request: refused, fatally.
    let mut old = connect_speaking(&agent, Some(1));
    write_frame(&mut old, &Request::InferBatch { samples: vec![] }, &[]).unwrap();
    let (code, message, fatal) = failure(&mut old);
    assert_eq!((code, fatal), (FailureCode::Malformed, true), "{message}");
    assert!(message.contains("`infer_batch` is version 2"), "{message}");
}

#[test]
fn an_agent_speaking_only_version_1_is_driven_one_infer_per_sample_to_the_same_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&dir.path().join("store"), &["--newest-version", "1"]);
    let old_out = dir.path().join("v1");
    let run = certify_on(&old_out, &["--backend", "remote", "--device", &agent.addr], &["accuracy"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let new_agent = Agent::start(&dir.path().join("store2"), &[]);
    let new_out = dir.path().join("v2");
    certify_on(&new_out, &["--backend", "remote", "--device", &new_agent.addr], &["accuracy"]);
    let (old, new) = (certificate(&old_out, "shapes", "rk3588"), certificate(&new_out, "shapes", "rk3588"));
    assert_eq!(figure(&old, "accuracy"), figure(&new, "accuracy"));
    assert_eq!(figure(&old, "accuracy").0, "PASS");
}

#[test]
fn the_agents_own_power_meter_decides_the_power_check_over_the_devices_timed_run() {
    let dir = tempfile::tempdir().unwrap();
    let meter = "cmd:while :; do echo 4.0; sleep 0.01; done";
    let agent = Agent::start(&dir.path().join("store"), &["--power-meter", meter]);
    let out = dir.path().join("out");
    let backend = ["--backend", "remote", "--device", &agent.addr, "power"];
    let run = certify_quietly(&out, "profiles/atlas200i-dk-a2.toml", "golden/shapes", &backend);
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let power = check(&certificate(&out, "shapes", "atlas200i-dk-a2"), "power").clone();
    assert_eq!(
        (power["verdict"].as_str(), power["basis"].as_str()),
        (Some("PASS"), Some("measured")),
        "{power}"
    );
    assert!((power["measured"].as_f64().unwrap() - 4.0).abs() < 1e-9, "{power}");
    let observations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("shapes/atlas200i-dk-a2/observations.json")).unwrap())
            .unwrap();
    let trace = &observations["timing"]["value"]["power"]["value"]["trace"];
    assert_eq!(trace["source"], format!("device cmd: {}", &meter[4..]), "{trace}");
}

#[test]
fn the_harness_refuses_a_device_that_loaded_another_model_than_the_certified_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    // The store holds the FP32 model under the int8 model's digest: the agent loads it, and
    // reports the digest of what it loaded.
    let int8 = std::fs::read(root().join("golden/shapes/shapes_int8.onnx")).unwrap();
    let sha = edgecert::vocab::hash::sha256_hex(&int8);
    std::fs::copy(root().join("golden/shapes/shapes_fp32.onnx"), store.join(format!("{sha}.onnx"))).unwrap();
    let agent = Agent::start(&store, &[]);
    let out = dir.path().join("out");
    let run = certify_on(&out, &["--backend", "remote", "--device", &agent.addr], &["accuracy"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let accuracy = check(&certificate(&out, "shapes", "rk3588"), "accuracy").clone();
    assert_eq!(accuracy["verdict"], "INCONCLUSIVE");
    let reason = accuracy["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("not the certified model's {sha}")), "{reason}");
}

#[test]
fn a_remote_soak_reads_the_devices_own_sensors_through_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let tree = crate::soak::rock5b(dir.path());
    let agent = Agent::start(&dir.path().join("store"), &["--system-root", s(&tree)]);
    let out = dir.path().join("out");
    let backend = ["--backend", "remote", "--device", &agent.addr, "--soak", "3", "latency", "thermal"];
    let run = crate::soak::with_npu_at(&tree, crate::soak::heating_fast, || certify_on(&out, &backend, &[]));
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(&out, "shapes", "rk3588");
    let thermal = check(&cert, "thermal");
    assert_eq!(
        (thermal["verdict"].as_str(), thermal["basis"].as_str()),
        (Some("FAIL"), Some("measured")),
        "{thermal}"
    );
    assert!(thermal["reason"].as_str().unwrap().starts_with("npu-thermal reached "), "{thermal}");
    let observations = read_json(&out.join("shapes/rk3588/observations.json"));
    let trace = &observations["timing"]["value"]["soak"]["value"];
    assert!(trace["sensors"].as_str().unwrap().contains("via edgecert agent at 127.0.0.1:"), "{trace}");
    assert_eq!(trace["samples"][0]["zones_c"].as_object().unwrap().len(), 7, "{trace}");
}
