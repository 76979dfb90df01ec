//! The file reporters: one `certificate.json` per (family, chip), `junit.xml` and
//! `summary.txt` for the run. Each gathers what it needs from the events and hands its files to
//! the run, which writes them all at once.

use std::path::PathBuf;

use super::junit_xml;
use crate::certificate::certificate_path;
use crate::certificate::observations::OBSERVATIONS_FILE;
use crate::certificate::schema::Certificate;
use crate::render::verdict_table;
use crate::run::{Event, ReportFile, Reporter};
use crate::vocab::Result;

/// `<out>/<family>/<chip>/certificate.json` for every certificate issued, with the raw
/// observations it is bound to and its own `junit.xml` beside it (a technical file or a CI job
/// that takes one certificate takes its test results with it).
pub struct CertificateFiles {
    out: PathBuf,
    files: Vec<ReportFile>,
}

impl CertificateFiles {
    pub fn new(out: PathBuf) -> Self {
        CertificateFiles { out, files: Vec::new() }
    }
}

impl Reporter for CertificateFiles {
    fn handle(&mut self, event: &Event<'_>) -> Result<()> {
        if let Event::CertificateIssued { certificate: c, observations } = event {
            let path = certificate_path(&self.out, &c.golden.name, &c.profile.name);
            let (beside, junit) = (path.with_file_name(OBSERVATIONS_FILE), path.with_file_name("junit.xml"));
            self.files
                .push(ReportFile { path: junit, bytes: junit_xml(std::slice::from_ref(*c)).into_bytes() });
            self.files.push(ReportFile { path, bytes: c.to_json() });
            self.files.push(ReportFile { path: beside, bytes: observations.to_vec() });
        }
        Ok(())
    }

    fn finish(&mut self) -> Vec<ReportFile> {
        std::mem::take(&mut self.files)
    }
}

/// Collects the certificates a run issues, for the reporters that render them together.
#[derive(Default)]
struct Issued(Vec<Certificate>);

impl Issued {
    fn take(&mut self, event: &Event<'_>) {
        if let Event::CertificateIssued { certificate, .. } = event {
            self.0.push((*certificate).clone());
        }
    }
}

/// `<out>/junit.xml`: one test case per planned check, for CI dashboards.
pub struct JunitFile {
    path: PathBuf,
    issued: Issued,
}

impl JunitFile {
    pub fn new(out: PathBuf) -> Self {
        JunitFile { path: out.join("junit.xml"), issued: Issued::default() }
    }
}

impl Reporter for JunitFile {
    fn handle(&mut self, event: &Event<'_>) -> Result<()> {
        self.issued.take(event);
        Ok(())
    }

    fn finish(&mut self) -> Vec<ReportFile> {
        vec![ReportFile { path: self.path.clone(), bytes: junit_xml(&self.issued.0).into_bytes() }]
    }
}

/// `<out>/summary.txt`: the verdict table and the closing line.
pub struct SummaryFile {
    path: PathBuf,
    issued: Issued,
    closing: String,
}

impl SummaryFile {
    pub fn new(out: PathBuf) -> Self {
        SummaryFile { path: out.join("summary.txt"), issued: Issued::default(), closing: String::new() }
    }
}

impl Reporter for SummaryFile {
    fn handle(&mut self, event: &Event<'_>) -> Result<()> {
        self.issued.take(event);
        if let Event::RunFinished { summary } = event {
            self.closing = summary.closing_line();
        }
        Ok(())
    }

    fn finish(&mut self) -> Vec<ReportFile> {
        let text = format!("{}\n{}\n", verdict_table(&self.issued.0), self.closing);
        vec![ReportFile { path: self.path.clone(), bytes: text.into_bytes() }]
    }
}
