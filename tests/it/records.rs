//! The lab's records: `certify --record DB`, `edgecert record DB PATH...` and `edgecert
//! history DB`, the same tests on a real SQLite file and on a real PostgreSQL server (a
//! throwaway cluster, `postgres_server`), with real processes writing at once and one killed
//! mid-run; a planted regression flagged by diff's statistics; duplicates a no-op; a different
//! body under a held id refused; tables append-only; a record edited outside edgecert named; a
//! database from a newer schema refused with its version.

use crate::common;
use crate::postgres_server;

use std::path::{Path, PathBuf};

use common::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh records database for one test: a SQLite file in `dir`, or a database of its own on
/// the test server (`None`, having said why, where there is no PostgreSQL).
fn database(backend: Backend, dir: &Path, test: &str) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(dir.join("lab.sqlite").to_string_lossy().into_owned()),
        Backend::Postgres => postgres_server::fresh_database(test),
    }
}

/// Runs SQL on the database behind edgecert's back, as another tool would.
fn behind_the_back(db: &str, sql: &str) -> Result<(), String> {
    if db.starts_with("postgres://") {
        let mut client = ::postgres::Client::connect(db, ::postgres::NoTls).map_err(|e| e.to_string())?;
        client
            .batch_execute(sql)
            .map_err(|e| e.as_db_error().map_or(e.to_string(), |d| d.message().to_string()))
    } else {
        rusqlite::Connection::open(db).and_then(|c| c.execute_batch(sql)).map_err(|e| e.to_string())
    }
}

/// Each test, once per backend.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::$test(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $test() { super::$test(super::Backend::Postgres) })*
        }
    };
}

on_both_backends!(
    runs_recorded_over_time_show_their_figures_and_the_run_that_broke_latency,
    a_held_certificate_is_a_no_op_and_a_different_body_under_its_id_is_refused,
    two_writers_at_once_both_land_in_full,
    a_writer_killed_mid_run_leaves_nothing_of_it,
    records_are_append_only_an_edited_one_is_named_and_a_newer_schema_refused,
    the_trend_page_plots_each_run_and_marks_the_planted_regression,
);

/// Shapes on rk3588, emulated, recorded in `db` with `label`; `budget_ms` as the latency budget
/// (the golden set copied) where given.
fn certify_recorded(dir: &Path, name: &str, db: &str, label: &str, budget_ms: Option<&str>) -> PathBuf {
    let out = dir.join(name);
    let golden = match budget_ms {
        Some(budget) => {
            let golden = copied_golden(&dir.join(format!("{name}-golden")), "shapes");
            let manifest = golden.join("family.toml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(
                &manifest,
                text.replace("latency_p99_ms = 5.0", &format!("latency_p99_ms = {budget}")),
            )
            .unwrap();
            golden
        }
        None => root().join("golden/shapes"),
    };
    // Each run states another ambient, so two runs within one second are two certificates (the
    // same inputs at the same second would be one, recorded once), as two nights' runs are.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let ambient = format!("20.{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let args = [
        "--model",
        "golden/shapes/shapes_int8.onnx",
        "--record",
        db,
        "--label",
        label,
        "--ambient",
        &ambient,
    ];
    let run = certify_quietly(&out, "profiles/rk3588.toml", s(&golden), &args);
    assert!(run.code <= 1, "{}", run.stderr);
    assert!(run.stdout.contains("1 certificate(s) added, 0 already held"), "{}", run.stdout);
    out
}

fn history(db: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["history", db, "--json"];
    args.extend_from_slice(extra);
    let run = edgecert(&args);
    assert!(run.code <= 1, "{}", run.stderr);
    let json = serde_json::from_str(&run.stdout).unwrap();
    (run, json)
}

