//! The adapter file (`--adapter ADAPTER.toml`): how to drive one vendor's command-line runtime —
//! the command template, where inputs are written and outputs read, and how it reports time.
//! Every error names the file, line and field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{load_toml, Diagnostic};
use crate::vocab::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterFile {
    pub adapter: About,
    pub run: Run,
    pub inputs: Files,
    pub outputs: Files,
    pub timing: Timing,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct About {
    /// What the runtime is, for the certificate (e.g. "Qualcomm QNN qnn-net-run").
    pub name: String,
    /// A command printing the runtime's version; its first line goes into the certificate.
    #[serde(default)]
    pub version_command: Vec<String>,
    /// A command printing the device's identity and versions, one `name: value` per line
    /// (board, firmware, driver, NPU clock...): the certificate's test conditions record them.
    #[serde(default)]
    pub device_command: Vec<String>,
    /// A command printing the device's thermal zones and clocks now, one `zone NAME: °C` or
    /// `clock NAME: MHz` per line: a soak (`certify --soak`) runs it once a second.
    #[serde(default)]
    pub sensors_command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Program and arguments, no shell; placeholders: `{model}`, `{input_list}`,
    /// `{input_dir}`, `{output_dir}`, `{count}`, `{adapter_dir}`.
    pub command: Vec<String>,
    /// Samples per invocation (a runtime pays its start-up and model load once per call).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Seconds one invocation may take before it is killed as hung.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

fn default_batch() -> usize {
    32
}

fn default_timeout() -> f64 {
    300.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// float32, little-endian, C order, no header (what RKNN, QNN and CANN tools read and write).
    Raw,
    /// NumPy's `.npy`.
    Npy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub format: Format,
    /// Path of one tensor file under the invocation's input (or output) folder; placeholders:
    /// `{index}` (the sample's place in the invocation, from 0), `{name}` (the graph tensor's
    /// name, made file-safe), `{k}` (its position among the graph's inputs or outputs).
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingMode {
    /// The runtime prints one line per sample that matches `line`.
    Line,
    /// The invocation's wall clock divided over its samples (start-up and load included: an
    /// upper bound, labelled so).
    Wall,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub mode: TimingMode,
    /// For `line`: a template such as `sample {index}: {ms} ms` (`{index}` optional: lines are
    /// then taken in sample order).
    #[serde(default)]
    pub line: Option<String>,
}

/// A loaded adapter and where it came from.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub file: AdapterFile,
    pub path: PathBuf,
    /// SHA-256 of the adapter file: outputs journalled under one adapter never answer for another.
    pub sha256: String,
}

const PLACEHOLDERS: &[&str] =
    &["{model}", "{input_list}", "{input_dir}", "{output_dir}", "{count}", "{adapter_dir}"];

impl Adapter {
    pub fn load(path: &Path) -> Result<Adapter> {
        let (file, doc) = load_toml::<AdapterFile>(path)?;
        let mut errors: Vec<Diagnostic> = Vec::new();
        if file.run.command.is_empty() {
            errors.push(doc.error("run.command", "give the runtime's program and its arguments"));
        }
        for arg in &file.run.command {
            if let Some(unknown) = unknown_placeholder(arg, PLACEHOLDERS) {
                errors.push(doc.error(
                    "run.command",
                    format!("unknown placeholder {unknown} (known: {})", PLACEHOLDERS.join(", ")),
                ));
            }
        }
        if !(1..=4096).contains(&file.run.batch) {
            errors.push(doc.error("run.batch", "samples per invocation must be 1..=4096"));
        }
        if !(file.run.timeout_s > 0.0 && file.run.timeout_s <= 86_400.0) {
            errors.push(doc.error("run.timeout_s", "seconds per invocation must be in (0, 86400]"));
        }
        for (field, files) in [("inputs.file", &file.inputs), ("outputs.file", &file.outputs)] {
            if let Some(why) = file_template_error(&files.file) {
                errors.push(doc.error(field, why));
            }
        }
        match (&file.timing.mode, &file.timing.line) {
            (TimingMode::Line, None) => {
                errors.push(doc.error("timing.line", "mode = \"line\" needs a line template with {ms}"))
            }
            (TimingMode::Line, Some(line)) if !line.contains("{ms}") => {
                errors.push(doc.error("timing.line", "the template must capture {ms}"))
            }
            (TimingMode::Line, Some(line)) => {
                if let Some(unknown) = unknown_placeholder(line, &["{ms}", "{index}"]) {
                    errors.push(doc.error(
                        "timing.line",
                        format!("unknown placeholder {unknown} (known: {{ms}}, {{index}})"),
                    ));
                }
            }
            _ => {}
        }
        if !errors.is_empty() {
            return Err(Error::Config(errors));
        }
        let bytes = crate::vocab::read_bytes(path)?;
        // Absolute, so `{adapter_dir}` holds wherever the runtime runs.
        let path = path.canonicalize().map_err(|e| Error::io(path, e))?;
        Ok(Adapter { file, path, sha256: crate::vocab::hash::sha256_hex(&bytes) })
    }

    pub fn dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// The first `{...}` in `text` that is not one of `known`.
fn unknown_placeholder(text: &str, known: &[&str]) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e + 1)?;
        let placeholder = &rest[start..end];
        if !known.contains(&placeholder) {
            return Some(placeholder.to_string());
        }
        rest = &rest[end..];
    }
    None
}

