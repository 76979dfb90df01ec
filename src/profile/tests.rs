//! Chip profile tests: every bundled profile loads, every field is validated and every error
//! names its file, line and field; board profiles merge over their chip.

use std::path::Path;

use super::*;
use crate::config::parse_toml;

const VALID: &str = r#"
schema_version = 1
[chip]
name = "testchip"
vendor = "Acme"
[sources]
all = "test fixture"
[npu]
cores = 2
peak_tops_int8 = 4.0
[cpu]
clusters = [{ cores = 4, core = "Cortex-A55", clock_ghz = 1.8 }]
[memory]
dram_bytes = 1073741824
dram_bandwidth_gbps = 12.8
[quantization]
dtypes = ["int8"]
granularity = ["per-channel"]
[operators]
fallback = "per-op"
complete = true
dtypes = ["int8"]
supported = ["Conv", "Relu"]
[operators.limits.Conv]
kernel = [1, 7]
"#;

fn load(text: &str) -> Result<ProfileFile> {
    let path = Path::new("chip.toml");
    let (profile, doc): (ChipProfile, _) = parse_toml(path, text.to_string())?;
    let diags = profile.validate(&[&doc]);
    if diags.is_empty() {
        Ok(ProfileFile { path: path.into(), sha256: String::new(), extends: vec![], profile })
    } else {
        Err(Error::Config(diags))
    }
}

/// Every diagnostic as (line, field, message) for table-driven assertions.
fn diagnostics(text: &str) -> Vec<(usize, String, String)> {
    match load(text) {
        Ok(_) => vec![],
        Err(Error::Config(d)) => d.into_iter().map(|d| (d.line, d.field, d.message)).collect(),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn the_valid_fixture_loads() {
    let p = load(VALID).unwrap().profile;
    assert_eq!(p.chip.name, "testchip");
    assert_eq!(p.operators.lookup("Conv").unwrap().kernel, Some([1, 7]));
    assert!(p.operators.lookup("Gemm").is_none());
}

#[test]
fn malformed_profiles_name_line_field_and_problem() {
    // (edit to VALID, expected field, expected line, words the message must contain)
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = -3.0",
            "memory.dram_bandwidth_gbps",
            15,
            "positive",
        ),
        ("peak_tops_int8 = 4.0", "peak_tops_int8 = 4.0\npeak_topz = 1", "npu.peak_topz", 11, "unknown key"),
        ("cores = 2", "cores = \"two\"", "npu.cores", 9, "invalid type"),
        (
            "supported = [\"Conv\", \"Relu\"]",
            "supported = [\"Conv\", \"Relu\", \"Conv\"]",
            "operators.supported.2",
            23,
            "duplicate operator `Conv`",
        ),
        ("kernel = [1, 7]", "kernel = [9, 7]", "operators.limits.Conv.kernel", 25, "min > max"),
        ("fallback = \"per-op\"", "fallback = \"sometimes\"", "operators.fallback", 20, "unknown variant"),
        (
            "[operators.limits.Conv]",
            "[operators.limits.Gemm]",
            "operators.limits.Gemm",
            24,
            "not in operators.supported",
        ),
        ("name = \"testchip\"", "name = \"Test Chip\"", "chip.name", 4, "short identifier"),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = 12.8\ndram_in_overhead = true",
            "memory.dram_in_overhead",
            16,
            "contradicts memory.dram_bandwidth_gbps",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_in_overhead = true",
            "memory.dram_in_overhead",
            15,
            "needs a calibrated npu.layer_overhead_us",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "host_link_gbps = 0.5\ndram_in_overhead = true",
            "memory.dram_in_overhead",
            16,
            "contradicts memory.host_link_gbps",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = 12.8\non_chip_gbps = 0",
            "memory.on_chip_gbps",
            16,
            "must be a positive number",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = 12.8\non_chip_gbps = inf",
            "memory.on_chip_gbps",
            16,
            "must be a positive number",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = 5e-324",
            "memory.dram_bandwidth_gbps",
            15,
            "must be a positive number of at least 1e-9, found 5e-324",
        ),
        (
            "peak_tops_int8 = 4.0",
            "peak_tops_int8 = 4.0\nlayer_overhead_us = 20.0",
            "npu.layer_overhead_us",
            11,
            "cite its point in [sources] as `layer_overhead`",
        ),
        (
            "dram_bandwidth_gbps = 12.8",
            "dram_bandwidth_gbps = 12.8\non_chip_gbps = 35.8",
            "memory.on_chip_gbps",
            16,
            "cite its point in [sources] as `on_chip`",
        ),
        (
            "[quantization]",
            "[fidelity]\nlatency_error = 12.0\nscored_rows = 13\n[quantization]",
            "fidelity.latency_error",
            17,
            "expected a relative error in [0, 10)",
        ),
        (
            "[quantization]",
            "[fidelity]\nlatency_error = 0.3\nscored_rows = 4\n[quantization]",
            "fidelity.scored_rows",
            18,
            "a chip's own latency error needs 10",
        ),
        (
            "[quantization]",
            "[fidelity]\nlatency_error = 0.3\nscored_rows = 12\n[quantization]",
            "fidelity.latency_error",
            17,
            "cite its point in [sources] as `fidelity`, in the file that sets it",
        ),
    ];
    for (from, to, field, line, words) in cases {
        let text = VALID.replacen(from, to, 1);
        let d = diagnostics(&text);
        let hit = d.iter().find(|(_, f, _)| f == field);
        let Some((l, _, msg)) = hit else { panic!("no diagnostic for {field}; got {d:?}") };
        assert_eq!(l, line, "line of {field}: {d:?}");
        assert!(msg.contains(words), "message for {field} should mention `{words}`: {msg}");
    }
}