fn runs_recorded_over_time_show_their_figures_and_the_run_that_broke_latency(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "runs_recorded_over_time_") else { return };
    let db = db.as_str();
    certify_recorded(dir.path(), "monday", db, "monday", None);
    certify_recorded(dir.path(), "tuesday", db, "tuesday", Some("0.001"));
    let (run, h) = history(db, &[]);
    assert_eq!(run.code, 1, "a regression exits 1");
    let subject = &h["subjects"][0];
    assert_eq!(
        (subject["model"].as_str(), subject["chip"].as_str()),
        (Some("golden/shapes/shapes_int8.onnx"), Some("rk3588"))
    );
    let runs = subject["runs"].as_array().unwrap();
    assert_eq!(runs.iter().map(|r| r["label"].as_str().unwrap()).collect::<Vec<_>>(), ["monday", "tuesday"]);
    assert!(runs[0]["regressions"].as_array().unwrap().is_empty());
    let broke = runs[1]["regressions"].to_string();
    assert!(broke.contains("latency") && broke.contains("PASS") && broke.contains("FAIL"), "{broke}");
    let latency = runs[0]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "latency").unwrap();
    assert!(
        latency["measured"].as_f64().unwrap() > 0.0 && latency["ci_high"].as_f64().is_some(),
        "{latency}"
    );
    assert_eq!(latency["basis"], "emulated");

    // Filters, and the text table.
    let (_, only) = history(db, &["--check", "latency", "--chip", "rk3588", "--model", "shapes_int8.onnx"]);
    assert_eq!(only["subjects"][0]["runs"][0]["checks"].as_array().unwrap().len(), 1);
    let (_, none) = history(db, &["--chip", "qcs6490"]);
    assert!(none["subjects"].as_array().unwrap().is_empty());
    // A recorded certificate, whole, by a prefix of its id; an unknown prefix is refused.
    let id = runs[1]["certificate_id"].as_str().unwrap();
    let shown = edgecert(&["history", db, "--certificate", &id[..12]]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let body: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(body["certificate_id"], id);
    let unknown = edgecert(&["history", db, "--certificate", "00000000"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no single recorded certificate has an id starting 00000000"),
        "{}",
        unknown.stderr
    );
    let text = edgecert(&["history", db]);
    assert!(
        text.stdout.contains("golden/shapes/shapes_int8.onnx on rk3588 (2 runs)")
            && text.stdout.contains("tuesday"),
        "{}",
        text.stdout
    );
}

fn a_held_certificate_is_a_no_op_and_a_different_body_under_its_id_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "a_held_certificate_is_a_") else { return };
    let db = db.as_str();
    let out = certify_recorded(dir.path(), "run", db, "first", None);
    let again = edgecert(&["record", db, s(&out)]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("0 certificate(s) added, 1 already held"), "{}", again.stdout);
    // The same content under the same id, with a signature nobody made: another body.
    let cert = out.join("shapes/rk3588/certificate.json");
    let mut value = read_json(&cert);
    value["signature"] = serde_json::json!({"algorithm": "ed25519", "public_key": "58".to_string() + &"66".repeat(31), "key_fingerprint": "0".repeat(32), "value": "0".repeat(128)});
    std::fs::write(&cert, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    // One run of a new certificate, then the refused one: the run is one transaction, so the
    // new certificate, already inserted when the refusal comes, does not land either.
    let fresh = dir.path().join("fresh");
    let run = certify_quietly(
        &fresh,
        "profiles/rk3588.toml",
        "golden/shapes",
        &["--model", "golden/shapes/shapes_int8.onnx"],
    );
    assert!(run.code <= 1, "{}", run.stderr);
    let refused = edgecert(&["record", db, s(&fresh), s(&out)]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("already holds certificate")
            && refused.stderr.contains("a record is never rewritten"),
        "{}",
        refused.stderr
    );
    let (_, h) = history(db, &[]);
    assert_eq!(
        h["subjects"][0]["runs"].as_array().unwrap().len(),
        1,
        "nothing of the refused run landed: {h}"
    );
}

