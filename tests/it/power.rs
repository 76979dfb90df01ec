//! Power metered beside the host backend's timed run decides the power check: a real meter
//! process streams watts, the certificate's figure and energy per inference are the trace's
//! integral over the timed window (checked by hand from the raw observations), too few samples
//! decide nothing, a meter that dies is named, a budget it exceeds FAILs, and a recorded log
//! gives the energy a hand calculation gives.

use crate::common;

use std::path::Path;

use common::*;

/// A meter process printing `watts` every `period` seconds.
fn meter(watts: f64, period: f64) -> String {
    format!("cmd:while :; do echo {watts}; sleep {period}; done")
}

/// The power check of shapes on `profile`, metered by `spec`; the certificate's path.
fn certify_power(out: &Path, profile: &Path, spec: &str) -> std::path::PathBuf {
    let run = certify_quietly(
        out,
        s(profile),
        "golden/shapes",
        &["--backend", "host", "--power-meter", spec, "shapes::"],
    );
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    std::fs::read_dir(out.join("shapes")).unwrap().next().unwrap().unwrap().path().join("certificate.json")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_metered_run_decides_power_on_the_trace_over_the_timed_window() {
    let dir = tempfile::tempdir().unwrap();
    let ascend = root().join("profiles/atlas200i-dk-a2.toml");
    let cert_path = certify_power(&dir.path().join("ok"), &ascend, &meter(5.0, 0.01));
    let cert = read_json(&cert_path);
    let power = check(&cert, "power");
    assert_eq!(
        (power["verdict"].as_str(), power["basis"].as_str()),
        (Some("PASS"), Some("measured")),
        "{power}"
    );
    let watts = power["measured"].as_f64().unwrap();
    assert!((watts - 5.0).abs() < 1e-9, "a constant 5 W trace averages 5 W: {power}");
    assert_eq!(power["limit"], 24.0);
    assert!(power["reason"].as_str().unwrap().contains("is within the 24 W budget"), "{power}");

    // By hand from the raw observations: 5 W × the window ÷ the inferences in it.
    let observations = read_json(&cert_path.with_file_name("observations.json"));
    let window = &observations["timing"]["value"]["power"]["value"];
    let seconds = window["to_s"].as_f64().unwrap() - window["from_s"].as_f64().unwrap();
    assert!(seconds >= 2.0, "a metered run lasts at least 2 s: {seconds}");
    let inferences = window["inferences"].as_u64().unwrap();
    assert_eq!(
        inferences as usize,
        observations["timing"]["value"]["latencies_ms"].as_array().unwrap().len()
    );
    let by_hand =
        format!("energy per inference {:.4} mJ (measured)", 5.0 * seconds / inferences as f64 * 1e3);
    assert!(power["findings"].as_array().unwrap().iter().any(|f| f == &by_hand), "{by_hand} in {power}");

    let recomputed = edgecert(&["verify", s(&cert_path), "--recompute"]);
    assert!(recomputed.stdout.contains("ok: check power: PASS reproduced"), "{}", recomputed.stdout);

    // Negative control: the same trace against a 1 W budget.
    let tight =
        derived_profile(dir.path(), "atlas200i-dk-a2", "tight", &[("typical_w = 24.0", "typical_w = 1.0")]);
    let cert = read_json(&certify_power(&dir.path().join("tight"), &tight, &meter(5.0, 0.01)));
    let power = check(&cert, "power");
    assert_eq!(power["verdict"], "FAIL", "{power}");
    assert!(power["reason"].as_str().unwrap().contains("is over the 1 W budget"), "{power}");

    // A board rated only by its maximum system load (the ROCK 5B's ~30 W) is held to that, and
    // the verdict names the field.
    let rock = root().join("profiles/rock5b-8gb.toml");
    let cert = read_json(&certify_power(&dir.path().join("rated"), &rock, &meter(5.0, 0.01)));
    let power = check(&cert, "power");
    assert_eq!(power["verdict"], "PASS", "{power}");
    assert!(power["reason"].as_str().unwrap().contains("is within the 30 W budget (power.max_w)"), "{power}");
}

#[test]
fn too_few_meter_samples_decide_nothing_and_a_dead_meter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ascend = root().join("profiles/atlas200i-dk-a2.toml");
    let cert = read_json(&certify_power(&dir.path().join("slow"), &ascend, &meter(5.0, 1.0)));
    let power = check(&cert, "power");
    assert_eq!(power["verdict"], "INCONCLUSIVE", "{power}");
    let reason = power["reason"].as_str().unwrap();
    assert!(
        reason.contains("meter sample(s) in the") && reason.contains("at least 10 are needed"),
        "{reason}"
    );

    let cert = read_json(&certify_power(&dir.path().join("dead"), &ascend, "cmd:echo 5.0; echo fault"));
    let power = check(&cert, "power");
    assert_eq!(power["verdict"], "INCONCLUSIVE", "{power}");
    assert!(power["reason"].as_str().unwrap().contains("line 2 is not a reading: \"fault\""), "{power}");
    assert_eq!(check(&cert, "latency")["basis"], "measured", "the latencies survive the meter's failure");

    // A meter command that fails at once is named with its status and stderr, not as too few
    // samples.
    let failing = "cmd:echo 'ina219: no device at 0x40' >&2; exit 3";
    let cert = read_json(&certify_power(&dir.path().join("failing"), &ascend, failing));
    let power = check(&cert, "power");
    assert_eq!(power["verdict"], "INCONCLUSIVE", "{power}");
    assert!(
        power["reason"].as_str().unwrap().contains(
            "the meter command `echo 'ina219: no device at 0x40' >&2; exit 3` exited with status 3: ina219: no device at 0x40"
        ),
        "{power}"
    );
}

