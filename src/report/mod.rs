//! Reports: the certificate schema and the reporters that render a run. Each reporter consumes
//! the runner's events ([`crate::run::Event`]) and knows nothing of backends: the terminal
//! (cargo-test-like lines and a verdict table), the certificate JSON files, JUnit XML for CI,
//! and a plain-text summary. Files are written by [`write_all_atomically`]: all of them land or
//! none does, so a failed run never leaves a half-written or stale report. `edgecert report`
//! renders one certificate as a test report (HTML, Markdown or PDF, in any catalogued language)
//! from a [`document`] model built once and laid out per format.

pub mod document;
mod files;
mod html;
mod inventory;
pub mod issuer;
mod junit;
mod markdown;
pub mod observations;
pub mod pdf;
pub mod progress;
pub mod schema;
pub mod sign;
mod table;
mod terminal;
mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::i18n::Catalog;

pub use files::{certificate_path, CertificateFiles, JunitFile, SummaryFile, CERTIFICATE_FILE};
pub use inventory::{comparison_text, inventory_text, EstimateReport, LatencySummary, PlacedNode};
pub use junit::junit_xml;
pub use schema::Certificate;
pub use table::{verdict_table, verdict_table_in};
pub use terminal::{QuietPipe, TerminalFormat, TerminalReporter};
pub use verify::{verify, Verification, VerifyRequest};

/// The largest certificate `read_certificate` accepts: certificates are hostile input.
pub const MAX_CERTIFICATE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a certificate back: bounded size, the schema this version writes, every member known,
/// and an id that matches the content (a certificate edited after issue is refused).
pub fn read_certificate(path: &Path) -> Result<Certificate> {
    let cert = parse_certificate(path)?;
    let bad = |message: String| Err(Error::Report { path: path.to_path_buf(), message });
    let id = cert.content_id();
    if cert.certificate_id != id {
        return bad(format!(
            "certificate_id {} does not match the content, whose digest is {id}: the certificate was changed after it was issued",
            cert.certificate_id
        ));
    }
    let (verdict, _) = schema::overall(&cert.checks, &cert.coverage);
    if verdict != cert.verdict {
        return bad(format!(
            "the verdict says {} but its checks and coverage give {}: the certificate was changed after it was issued",
            cert.verdict.as_str(),
            verdict.as_str()
        ));
    }
    Ok(cert)
}

/// Reads a certificate without comparing its id with its content (`verify` reports that itself).
pub fn parse_certificate(path: &Path) -> Result<Certificate> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CERTIFICATE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
    if bytes.len() as u64 > MAX_CERTIFICATE_BYTES {
        return Err(bad(format!("larger than {MAX_CERTIFICATE_BYTES} bytes: not a certificate")));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not JSON (line {}, column {}): {e}", e.line(), e.column())))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(schema::SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(bad(format!(
                "certificate schema_version {v}; this edgecert reads version {}",
                schema::SCHEMA_VERSION
            )))
        }
        None => return Err(bad("no schema_version: not an edgecert certificate".into())),
    }
    serde_json::from_value(value).map_err(|e| bad(format!("does not follow the certificate schema: {e}")))
}

/// What `edgecert show` prints, in English.
pub fn certificate_text(c: &Certificate) -> String {
    certificate_text_in(c, &Catalog::english())
}

