//! End to end in a real browser: the HTML report of a small certification, in all eight
//! languages, opened in headless Chromium and checked for what a reader sees (report number,
//! translated headings, verdict, ISO fields, drawn plots, nothing wider than an A4 page), and
//! printed to PDF. Skipped, with a note on stderr, where no Chromium is installed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A4 at 96 dpi: 210 mm is 794 CSS pixels.
const A4_WIDTH_PX: u32 = 794;

/// (tag, headings a reader must see, the overall verdict INCONCLUSIVE as that language says it)
const LANGUAGES: [(&str, [&str; 3], &str); 8] = [
    ("en", ["Verdict summary", "Results", "Decision rule"], "INCONCLUSIVE"),
    ("zh-CN", ["结论摘要", "检测结果", "判定规则"], "无定论 (INCONCLUSIVE)"),
    ("es", ["Resumen del veredicto", "Resultados", "Regla de decisión"], "NO CONCLUYENTE (INCONCLUSIVE)"),
    ("pt-BR", ["Resumo do veredito", "Resultados", "Regra de decisão"], "INCONCLUSIVO (INCONCLUSIVE)"),
    ("fr", ["Synthèse du verdict", "Résultats", "Règle de décision"], "NON CONCLUANT (INCONCLUSIVE)"),
    ("vi", ["Tóm tắt kết luận", "Kết quả", "Quy tắc ra quyết định"], "KHÔNG THỂ KẾT LUẬN (INCONCLUSIVE)"),
    ("id", ["Ringkasan keputusan", "Hasil", "Aturan keputusan"], "TIDAK DAPAT DISIMPULKAN (INCONCLUSIVE)"),
    ("th", ["สรุปผลตัดสิน", "ผลการทดสอบ", "กฎการตัดสิน"], "ยังสรุปไม่ได้ (INCONCLUSIVE)"),
];

/// Measures the page as laid out and writes the findings as JSON into `<pre id="edgecert-probe">`,
/// which `--dump-dom` then prints. `EXPECTED` is replaced by the strings the page must show.
const PROBE: &str = r#"<script>
(function () {
  const expected = EXPECTED;
  const text = document.body.innerText;
  const sized = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > document.documentElement.clientWidth + 0.5 && wide.length < 5) {
      wide.push(el.tagName + '.' + el.className + ' right=' + Math.round(r.right));
    }
  }
  const result = {
    scroll_width: document.documentElement.scrollWidth,
    missing: expected.filter((s) => !text.includes(s)),
    bars: Array.from(document.querySelectorAll('svg.histogram rect.bar')).filter(sized).length,
    markers: Array.from(document.querySelectorAll('svg.histogram text.marker-label')).map((t) => t.textContent),
    thermal_lines: Array.from(document.querySelectorAll('svg.curve polyline.thermal')).filter(sized).length,
    wide: wide,
  };
  const pre = document.createElement('pre');
  pre.id = 'edgecert-probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
})();
</script>"#;

