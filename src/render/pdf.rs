//! The report as PDF, printed from its HTML by headless Chromium (`EDGECERT_CHROMIUM`, else
//! `chromium`, `chromium-browser` or `google-chrome` on PATH). edgecert draws no PDF itself: the
//! browser's print engine already lays out the A4 pages the HTML was written for.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::vocab::{Error, Result};

/// How long Chromium may take to print one report before it is stopped.
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

const NO_CHROMIUM: &str = "PDF needs headless Chromium (Debian: apt-get install chromium; or set EDGECERT_CHROMIUM); `--format html` writes the same report, which prints to PDF from any browser";

/// The Chromium to print with: `EDGECERT_CHROMIUM` when set, else the first on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EDGECERT_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints `html` to PDF bytes.
pub fn html_to_pdf(html: &str) -> Result<Vec<u8>> {
    let chromium = find_chromium().ok_or_else(|| Error::Usage(NO_CHROMIUM.into()))?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let scratch = Scratch(std::env::temp_dir().join(format!("edgecert-pdf-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).map_err(|e| Error::io(&scratch.0, e))?;
    let html_path = scratch.0.join("report.html");
    let pdf_path = scratch.0.join("report.pdf");
    std::fs::write(&html_path, html).map_err(|e| Error::io(&html_path, e))?;
    let failed = |message: String| Error::Report { path: chromium.clone(), message };
    // To a file, not a pipe: a chatty browser must not block on a full pipe nobody reads yet.
    let log_path = scratch.0.join("chromium.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let mut child = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"])
        // A private profile: no clash with a running browser, nothing left in the user's.
        .arg(format!("--user-data-dir={}", scratch.0.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf_path.display()))
        .arg(file_url(&html_path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| failed(format!("cannot start: {e}; {NO_CHROMIUM}")))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > PRINT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("did not print within {} s", PRINT_TIMEOUT.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let stderr = std::fs::read_to_string(&log_path).ok();
    let pdf = std::fs::read(&pdf_path).unwrap_or_default();
    if !status.success() || !pdf.starts_with(b"%PDF") {
        let tail: String = stderr.unwrap_or_default().lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        return Err(failed(format!("printing to PDF failed ({status}): {tail}")));
    }
    Ok(pdf)
}

/// `file://` URL of an absolute path, percent-encoding what a URL cannot hold.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}
