//! The terminal reporter: cargo-test-like lines with PASS, FAIL and INCONCLUSIVE each shown as
//! itself, the reasons of every check that did not pass, the verdict table, and a closing line
//! that counts the three outcomes apart. `--format json` streams the events instead, one JSON
//! object per line. Output survives a closed pipe: once the reader is gone (`| head`), writing
//! stops quietly and the run goes on, as ripgrep does.

use std::io::{self, Write};

use crate::certificate::schema::{Certificate, CheckStatus, Outcome};
use crate::render::verdict_table;
use crate::run::{Event, Reporter};
use crate::vocab::{Error, Result};

/// How much the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TerminalFormat {
    /// One line per check.
    #[default]
    Pretty,
    /// One character per check (`.` PASS, `F` FAIL, `I` INCONCLUSIVE, `E` error).
    Terse,
    /// Every event as one JSON object per line.
    Json,
}

/// A writer that goes quiet when the reader has gone: a broken pipe ends output, not the run.
pub struct QuietPipe<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> QuietPipe<W> {
    pub fn new(inner: W) -> Self {
        QuietPipe { inner, closed: false }
    }
}

impl<W: Write> Write for QuietPipe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

pub struct TerminalReporter<W: Write> {
    out: QuietPipe<W>,
    format: TerminalFormat,
    certificates: Vec<Certificate>,
    /// Every check that did not pass: (id, verdict line, findings).
    attention: Vec<(String, String, Vec<String>)>,
    column: usize,
}

impl<W: Write> TerminalReporter<W> {
    pub fn new(out: W, format: TerminalFormat) -> Self {
        TerminalReporter {
            out: QuietPipe::new(out),
            format,
            certificates: Vec::new(),
            attention: Vec::new(),
            column: 0,
        }
    }

    fn write_event(&mut self, event: &Event<'_>) -> io::Result<()> {
        if self.format == TerminalFormat::Json {
            let line = serde_json::to_string(event).expect("events are plain data");
            return writeln!(self.out, "{line}");
        }
        match event {
            Event::RunStarted { selected, engine, cross_check_engine, engine_note, .. } => {
                writeln!(self.out, "\nrunning {selected} checks")?;
                let cross = cross_check_engine.map(|x| format!(", cross-checked on {x}")).unwrap_or_default();
                let note = engine_note.map(|n| format!(" ({n})")).unwrap_or_default();
                writeln!(self.out, "engine: {engine}{cross}{note}")
            }
            Event::CheckFinished { id, record } => {
                let word = match record.status {
                    CheckStatus::Ran => record.verdict.as_str().to_string(),
                    CheckStatus::Error => "ERROR".to_string(),
                };
                if record.verdict != Outcome::Pass || record.status == CheckStatus::Error {
                    let line = format!("{word}: {}", record.reason);
                    self.attention.push((
                        id.to_string(),
                        line,
                        record.findings.iter().take(10).cloned().collect(),
                    ));
                }
                match self.format {
                    TerminalFormat::Terse => self.terse_mark(&word),
                    _ => writeln!(self.out, "check {id} ... {word}"),
                }
            }
            Event::CertificateIssued { certificate, .. } => {
                self.certificates.push((*certificate).clone());
                Ok(())
            }
            Event::RunFinished { summary } => {
                if self.column > 0 {
                    writeln!(self.out)?;
                }
                if !self.attention.is_empty() {
                    writeln!(self.out, "\nnot passed:")?;
                    for (id, line, findings) in &self.attention {
                        writeln!(self.out, "    {id}: {line}")?;
                        for f in findings {
                            writeln!(self.out, "      - {f}")?;
                        }
                    }
                }
                if !self.certificates.is_empty() {
                    writeln!(self.out, "\n{}", verdict_table(&self.certificates))?;
                }
                writeln!(self.out, "\n{}", summary.closing_line())
            }
            Event::CheckStarted { .. } | Event::ObservationRecorded { .. } => Ok(()),
        }
    }

    fn terse_mark(&mut self, word: &str) -> io::Result<()> {
        let mark = match word {
            "PASS" => ".",
            "FAIL" => "F",
            "ERROR" => "E",
            _ => "I",
        };
        self.column += 1;
        write!(self.out, "{mark}")?;
        if self.column == 88 {
            self.column = 0;
            writeln!(self.out)?;
        }
        Ok(())
    }
}

impl<W: Write> Reporter for TerminalReporter<W> {
    fn handle(&mut self, event: &Event<'_>) -> Result<()> {
        self.write_event(event)
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io(std::path::Path::new("standard output"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that has gone away.
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn a_closed_pipe_swallows_output_but_other_errors_surface() {
        let mut quiet = QuietPipe::new(Closed);
        assert!(writeln!(quiet, "first").is_ok());
        assert!(quiet.closed);
        assert!(writeln!(quiet, "second").is_ok());
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(writeln!(QuietPipe::new(Full), "x").is_err());
    }
}
