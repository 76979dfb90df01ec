//! `certify --soak`: the host backend runs the model under sustained load and reads a sysfs
//! tree once a second (`--thermal-root`: the recorded ROCK 5B tree, copied, and heated by a
//! thread of the test as a chip heats); the thermal check decides on what it read, the latency
//! check on the worse of cold and hot p99, and `verify --recompute` decides both again from the
//! raw observations.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// The recorded ROCK 5B tree, copied under `dir` so a test may heat it.
pub fn rock5b(dir: &Path) -> PathBuf {
    let tree = dir.join("rock5b");
    let status = std::process::Command::new("cp")
        .args(["-r", s(&root().join("tests/fixtures/sysfs/rock5b")), s(&tree)])
        .status()
        .unwrap();
    assert!(status.success());
    tree
}

fn soak(out: &Path, tree: &Path, seconds: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["--backend", "host", "--soak", seconds, "--thermal-root", s(tree)];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["latency", "thermal"]);
    let run = certify_quietly(out, "profiles/rk3588.toml", "golden/shapes", &args);
    assert!(run.code <= 1, "{}", run.stderr);
    let cert = certificate(out, "shapes", "rk3588");
    (run, cert)
}

#[test]
fn a_short_soak_reads_every_zone_and_clock_and_says_how_long_would_decide() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let out = dir.path().join("out");
    let (_, cert) = soak(&out, &tree, "3", &[]);
    let thermal = check(&cert, "thermal");
    assert_eq!(
        (thermal["verdict"].as_str(), thermal["basis"].as_str()),
        (Some("INCONCLUSIVE"), Some("measured"))
    );
    assert_eq!(thermal["measured"], 42.5, "the hottest zone of the recorded idle tree");
    let reason = thermal["reason"].as_str().unwrap();
    assert!(
        reason.contains("a 3 s soak cannot show a steady temperature") && reason.contains("at least 120 s"),
        "{reason}"
    );
    let latency = check(&cert, "latency");
    let heat = latency["findings"][0].as_str().unwrap();
    assert!(heat.starts_with("cold p99 ") && heat.contains("hot (last 1 s of the soak) p99 "), "{heat}");

    let observations = read_json(&out.join("shapes/rk3588/observations.json"));
    let trace = &observations["timing"]["value"]["soak"]["value"];
    let samples = trace["samples"].as_array().unwrap();
    assert!(samples.len() >= 3, "one reading a second: {}", samples.len());
    assert_eq!(samples[0]["zones_c"].as_object().unwrap().len(), 7);
    assert_eq!(samples[0]["clocks_mhz"]["fdab0000.npu"], 1000.0);
    assert!(trace["latencies"].as_array().unwrap().len() > 100, "back to back for 3 s");
    assert!(trace["sensors"].as_str().unwrap().contains("rock5b"));

    // The verdicts come back the same from the raw observations alone.
    let run = edgecert(&["verify", s(&out.join("shapes/rk3588/certificate.json")), "--recompute"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// The NPU heating at 15 °C a second from 60 °C: over the throttle point within 2 s.
pub fn heating_fast(t: f64) -> f64 {
    60.0 + 15.0 * t
}

/// The NPU settling along a lumped curve, 40 → 70 °C with a 1.5 s time constant.
fn settling(t: f64) -> f64 {
    70.0 - 30.0 * (-t / 1.5).exp()
}

/// Runs `during` while a thread writes `curve(seconds since it started)` (°C) into the tree's
/// NPU zone every 10 ms, as its kernel would report it (millidegrees).
pub fn with_npu_at<T>(tree: &Path, curve: impl Fn(f64) -> f64 + Sync, during: impl FnOnce() -> T) -> T {
    assert_eq!(
        std::fs::read_to_string(tree.join("sys/class/thermal/thermal_zone6/type")).unwrap().trim(),
        "npu-thermal"
    );
    let npu = tree.join("sys/class/thermal/thermal_zone6/temp");
    with_sysfs_value(&npu, |t| 1000.0 * curve(t), during)
}

/// Runs `during` while a thread writes `value(seconds since it started)` into `file` every
/// 10 ms, each value written whole (a staged file, then a rename), as a kernel's would read.
fn with_sysfs_value<T>(file: &Path, value: impl Fn(f64) -> f64 + Sync, during: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = Instant::now();
            while !done.load(Ordering::Relaxed) {
                let staged = file.with_extension("new");
                std::fs::write(&staged, format!("{}\n", value(started.elapsed().as_secs_f64()) as i64))
                    .unwrap();
                std::fs::rename(&staged, file).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let result = during();
        done.store(true, Ordering::Relaxed);
        result
    })
}

#[test]
fn a_big_core_clock_dropping_under_load_is_throttling_with_when() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let big = tree.join("sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq");
    let out = dir.path().join("out");
    // Full clock (kHz) for 4.5 s, then the governor's thermal cap: well after the soak's first
    // third (its level) and before its end, however long the timed run before it took.
    let clock = |t: f64| if t < 4.5 { 2_352_000.0 } else { 1_200_000.0 };
    let (_, cert) = with_sysfs_value(&big, clock, || soak(&out, &tree, "6", &[]));
    let thermal = check(&cert, "thermal");
    assert_eq!(thermal["verdict"], "FAIL", "{thermal}");
    let reason = thermal["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "throttling under constant load: clock cpu.policy4 dropped from 2352 MHz to 1200 MHz at "
        ),
        "{reason}"
    );
    // The control: the same soak with the clock left alone does not see throttling.
    let calm = dir.path().join("calm");
    let (_, cert) = soak(&calm, &tree, "6", &[]);
    assert!(
        !check(&cert, "thermal")["reason"].as_str().unwrap().contains("throttling"),
        "{}",
        check(&cert, "thermal")
    );
}

