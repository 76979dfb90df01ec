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
    let diags = profile.validate(&doc);
    if diags.is_empty() {
        Ok(ProfileFile { path: path.into(), sha256: String::new(), profile })
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