/// Why a tensor-file template is unusable: it must tell samples apart, stay relative, and
/// never climb out of its folder.
fn file_template_error(template: &str) -> Option<String> {
    if let Some(unknown) = unknown_placeholder(template, &["{index}", "{name}", "{k}"]) {
        return Some(format!("unknown placeholder {unknown} (known: {{index}}, {{name}}, {{k}})"));
    }
    if !template.contains("{index}") {
        return Some("the template must contain {index}, or samples would overwrite each other".into());
    }
    if !template.contains("{name}") && !template.contains("{k}") {
        return Some("the template must contain {name} or {k}, or tensors would overwrite each other".into());
    }
    let path = Path::new(template);
    if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Some("the template must be a relative path without `..`".into());
    }
    None
}

/// A line template compiled for matching: literal pieces between the `{index}` and `{ms}`
/// captures.
pub struct LineTemplate {
    pieces: Vec<Piece>,
}

enum Piece {
    Literal(String),
    Index,
    Ms,
}

impl LineTemplate {
    pub fn new(template: &str) -> LineTemplate {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find(['{']) {
            let (capture, len) = if rest[start..].starts_with("{ms}") {
                (Piece::Ms, 4)
            } else if rest[start..].starts_with("{index}") {
                (Piece::Index, 7)
            } else {
                pieces.push(Piece::Literal(rest[..start + 1].to_string()));
                rest = &rest[start + 1..];
                continue;
            };
            if start > 0 {
                pieces.push(Piece::Literal(rest[..start].to_string()));
            }
            pieces.push(capture);
            rest = &rest[start + len..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        LineTemplate { pieces }
    }

    /// (sample index if captured, milliseconds) when the whole line matches (surrounding
    /// whitespace aside).
    pub fn matches(&self, line: &str) -> Option<(Option<usize>, f64)> {
        let mut rest = line.trim();
        let (mut index, mut ms) = (None, None);
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
                Piece::Index | Piece::Ms => {
                    // A capture runs up to the next literal (or the end of the line).
                    let end = match self.pieces.get(i + 1) {
                        Some(Piece::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = rest[..end].trim();
                    match piece {
                        Piece::Index => index = Some(value.parse().ok()?),
                        _ => ms = Some(value.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)?),
                    }
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some((index, ms?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_template_captures_index_and_milliseconds_and_nothing_else() {
        let t = LineTemplate::new("sample {index}: {ms} ms");
        assert_eq!(t.matches("sample 12: 0.734 ms"), Some((Some(12), 0.734)));
        assert_eq!(t.matches("  sample 3: 10 ms  "), Some((Some(3), 10.0)));
        assert_eq!(t.matches("sample x: 1 ms"), None);
        assert_eq!(t.matches("sample 1: -1 ms"), None);
        assert_eq!(t.matches("sample 1: 1 ms extra"), None);
        // CANN's msame prints "Inference time: 2.53ms" per sample, with no index.
        let msame = LineTemplate::new("Inference time: {ms}ms");
        assert_eq!(msame.matches("Inference time: 2.53ms"), Some((None, 2.53)));
    }

    #[test]
    fn file_templates_must_separate_samples_and_stay_inside_their_folder() {
        assert_eq!(file_template_error("Result_{index}/{name}.raw"), None);
        assert!(file_template_error("{name}.raw").unwrap().contains("{index}"));
        assert!(file_template_error("../{index}/{k}.raw").unwrap().contains("without `..`"));
        assert!(file_template_error("/tmp/{index}/{k}.raw").unwrap().contains("relative"));
        assert!(file_template_error("{index}/{nme}.raw").unwrap().contains("unknown placeholder {nme}"));
    }
}
