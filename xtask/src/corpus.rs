//! The measurement corpus, `fidelity/measurements.csv`: vendors' published on-device latencies
//! and throughputs (see `fidelity/README.md`), read and checked row by row, and split by a rule
//! fixed before any fitting: per chip, the rows are ranked by the SHA-256 of their key and the
//! first third (rounded down) calibrate; the rest are only scored. No row is chosen by hand.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The columns, in order.
pub const COLUMNS: [&str; 16] = [
    "chip",
    "model",
    "architecture",
    "input_shape",
    "precision",
    "runtime",
    "measure",
    "batch",
    "value",
    "unit",
    "compute_unit",
    "npu_layers",
    "total_layers",
    "source",
    "commit",
    "note",
];

/// What a published figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// One inference, in ms.
    Latency,
    /// Pipelined throughput at the row's batch, in frames per second.
    Throughput,
    /// Frames per second of one stream run back to back on one accelerator core (RKNN's
    /// single-core FPS): 1000 / its latency, not a pipelined or all-core rate.
    SerialThroughput,
    /// A speech model's real-time factor: not comparable with an emulated latency.
    RealTimeFactor,
}

impl Measure {
    /// The name the calibration split hashes: a serial throughput is a throughput there, as the
    /// rows were labelled when the split was fixed, so telling how a figure compares moves no
    /// row between the calibrating third and the scored rest.
    fn split_name(self) -> Measure {
        match self {
            Measure::SerialThroughput => Measure::Throughput,
            other => other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Measurement {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    pub chip: String,
    pub model: String,
    pub architecture: String,
    pub input_shape: String,
    pub precision: String,
    pub runtime: String,
    pub measure: Measure,
    pub batch: u32,
    pub value: f64,
    pub compute_unit: String,
    pub source: String,
    pub commit: String,
    pub note: String,
}

impl Measurement {
    /// Milliseconds per inference: the latency, or 1000 / FPS for a throughput (a pipelined
    /// chip's frame interval, not a latency); `None` for a real-time factor.
    pub fn ms_per_inference(&self) -> Option<f64> {
        match self.measure {
            Measure::Latency => Some(self.value),
            Measure::Throughput | Measure::SerialThroughput => Some(1000.0 / self.value),
            Measure::RealTimeFactor => None,
        }
    }

    /// What identifies the row for the split: what was measured, not the figure, its
    /// provenance or the note (editing a note must not move a row between the halves).
    fn key(&self) -> String {
        [&self.chip, &self.model, &self.input_shape, &self.precision, &self.runtime, &self.compute_unit]
            .map(String::as_str)
            .join("|")
            + &format!("|{}|{:?}", self.batch, self.measure.split_name())
    }

    fn rank(&self) -> [u8; 32] {
        Sha256::digest(self.key().as_bytes()).into()
    }
}

/// Splits one CSV line into fields (RFC 4180: quoted fields, `""` inside quotes).
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().expect("one field").push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    Ok(out)
}

/// Reads the corpus; every malformed row is an error naming its line and field.
pub fn load(path: &Path) -> anyhow::Result<Vec<Measurement>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap_or_default()).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(header == COLUMNS, "{}: the header must be {}", path.display(), COLUMNS.join(","));
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        match parse_row(i + 2, line) {
            Ok(m) => rows.push(m),
            Err(e) => errors.push(format!("{}:{}: {e}", path.display(), i + 2)),
        }
    }
    anyhow::ensure!(errors.is_empty(), "{}", errors.join("\n"));
    Ok(rows)
}