/// What `edgecert show --lang` prints: who and what the certificate is about, its verdict, and
/// the same verdict table as the run that wrote it, in the catalog's language.
pub fn certificate_text_in(c: &Certificate, t: &Catalog) -> String {
    let labels =
        ["show-certificate", "show-issued", "show-model", "show-reference", "show-chip", "show-golden"]
            .map(|id| t.text(id));
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 1;
    let basis = t.text(if c.backend.emulated { "show-basis-emulated" } else { "show-basis-measured" });
    let values = [
        c.certificate_id.clone(),
        t.format(
            "show-issued-line",
            &[
                ("date", &c.issued_at),
                ("tool", &c.tool.name),
                ("version", &c.tool.version),
                ("engine", &c.tool.engine),
                ("basis", &basis),
            ],
        ),
        t.format(
            "show-model-line",
            &[
                ("model", &c.subject.model),
                ("sha256", &c.subject.sha256),
                ("size", &c.subject.size_bytes.to_string()),
                ("quantization", &c.subject.quantization),
            ],
        ),
        t.format("show-reference-line", &[("model", &c.reference.model), ("sha256", &c.reference.sha256)]),
        t.format(
            "show-chip-line",
            &[("name", &c.profile.name), ("display", &c.profile.display_name), ("sha256", &c.profile.sha256)],
        ),
        t.format(
            "show-golden-line",
            &[
                ("name", &c.golden.name),
                ("sha256", &c.golden.sha256),
                ("samples", &c.golden.samples.to_string()),
                ("metric", &c.golden.metric),
            ],
        ),
    ];
    let mut out = String::new();
    for (label, value) in labels.iter().zip(values) {
        let pad = width.saturating_sub(label.chars().count());
        out.push_str(&format!("{label}{}{value}\n", " ".repeat(pad)));
    }
    out.push_str(&format!(
        "\n{}\n\n{}\n",
        verdict_table_in(std::slice::from_ref(c), t),
        t.format("show-verdict-line", &[("verdict", &t.outcome(c.verdict)), ("reason", &c.verdict_reason)])
    ));
    out
}

/// The formats of `edgecert report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    #[value(name = "md")]
    Markdown,
    Pdf,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Markdown => "md",
            ReportFormat::Pdf => "pdf",
        }
    }
}

/// One `edgecert report` invocation.
pub struct ReportRequest {
    pub certificate: PathBuf,
    pub format: ReportFormat,
    /// BCP 47 tag of a catalogued language.
    pub lang: String,
    /// Where to write; default `report.<lang>.<ext>` beside the certificate.
    pub out: Option<PathBuf>,
    /// The issuer TOML file (`docs/issuer.example.toml`).
    pub issuer: Option<PathBuf>,
}

/// Renders a certificate's report in memory: every input is read and validated here, so a bad
/// one stops before anything is written.
pub fn render_report(request: &ReportRequest) -> Result<Vec<u8>> {
    let catalog = Catalog::load(&request.lang)?;
    let certificate = read_certificate(&request.certificate)?;
    let issuer = request.issuer.as_deref().map(issuer::Issuer::load).transpose()?;
    let latencies = observations::read_latencies(&request.certificate, &certificate);
    let inputs =
        document::ReportInputs { certificate: &certificate, issuer: issuer.as_ref(), latencies: &latencies };
    let doc = document::build(&inputs, &catalog);
    Ok(match request.format {
        ReportFormat::Html => html::render(&doc).into_bytes(),
        ReportFormat::Markdown => markdown::render(&doc).into_bytes(),
        ReportFormat::Pdf => pdf::html_to_pdf(&html::render(&doc))?,
    })
}

/// Renders and writes a report atomically; returns where it went.
pub fn write_report(request: &ReportRequest) -> Result<PathBuf> {
    let bytes = render_report(request)?;
    let path = request.out.clone().unwrap_or_else(|| {
        let tag = Catalog::load(&request.lang).map_or(request.lang.clone(), |c| c.tag().to_string());
        request
            .certificate
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("report.{tag}.{}", request.format.extension()))
    });
    write_all_atomically(&[(path.clone(), bytes)])?;
    Ok(path)
}

/// Writes several files so that either all of them land or none does: each is written under a
/// temporary name in its final folder, then all are renamed into place.
pub fn write_all_atomically(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    let cleanup = |staged: &[(PathBuf, &PathBuf)]| {
        for (tmp, _) in staged {
            let _ = std::fs::remove_file(tmp);
        }
    };
    for (path, bytes) in files {
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Err(e) = std::fs::create_dir_all(dir) {
            cleanup(&staged);
            return Err(Error::io(dir, e));
        }
        let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            cleanup(&staged);
            return Err(Error::io(&tmp, e));
        }
        staged.push((tmp, path));
    }
    // Every file is complete on disk before the first rename; a rename failing (a full or
    // read-only folder) leaves the files not yet renamed as they were, and their temporary
    // copies are removed.
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&staged[i..]);
            return Err(Error::Report { path: path.to_path_buf(), message: e.to_string() });
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
