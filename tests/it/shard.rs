//! `certify --shard K/N` in separate processes and `edgecert merge`: the merged reports are the
//! single run's (bar timestamps and ids), a shard comes from the scheduler's environment, and
//! partial results that are not every shard of one plan are refused.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Two families on two chips: four (family, chip) units.
const INPUTS: [&str; 8] = [
    "--golden",
    "golden/shapes",
    "--golden",
    "golden/chassis",
    "--profile",
    "profiles/rk3588.toml",
    "--profile",
    "profiles/qcs6490.toml",
];

fn certify_into(out: &Path, extra: &[&str]) -> Run {
    certify_inputs(out, &INPUTS, extra)
}

fn certify_inputs(out: &Path, inputs: &[&str], extra: &[&str]) -> Run {
    let mut args = vec!["certify", "-q", "--out", s(out)];
    args.extend_from_slice(inputs);
    args.extend_from_slice(extra);
    edgecert(&args)
}

/// Sample shards 1..=n of `inputs`, each certified by its own process.
fn sample_shards(dir: &Path, inputs: &[&str], n: usize) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let out = dir.join(format!("samples-{k}"));
            let run =
                certify_inputs(&out, inputs, &["--shard", &format!("{k}/{n}"), "--shard-by", "samples"]);
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert!(run.stdout.contains("`edgecert merge` issues the certificates"), "{}", run.stdout);
            assert!(files_under(&out).iter().all(|f| !f.ends_with("certificate.json")), "no certificate");
            out
        })
        .collect()
}

fn shards(dir: &Path, n: usize) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let out = dir.join(format!("shard-{k}"));
            let run = certify_into(&out, &["--shard", &format!("{k}/{n}")]);
            assert!(run.code <= 1, "{}", run.stderr);
            out
        })
        .collect()
}

fn merge(out: &Path, partials: &[PathBuf]) -> Run {
    let mut args = vec!["merge", "--out", s(out)];
    args.extend(partials.iter().map(|p| s(p)));
    edgecert(&args)
}

/// The (family, chip) units of [`INPUTS`].
const UNITS: [(&str, &str); 4] =
    [("shapes", "rk3588"), ("shapes", "qcs6490"), ("chassis", "rk3588"), ("chassis", "qcs6490")];

/// Merges `partials` into `merged` and compares every certificate of `units` (bar timestamp and
/// id), its raw observations and its JUnit file with the single run's.
fn merge_like_the_single_run(single: &Path, partials: &[PathBuf], merged: &Path, units: &[(&str, &str)]) {
    let run = merge(merged, partials);
    assert_eq!(run.code, 1, "not every certificate passes: {}\n{}", run.stdout, run.stderr);
    let line = format!("merged {} certificates from {} shards", units.len(), partials.len());
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    for (family, chip) in units {
        let (a, b) = (single.join(family).join(chip), merged.join(family).join(chip));
        assert_eq!(
            without_volatile(read_json(&a.join("certificate.json"))),
            without_volatile(read_json(&b.join("certificate.json"))),
            "{family} on {chip}"
        );
        for file in ["observations.json", "junit.xml"] {
            let read = |d: &Path| std::fs::read(d.join(file)).unwrap();
            assert!(read(&a) == read(&b), "{family} on {chip}: {file}");
        }
    }
}

#[test]
fn merged_shards_are_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    assert_eq!(certify_into(&single, &[]).code, 1);
    let partials = shards(dir.path(), 3);
    // Shard 1 of 3 holds units 0 and 3; the others one each; none holds another's.
    let held = |p: &Path| files_under(p).into_iter().filter(|f| f.ends_with("certificate.json")).count();
    assert_eq!(partials.iter().map(|p| held(p)).collect::<Vec<_>>(), vec![2, 1, 1]);

    let merged = dir.path().join("merged");
    merge_like_the_single_run(&single, &partials, &merged, &UNITS);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&single.join("junit.xml")), read(&merged.join("junit.xml")));
    let table = |p: &Path| {
        read(p).lines().filter(|l| !l.starts_with("certify result")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(table(&single.join("summary.txt")), table(&merged.join("summary.txt")));
    let verify = edgecert(&["verify", "--recompute", s(&merged.join("chassis/qcs6490/certificate.json"))]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

#[test]
fn the_scheduler_s_environment_assigns_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("indexed-job");
    let with_env = |vars: &[(&str, &str)], out: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_edgecert"));
        command.args(["certify", "-q", "--out", s(out)]).args(INPUTS).current_dir(root());
        for (k, v) in vars {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let done = with_env(&[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "3")], &out);
    assert_eq!(done.status.code(), Some(1), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stderr).contains("certifying shard 2/3 (JOB_COMPLETION_INDEX"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("shard.json")).unwrap()).unwrap();
    assert_eq!(record["shard"], serde_json::json!({"index": 2, "count": 3}));
    assert!(out.join("shapes/qcs6490/certificate.json").exists(), "unit 1 is shard 2's");
    assert!(!out.join("shapes/rk3588").exists());

    let slurm = dir.path().join("slurm");
    let done = with_env(
        &[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "2")],
        &slurm,
    );
    assert_eq!(done.status.code(), Some(1));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(slurm.join("shard.json")).unwrap()).unwrap();
    assert_eq!(record["shard"], serde_json::json!({"index": 1, "count": 2}));

    let half = with_env(&[("JOB_COMPLETION_INDEX", "0")], &dir.path().join("half"));
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("JOB_COMPLETIONS is not"), "{:?}", half);
    let bad = certify_into(&dir.path().join("bad"), &["--shard", "4/3"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("expected K/N with 1 ≤ K ≤ N"), "{}", bad.stderr);
}

