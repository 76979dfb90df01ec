//! `edgecert report`: the HTML report's content (ISO/IEC 17025 §7.8.2.1 fields, emulated
//! marking, latency histogram from observations.json), the issuer file, and bad input (exit 2,
//! the file named, nothing written).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn shapes_certificate(dir: &Path, extra: &[&str]) -> PathBuf {
    shapes_certificate_on(dir, "rk3588", extra)
}

fn shapes_certificate_on(dir: &Path, chip: &str, extra: &[&str]) -> PathBuf {
    let run = certify_quietly(dir, &format!("profiles/{chip}.toml"), "golden/shapes", extra);
    assert!(run.code <= 1, "{}", run.stderr);
    dir.join(format!("shapes/{chip}/certificate.json"))
}

fn report(args: &[&str]) -> (Run, String) {
    let run = edgecert(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = run.stdout.trim().strip_prefix("report written to ").expect("where it wrote").to_string();
    let text = std::fs::read_to_string(&path).unwrap();
    (run, text)
}

/// The certificate's observations, with these latencies, bound to it again.
fn write_latencies(cert: &Path, latencies: &[f64]) {
    rebind_observations(cert, |observations| {
        observations["timing"]["value"]["latencies_ms"] = serde_json::json!(latencies);
        observations["timing"]["value"]["what"] = "emulated rk3588".into();
    });
}

#[test]
fn the_html_report_carries_every_iso_17025_field_and_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    // The certificate travels alone, without its raw observations.
    std::fs::remove_file(cert_path.with_file_name("observations.json")).unwrap();
    let cert = certificate(dir.path(), "shapes", "rk3588");
    let (_, html) = report(&["report", s(&cert_path)]);
    assert!(cert_path.with_file_name("report.en.html").exists());
    let id = cert["certificate_id"].as_str().unwrap();
    // The report number (the certificate, the revision, the language) in the running header and
    // footer, the summary, and the end marker; the certificate's whole id in the summary.
    let number = format!("{}-r1-en", &id[..16]);
    assert!(html.matches(&number).count() >= 4, "report number shown too rarely");
    assert!(html.contains(&format!("— end of report {number} —")));
    assert!(
        html.contains(&format!("<td class=\"code\">{id}</td>")),
        "the certificate id is not in the summary"
    );
    for field in [
        "Test report: hardware compatibility of a compressed model",
        "issuer not configured",
        "no customer stated",
        "Compressed from (FP32 reference)",
        "Date of receipt of the items",
        "not recorded",
        "Sampling plan",
        "Number of samples",
        "Decision rule (ISO/IEC 17025 §7.8.6)",
        "a PASS or a FAIL is wrong because of the samples drawn (golden-set samples, timed runs) with a probability of at most 2.5% per check",
        "It does not bound systematic error: an emulated figure may be off by the emulator&#39;s systematic error",
        "Deviations from the method",
        "Test host (where edgecert ran)",
        "unsigned",
        "per-sample latencies not available (no observations file beside the certificate)",
        "Per-layer placement",
        "Accuracy: FP32 reference and compressed model",
    ] {
        assert!(html.contains(field), "no `{field}` in the report");
    }
    for digest in [
        &cert["subject"]["sha256"],
        &cert["reference"]["sha256"],
        &cert["golden"]["sha256"],
        &cert["profile"]["sha256"],
    ] {
        assert!(html.contains(digest.as_str().unwrap()), "no digest {digest}");
    }
    for file in cert["subject"]["files"].as_array().unwrap() {
        assert!(html.contains(file["sha256"].as_str().unwrap()));
    }
    assert!(html.contains(cert["statement"].as_str().unwrap().split('"').next().unwrap()));
    // Every emulated check row carries the badge.
    let emulated_checks =
        cert["checks"].as_array().unwrap().iter().filter(|c| c["basis"] == "emulated").count();
    let results = html.split("<section id=\"results\">").nth(1).unwrap().split("</section>").next().unwrap();
    assert_eq!(results.matches("<span class=\"badge emulated\">emulated</span>").count(), emulated_checks);
    // One file: nothing fetched, nothing run.
    for external in ["http://", "https://", "<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(external), "the report holds `{external}`");
    }
    assert!(html.contains("@page { size: A4"));
}

#[test]
fn the_latency_histogram_is_drawn_from_the_observations_beside_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let latencies: Vec<f64> = (0..200).map(|i| 1.0 + f64::from(i % 50) * 0.01).collect();
    write_latencies(&cert_path, &latencies);
    let (_, html) = report(&["report", s(&cert_path)]);
    let section = html.split("<section id=\"latency\">").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(section.matches("<rect class=\"bar\"").count() >= 5, "{section}");
    for marker in ["p50", "p90", "p99"] {
        assert!(section.contains(&format!(">{marker}</text>")), "no {marker} marker");
    }
    // nearest-rank percentiles of the values written above
    assert!(section.contains("p50 1.250 ms, p90 1.450 ms, p99 1.490 ms"), "{section}");
    assert!(section.contains("emulated rk3588") && section.contains("badge emulated"));
    let (_, md) = report(&["report", s(&cert_path), "--format", "md", "--lang", "es"]);
    assert!(md.contains("p50 1,250 ms, p90 1,450 ms, p99 1,490 ms"), "{md}");
}