#[test]
fn a_device_heating_past_its_throttle_point_fails_thermal_with_when() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let out = dir.path().join("out");
    let (_, cert) = with_npu_at(&tree, heating_fast, || soak(&out, &tree, "3", &[]));
    let thermal = check(&cert, "thermal");
    assert_eq!(thermal["verdict"], "FAIL", "{thermal}");
    let reason = thermal["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("npu-thermal reached ") && reason.contains("at or over the 85 °C throttle point"),
        "{reason}"
    );
    assert!(thermal["measured"].as_f64().unwrap() >= 85.0);
}

#[test]
fn a_soak_corrected_to_a_worse_ambient_fails_where_the_stated_one_would_not() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let out = dir.path().join("out");
    // 42.5 °C at 20 °C ambient is 87.5 °C at 65 °C, over the 85 °C throttle point.
    let (_, cert) = soak(&out, &tree, "2", &["--ambient", "20", "--ambient-max", "65"]);
    let thermal = check(&cert, "thermal");
    assert_eq!(thermal["verdict"], "FAIL", "{thermal}");
    assert_eq!(thermal["measured"], 87.5);
    let correction = thermal["findings"][0].as_str().unwrap();
    assert!(correction.contains("linearly in the temperature rise: 42.5 → 87.5 °C"), "{correction}");
}

#[test]
fn soak_options_that_cannot_hold_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let refused = |args: &[&str], message: &str| {
        let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!out.exists(), "{args:?} wrote reports");
    };
    refused(
        &["--soak", "5"],
        "--soak runs the model under sustained load on a device: add --backend host, remote or exec",
    );
    refused(&["--backend", "host", "--soak", "0"], "--soak 0: expected seconds in (0, 86400]");
    refused(
        &["--backend", "host", "--soak", "5", "--soak-rate", "0"],
        "--soak-rate 0: expected inferences per second",
    );
    refused(
        &["--backend", "host", "--soak", "5", "--thermal-root", "/nonexistent/sys"],
        "--thermal-root /nonexistent/sys: not a folder",
    );
    refused(
        &[
            "--backend",
            "remote",
            "--device",
            "127.0.0.1:9",
            "--soak",
            "5",
            "--thermal-root",
            "tests/fixtures/sysfs/rock5b",
        ],
        "a device's soak reads its own sensors (the agent's --system-root",
    );
    refused(&["--backend", "host", "--ambient-max", "1000"], "--ambient-max 1000: expected °C in -60..=150");
}