#[test]
fn the_power_budget_is_the_typical_draw_else_the_rated_maximum() {
    let budget = |power: &str| load(&format!("{VALID}[power]\n{power}\n")).unwrap().profile.power_budget();
    let typical = budget("typical_w = 5.0\nmax_w = 9.0").unwrap();
    assert_eq!((typical.watts, typical.field), (5.0, "power.typical_w"));
    let rated = budget("max_w = 9.0").unwrap();
    assert_eq!((rated.watts, rated.field), (9.0, "power.max_w"));
    assert_eq!(budget("tops_per_w_int8 = 2.0"), None);
    assert_eq!(load(VALID).unwrap().profile.power_budget(), None);
}

#[test]
fn all_problems_are_reported_in_one_pass() {
    let text = VALID
        .replacen("dram_bandwidth_gbps = 12.8", "dram_bandwidth_gbps = -1.0", 1)
        .replacen("peak_tops_int8 = 4.0", "peak_tops_int8 = 0.0", 1)
        .replacen("kernel = [1, 7]", "kernel = [1, 7]\nstrid = [1, 2]", 1);
    let fields: Vec<String> = diagnostics(&text).into_iter().map(|(_, f, _)| f).collect();
    // Unknown keys are collected together; value checks need a typed profile, so they follow
    // once the keys are right.
    assert_eq!(fields, vec!["operators.limits.Conv.strid".to_string()]);
    let text = text.replacen("\nstrid = [1, 2]", "", 1);
    let mut fields: Vec<String> = diagnostics(&text).into_iter().map(|(_, f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, vec!["memory.dram_bandwidth_gbps", "npu.peak_tops_int8"]);
}

#[test]
fn bundled_profiles_are_valid_and_cite_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let profiles = load_dir(&dir).unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p.profile.chip.name.as_str()).collect();
    for wanted in ["rk3588", "qcs6490", "ascend310b"] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    for p in &profiles {
        assert!(!p.profile.sources.is_empty());
        assert_eq!(p.sha256.len(), 64);
    }
}

mod inheritance {
    //! Board profiles that `extends` a chip profile: resolution, merge, digest, errors.

    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::VALID;
    use crate::profile::{digest, ChipProfile};
    use crate::vocab::hash::{sha256_hex, sha256_of_parts};
    use crate::vocab::Error;

    const BOARD: &str = r#"extends = "testchip"
[chip]
name = "testboard"
display_name = "Test board"
[sources]
board = "board vendor page"
[memory]
dram_bytes = 4294967296
[power]
typical_w = 5.0
"#;

