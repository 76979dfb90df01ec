//! The exec backend driving real commands: the shipped onnxruntime adapter certifies a model
//! with the runtime's own outputs and timing lines; a runtime that crashes mid-run keeps the
//! finished batches and the same command resumes; a hung one is killed at its timeout; a
//! runtime writing the wrong bytes, and a malformed adapter, are named.
//!
//! The onnxruntime tests need a `python3` that imports onnxruntime: the active virtualenv's
//! (`.ci/run` installs the wheel into one); without it they say so and skip.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// The virtualenv's bin folder, where its python3 imports onnxruntime; without one, the test
/// says it is skipped.
fn python_with_onnxruntime() -> Option<PathBuf> {
    let bin = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin"));
    let ok = bin.as_ref().is_some_and(|bin| {
        std::process::Command::new(bin.join("python3"))
            .args(["-c", "import onnxruntime, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        eprintln!("skipped: no python3 importing onnxruntime in VIRTUAL_ENV");
    }
    bin.filter(|_| ok)
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

fn certify_exec(out: &Path, adapter: &Path, filters: &[&str], bin: Option<&Path>) -> Run {
    let mut args = vec!["--backend", "exec", "--adapter", s(adapter)];
    args.extend_from_slice(filters);
    let path = bin.map(path_with);
    let env: Vec<_> = path.as_deref().map(|p| ("PATH", Some(p))).into_iter().collect();
    certify_quietly_with_env(out, "profiles/rk3588.toml", "golden/shapes", &args, &env)
}

fn accuracy_of(out: &Path) -> serde_json::Value {
    check(&certificate(out, "shapes", "rk3588"), "accuracy").clone()
}

#[test]
fn the_onnxruntime_adapter_certifies_with_the_runtimes_own_outputs_and_timing() {
    let Some(bin) = python_with_onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exec");
    let adapter = root().join("adapters/onnxruntime-python.toml");
    let run = certify_exec(&out, &adapter, &["accuracy", "latency"], Some(&bin));
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(&out, "shapes", "rk3588");
    assert_eq!(cert["backend"]["kind"], "exec");
    // The adapter's device_command: the runtime's own account of where it ran.
    let device = &cert["environment"]["device"];
    assert!(
        device["reported_by"].as_str().unwrap().starts_with("the device_command of adapter "),
        "{device}"
    );
    assert!(device["facts"]["onnxruntime"].as_str().unwrap().starts_with("1."), "{device}");
    assert!(
        device["facts"]["execution providers"].as_str().unwrap().contains("CPUExecutionProvider"),
        "{device}"
    );
    let latency = check(&cert, "latency");
    assert_eq!(
        (latency["verdict"].as_str(), latency["basis"].as_str()),
        (Some("PASS"), Some("measured")),
        "{latency}"
    );
    assert!(
        latency["reason"].as_str().unwrap().contains("runtime command onnxruntime Python API"),
        "{latency}"
    );
    let cert_path = out.join("shapes/rk3588/certificate.json");
    let run = edgecert(&["report", s(&cert_path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(cert_path.with_file_name("report.en.html")).unwrap();
    assert!(
        html.contains("the vendor runtime ") && html.contains("received them through its adapter"),
        "the report does not name the runtime as an external provider"
    );

    // The same integer kernels in-process give the same accuracy: the outputs are onnxruntime's.
    let host = dir.path().join("host");
    let lib = std::env::var("VIRTUAL_ENV").unwrap();
    let run = certify_quietly_with_env(
        &host,
        "profiles/rk3588.toml",
        "golden/shapes",
        &["--backend", "host", "--engine", "onnxruntime", "accuracy"],
        &[("VIRTUAL_ENV", Some(&lib))],
    );
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let (exec, host) = (accuracy_of(&out), accuracy_of(&host));
    assert_eq!(
        (exec["verdict"].clone(), exec["measured"].clone()),
        (host["verdict"].clone(), host["measured"].clone())
    );
    assert_eq!(exec["verdict"], "PASS");

    let observations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("shapes/rk3588/observations.json")).unwrap()).unwrap();
    assert!(observations["replay"]["value"]["engine"].as_str().unwrap().contains("(onnxruntime 1."));
    let scenarios = &observations["timing"]["value"]["scenarios"];
    assert_eq!(scenarios["timed_outputs"]["differing"], 0, "{scenarios}");
    assert!(scenarios["timed_outputs"]["compared"].as_u64().unwrap() >= 700, "{scenarios}");
    assert!(scenarios["first_load_ms"].as_f64().unwrap() > 0.0, "{scenarios}");
}

/// An adapter in `dir` running `command` (TOML array items), with the shipped runner beside it;
/// outputs are read by position (`Result_i/k.raw`).
fn adapter(dir: &Path, command: &str, extra: &str) -> PathBuf {
    adapter_reading(dir, command, extra, "{k}")
}

fn adapter_reading(dir: &Path, command: &str, extra: &str, output: &str) -> PathBuf {
    std::fs::copy(root().join("adapters/ort_net_run.py"), dir.join("ort_net_run.py")).unwrap();
    let path = dir.join("adapter.toml");
    std::fs::write(
        &path,
        format!(
            r#"[adapter]
name = "test runtime"

[run]
command = [{command}]
batch = 64
{extra}

[inputs]
format = "raw"
file = "{{index}}/{{name}}.raw"

[outputs]
format = "raw"
file = "Result_{{index}}/{output}.raw"

[timing]
mode = "line"
line = "sample {{index}}: {{ms}} ms"
"#
        ),
    )
    .unwrap();
    path
}

/// An adapter running `script` (sh, given the model, the input list and the output folder) in
/// `dir`, beside the shipped runner, reading outputs by name.
fn wrapped_runtime(dir: &Path, script: &str) -> PathBuf {
    std::fs::write(dir.join("runtime.sh"), script).unwrap();
    let command = r#""sh", "{adapter_dir}/runtime.sh", "{model}", "{input_list}", "{output_dir}""#;
    adapter_reading(dir, command, "", "{name}")
}

#[test]
fn a_runtime_crashing_mid_run_keeps_its_finished_batches_and_the_same_command_resumes() {
    let Some(bin) = python_with_onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The second invocation dies as a vendor tool would on a driver fault; later ones work.
    let adapter = wrapped_runtime(
        dir.path(),
        r#"n=$(($(cat "$(dirname "$0")/calls" 2>/dev/null || echo 0) + 1)); echo $n > "$(dirname "$0")/calls"
[ "$n" -eq 2 ] && { echo "rknn_run: NPU driver fault (simulated)" >&2; exit 3; }
exec python3 "$(dirname "$0")/ort_net_run.py" --model "$1" --input_list "$2" --output_dir "$3"
"#,
    );
    let out = dir.path().join("out");
    let run = certify_exec(&out, &adapter, &["accuracy"], Some(&bin));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let accuracy = accuracy_of(&out);
    assert_eq!(accuracy["verdict"], "INCONCLUSIVE");
    let reason = accuracy["reason"].as_str().unwrap();
    assert!(reason.contains("failed (exit status: 3): rknn_run: NPU driver fault (simulated)"), "{reason}");
    assert!(reason.contains("64 finished samples are kept in"), "{reason}");

    let run = certify_exec(&out, &adapter, &["accuracy"], Some(&bin));
    assert!(run.stderr.contains("resuming from 64 finished samples"), "{}", run.stderr);
    assert_eq!(accuracy_of(&out)["verdict"], "PASS", "{}", run.stdout);
}

#[test]
fn a_runtime_whose_timed_outputs_differ_from_the_accuracy_runs_is_not_passed_on_latency() {
    let Some(bin) = python_with_onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A runtime whose results wander from run to run (as with nondeterministic kernels): every
    // output gets fresh noise of about 1e-5, too small to move a class, never the same twice.
    let adapter = wrapped_runtime(
        dir.path(),
        r#"python3 "$(dirname "$0")/ort_net_run.py" --model "$1" --input_list "$2" --output_dir "$3" || exit $?
exec python3 -c 'import glob, sys, numpy as np
for f in glob.glob(sys.argv[1] + "/Result_*/*.raw"):
    a = np.fromfile(f, dtype=np.float32)
    (a + np.random.uniform(-1e-5, 1e-5, a.shape).astype(np.float32)).tofile(f)' "$3"
"#,
    );
    let out = dir.path().join("out");
    let run = certify_exec(&out, &adapter, &["accuracy", "latency"], Some(&bin));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(&out, "shapes", "rk3588");
    assert_eq!(check(&cert, "accuracy")["verdict"], "PASS", "the noise moves no class");
    let latency = check(&cert, "latency");
    assert_eq!(latency["verdict"], "INCONCLUSIVE", "{latency}");
    let reason = latency["reason"].as_str().unwrap();
    assert!(reason.contains("the timed runs did not compute what was judged accurate"), "{reason}");
    let observations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("shapes/rk3588/observations.json")).unwrap()).unwrap();
    let test01 = &observations["timing"]["value"]["scenarios"]["timed_outputs"];
    let (compared, differing) = (test01["compared"].as_u64().unwrap(), test01["differing"].as_u64().unwrap());
    assert!(compared >= 700 && differing * 10 >= compared * 9, "{test01}");
}

#[test]
fn a_silent_runtime_is_killed_at_its_timeout_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    // A child left in the background holds the pipes: only killing the group ends it.
    let adapter = adapter(dir.path(), r#""sh", "-c", "sleep 30 & sleep 30""#, "timeout_s = 1");
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    let run = certify_exec(&out, &adapter, &["accuracy"], None);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(started.elapsed().as_secs() < 15, "took {:?}", started.elapsed());
    let reason = accuracy_of(&out)["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("gave no result within 1 s and was killed (run.timeout_s)"), "{reason}");
}

#[test]
fn a_runtime_writing_the_wrong_bytes_is_named_with_the_file_and_the_size_expected() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#""sh", "-c", "i=0; while [ $i -lt {count} ]; do mkdir -p {output_dir}/Result_$i; printf abc > {output_dir}/Result_$i/0.raw; echo \"sample $i: 1 ms\"; i=$((i+1)); done""#;
    let adapter = adapter(dir.path(), script, "");
    let out = dir.path().join("out");
    let run = certify_exec(&out, &adapter, &["accuracy"], None);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let reason = accuracy_of(&out)["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("Result_0/0.raw holds 3 bytes; output"), "{reason}");
    assert!(reason.contains("is 16 bytes of float32"), "{reason}");
}

#[test]
fn a_malformed_adapter_is_refused_naming_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = adapter(dir.path(), r#""true""#, "");
    let text = std::fs::read_to_string(&good).unwrap();
    for (edit, field, message) in [
        (text.replace("Result_{index}/{k}.raw", "../{index}/{k}.raw"), "outputs.file", "without `..`"),
        (text.replace("batch = 64", "batch = 0"), "run.batch", "1..=4096"),
        (text.replace(r#""true""#, r#""run", "{modle}""#), "run.command", "unknown placeholder {modle}"),
        (text.replace("mode = \"line\"", "mode = \"line\"\ncolour = 1"), "colour", "unknown field"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, edit).unwrap();
        let out = dir.path().join("never");
        let run = certify_exec(&out, &bad, &["accuracy"], None);
        assert_eq!(run.code, 2, "{field}: {}", run.stderr);
        assert!(run.stderr.contains("bad.toml:") && run.stderr.contains(field), "{field}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{field}: {}", run.stderr);
        assert!(!out.exists(), "nothing is written for a malformed adapter");
    }
}

#[test]
fn a_device_command_line_that_is_not_a_fact_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = adapter(dir.path(), r#""true""#, "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "name = \"test runtime\"",
        "name = \"test runtime\"\ndevice_command = [\"sh\", \"-c\", \"printf 'board: ROCK 5B\\\\nfirmware 1.2\\\\n'\"]",
    );
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    let run = certify_exec(&out, &path, &["accuracy"], None);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("adapter.device_command: line 2 is not `name: value`: \"firmware 1.2\""),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn an_exec_soak_reads_the_devices_sensors_through_its_adapter() {
    let Some(bin) = python_with_onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("adapters/ort_net_run.py"), dir.path().join("ort_net_run.py")).unwrap();
    // The device reports a hot NPU, its clock, and one line that is not a reading.
    let sensors = dir.path().join("sensors.txt");
    std::fs::write(&sensors, "zone npu-thermal: 95.0\nclock fdab0000.npu: 1000\nfan: fast\n").unwrap();
    let text = std::fs::read_to_string(root().join("adapters/onnxruntime-python.toml"))
        .unwrap()
        .replace("[run]\n", &format!("sensors_command = [\"cat\", \"{}\"]\n\n[run]\n", sensors.display()));
    let adapter = dir.path().join("adapter.toml");
    std::fs::write(&adapter, text).unwrap();
    let out = dir.path().join("out");
    let run = certify_exec(&out, &adapter, &["--soak", "2", "latency", "thermal"], Some(&bin));
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let thermal = check(&certificate(&out, "shapes", "rk3588"), "thermal").clone();
    assert_eq!(
        (thermal["verdict"].as_str(), thermal["basis"].as_str()),
        (Some("FAIL"), Some("measured")),
        "{thermal}"
    );
    assert!(thermal["reason"].as_str().unwrap().starts_with("npu-thermal reached 95.0 °C"), "{thermal}");
    let findings = thermal["findings"].to_string();
    assert!(
        findings.contains("sensors_command line 3: `fan: fast` is not `zone NAME: °C` or `clock NAME: MHz`"),
        "{findings}"
    );
    assert!(findings.contains("the sensors_command of adapter"), "{findings}");
}