fn two_writers_at_once_both_land_in_full(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "two_writers_at_once_both") else { return };
    let db = db.as_str();
    // Two different certificates (the same emulated inputs within one second would be the same
    // certificate, recorded once): the stated ambients differ.
    let outs: Vec<PathBuf> = [("a", "20"), ("b", "30")]
        .iter()
        .map(|(name, ambient)| {
            let out = dir.path().join(name);
            let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &["--ambient", ambient]);
            assert!(run.code <= 1, "{}", run.stderr);
            out
        })
        .collect();
    let writers: Vec<std::process::Child> = outs
        .iter()
        .map(|out| {
            std::process::Command::new(env!("CARGO_BIN_EXE_edgecert"))
                .args(["record", db, s(out), "--label", s(out)])
                .current_dir(root())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    let (_, h) = history(db, &[]);
    let runs = h["subjects"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{h}");
    assert!(runs.iter().all(|r| r["checks"].as_array().unwrap().len() >= 5), "each run whole: {h}");
}

fn records_are_append_only_an_edited_one_is_named_and_a_newer_schema_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "append_only") else { return };
    let db = db.as_str();
    certify_recorded(dir.path(), "run", db, "first", None);
    let mut refused =
        vec!["UPDATE checks SET verdict = 'PASS'", "DELETE FROM certificates", "UPDATE runs SET label = 'x'"];
    if backend == Backend::Postgres {
        refused.push("TRUNCATE checks");
    }
    for statement in refused {
        let err = behind_the_back(db, statement).unwrap_err();
        assert!(err.contains("records are append-only"), "{statement}: {err}");
    }
    // Edited behind edgecert's back (the trigger dropped or disabled first): history names the
    // record.
    let unguard = match backend {
        Backend::Sqlite => "DROP TRIGGER certificates_no_update",
        Backend::Postgres => "ALTER TABLE certificates DISABLE TRIGGER certificates_no_update",
    };
    behind_the_back(
        db,
        &format!("{unguard}; UPDATE certificates SET body = replace(body, '\"verdict\": \"INCONCLUSIVE\"', '\"verdict\": \"PASS\"');"),
    )
    .unwrap();
    let run = edgecert(&["history", db]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("it was changed outside edgecert"), "{}", run.stderr);
    let newer = match backend {
        Backend::Sqlite => "PRAGMA user_version = 99",
        Backend::Postgres => "INSERT INTO records_schema (version) VALUES (99)",
    };
    behind_the_back(db, newer).unwrap();
    let run = edgecert(&["history", db]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("was written with records schema version 99; this edgecert reads versions up to 2"),
        "{}",
        run.stderr
    );
}

/// A writer killed with its first certificate inserted and its transaction open (the test
/// seam `EDGECERT_TEST_STALL_RECORD` holds it there): nothing of its run is in the records,
/// and the next writer is not kept waiting by it.
fn a_writer_killed_mid_run_leaves_nothing_of_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "killed_writer") else { return };
    let db = db.as_str();
    certify_recorded(dir.path(), "before", db, "before", None);
    let outs: Vec<PathBuf> = [("a", "20"), ("b", "30")]
        .iter()
        .map(|(name, ambient)| {
            let out = dir.path().join(name);
            let run = certify_quietly(&out, "profiles/rk3588.toml", "golden/shapes", &["--ambient", ambient]);
            assert!(run.code <= 1, "{}", run.stderr);
            out
        })
        .collect();
    let flag = dir.path().join("stalled");
    let mut writer = std::process::Command::new(env!("CARGO_BIN_EXE_edgecert"))
        .args(["record", db, s(&outs[0]), s(&outs[1]), "--label", "killed"])
        .env("EDGECERT_TEST_STALL_RECORD", &flag)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !flag.exists() {
        assert!(started.elapsed().as_secs() < 60, "the writer never reached its first insert");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let (_, h) = history(db, &[]);
    let labels: Vec<&str> =
        h["subjects"][0]["runs"].as_array().unwrap().iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["before"], "nothing of the killed run: {h}");
    // The next writer lands both, in full.
    let again = edgecert(&["record", db, s(&outs[0]), s(&outs[1]), "--label", "again"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("2 certificate(s) added, 0 already held"), "{}", again.stdout);
    let (_, h) = history(db, &[]);
    assert_eq!(h["subjects"][0]["runs"].as_array().unwrap().len(), 3, "{h}");
}

/// What a reader of the trend page sees, measured in the laid-out DOM.
const TREND_PROBE: &str = r#"<script>
(function () {
  const sized = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const latency = document.querySelector('svg.trend[data-check="latency"]');
  const points = Array.from(latency.querySelectorAll('circle.point'));
  const nearest = (x) => points.reduce((best, p) =>
    Math.abs(p.cx.baseVal.value - x) < Math.abs(best.cx.baseVal.value - x) ? p : best);
  const result = {
    title: document.querySelector('h1').innerText,
    subjects: document.querySelectorAll('section.subject').length,
    plots: Array.from(document.querySelectorAll('svg.trend')).map((s) => s.dataset.check),
    points: points.filter(sized).length,
    bands: Array.from(latency.querySelectorAll('polygon.band')).filter(sized).length,
    limit: latency.querySelectorAll('line.limit').length,
    regressed: Array.from(latency.querySelectorAll('path.regression')).filter(sized).map((r) => {
      const b = r.getBBox();
      return nearest(b.x + b.width / 2).dataset.certificate;
    }),
    verdict_changes: latency.querySelectorAll('line.verdict-change').length,
    failed_points: Array.from(latency.querySelectorAll('circle.point.fail')).map((p) => p.dataset.certificate),
    links_resolve: points.every((p) => {
      const href = p.parentElement.getAttribute('href');
      return !!href && document.getElementById(href.slice(1)) !== null;
    }),
    scroll_width: document.documentElement.scrollWidth,
  };
  const pre = document.createElement('pre');
  pre.id = 'edgecert-probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
})();
</script>"#;

