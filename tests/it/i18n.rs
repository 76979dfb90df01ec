//! Languages: every catalog complete against English, every report and `show` translated and
//! formatted per locale.

use crate::common;

use std::path::Path;

use common::*;

const LANGUAGES: [&str; 8] = ["en", "zh-CN", "es", "pt-BR", "fr", "vi", "id", "th"];

#[test]
fn the_eight_languages_are_embedded() {
    let mut expected = LANGUAGES.to_vec();
    expected.sort();
    assert_eq!(edgecert::i18n::available(), expected);
}

#[test]
fn every_catalog_has_exactly_the_english_messages_and_each_formats() {
    let mut all = Vec::new();
    for tag in edgecert::i18n::available() {
        for problem in edgecert::i18n::catalog_problems(tag) {
            all.push(format!("i18n/{tag}.ftl: {problem}"));
        }
    }
    assert!(all.is_empty(), "catalog problems:\n{}", all.join("\n"));
}

/// A certificate of the shapes family on the RK3588, in `dir`.
fn shapes_certificate(dir: &Path) -> std::path::PathBuf {
    let run = certify_quietly(dir, "profiles/rk3588.toml", "golden/shapes", &[]);
    assert!(run.code <= 1, "{}", run.stderr);
    dir.join("shapes/rk3588/certificate.json")
}

#[test]
fn the_markdown_report_is_translated_and_locale_formatted_in_every_language() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path());
    let cert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    let measured = check(&cert, "accuracy_vs_fp32")["measured"].as_f64().unwrap();
    let plain = format!("{measured:.4}");
    // (tag, translated heading, decimal separator)
    let expected = [
        ("en", "## Results", '.'),
        ("zh-CN", "## 检测结果", '.'),
        ("es", "## Resultados", ','),
        ("pt-BR", "## Resultados", ','),
        ("fr", "## Résultats", ','),
        ("vi", "## Kết quả", ','),
        ("id", "## Hasil", ','),
        ("th", "## ผลการทดสอบ", '.'),
    ];
    for (tag, heading, separator) in expected {
        let out = dir.path().join(format!("r.{tag}.md"));
        let run = edgecert(&["report", s(&cert_path), "--format", "md", "--lang", tag, "--out", s(&out)]);
        assert_eq!(run.code, 0, "{tag}: {}", run.stderr);
        assert!(run.stdout.contains(s(&out)), "{tag}: {}", run.stdout);
        let md = std::fs::read_to_string(&out).unwrap();
        assert!(md.contains(heading), "{tag}: no heading {heading}");
        let number = plain.replace('.', &separator.to_string());
        assert!(md.contains(&number), "{tag}: no {number} in the report");
        assert!(md.contains(cert["certificate_id"].as_str().unwrap()), "{tag}");
    }
}

#[test]
fn show_prints_the_verdict_table_in_the_chosen_language_and_english_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path());
    let english = edgecert(&["show", s(&cert_path)]);
    assert!(
        english.stdout.contains("95% interval") && english.stdout.contains("verdict: "),
        "{}",
        english.stdout
    );
    let french = edgecert(&["show", s(&cert_path), "--lang", "fr"]);
    assert!(
        french.stdout.contains("contrôle") && french.stdout.contains("intervalle à 95 %"),
        "{}",
        french.stdout
    );
    assert!(french.stdout.contains("CONFORME (PASS)"), "{}", french.stdout);
    let chinese = edgecert(&["show", s(&cert_path), "--lang", "zh-CN"]);
    assert!(chinese.stdout.contains("检查项") && chinese.stdout.contains("结论："), "{}", chinese.stdout);
}

#[test]
fn an_unknown_language_is_a_usage_error_listing_the_available_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = shapes_certificate(dir.path());
    for args in [vec!["show", s(&cert_path), "--lang", "de"], vec!["report", s(&cert_path), "--lang", "de"]] {
        let run = edgecert(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr.contains("unknown language `de`; available: en, es, fr, id, pt-BR, th, vi, zh-CN"),
            "{}",
            run.stderr
        );
    }
    assert!(!cert_path.with_file_name("report.de.html").exists());
}
