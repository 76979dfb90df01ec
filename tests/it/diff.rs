//! `edgecert diff` and `certify --baseline`, end to end: a run against itself, a degraded model
//! against the normal run, latency samples shifted by a lot, by a hair and not at all, and the
//! bad inputs that must stop both commands.
//!
//! Every run certifies the shapes family on RK3588 only (one certificate, about a second).

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use edgecert::diff::p_value_text;
use edgecert::stats::{mann_whitney_greater, SplitMix64};
use serde_json::Value;

const PROFILE: &str = "profiles/rk3588.toml";
const GOLDEN: &str = "golden/shapes";

/// A folder under cargo's per-target test scratch space, emptied first: shared runs outlive a
/// test (a `TempDir` in a static would never be removed).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diff-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The normal run, shared by every test that needs a baseline.
fn baseline() -> &'static Path {
    static BASELINE: OnceLock<PathBuf> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let out = scratch("baseline");
        let run = certify_quietly(&out, PROFILE, GOLDEN, &[]);
        assert_eq!(run.code, 1, "the reference run is INCONCLUSIVE on rk3588: {}", run.stderr);
        out
    })
}

/// `certify --baseline` of the shapes model with scrambled weights: (output folder, the run).
fn degraded() -> &'static (PathBuf, Run) {
    static DEGRADED: OnceLock<(PathBuf, Run)> = OnceLock::new();
    DEGRADED.get_or_init(|| {
        let dir = scratch("degraded");
        let model = corrupted_int8_model(&dir, "shapes");
        let out = dir.join("out");
        let run =
            certify_quietly(&out, PROFILE, GOLDEN, &["--model", s(&model), "--baseline", s(baseline())]);
        (out, run)
    })
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