    /// (file name, text) pairs written into one folder.
    type Files<'a> = &'a [(&'a str, &'a str)];

    fn folder(files: Files) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    /// The diagnostics of loading `file` from `dir`, as (file name, field, message).
    fn errors(dir: &Path, file: &str) -> Vec<(String, String, String)> {
        match ChipProfile::load(&dir.join(file)) {
            Ok(_) => panic!("{file} should not load"),
            Err(Error::Config(d)) => d
                .into_iter()
                .map(|d| (d.file.file_name().unwrap().to_string_lossy().into_owned(), d.field, d.message))
                .collect(),
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }

    #[test]
    fn a_board_overrides_its_chip_field_by_field() {
        let dir = folder(&[("testchip.toml", VALID), ("testboard.toml", BOARD)]);
        let f = ChipProfile::load(&dir.path().join("testboard.toml")).unwrap();
        let p = &f.profile;
        assert_eq!(p.chip.name, "testboard");
        assert_eq!(p.chip.vendor, "Acme", "inherited from the chip");
        assert_eq!(p.memory.dram_bytes, Some(4 << 30), "the board's DRAM replaces the chip's");
        assert_eq!(p.memory.dram_bandwidth_gbps, Some(12.8), "kept from the chip's [memory]");
        assert_eq!(p.power.as_ref().and_then(|p| p.typical_w), Some(5.0), "a table the chip lacks");
        assert_eq!(p.sources.keys().collect::<Vec<_>>(), ["all", "board"], "sources merge");
        assert_eq!(p.operators.supported, ["Conv", "Relu"]);
        assert_eq!(f.extends, vec![dir.path().join("testchip.toml")]);
    }

    /// A board that recalibrates its chip's figure cites its own point: the chip's citation is
    /// of the chip's value. A board that keeps the chip's figure inherits its citation.
    #[test]
    fn a_board_recalibrating_a_figure_cites_its_own_point() {
        let chip = VALID
            .replace("peak_tops_int8 = 4.0", "peak_tops_int8 = 4.0\nlayer_overhead_us = 20.0")
            .replace("all = \"test fixture\"", "all = \"test fixture\"\nlayer_overhead = \"chip point\"");
        let recalibrated = format!("{BOARD}[npu]\nlayer_overhead_us = 25.0\n");
        let dir =
            folder(&[("testchip.toml", &chip), ("testboard.toml", &recalibrated), ("kept.toml", BOARD)]);
        let kept = ChipProfile::load(&dir.path().join("kept.toml"));
        assert_eq!(kept.unwrap().profile.calibration_source("npu.layer_overhead_us"), Some("chip point"));
        let errors = errors(dir.path(), "testboard.toml");
        let hit = errors.iter().find(|(_, field, _)| field == "npu.layer_overhead_us");
        let Some((file, _, message)) = hit else { panic!("{errors:?}") };
        assert_eq!(file, "testboard.toml");
        assert!(message.contains("as `layer_overhead`, in the file that sets it"), "{message}");
        let cited = recalibrated.replace(
            "board = \"board vendor page\"",
            "board = \"board vendor page\"\nlayer_overhead = \"board point\"",
        );
        std::fs::write(dir.path().join("testboard.toml"), cited).unwrap();
        let board = ChipProfile::load(&dir.path().join("testboard.toml")).unwrap().profile;
        assert_eq!(board.calibration_source("npu.layer_overhead_us"), Some("board point"));
    }

    #[test]
    fn arrays_are_replaced_whole_not_merged() {
        let board =
            format!("{BOARD}[operators]\nsupported = [\"Conv\"]\n[operators.limits.Conv]\nkernel = [1, 3]\n");
        let dir = folder(&[("testchip.toml", VALID), ("testboard.toml", &board)]);
        let p = ChipProfile::load(&dir.path().join("testboard.toml")).unwrap().profile;
        assert_eq!(p.operators.supported, ["Conv"]);
        assert_eq!(p.operators.lookup("Conv").unwrap().kernel, Some([1, 3]));
        assert_eq!(p.operators.fallback, super::FallbackPolicy::PerOp, "the rest of [operators] is kept");
    }

    #[test]
    fn the_digest_covers_every_file_of_the_chain_in_order() {
        let dir = folder(&[("testchip.toml", VALID), ("testboard.toml", BOARD)]);
        let board = dir.path().join("testboard.toml");
        let f = ChipProfile::load(&board).unwrap();
        let expected =
            sha256_of_parts([("testboard.toml", BOARD.as_bytes()), ("testchip.toml", VALID.as_bytes())]);
        assert_eq!(f.sha256, expected);
        assert_eq!(digest(&board).unwrap(), expected, "verify --profile computes the same digest");
        // A lone chip profile keeps the plain digest of its bytes (certificates issued before
        // inheritance still verify).
        let chip = ChipProfile::load(&dir.path().join("testchip.toml")).unwrap();
        assert_eq!(chip.sha256, sha256_hex(VALID.as_bytes()));
        // Editing the chip under the board changes the board's digest.
        std::fs::write(dir.path().join("testchip.toml"), VALID.replace("12.8", "12.9")).unwrap();
        assert_ne!(ChipProfile::load(&board).unwrap().sha256, f.sha256);
    }

    #[test]
    fn bad_chains_name_the_file_and_the_extends_field() {
        // (files, file to load, file the error must name, field, words the message must contain)
        let cases: &[(Files, &str, &str, &str, &str)] = &[
            (
                &[("a.toml", "extends = \"b\"\n"), ("b.toml", "extends = \"a\"\n")],
                "a.toml",
                "b.toml",
                "extends",
                "cycle: a.toml -> b.toml -> a.toml",
            ),
            (&[("a.toml", "extends = \"a\"\n")], "a.toml", "a.toml", "extends", "cycle"),
            (
                &[("a.toml", "extends = \"missing\"\n")],
                "a.toml",
                "a.toml",
                "extends",
                "no profile `missing` beside this file",
            ),
            (
                &[("a.toml", "extends = \"../testchip\"\n")],
                "a.toml",
                "a.toml",
                "extends",
                "paths are not accepted",
            ),
            (
                &[("a.toml", "extends = \"/etc/passwd\"\n")],
                "a.toml",
                "a.toml",
                "extends",
                "not a bare profile name",
            ),
            (
                &[("a.toml", "extends = \"sub/testchip\"\n")],
                "a.toml",
                "a.toml",
                "extends",
                "not a bare profile name",
            ),
            (&[("a.toml", "extends = 3\n")], "a.toml", "a.toml", "extends", "in quotes"),
            (
                &[
                    ("a.toml", "extends = \"b\"\n"),
                    ("b.toml", "extends = \"c\"\n"),
                    ("c.toml", "extends = \"d\"\n"),
                    ("d.toml", "extends = \"e\"\n"),
                    ("e.toml", VALID),
                ],
                "a.toml",
                "d.toml",
                "extends",
                "at most 4 files",
            ),
            (
                &[("testchip.toml", VALID), ("a.toml", "extends = \"testchip\"\n")],
                "a.toml",
                "a.toml",
                "chip.name",
                "its own chip.name",
            ),
        ];
        for (files, load, file, field, words) in cases {
            let dir = folder(files);
            let errs = errors(dir.path(), load);
            let hit = errs.iter().find(|(f, d, _)| f == file && d == field);
            let Some((_, _, msg)) = hit else { panic!("{load}: no error on {file} {field}; got {errs:?}") };
            assert!(msg.contains(words), "{load}: message should mention `{words}`: {msg}");
        }
    }

    #[test]
    fn problems_name_the_file_that_wrote_the_field() {
        // A bad figure in the chip is the chip file's error; one in the board is the board's.
        let chip = VALID.replace("dram_bandwidth_gbps = 12.8", "dram_bandwidth_gbps = -1.0");
        let board = BOARD.replace("typical_w = 5.0", "typical_w = -5.0");
        let dir = folder(&[("testchip.toml", &chip), ("testboard.toml", &board)]);
        let mut errs = errors(dir.path(), "testboard.toml");
        errs.sort();
        let located: Vec<(&str, &str)> = errs.iter().map(|(f, d, _)| (f.as_str(), d.as_str())).collect();
        assert_eq!(
            located,
            [("testboard.toml", "power.typical_w"), ("testchip.toml", "memory.dram_bandwidth_gbps")]
        );
        // A typo or a wrong type in the board points at the board's line.
        let board = BOARD.replace("dram_bytes = 4294967296", "dram_bytes = \"lots\"");
        let dir = folder(&[("testchip.toml", VALID), ("testboard.toml", &board)]);
        let errs = errors(dir.path(), "testboard.toml");
        assert_eq!(
            (errs[0].0.as_str(), errs[0].1.as_str()),
            ("testboard.toml", "memory.dram_bytes"),
            "{errs:?}"
        );
        let board = BOARD.replace("[power]", "[power]\ntypicl_w = 1.0");
        let dir = folder(&[("testchip.toml", VALID), ("testboard.toml", &board)]);
        let errs = errors(dir.path(), "testboard.toml");
        assert_eq!(
            (errs[0].0.as_str(), errs[0].1.as_str()),
            ("testboard.toml", "power.typicl_w"),
            "{errs:?}"
        );
    }

    #[test]
    fn the_bundled_board_extends_a_bundled_chip() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let f = ChipProfile::load(&dir.join("rock5b-8gb.toml")).unwrap();
        assert_eq!(f.extends, vec![dir.join("rk3588.toml")]);
        assert_eq!(f.profile.memory.dram_bytes, Some(8 << 30));
        assert_eq!(f.profile.npu.as_ref().unwrap().peak_tops_int8, Some(6.0), "the chip's NPU");
        assert!(f.profile.sources.contains_key("board") && f.profile.sources.contains_key("npu"));
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string()),
            Just("testchip".to_string()),
            Just("missing".to_string()),
            Just("../a".to_string()),
            Just("a.toml".to_string()),
            Just(String::new()),
            "[ -~]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any graph of `extends` among a few files loads or fails with a located error naming
        /// a file of the folder: never a panic, never a hang, never a file outside it.
        #[test]
        fn any_extends_graph_loads_or_names_a_file(targets in prop::collection::vec(name(), 3), start in 0usize..3) {
            let files: Vec<(String, String)> = ["a", "b", "c"]
                .iter()
                .zip(&targets)
                .map(|(f, t)| {
                    let extends = toml::Value::String(t.clone()).to_string();
                    (format!("{f}.toml"), format!("extends = {extends}\n[chip]\nname = \"{f}\"\n"))
                })
                .chain([("testchip.toml".to_string(), VALID.to_string())])
                .collect();
            let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let dir = folder(&refs);
            let load: PathBuf = dir.path().join(&files[start].0);
            match ChipProfile::load(&load) {
                Ok(f) => {
                    prop_assert!(f.extends.iter().all(|p| p.parent() == Some(dir.path())));
                    prop_assert!(f.extends.last().is_some_and(|p| p.ends_with("testchip.toml")));
                }
                Err(Error::Config(d)) => {
                    prop_assert!(!d.is_empty());
                    for diag in d {
                        prop_assert_eq!(diag.file.parent(), Some(dir.path()));
                    }
                }
                Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
            }
        }
    }
}

#[test]
fn a_measured_idle_draw_is_used_only_where_its_measurement_is_cited() {
    let with = |power: &str| load(&format!("{VALID}[power]\n{power}\n"));
    let err = with("max_w = 9.0\nidle_w = 1.5").unwrap_err().to_string();
    assert!(
        err.contains("power.idle_w") && err.contains("cite its measurement in [sources] as `thermal_fit`"),
        "{err}"
    );
    let cited = VALID.replacen(
        "[sources]\n",
        "[sources]\nthermal_fit = \"measured: edgecert thermal fit of certificate 0\"\n",
        1,
    );
    let profile = load(&format!("{cited}[power]\nmax_w = 9.0\nidle_w = 1.5\n")).unwrap().profile;
    assert_eq!(profile.power.and_then(|p| p.idle_w), Some(1.5));
}
