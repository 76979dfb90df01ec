//! Helpers for end-to-end tests: run the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use edgecert::golden::raster::encode_png;
use edgecert::model::writer::encode;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The full reference certification (`edgecert certify --out DIR`, the README's first command),
/// run once per test binary for the tests that only read what it wrote: on two cores each run
/// takes a minute. Its folder is under cargo's scratch space for tests, emptied first.
pub fn reference_run() -> &'static (PathBuf, Run) {
    static RUN: std::sync::OnceLock<(PathBuf, Run)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reference-run");
        if out.exists() {
            std::fs::remove_dir_all(&out).unwrap();
        }
        let run = edgecert(&["certify", "--out", s(&out)]);
        (out, run)
    })
}

/// Runs `edgecert` from the repository root.
pub fn edgecert(args: &[&str]) -> Run {
    edgecert_with_env(args, &[])
}

/// Runs `edgecert` from the repository root with environment variables set (`Some`) or
/// removed (`None`).
pub fn edgecert_with_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgecert"));
    command.args(args).current_dir(root());
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().expect("the edgecert binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The certificate of (family, chip) under `out`.
pub fn certificate(out: &Path, family: &str, chip: &str) -> serde_json::Value {
    let path = out.join(family).join(chip).join("certificate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("certificate is JSON")
}

/// The verdict object of one check in a certificate.
pub fn check<'a>(cert: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    cert["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {cert}"))
}

/// A chip profile derived from a bundled one by text replacements, written into `dir`.
pub fn derived_profile(dir: &Path, base: &str, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join("profiles").join(format!("{base}.toml"))).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{base}.toml has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(format!("{name}.toml"));
    copy_parents(dir, &text);
    std::fs::write(&path, text).unwrap();
    path
}

/// Copies the profiles a board profile's text extends (and theirs) into `dir`, so it resolves there.
fn copy_parents(dir: &Path, text: &str) {
    let parent = text.lines().find_map(|l| l.strip_prefix("extends = \"")?.strip_suffix('"'));
    if let Some(parent) = parent {
        let parent_text =
            std::fs::read_to_string(root().join("profiles").join(format!("{parent}.toml"))).unwrap();
        copy_parents(dir, &parent_text);
        std::fs::write(dir.join(format!("{parent}.toml")), parent_text).unwrap();
    }
}

/// A copy of a bundled golden set that a test may alter.
pub fn copied_golden(dir: &Path, family: &str) -> PathBuf {
    let src = root().join("golden").join(family);
    let dst = dir.join(family);
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// Every file under `dir` (recursively), for asserting that nothing was written.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// `certify` of the golden set(s) `golden` on profile(s) `profile` into `out`, quietly, with
/// `extra` arguments.
pub fn certify_quietly(out: &Path, profile: &str, golden: &str, extra: &[&str]) -> Run {
    certify_quietly_with_env(out, profile, golden, extra, &[])
}

/// [`certify_quietly`] with environment variables set (`Some`) or removed (`None`).
pub fn certify_quietly_with_env(
    out: &Path,
    profile: &str,
    golden: &str,
    extra: &[&str],
    env: &[(&str, Option<&str>)],
) -> Run {
    let mut args = vec!["certify", "-q", "--out", s(out), "--profile", profile, "--golden", golden];
    args.extend_from_slice(extra);
    edgecert_with_env(&args, env)
}

/// A copy of the RK3588 profile whose NPU is far too slow for any latency budget.
pub fn slow_npu_profile(dir: &Path) -> PathBuf {
    derived_profile(dir, "rk3588", "slow-npu", &[("peak_tops_int8 = 6.0", "peak_tops_int8 = 0.0001")])
}

/// The bundled int8 model of `family`, decoded for editing.
pub fn int8_model_of(family: &str) -> pb::ModelProto {
    let bytes = std::fs::read(root().join(format!("golden/{family}/{family}_int8.onnx"))).unwrap();
    pb::ModelProto::decode(bytes.as_slice()).unwrap()
}

/// `model` written as `dir/name`.
pub fn write_model(dir: &Path, name: &str, model: &pb::ModelProto) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, encode(model)).unwrap();
    p
}

/// The int8 model of `family` with every int8 weight tensor reversed: same bytes, same size,
/// scrambled meaning, so accuracy collapses while every static check still passes.
pub fn corrupted_int8_model(dir: &Path, family: &str) -> PathBuf {
    let mut model = int8_model_of(family);
    for t in &mut model.graph.as_mut().unwrap().initializer {
        if t.data_type == DataType::Int8 as i32 && t.raw_data.len() > 16 {
            t.raw_data.reverse();
        }
    }
    write_model(dir, "corrupted.onnx", &model)
}

/// Replaces the raw observations beside `certificate` with `bytes` and binds the certificate to
/// them again (digest, then id), as a run would have issued it: what a careful forger, or a
/// test of what a reader does with the observations, writes.
pub fn rebind_observations_bytes(certificate: &Path, bytes: &[u8]) {
    let mut cert = edgecert::certificate::parse_certificate(certificate).unwrap();
    let named = cert.observations.as_mut().expect("the certificate names its observations");
    (named.sha256, named.size_bytes) = (edgecert::vocab::hash::sha256_hex(bytes), bytes.len() as u64);
    std::fs::write(certificate.with_file_name("observations.json"), bytes).unwrap();
    std::fs::write(certificate, cert.seal().to_json()).unwrap();
}

/// [`rebind_observations_bytes`] with the present observations edited as JSON.
pub fn rebind_observations(certificate: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = certificate.with_file_name("observations.json");
    let mut observations: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut observations);
    rebind_observations_bytes(certificate, &serde_json::to_vec(&observations).unwrap());
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A certificate without what differs between two runs of the same inputs by design: the issue
/// time, the id sealed over it, and the test period (`environment`'s start and end).
pub fn without_volatile(mut cert: serde_json::Value) -> serde_json::Value {
    let obj = cert.as_object_mut().unwrap();
    obj.remove("issued_at");
    obj.remove("certificate_id");
    let environment = obj.get_mut("environment").and_then(|e| e.as_object_mut()).expect("test conditions");
    environment.remove("started_at");
    environment.remove("finished_at");
    cert
}