#[test]
fn a_malformed_observations_file_is_reported_in_the_report_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let original = std::fs::read(cert_path.with_file_name("observations.json")).unwrap();
    // Changed after issue: the digest no longer matches, and the report says so.
    std::fs::write(cert_path.with_file_name("observations.json"), b"{}").unwrap();
    let (_, html) = report(&["report", s(&cert_path)]);
    assert!(html.contains("the observations were changed after issue"), "{html}");
    assert!(!html.contains("<rect class=\"bar\""));
    std::fs::write(cert_path.with_file_name("observations.json"), &original).unwrap();
    for (body, says) in [
        (&b"{\"timing\": {\"status\": \"observed\""[..], "no readable `timing`"),
        (&b"{\"timing\": {\"status\": \"observed\", \"value\": {\"basis\": \"emulated\", \"what\": \"x\", \"latencies_ms\": [1.0, -3.0]}}}"[..], "holds -3"),
        (&b"{\"timing\": null}"[..], "per-sample latencies not recorded"),
    ] {
        rebind_observations_bytes(&cert_path, body);
        let (_, html) = report(&["report", s(&cert_path)]);
        assert!(html.contains(says), "`{says}` missing for {}", String::from_utf8_lossy(body));
        assert!(!html.contains("<rect class=\"bar\""));
    }
}

#[test]
fn the_issuer_file_names_the_laboratory_and_customer() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let out = dir.path().join("technical-file/report.html");
    let issuer = root().join("docs/issuer.example.toml");
    let (run, html) = report(&["report", s(&cert_path), "--issuer", s(&issuer), "--out", s(&out)]);
    assert!(run.stdout.contains(s(&out)));
    for text in [
        "Example Edge Test Laboratory Ltd.",
        "12 Sample Street, 10115 Berlin, Germany",
        "DAkkS D-PL-00000-00-00 (ISO/IEC 17025:2017)",
        "Laboratory premises, Berlin",
        "Example Exporter GmbH",
    ] {
        assert!(html.contains(text), "no `{text}`");
    }
    assert!(!html.contains("issuer not configured"));
    // Nothing in that certificate binds the issuer: the report says so.
    assert!(
        html.contains("not sealed in the certificate"),
        "an issuer given at render time passes as signed"
    );
}

#[test]
fn an_issuer_given_at_certification_is_sealed_and_every_report_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = root().join("docs/issuer.example.toml");
    let cert_path = shapes_certificate(dir.path(), &["--issuer", s(&issuer)]);
    let cert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    assert_eq!(cert["issuer"]["lab"]["name"], "Example Edge Test Laboratory Ltd.");
    assert_eq!(cert["issuer"]["authoriser"]["role"], "Technical Manager");
    assert_eq!(cert["issuer"]["specification"], "Customer requirement EX-ADAS-REQ-012 rev. C");

    let (_, html) = report(&["report", s(&cert_path)]);
    for text in [
        "Example Edge Test Laboratory Ltd.",
        "Testing of machine-learning models for hardware compatibility",
        "Customer requirement EX-ADAS-REQ-012 rev. C",
        "Results authorised by Dr. Jane Example, Technical Manager.",
        "Example Exporter GmbH",
    ] {
        assert!(html.contains(text), "no `{text}`");
    }
    assert!(!html.contains("not sealed in the certificate"));

    // Another issuer at render time is refused: a report renders what was certified.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[lab]\nname = \"Other Lab\"\naddress = \"Elsewhere\"\n").unwrap();
    let run = edgecert(&["report", s(&cert_path), "--issuer", s(&other)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("other.toml") && run.stderr.contains("differs from the issuer sealed in"),
        "{}",
        run.stderr
    );

    // An edited issuer block no longer matches the certificate's id.
    let edited = std::fs::read_to_string(&cert_path)
        .unwrap()
        .replace("Example Edge Test Laboratory Ltd.", "Forged Lab");
    std::fs::write(&cert_path, edited).unwrap();
    let run = edgecert(&["show", s(&cert_path)]);
    assert_eq!(run.code, 2, "an edited issuer passes: {}", run.stdout);
}