fn regressions_of_kind<'a>(diff: &'a Value, kind: &str) -> Vec<&'a Value> {
    diff["regressions"].as_array().unwrap().iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn a_run_diffed_against_itself_reports_no_regression() {
    let base = s(baseline());
    let run = edgecert(&["diff", base, base]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("## edgecert diff\n\n**no regression**"), "{}", run.stdout);
    assert!(!run.stdout.contains("### Regressions") && !run.stdout.contains("### Verdict changes"));
    assert!(
        run.stdout.contains(
            "<details><summary>Unchanged: 8 check verdicts, 5 metric values within the baseline's interval, 1 latency distribution without a regression"
        ),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("| shapes on rk3588 | INCONCLUSIVE → INCONCLUSIVE | 8 of 8 | 5 of 5 | median "));

    // A certificate file against its own output folder: the same certificate, found both ways,
    // and the emulator's 1000 latencies against themselves.
    let file = baseline().join("shapes/rk3588/certificate.json");
    let run = edgecert(&["diff", s(&file), base, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let diff = json(&run);
    assert_eq!(diff["verdict"], "no regression");
    assert_eq!(diff["regressions"], serde_json::json!([]));
    assert_eq!(diff["certificates"][0]["values_held"], 5);
    let latency = &diff["latency"][0];
    assert_eq!(
        (&latency["status"], &latency["samples_new"]),
        (&"compared".into(), &1000.into()),
        "{latency}"
    );
    assert_eq!(latency["u"], 1000.0 * 1000.0 / 2.0);
    assert_eq!(latency["regression"], false);

    // The certificate copied without its observations: nothing to compare latencies with.
    let alone = scratch("certificate-alone").join("shapes/rk3588");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(&file, alone.join("certificate.json")).unwrap();
    let run = edgecert(&["diff", base, s(&alone)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let missing = alone.join("observations.json");
    let expected =
        format!("shapes on rk3588: latency not compared: no per-sample latencies in {}", missing.display());
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
}

#[test]
fn certify_against_its_own_baseline_keeps_the_run_s_exit_code() {
    let out = scratch("same-as-baseline");
    let run = certify_quietly(&out, PROFILE, GOLDEN, &["--baseline", s(baseline())]);
    assert_eq!(run.code, 1, "INCONCLUSIVE and no regression: {}{}", run.stdout, run.stderr);
    let written = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(written.contains("**no regression**"), "{written}");
    assert!(run.stdout.ends_with(&written), "the Markdown follows the usual output: {}", run.stdout);
    assert!(run.stdout.contains("certify result: INCONCLUSIVE"));
}

#[test]
fn certify_with_a_degraded_model_against_the_baseline_exits_3_and_writes_diff_md() {
    let (out, run) = degraded();
    assert_eq!(run.code, 3, "a regression against the baseline: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("certify result: FAILED"), "the usual output comes first: {}", run.stdout);
    let written = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(run.stdout.ends_with(&written), "{}", run.stdout);
    assert!(written.contains("### Regressions\n\n| certificate | kind | what got worse |"), "{written}");
    assert!(
        written.contains("| shapes on rk3588 | accuracy | top-1 accuracy primary 0.996 → "),
        "names family, chip, metric and key: {written}"
    );
    assert!(written.contains("below the baseline's 95 % interval [0.990, 1.000]"), "{written}");
    assert!(written.contains("| shapes on rk3588 | accuracy | PASS | **FAIL** |"), "{written}");
    assert!(written.contains("- shapes on rk3588: the model changed (sha256 "), "{written}");
}

#[test]
fn diff_of_a_degraded_model_against_the_normal_run_names_family_chip_and_metric() {
    let (out, _) = degraded();
    let run = edgecert(&["diff", s(baseline()), s(out), "--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let diff = json(&run);
    let primary = regressions_of_kind(&diff, "accuracy")
        .into_iter()
        .find(|r| r["key"] == "primary")
        .unwrap_or_else(|| panic!("no accuracy regression of the primary value: {diff}"));
    assert_eq!((&primary["family"], &primary["chip"]), (&"shapes".into(), &"rk3588".into()));
    assert_eq!(primary["metric"], "top-1 accuracy");
    assert_eq!(primary["old"], 0.996);
    let (new, low) = (primary["new"].as_f64().unwrap(), primary["old_interval"]["low"].as_f64().unwrap());
    assert!(new < low && new < 0.85, "{primary}");
    let verdicts = regressions_of_kind(&diff, "verdict");
    assert!(verdicts.iter().any(|r| r["check"] == "accuracy" && r["old"] == "PASS" && r["new"] == "FAIL"));
    assert!(diff["artifact_changes"].as_array().unwrap().iter().any(|a| a["artifact"] == "model"));
    assert_eq!(diff["verdict"], format!("{} regressions", diff["regressions"].as_array().unwrap().len()));

    // --markdown FILE: the summary goes to the file, the verdict line to standard output.
    let file = out.join("pr-comment.md");
    let run = edgecert(&["diff", s(baseline()), s(out), "--markdown", s(&file)]);
    assert_eq!(run.code, 1);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("| shapes on rk3588 | accuracy | top-1 accuracy primary 0.996 → "), "{written}");
    assert_eq!(run.stdout, format!("{}: written to {}\n", diff["verdict"].as_str().unwrap(), file.display()));
}

/// Log-normal latencies around `median_ms` with a spread of `sigma` (log scale), reproducible.
fn latencies(seed: u64, n: usize, median_ms: f64, sigma: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| median_ms * (sigma * rng.normal()).exp()).collect()
}

/// A copy of the baseline's certificate in `dir` whose observations hold these latencies, the
/// certificate bound again to them (digest, then id) as a run would have issued it.
fn certificate_with_latencies(dir: &Path, latencies_ms: &[f64]) {
    let from = baseline().join("shapes/rk3588");
    std::fs::create_dir_all(dir).unwrap();
    for file in ["certificate.json", "observations.json"] {
        std::fs::copy(from.join(file), dir.join(file)).unwrap();
    }
    rebind_observations(&dir.join("certificate.json"), |observations| {
        assert_eq!(observations["timing"]["status"], "observed");
        observations["timing"]["value"]["latencies_ms"] = serde_json::json!(latencies_ms);
    });
}

/// OLD and NEW, each the baseline's certificate with these latencies; the `diff --json` run.
fn diff_latencies(name: &str, old: &[f64], new: &[f64]) -> Run {
    let dir = scratch(name);
    certificate_with_latencies(&dir.join("old/shapes/rk3588"), old);
    certificate_with_latencies(&dir.join("new/shapes/rk3588"), new);
    edgecert(&["diff", s(&dir.join("old")), s(&dir.join("new")), "--json"])
}

#[test]
fn latencies_20_percent_slower_are_a_regression_named_with_the_test_s_p_value() {
    let old = latencies(1, 300, 1.0, 0.05);
    let new: Vec<f64> = latencies(2, 300, 1.0, 0.05).iter().map(|v| v * 1.2).collect();
    let run = diff_latencies("slower", &old, &new);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let diff = json(&run);
    let latency = regressions_of_kind(&diff, "latency");
    assert_eq!(latency.len(), 1, "{diff}");
    let expected = mann_whitney_greater(&new, &old).unwrap();
    assert_eq!(latency[0]["u"], expected.u);
    assert_eq!(latency[0]["p_value"], expected.p_value);
    assert!(expected.p_value < 1e-10, "{expected:?}");
    let ratio = latency[0]["median_new_ms"].as_f64().unwrap() / latency[0]["median_old_ms"].as_f64().unwrap();
    assert!((ratio - 1.2).abs() < 0.03, "median ratio {ratio}");
    let detail = latency[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("latency slower: median "), "{detail}");
    assert!(detail.contains(&format!(
        "one-sided Mann–Whitney U = {}, p = {}",
        expected.u,
        p_value_text(expected.p_value)
    )));
    assert!(detail.contains("(n = 300 → 300, emulated)"), "{detail}");
    assert!(
        regressions_of_kind(&diff, "verdict").is_empty() && regressions_of_kind(&diff, "accuracy").is_empty()
    );
}

#[test]
fn a_tiny_shift_over_many_samples_is_significant_but_no_regression() {
    let old = latencies(3, 20_000, 1.0, 0.01);
    let new: Vec<f64> = latencies(4, 20_000, 1.0, 0.01).iter().map(|v| v * 1.001).collect();
    let run = diff_latencies("tiny-shift", &old, &new);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let diff = json(&run);
    let test = &diff["latency"][0];
    assert_eq!(test["status"], "compared");
    assert_eq!(test["significant"], true, "the rank test sees a 0.1 % shift over 20000 samples: {test}");
    assert_eq!((&test["practical"], &test["regression"]), (&false.into(), &false.into()), "{test}");
    assert_eq!(diff["verdict"], "no regression");
}

#[test]
fn identical_latencies_are_no_regression() {
    let same = latencies(5, 500, 2.0, 0.1);
    let run = diff_latencies("identical", &same, &same);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let test = &json(&run)["latency"][0];
    assert_eq!(test["u"], 500.0 * 500.0 / 2.0);
    assert!(test["p_value"].as_f64().unwrap() > 0.4, "{test}");
    assert_eq!(test["regression"], false);
}

#[test]
fn bad_input_exits_2_naming_the_path() {
    let dir = scratch("bad-input");
    let empty = dir.join("empty");
    std::fs::create_dir_all(empty.join("shapes/rk3588")).unwrap();
    let garbage = dir.join("garbage/shapes/rk3588");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("certificate.json"), "{ not json").unwrap();
    let bad_observations = dir.join("bad-observations/shapes/rk3588");
    std::fs::create_dir_all(&bad_observations).unwrap();
    std::fs::copy(
        baseline().join("shapes/rk3588/certificate.json"),
        bad_observations.join("certificate.json"),
    )
    .unwrap();
    // Observations that are not the ones the certificate is bound to.
    std::fs::write(bad_observations.join("observations.json"), r#"{"timing": null}"#).unwrap();
    let missing = dir.join("missing");
    let cases: [(PathBuf, String); 4] = [
        (empty.clone(), format!("{}: no certificates found", empty.display())),
        (dir.join("garbage"), format!("{}: not JSON", garbage.join("certificate.json").display())),
        (
            dir.join("bad-observations"),
            format!("{}: hashes to ", bad_observations.join("observations.json").display()),
        ),
        (missing.clone(), format!("{}: ", missing.display())),
    ];
    for (path, message) in &cases {
        let run = edgecert(&["diff", s(baseline()), s(path)]);
        assert_eq!(run.code, 2, "{}: {}", path.display(), run.stderr);
        assert!(run.stderr.contains(message), "expected `{message}` in: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }

    // A bad baseline stops certify before anything runs or is written.
    let out = dir.join("out");
    let run = certify_quietly(&out, PROFILE, GOLDEN, &["--baseline", s(&empty)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{}: no certificates found", empty.display())), "{}", run.stderr);
    assert!(run.stdout.is_empty() && files_under(&out).is_empty(), "{}", run.stdout);
}