#[test]
fn partials_that_are_not_every_shard_of_one_plan_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let partials = shards(dir.path(), 3);
    let merged = dir.path().join("merged");
    let merge = |parts: &[&Path]| {
        let mut args = vec!["merge", "--out", s(&merged)];
        args.extend(parts.iter().map(|p| s(p)));
        edgecert(&args)
    };
    let missing = merge(&[&partials[0], &partials[2]]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("shard 2/3 is missing"), "{}", missing.stderr);
    let twice = merge(&[&partials[0], &partials[1], &partials[1], &partials[2]]);
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("shard 2/3 is given twice"), "{}", twice.stderr);

    let other = dir.path().join("other-plan");
    let mut args = vec!["certify", "-q", "--out", s(&other), "--golden", "golden/shapes", "--shard", "2/3"];
    args.extend(["--profile", "profiles/rk3588.toml", "--profile", "profiles/ascend310b.toml"]);
    assert!(edgecert(&args).code <= 1);
    let foreign = merge(&[&partials[0], &other, &partials[2]]);
    assert_eq!(foreign.code, 2);
    assert!(foreign.stderr.contains("another plan"), "{}", foreign.stderr);
    let not_a_shard = merge(&[&dir.path().join("nowhere")]);
    assert_eq!(not_a_shard.code, 2);
    assert!(not_a_shard.stderr.contains("not the output of `certify --shard K/N`"), "{}", not_a_shard.stderr);
    assert!(!merged.exists(), "nothing is written for bad partials");
}

/// Sample shards as separate processes: each replays its range of every golden set (chassis's
/// 2,015 samples do not split evenly in three), and `merge` issues the single run's
/// certificates from the joined replays, with the same raw observations.
#[test]
fn merged_sample_shards_are_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    assert_eq!(certify_into(&single, &[]).code, 1);
    let partials = sample_shards(dir.path(), &INPUTS, 3);
    let part = |k: usize, family: &str| -> serde_json::Value {
        let path = partials[k].join(family).join("replay-part.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    assert_eq!(
        (part(0, "chassis")["first"].as_u64(), part(0, "chassis")["end"].as_u64()),
        (Some(0), Some(671))
    );
    assert_eq!(
        (part(2, "chassis")["first"].as_u64(), part(2, "chassis")["end"].as_u64()),
        (Some(1343), Some(2015))
    );

    let merged = dir.path().join("merged");
    merge_like_the_single_run(&single, &partials, &merged, &UNITS);

    // A shard missing its range of one family leaves a gap the merge names.
    std::fs::remove_file(partials[1].join("chassis/replay-part.json")).unwrap();
    let run = merge(&dir.path().join("merged-again"), &partials);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("samples 1343..2015 of 2015: expected the range starting at 671 of 2015"),
        "{}",
        run.stderr
    );
}