#[test]
fn checks_not_run_and_missing_profile_figures_are_listed_as_deviations() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &["--skip", "latency"]);
    let (_, md) = report(&["report", s(&cert_path), "--format", "md"]);
    let deviations = md.split("## Deviations from the method").nth(1).unwrap().split("## ").next().unwrap();
    assert!(deviations.contains("- latency not run (skipped): excluded by --skip `latency`"), "{deviations}");
    assert!(deviations.contains("- issuer not configured"), "{deviations}");
    // The bundled RK3588 profile gives no DRAM size: the memory check says so.
    assert!(
        deviations.contains("- memory: the chip profile lacks a figure: the profile gives no DRAM size"),
        "{deviations}"
    );
    assert!(deviations.contains("emulated figures (predictions, not measurements): "), "{deviations}");
}

/// The report's deviations section tells a figure the chip profile lacks from an undecided
/// verdict by the check's `profile_gap` (the field), never by its wording.
#[test]
fn a_profile_s_gap_is_named_by_its_field_and_listed_apart_from_an_undecided_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let deviations = |cert: &Path| {
        let (_, md) = report(&["report", s(cert), "--format", "md"]);
        md.split("## Deviations from the method").nth(1).unwrap().split("## ").next().unwrap().to_string()
    };
    // A card keeps what its on-chip memory does not hold in its host's, which the profile does
    // not describe: the profile's gap, though its reason does not say "the profile gives no".
    let card = shapes_certificate_on(&dir.path().join("card"), "coral-usb", &[]);
    let cert: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&card).unwrap()).unwrap();
    assert_eq!(check(&cert, "memory")["profile_gap"], "memory.dram_bytes", "{cert}");
    let listed = deviations(&card);
    assert!(
        listed.contains(
            "- memory: the chip profile lacks a figure: `coral-usb` is a card with no DRAM of its own"
        ),
        "{listed}"
    );

    // Control: the Hailo-8's latency is undecided by the emulator's error on that chip, which
    // no profile field would change; its memory waits for the on-chip size.
    let hailo = shapes_certificate_on(&dir.path().join("hailo"), "hailo8", &[]);
    let cert: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hailo).unwrap()).unwrap();
    let latency = check(&cert, "latency");
    assert_eq!(
        (&latency["verdict"], &latency["profile_gap"]),
        (&"INCONCLUSIVE".into(), &serde_json::Value::Null)
    );
    assert_eq!(check(&cert, "memory")["profile_gap"], "npu.sram_bytes");
    let listed = deviations(&hailo);
    assert!(listed.contains("- latency INCONCLUSIVE: p99 "), "{listed}");
    assert!(!listed.contains("- latency: the chip profile lacks"), "{listed}");

    // The cost model's own gap: a profile without a DRAM bandwidth leaves the latency unknown,
    // and the certificate and its recomputation both name the field.
    let toml = std::fs::read_to_string(root().join("profiles/rk3588.toml")).unwrap();
    let no_bandwidth = dir.path().join("rk3588.toml");
    std::fs::write(&no_bandwidth, toml.replace("dram_bandwidth_gbps = 34.0\n", "")).unwrap();
    let run = certify_quietly(&dir.path().join("bw"), s(&no_bandwidth), "golden/shapes", &[]);
    assert!(run.code <= 1, "{}", run.stderr);
    let path = dir.path().join("bw/shapes/rk3588/certificate.json");
    let cert: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let latency = check(&cert, "latency");
    assert_eq!(latency["verdict"], "INCONCLUSIVE", "{latency}");
    assert_eq!(latency["profile_gap"], "memory.dram_bandwidth_gbps", "{latency}");
    let listed = deviations(&path);
    assert!(listed.contains("- latency: the chip profile lacks a figure: the cost model cannot predict latency: profile `rk3588` gives no DRAM bandwidth"), "{listed}");
    let recomputed = edgecert(&["verify", s(&path), "--recompute"]);
    assert_eq!(recomputed.code, 0, "{}{}", recomputed.stdout, recomputed.stderr);
    assert!(recomputed.stdout.contains("check latency: INCONCLUSIVE reproduced"), "{}", recomputed.stdout);
    // `estimate --json` names the same field for a script; the bundled profile names none.
    let estimate = |profile: &str| -> serde_json::Value {
        let run = edgecert(&["estimate", "golden/shapes/shapes_int8.onnx", "--profile", profile, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let gap = estimate(s(&no_bandwidth));
    assert_eq!(
        (&gap["latency_profile_gap"], &gap["latency_ms"]),
        (&"memory.dram_bandwidth_gbps".into(), &serde_json::Value::Null)
    );
    assert!(estimate("profiles/rk3588.toml").get("latency_profile_gap").is_none());
}

#[test]
fn a_signed_certificate_names_its_signature_algorithm_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    assert_eq!(edgecert(&["keygen", s(&key)]).code, 0);
    let cert_path = shapes_certificate(&dir.path().join("out"), &["--sign-key", s(&key)]);
    let cert = certificate(&dir.path().join("out"), "shapes", "rk3588");
    let (_, html) = report(&["report", s(&cert_path), "--lang", "en"]);
    let fingerprint = cert["signature"]["key_fingerprint"].as_str().unwrap();
    assert!(html.contains(&format!("Signed with ed25519; key fingerprint {fingerprint}")));
    assert!(!html.contains("unsigned:"));
}

#[test]
fn bad_input_is_exit_2_naming_the_file_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let folder = cert_path.parent().unwrap().to_path_buf();
    let before = files_under(&folder);

    let original = std::fs::read_to_string(&cert_path).unwrap();
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, original.replacen("\"reason\": \"", "\"reason\": \"edited: ", 1)).unwrap();
    // A check name edgecert does not know is refused as the schema's, before any digest.
    let renamed = dir.path().join("renamed.json");
    std::fs::write(&renamed, original.replacen("\"size\"", "\"size2\"", 1)).unwrap();
    let bad_issuer = dir.path().join("issuer.toml");
    std::fs::write(&bad_issuer, "[lab]\nname = \"L\"\naddress = \"A\"\naccreditaton = \"typo\"\n").unwrap();
    let no_address = dir.path().join("no-address.toml");
    std::fs::write(&no_address, "[lab]\nname = \"L\"\n").unwrap();
    let missing = dir.path().join("missing.json");
    let out = dir.path().join("never.html");

    let cases: Vec<(Vec<&str>, String, &str)> = vec![
        (vec!["report", s(&edited), "--out", s(&out)], s(&edited).to_string(), "changed after it was issued"),
        (vec!["report", s(&renamed), "--out", s(&out)], s(&renamed).to_string(), "unknown variant `size2`"),
        (vec!["report", s(&missing), "--out", s(&out)], s(&missing).to_string(), "No such file"),
        (
            vec!["report", s(&cert_path), "--issuer", s(&bad_issuer), "--out", s(&out)],
            s(&bad_issuer).to_string(),
            "accreditaton",
        ),
        (
            vec!["report", s(&cert_path), "--issuer", s(&no_address), "--out", s(&out)],
            s(&no_address).to_string(),
            "address",
        ),
    ];
    for (args, file, says) in cases {
        let run = edgecert(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(&file) && run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(!out.exists());
    }
    assert_eq!(files_under(&folder), before);
}