/// Three nightly runs, the third with a latency budget it cannot meet: the page, in Chinese,
/// plots latency and the accuracy checks per run, and marks the regression on the third run's
/// point (the page of the first two, the control, marks none). Self-contained: no script, no
/// address outside the page. Drawn in headless Chromium where one is installed.
fn the_trend_page_plots_each_run_and_marks_the_planted_regression(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path(), "trend_page") else { return };
    let db = db.as_str();
    let page = dir.path().join("trend.html");
    let trend = |lang: &str| {
        let run = edgecert(&["trend", db, "--out", s(&page), "--lang", lang]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("trend page written to"), "{}", run.stdout);
        std::fs::read_to_string(&page).unwrap()
    };
    certify_recorded(dir.path(), "monday", db, "monday", None);
    certify_recorded(dir.path(), "tuesday", db, "tuesday", None);
    let control = trend("en");
    assert!(control.contains("Trends of the recorded runs") && control.contains("2 runs"), "{control}");
    assert!(!control.contains("<path class=\"regression\""), "no regression between two equal runs");
    certify_recorded(dir.path(), "wednesday", db, "wednesday", Some("0.001"));
    let html = trend("zh-CN");
    for outside in ["<script", "http://", "https://", "src="] {
        assert!(!html.contains(outside), "the page is self-contained, yet holds {outside}");
    }
    let (_, h) = history(db, &[]);
    let wednesday = h["subjects"][0]["runs"][2]["certificate_id"].as_str().unwrap().to_string();
    assert_eq!(html.matches("<path class=\"regression\"").count(), 1, "one regression, on latency");

    let Some(chromium) = edgecert::render::pdf::find_chromium() else {
        eprintln!("skipped (the DOM half): headless Chromium not found (apt-get install chromium)");
        return;
    };
    let dom = crate::report_browser::dom_probe(&chromium, &page, TREND_PROBE, dir.path());
    assert_eq!(dom["title"], "已记录运行的趋势", "{dom}");
    assert_eq!(dom["subjects"], 1, "{dom}");
    let plots: Vec<&str> = dom["plots"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(plots[0], "latency", "{dom}");
    assert!(plots.contains(&"accuracy") && plots.contains(&"accuracy_vs_fp32"), "{dom}");
    assert_eq!(dom["points"], 3, "a point per run: {dom}");
    assert!(dom["bands"].as_u64().unwrap() >= 1 && dom["limit"] == 1, "{dom}");
    assert_eq!(dom["regressed"], serde_json::json!([wednesday]), "the mark sits on wednesday's point: {dom}");
    assert_eq!(dom["failed_points"], serde_json::json!([wednesday]), "{dom}");
    assert_eq!(dom["verdict_changes"], 1, "{dom}");
    assert_eq!(dom["links_resolve"], true, "every point links to its run's row: {dom}");
    assert!(dom["scroll_width"].as_u64().unwrap() <= 794, "nothing wider than the window: {dom}");
}

/// A record written by schema 1 kept the whole raw observations, not the latencies alone:
/// history still reads its latencies from them (checked against the certificate's digest), and
/// finds the regression they show; an edited one is named.
#[test]
fn a_schema_1_record_with_whole_observations_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.sqlite");
    let db = s(&db);
    let monday = certify_recorded(dir.path(), "monday", db, "monday", None);
    certify_recorded(dir.path(), "tuesday", db, "tuesday", Some("0.001"));
    let observations = std::fs::read_to_string(monday.join("shapes/rk3588/observations.json")).unwrap();
    let as_schema_1 = |observations: &str| {
        format!(
            "DROP TRIGGER IF EXISTS certificates_no_update; UPDATE certificates SET observations = '{}', timing = NULL, timing_sha256 = NULL WHERE rowid = 1;",
            observations.replace('\'', "''")
        )
    };
    behind_the_back(db, &as_schema_1(&observations)).unwrap();
    let (run, h) = history(db, &[]);
    assert_eq!(run.code, 1, "the regression is still found: {h}");
    assert!(h["subjects"][0]["runs"][1]["regressions"].to_string().contains("latency"), "{h}");
    behind_the_back(db, &as_schema_1(&observations.replacen("[", "[ ", 1))).unwrap();
    let run = edgecert(&["history", db]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("holds observations hashing to"), "{}", run.stderr);
}