/// A golden set of the first `n` shapes images, made by `golden init` with the shapes models
/// (no labels: output agreement is its accuracy check).
fn small_golden(dir: &Path, n: usize) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..n {
        let name = format!("{i:05}.png");
        std::fs::copy(root().join("golden/shapes/samples").join(&name), images.join(&name)).unwrap();
    }
    let golden = dir.join("small");
    let shapes = root().join("golden/shapes");
    let (fp32, int8) = (shapes.join("shapes_fp32.onnx"), shapes.join("shapes_int8.onnx"));
    let run = edgecert(&[
        "golden",
        "init",
        s(&golden),
        "--reference",
        s(&fp32),
        "--compressed",
        s(&int8),
        "--inputs",
        s(&images),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    golden
}

/// More sample shards than samples: most shards replay an empty range (the first among them),
/// and their parts join as nothing, so the merge issues the single run's certificate.
#[test]
fn sample_shards_outnumbering_the_samples_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let golden = small_golden(dir.path(), 20);
    let inputs = ["--golden", s(&golden), "--profile", "profiles/rk3588.toml"];
    let single = dir.path().join("single");
    assert_eq!(certify_inputs(&single, &inputs, &[]).code, 1);
    let partials = sample_shards(dir.path(), &inputs, 24);
    let range = |k: usize| {
        let path = partials[k].join("small/replay-part.json");
        let part: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        (part["first"].as_u64().unwrap(), part["end"].as_u64().unwrap())
    };
    assert_eq!((range(0), range(1), range(23)), ((0, 0), (0, 1), (19, 20)), "shard 1 replays nothing");

    let merged = dir.path().join("merged");
    merge_like_the_single_run(&single, &partials, &merged, &[("small", "rk3588")]);
    // Judged on every sample's outputs, the empty parts adding none.
    let agreement = check(&certificate(&merged, "small", "rk3588"), "output_agreement").clone();
    assert_eq!(agreement["samples"], 20, "{agreement}");
    assert!(agreement["findings"][0].as_str().unwrap().contains("cosine similarity"), "{agreement}");
}

/// Replay parts are input like any other: a range outside the set, a record of another length,
/// parts of different sets, an overlap or a missing tail are refused naming the part's file
/// and what was expected, and nothing is written; an unavailable part is named in the verdict.
#[test]
fn replay_parts_that_do_not_tile_the_set_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let golden = small_golden(dir.path(), 6);
    let inputs = ["--golden", s(&golden), "--profile", "profiles/rk3588.toml"];
    // Samples 0..2, 2..4 and 4..6.
    let partials = sample_shards(dir.path(), &inputs, 3);
    let part = |k: usize| partials[k].join("small/replay-part.json");
    let merged = dir.path().join("merged");
    let refused = |k: usize, edit: &dyn Fn(&mut serde_json::Value), want: &str| {
        let original = std::fs::read(part(k)).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
        edit(&mut json);
        std::fs::write(part(k), serde_json::to_vec(&json).unwrap()).unwrap();
        let run = merge(&merged, &partials);
        std::fs::write(part(k), original).unwrap();
        assert_eq!(run.code, 2, "{want}: {}\n{}", run.stdout, run.stderr);
        let named = format!("{}: {want}", part(k).display());
        assert!(run.stderr.contains(&named), "expected `{named}` in {}", run.stderr);
        assert!(!merged.exists(), "nothing is written: {want}");
    };
    refused(
        1,
        &|p| p["end"] = 1.into(),
        "samples 2..1 of 6: expected a range that ends at or after its first sample",
    );
    refused(
        2,
        &|p| p["end"] = 7.into(),
        "samples 4..7 of 6: expected a range that ends at or before sample 6",
    );
    refused(
        1,
        &|p| p["replay"]["value"]["samples"] = 3.into(),
        "samples 2..4 of 6: expected a replay of 2 samples, but it records 3",
    );
    refused(
        2,
        &|p| p["total"] = 7.into(),
        &format!("samples 4..6 of 7: expected a golden set of 6 samples, as {} says", part(0).display()),
    );
    refused(
        1,
        &|p| p["first"] = 1.into(),
        "samples 1..4 of 6: expected the range starting at 2 of 6 (it overlaps the part before)",
    );
    // Without the last part, the one before it is named with the samples missing after it.
    let last = std::fs::read(part(2)).unwrap();
    std::fs::remove_file(part(2)).unwrap();
    let run = merge(&merged, &partials);
    std::fs::write(part(2), last).unwrap();
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let named = format!(
        "{}: the parts end at sample 4, expected 6: the part of samples 4..6 is missing",
        part(1).display()
    );
    assert!(run.stderr.contains(&named), "expected `{named}` in {}", run.stderr);
    assert!(!merged.exists());

    let unavailable =
        serde_json::json!({"status": "unavailable", "basis": "measured", "reason": "out of memory"});
    let original = std::fs::read(part(1)).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
    json["replay"] = unavailable;
    std::fs::write(part(1), serde_json::to_vec(&json).unwrap()).unwrap();
    let run = merge(&merged, &partials);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let agreement = check(&certificate(&merged, "small", "rk3588"), "output_agreement").clone();
    assert_eq!(agreement["verdict"], "INCONCLUSIVE", "{agreement}");
    let named = format!("{}: out of memory", part(1).display());
    assert!(agreement["reason"].as_str().unwrap().contains(&named), "{named} in {agreement}");
}