#[test]
fn thermal_fit_measures_a_boards_resistance_and_its_emulated_certificates_then_decide() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let out = dir.path().join("soak");
    // A meter reading 2 W while the board idles before the load, then a steady 5 W under it:
    // R = (70 − 25) / 5 = 9 °C/W.
    let meter = "cmd:i=0; while true; do if [ $i -lt 50 ]; then echo 2.0; else echo 5.0; fi; i=$((i+1)); sleep 0.05; done";
    let args = ["--ambient", "25", "--power-meter", meter];
    with_npu_at(&tree, settling, || soak(&out, &tree, "8", &args));
    let cert = out.join("shapes/rk3588/certificate.json");
    let id = read_json(&cert)["certificate_id"].as_str().unwrap().to_string();
    let run = edgecert(&["thermal", "fit", s(&cert)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snippet: toml::Value = toml::from_str(&run.stdout).unwrap();
    let r = snippet["thermal"]["resistance_c_per_w"].as_float().unwrap();
    let tau = snippet["thermal"]["time_constant_s"].as_float().unwrap();
    assert!((r - 9.0).abs() < 1.0, "R {r} °C/W\n{}", run.stdout);
    assert!((tau - 1.5).abs() < 0.6, "τ {tau} s\n{}", run.stdout);
    let idle = snippet["power"]["idle_w"].as_float().unwrap();
    assert!((1.9..3.0).contains(&idle), "idle {idle} W\n{}", run.stdout);
    let source = snippet["sources"]["thermal_fit"].as_str().unwrap();
    assert!(
        source.starts_with("measured: edgecert thermal fit of certificate ") && source.contains(&id),
        "{source}"
    );

    // A board profile carrying the fit: its emulated thermal check now decides, and says where
    // the figures were measured (the chip's own profile gives no thermal resistance).
    let board = dir.path().join("rock5b-fitted.toml");
    std::fs::copy(root().join("profiles/rk3588.toml"), dir.path().join("rk3588.toml")).unwrap();
    let profile = std::fs::read_to_string(root().join("profiles/rock5b-8gb.toml"))
        .unwrap()
        .replace("name = \"rock5b-8gb\"", "name = \"rock5b-fitted\"")
        .replace("[power]\n", &format!("[power]\nidle_w = {idle}\n"))
        .replace(
            "[sources]\n",
            &format!("[sources]\nthermal_fit = {}\n", toml::Value::String(source.into())),
        );
    let thermal = format!("\n[thermal]\nresistance_c_per_w = {r}\ntime_constant_s = {tau}\n");
    std::fs::write(&board, profile + &thermal).unwrap();
    let emulated = dir.path().join("emulated");
    let run = certify_quietly(&emulated, s(&board), "golden/shapes", &["thermal", "power"]);
    assert!(run.code <= 1, "{}", run.stderr);
    let cert = certificate(&emulated, "shapes", "rock5b-fitted");
    let power = check(&cert, "power")["reason"].as_str().unwrap().to_string();
    assert!(power.contains(&format!("{idle:.3} W idle, measured (power.idle_w)")), "{power}");
    let check = check(&cert, "thermal").clone();
    assert_ne!(check["verdict"], "INCONCLUSIVE", "{check}");
    assert_eq!(check["basis"], "emulated");
    assert!(
        check["findings"]
            .to_string()
            .contains("thermal resistance and time constant measured: edgecert thermal fit"),
        "{check}"
    );
}

#[test]
fn thermal_fit_refuses_a_soak_that_cannot_give_a_resistance() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let out = dir.path().join("soak");
    soak(&out, &tree, "2", &[]);
    let cert = out.join("shapes/rk3588/certificate.json");
    let run = edgecert(&["thermal", "fit", s(&cert)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("certificate.json")
            && run.stderr.contains("states no ambient (certify --ambient C)"),
        "{}",
        run.stderr
    );
    let stated = dir.path().join("stated");
    soak(&stated, &tree, "2", &["--ambient", "25"]);
    let run = edgecert(&["thermal", "fit", s(&stated.join("shapes/rk3588/certificate.json"))]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("its soak ran without a power meter (--power-meter)"), "{}", run.stderr);
    let emulated = dir.path().join("emulated");
    let _ = certify_quietly(&emulated, "profiles/rk3588.toml", "golden/shapes", &["thermal"]);
    let run = edgecert(&["thermal", "fit", s(&emulated.join("shapes/rk3588/certificate.json"))]);
    assert!(run.code == 2 && run.stderr.contains("records no soak"), "{}", run.stderr);
}

#[test]
fn a_bad_tree_is_named_in_the_findings_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let tree = rock5b(dir.path());
    let zones = tree.join("sys/class/thermal");
    std::fs::write(zones.join("thermal_zone1/temp"), "hot\n").unwrap();
    std::fs::remove_file(zones.join("thermal_zone2/temp")).unwrap();
    let out = dir.path().join("out");
    let (_, cert) = std::thread::scope(|scope| {
        // The NPU's zone goes away partway, as a driver unloading would take it.
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(2500));
            std::fs::remove_dir_all(zones.join("thermal_zone6")).unwrap();
        });
        soak(&out, &tree, "4", &[])
    });
    let thermal = check(&cert, "thermal");
    assert_eq!(thermal["verdict"], "INCONCLUSIVE", "{thermal}");
    let findings = thermal["findings"].to_string();
    assert!(findings.contains("thermal_zone1/temp: `hot` is not millidegrees"), "{findings}");
    assert!(findings.contains("thermal_zone2/temp: absent, unreadable or empty"), "{findings}");
    assert!(findings.contains("zone npu-thermal stopped reporting at "), "{findings}");
}

#[test]
fn an_exec_adapter_without_a_sensors_command_cannot_soak() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter.toml");
    let text = std::fs::read_to_string(root().join("adapters/onnxruntime-python.toml")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("version_command") && !l.starts_with("device_command"))
        .collect();
    std::fs::write(&adapter, kept.join("\n")).unwrap();
    let out = dir.path().join("out");
    let args = ["--backend", "exec", "--adapter", s(&adapter), "--soak", "5"];
    let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("has no sensors_command (zone NAME: °C, clock NAME: MHz per line"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}