#[test]
fn pdf_without_chromium_says_how_to_get_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let empty_path = dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgecert"))
        .args(["report", s(&cert_path), "--format", "pdf"])
        .env("PATH", &empty_path)
        .env_remove("EDGECERT_CHROMIUM")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "PDF needs headless Chromium (Debian: apt-get install chromium; or set EDGECERT_CHROMIUM)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`--format html` writes the same report"));
    assert!(!cert_path.with_file_name("report.en.pdf").exists());
}

#[test]
fn a_revised_or_translated_report_is_another_report_with_its_own_number() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path(), &[]);
    let id = certificate(dir.path(), "shapes", "rk3588")["certificate_id"].as_str().unwrap().to_string();
    let render = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["report", s(&cert_path), "--format", "md", "--out", s(&out)];
        args.extend_from_slice(extra);
        report(&args).1
    };
    let first = render(&[], "r1.md");
    let french = render(&["--lang", "fr"], "fr.md");
    let revised = render(&["--revision", "3"], "r3.md");
    assert!(first.contains(&format!("{}-r1-en", &id[..16])) && !first.contains("replaces"), "{first}");
    assert!(french.contains(&format!("{}-r1-fr", &id[..16])) && !french.contains("-r1-en"), "{french}");
    assert!(revised.contains(&format!("{}-r3-en", &id[..16])), "{revised}");
    assert!(
        revised.contains("This revision replaces revisions 1 to 2 of this report, which are withdrawn."),
        "{revised}"
    );
    let run = edgecert(&["report", s(&cert_path), "--revision", "0"]);
    assert_eq!(run.code, 2, "revision 0: {}", run.stderr);
}

#[test]
fn a_stated_ambient_is_recorded_as_stated_and_an_absent_one_is_not_invented() {
    let dir = tempfile::tempdir().unwrap();
    let stated = shapes_certificate(&dir.path().join("stated"), &["--ambient", "23"]);
    let cert = read_json(&stated);
    assert_eq!(cert["environment"]["ambient_c"], 23.0);
    let (_, html) = report(&["report", s(&stated)]);
    assert!(
        html.contains("Ambient temperature (stated by the operator, not measured)</th><td>23 °C"),
        "no stated ambient"
    );
    let silent = shapes_certificate(&dir.path().join("silent"), &[]);
    assert!(read_json(&silent)["environment"]["ambient_c"].is_null(), "an ambient nobody stated");
}
