//! The test report: one certificate rendered for people. `edgecert report` builds a
//! [`document`] model once (ISO/IEC 17025 §7.8's fields, in any catalogued language) and lays
//! it out as HTML, Markdown or PDF; `edgecert show` and the run's terminal print the verdict
//! [`table`]. Renderers read certificates and observations, never a run or a backend.

pub mod cyclonedx;
pub mod document;
mod html;
pub mod issuer;
mod markdown;
pub mod pdf;
mod table;

use std::path::{Path, PathBuf};

use crate::i18n::Catalog;
use crate::vocab::{write_all_atomically, Error, Result};

use crate::certificate::{observations, read_certificate, Certificate};

pub use html::esc as html_escape;
pub use table::{verdict_table, verdict_table_in};

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
    /// The report's revision (1 for the first issue): with the language, part of its number.
    pub revision: u32,
}

/// Renders a certificate's report in memory: every input is read and validated here, so a bad
/// one stops before anything is written.
pub fn render_report(request: &ReportRequest) -> Result<Vec<u8>> {
    let catalog = Catalog::load(&request.lang)?;
    let certificate = read_certificate(&request.certificate)?;
    let (issuer, issuer_unsealed) = report_issuer(request, &certificate)?;
    let latencies = observations::read_latencies(&request.certificate, &certificate);
    let inputs = document::ReportInputs {
        certificate: &certificate,
        issuer: issuer.as_ref(),
        issuer_unsealed,
        latencies: &latencies,
        revision: request.revision,
    };
    let doc = document::build(&inputs, &catalog);
    Ok(match request.format {
        ReportFormat::Html => html::render(&doc).into_bytes(),
        ReportFormat::Markdown => markdown::render(&doc).into_bytes(),
        ReportFormat::Pdf => pdf::html_to_pdf(&html::render(&doc))?,
    })
}

/// The issuer a report names, and whether it is unsealed: the certificate's own (`certify
/// --issuer`), which `report --issuer` may only repeat; for a certificate issued without one,
/// the file given now, which the report then lists as a deviation (nothing binds it).
fn report_issuer(
    request: &ReportRequest,
    certificate: &Certificate,
) -> Result<(Option<issuer::Issuer>, bool)> {
    let given = request.issuer.as_deref().map(issuer::Issuer::load).transpose()?;
    match (&certificate.issuer, given) {
        (Some(sealed), None) => Ok((Some(sealed.clone()), false)),
        (Some(sealed), Some(given)) if *sealed == given => Ok((Some(given), false)),
        (Some(sealed), Some(_)) => Err(Error::Report {
            path: request.issuer.clone().unwrap_or_default(),
            message: format!(
                "differs from the issuer sealed in {} ({}): a report renders what was certified; leave out --issuer, or certify again with this file",
                request.certificate.display(),
                sealed.lab.name
            ),
        }),
        (None, given) => {
            let unsealed = given.is_some();
            Ok((given, unsealed))
        }
    }
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

/// The formats `edgecert export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// CycloneDX 1.6 JSON: the model as a machine-learning-model component with its model card
    /// and declarations (an AI bill of materials).
    Cyclonedx,
}

/// Exports a certificate (read back and validated as `show` does) and writes it atomically,
/// by default `bom.cdx.json` beside the certificate; returns where it went.
pub fn write_export(certificate: &Path, format: ExportFormat, out: Option<PathBuf>) -> Result<PathBuf> {
    let cert = read_certificate(certificate)?;
    let bytes = match format {
        ExportFormat::Cyclonedx => {
            let mut bytes = serde_json::to_vec_pretty(&cyclonedx::bom(&cert)).expect("plain data");
            bytes.push(b'\n');
            bytes
        }
    };
    let path = out.unwrap_or_else(|| certificate.parent().unwrap_or(Path::new(".")).join("bom.cdx.json"));
    write_all_atomically(&[(path.clone(), bytes)])?;
    Ok(path)
}