/// Runs a command with a time limit; its standard output.
fn run_with_timeout(mut cmd: Command, limit: Duration, log: &Path) -> String {
    let stdout_path = log.with_extension("stdout");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = cmd.spawn().expect("chromium starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "chromium failed ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// The probe's findings for one HTML report.
fn probe(chromium: &Path, html_path: &Path, expected: &[String], scratch: &Path) -> serde_json::Value {
    let script = PROBE.replace("EXPECTED", &serde_json::to_string(expected).unwrap());
    dom_probe(chromium, html_path, &script, scratch)
}

/// Opens `html_path` in headless Chromium with `script` added at the end of its body, and
/// returns the JSON the script leaves in `<pre id="edgecert-probe">` of the laid-out DOM.
pub fn dom_probe(chromium: &Path, html_path: &Path, script: &str, scratch: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(html_path).unwrap();
    let probed = scratch.join(format!("probe-{}", html_path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&probed, html.replace("</body>", &format!("{script}\n</body>"))).unwrap();
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(["--disable-background-networking", "--no-first-run"])
        .arg(format!("--window-size={A4_WIDTH_PX},1123"))
        .arg(format!("--user-data-dir={}", scratch.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()));
    let dom = run_with_timeout(cmd, Duration::from_secs(120), &scratch.join("chromium.log"));
    let json = dom
        .split("<pre id=\"edgecert-probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no probe in the DOM of {}", probed.display()));
    let json = json.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe is not JSON ({e}): {json}"))
}

fn ascend_with_thermal(dir: &Path) -> PathBuf {
    derived_profile(
        dir,
        "atlas200i-dk-a2",
        "ascend-thermal",
        &[(
            "[power]",
            "[thermal]\nthrottle_c = 85.0\nresistance_c_per_w = 2.0\ntime_constant_s = 30.0\n\n[power]",
        )],
    )
}

#[test]
fn the_html_report_reads_right_in_a_browser_in_every_language_and_prints_to_pdf() {
    let Some(chromium) = edgecert::render::pdf::find_chromium() else {
        eprintln!(
            "skipped: headless Chromium not found (set EDGECERT_CHROMIUM, or install chromium: apt-get install chromium)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let thermal_profile = ascend_with_thermal(dir.path());
    let run =
        certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &["--profile", s(&thermal_profile)]);
    assert!(run.code <= 1, "{}", run.stderr);
    let rk3588 = out.join("shapes/rk3588/certificate.json");
    // The folder is named after the profile's `name`, which the derived copy keeps.
    let thermal = out.join("shapes/atlas200i-dk-a2/certificate.json");
    let thermal_cert = certificate(&out, "shapes", "atlas200i-dk-a2");
    assert!(thermal_cert["thermal"].is_object(), "the derived profile runs the thermal model");
    let latencies: Vec<f64> = (0..300).map(|i| 0.8 + f64::from((i * 37) % 100) * 0.002).collect();
    rebind_observations(&rk3588, |observations| {
        observations["timing"]["value"]["latencies_ms"] = serde_json::json!(latencies);
    });
    let rk3588_cert = certificate(&out, "shapes", "rk3588");
    let id = rk3588_cert["certificate_id"].as_str().unwrap().to_string();
    let subject_sha256 = rk3588_cert["subject"]["sha256"].as_str().unwrap().to_string();

    for (tag, headings, verdict) in LANGUAGES {
        let html = dir.path().join(format!("report.{tag}.html"));
        let run = edgecert(&["report", s(&rk3588), "--lang", tag, "--out", s(&html)]);
        assert_eq!(run.code, 0, "{tag}: {}", run.stderr);
        let mut expected: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
        expected.push(id.clone());
        expected.push(format!("{}-r1-{tag}", &id[..16]));
        expected.push(verdict.to_string());
        expected.push(subject_sha256.clone());
        // ISO fields that are not translated: the digests and the decision rule's standard.
        expected.push("ISO/IEC 17025 §7.8.6".into());
        let found = probe(&chromium, &html, &expected, dir.path());
        assert_eq!(found["missing"], serde_json::json!([]), "{tag}: text a reader does not see");
        assert!(found["bars"].as_u64().unwrap() >= 5, "{tag}: histogram bars not drawn: {found}");
        assert_eq!(found["markers"], serde_json::json!(["p50", "p90", "p99"]), "{tag}");
        let width = found["scroll_width"].as_u64().unwrap();
        assert!(width <= u64::from(A4_WIDTH_PX), "{tag}: {width} px wide, wider than A4: {}", found["wide"]);
    }

    for tag in ["en", "th"] {
        let html = dir.path().join(format!("thermal.{tag}.html"));
        let run = edgecert(&["report", s(&thermal), "--lang", tag, "--out", s(&html)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let found = probe(&chromium, &html, &[], dir.path());
        assert_eq!(found["thermal_lines"], 1, "{tag}: thermal curve not drawn: {found}");
        assert!(found["bars"].as_u64().unwrap() >= 5, "{tag}: its own observations' histogram: {found}");
        assert!(found["scroll_width"].as_u64().unwrap() <= u64::from(A4_WIDTH_PX), "{tag}: {found}");
    }

    let pdf_path = dir.path().join("report.zh-CN.pdf");
    let run = edgecert(&["report", s(&rk3588), "--format", "pdf", "--lang", "zh-CN", "--out", s(&pdf_path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert!(pages > 0, "the PDF has no pages");
}

/// The text of each page of `pdf`, read by `pypdf` in the active virtualenv's Python (`.ci/run`
/// installs it), or `None` after printing why the caller skips.
fn pdf_page_texts(pdf: &Path) -> Option<Vec<String>> {
    let python = std::env::var_os("VIRTUAL_ENV")
        .map_or(PathBuf::from("python3"), |v| PathBuf::from(v).join("bin/python3"));
    // NFKC: a font's ligature glyph (ﬀ in a hex digest) reads back as its letters.
    let script = "import json, sys, unicodedata, pypdf; print(json.dumps([unicodedata.normalize('NFKC', p.extract_text()) for p in pypdf.PdfReader(sys.argv[1]).pages]))";
    let out =
        Command::new(&python).args(["-c", script]).arg(pdf).output().ok().filter(|o| o.status.success());
    let Some(out) = out else {
        eprintln!("skipped: no Python with pypdf to read the PDF's text (pip install pypdf)");
        return None;
    };
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn every_printed_page_carries_the_report_number_and_page_n_of_n() {
    if edgecert::render::pdf::find_chromium().is_none() {
        eprintln!("skipped: headless Chromium not found (set EDGECERT_CHROMIUM, or install chromium)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &[]);
    assert!(run.code <= 1, "{}", run.stderr);
    let cert_path = out.join("shapes/rk3588/certificate.json");
    let id = certificate(&out, "shapes", "rk3588")["certificate_id"].as_str().unwrap().to_string();
    for (lang, word, of) in [("en", "Page", "of"), ("fr", "Page", "sur")] {
        let pdf = dir.path().join(format!("report.{lang}.pdf"));
        let run = edgecert(&["report", s(&cert_path), "--format", "pdf", "--lang", lang, "--out", s(&pdf)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let Some(pages) = pdf_page_texts(&pdf) else { return };
        assert!(pages.len() >= 2, "{lang}: {} pages", pages.len());
        for (i, text) in pages.iter().enumerate() {
            let line = format!("{}-r1-{lang} · {word} {} {of} {}", &id[..16], i + 1, pages.len());
            assert!(text.contains(&line), "{lang}: page {} lacks `{line}`: {text}", i + 1);
        }
    }
}