#[test]
fn a_meter_needs_the_host_backend() {
    let run = edgecert(&["certify", "--golden", "golden/shapes", "--power-meter", "rapl"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--power-meter reads a meter beside a measured run: add --backend host"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_recorded_log_gives_the_energy_a_hand_calculation_gives() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("meter.csv");
    // 2 W rising to 4 W, 4 W for a second, back to 2 W: 3 + 4 + 3 = 10 J over 3 s.
    std::fs::write(&log, "seconds,watts\n0,2\n1,4\n2,4\n3,2\n").unwrap();
    let run = edgecert(&["power", s(&log), "--inferences", "100"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("10.000 J over 0.000..3.000 s (4 samples at 1.0 Hz), 3.333 W average"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("energy per inference: 100.0000 mJ (100 inferences)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("note: 4 samples in the window; the power check needs at least 10"),
        "{}",
        run.stdout
    );
    let json = edgecert(&["power", s(&log), "--inferences", "10", "--from", "0.5", "--to", "2.5", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["energy_j"], 7.5);
    assert_eq!(report["energy_per_inference_mj"], 750.0);

    let teg = dir.path().join("tegrastats.log");
    let lines: String =
        (0..20).map(|i| format!("RAM 1/2MB VDD_IN {}mW/5000mW\n", 4000 + 100 * (i % 2))).collect();
    std::fs::write(&teg, lines).unwrap();
    let run =
        edgecert(&["power", s(&teg), "--format", "tegrastats", "--interval-ms", "100", "--inferences", "19"]);
    // 19 intervals of 0.1 s averaging 4.05 W: 7.695 J; 405 mJ per inference.
    assert!(run.stdout.contains("energy per inference: 405.0000 mJ"), "{}\n{}", run.stdout, run.stderr);

    std::fs::write(&log, "0,2\n1,nope\n").unwrap();
    let bad = edgecert(&["power", s(&log), "--inferences", "1"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("meter.csv") && bad.stderr.contains("line 2: expected seconds,watts"),
        "{}",
        bad.stderr
    );
}