fn parse_row(line: usize, text: &str) -> Result<Measurement, String> {
    let f = fields(text)?;
    if f.len() != COLUMNS.len() {
        return Err(format!("{} fields, expected {}", f.len(), COLUMNS.len()));
    }
    let col = |name: &str| f[COLUMNS.iter().position(|c| *c == name).expect("a column")].clone();
    let measure = match (col("measure").as_str(), col("unit").as_str()) {
        ("latency", "ms") => Measure::Latency,
        ("throughput", "fps") => Measure::Throughput,
        ("serial_throughput", "fps") => Measure::SerialThroughput,
        ("real_time_factor", "rtf") => Measure::RealTimeFactor,
        (m, u) => {
            return Err(format!(
                "measure `{m}` in unit `{u}`: expected latency/ms, throughput/fps, serial_throughput/fps or real_time_factor/rtf"
            ))
        }
    };
    let value: f64 = col("value").parse().map_err(|_| format!("value `{}` is not a number", col("value")))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("value {value} is not a positive figure"));
    }
    let batch: u32 =
        col("batch").parse().map_err(|_| format!("batch `{}` is not a whole number", col("batch")))?;
    let (source, commit) = (col("source"), col("commit"));
    let pinned = commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) && source.contains(':');
    let page = commit == "-" && source.starts_with("https://");
    if !(pinned || page) {
        return Err(format!(
            "source `{source}` with commit `{commit}`: expected owner/repo:path with a 40-hex commit, or a https:// page with `-`"
        ));
    }
    if col("chip").is_empty() || col("model").is_empty() || batch == 0 {
        return Err("chip, model and a positive batch are required".into());
    }
    Ok(Measurement {
        line,
        chip: col("chip"),
        model: col("model"),
        architecture: col("architecture"),
        input_shape: col("input_shape"),
        precision: col("precision"),
        runtime: col("runtime"),
        measure,
        batch,
        value,
        compute_unit: col("compute_unit"),
        source,
        commit,
        note: col("note"),
    })
}

/// Per chip, the rows that calibrate (`true`) and those only scored (`false`), by line: the
/// first `n / 3` rows of the chip ranked by SHA-256 of their key.
pub fn calibrating_lines(rows: &[Measurement]) -> BTreeMap<usize, bool> {
    let mut by_chip: BTreeMap<&str, Vec<&Measurement>> = BTreeMap::new();
    for m in rows {
        by_chip.entry(m.chip.as_str()).or_default().push(m);
    }
    let mut split = BTreeMap::new();
    for chip_rows in by_chip.values_mut() {
        chip_rows.sort_by_key(|m| m.rank());
        let fitted = chip_rows.len() / 3;
        for (i, m) in chip_rows.iter().enumerate() {
            split.insert(m.line, i < fitted);
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn corpus() -> Vec<Measurement> {
        load(&crate::repo_root().join("fidelity/measurements.csv")).unwrap()
    }

    #[test]
    fn the_corpus_holds_150_rows_over_five_bundled_chips_each_with_its_source() {
        let rows = corpus();
        assert!(rows.len() >= 150, "{} rows", rows.len());
        let chips: BTreeSet<&str> = rows.iter().map(|m| m.chip.as_str()).collect();
        assert!(chips.len() >= 5, "{chips:?}");
        for chip in &chips {
            let profile = crate::repo_root().join("profiles").join(format!("{chip}.toml"));
            assert!(profile.is_file(), "rows name chip `{chip}`, which has no bundled profile");
        }
        // A model timed in parts (Qualcomm's) differs only in the note naming the part.
        let keys: BTreeSet<String> = rows.iter().map(|m| format!("{}|{}", m.key(), m.note)).collect();
        assert_eq!(
            keys.len(),
            rows.len(),
            "two rows share chip, model, shape, precision, runtime, unit, batch and note"
        );
    }

    #[test]
    fn a_malformed_row_is_refused_naming_its_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let good = "rk3588,m,,1x3x224x224,int8,rknn,throughput,1,450.7,fps,NPU,,,\"a/b:README.md\",bad6c7334531becaf90a561988519b7bec34d0ab,\"one, two\"";
        let bad_unit = good.replace("throughput,1,450.7,fps", "throughput,1,450.7,ms");
        let bad_commit = good.replace("bad6c7334531becaf90a561988519b7bec34d0ab", "main");
        std::fs::write(&path, format!("{}\n{good}\n{bad_unit}\n{bad_commit}\n", COLUMNS.join(","))).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("m.csv:3: measure `throughput` in unit `ms`"), "{err}");
        assert!(err.contains("m.csv:4: source `a/b:README.md` with commit `main`"), "{err}");
        assert!(!err.contains("m.csv:2:"), "{err}");
    }

    #[test]
    fn at_most_a_third_of_each_chip_calibrates_and_the_split_does_not_depend_on_row_order() {
        let mut rows = corpus();
        let split = calibrating_lines(&rows);
        let mut per_chip: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for m in &rows {
            let e = per_chip.entry(m.chip.as_str()).or_default();
            e.0 += usize::from(split[&m.line]);
            e.1 += 1;
        }
        for (chip, (fitted, all)) in &per_chip {
            assert!(*fitted * 3 <= *all, "{chip}: {fitted} of {all} rows calibrate");
            assert!(*all < 3 || *fitted > 0, "{chip}: no row calibrates");
        }
        rows.reverse();
        assert_eq!(calibrating_lines(&rows), split, "the rule ranks by content, not by place in the file");
    }
}
