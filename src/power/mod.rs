//! Power meters behind one seam. A meter runs beside a timed window and gives a trace of
//! (seconds, watts); the energy of the window is the trace integrated over it, and the energy
//! per inference that divided by the inferences timed. Meters:
//! - `rapl[:DIR]`: Linux powercap (Intel RAPL), the package's cumulative energy counter
//!   (`energy_uj`, wrapping at `max_energy_range_uj`) read at 100 Hz;
//! - `cmd:COMMAND`: any external meter that prints one reading per line, `watts` or
//!   `seconds,watts` (CSV, as bench meters log), timestamped as each line arrives;
//! - `tegrastats[:COMMAND]`: a Jetson's `tegrastats` (default `tegrastats --interval 100`),
//!   reading the board's input rail (`VDD_IN`, `POM_5V_IN` or `VIN_SYS_5V0`).
//!
//! Recorded logs of the last two are read by `edgecert power` ([`read_log`]). Every line is
//! hostile input: bounded length and count, and a line that does not parse is named.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::vocab::{Error, PowerTrace, Result};

/// Fewest meter samples inside a timed window for a power figure to decide a check.
pub const MIN_WINDOW_SAMPLES: usize = 10;
/// Longest wait for a meter's sample on either side of a timed window.
pub const BRACKET_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest line and most lines read from a meter or a log.
const MAX_LINE: usize = 4096;
const MAX_SAMPLES: usize = 10_000_000;
/// RAPL's sampling period.
const RAPL_PERIOD: Duration = Duration::from_millis(10);
/// Longest wait for the reader once the meter is stopped: past it, the trace so far is kept.
const READER_DEADLINE: Duration = Duration::from_secs(2);

mod process;
use process::{join_within, MeterProcess};

/// Where power samples come from: a meter on this machine, or one on a device behind an
/// agent. The timed run reads any of them the same way.
pub trait PowerSource: Send + Sync {
    /// Starts reading; `Err` says why the source cannot be read.
    fn begin(&self) -> Result<Box<dyn PowerReading>>;
}

/// A source being read, on its own clock (seconds since it started).
pub trait PowerReading {
    fn now_s(&self) -> f64;
    /// Waits (at most `timeout`) for a sample at or after `t`, so a trace brackets a window.
    fn wait_for_sample_after(&self, t: f64, timeout: Duration);
    /// Stops reading: the trace, or why the source failed.
    fn finish(self: Box<Self>) -> Result<PowerTrace>;
}

impl PowerSource for PowerMeter {
    fn begin(&self) -> Result<Box<dyn PowerReading>> {
        Ok(Box::new(self.start()?))
    }
}

impl PowerReading for RunningMeter {
    fn now_s(&self) -> f64 {
        RunningMeter::now_s(self)
    }

    fn wait_for_sample_after(&self, t: f64, timeout: Duration) {
        RunningMeter::wait_for_sample_after(self, t, timeout)
    }

    fn finish(self: Box<Self>) -> Result<PowerTrace> {
        self.stop()
    }
}

/// A meter, as `--power-meter` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerMeter {
    Rapl(PathBuf),
    Command(String),
    Tegrastats(String),
}

const RAPL_DEFAULT: &str = "/sys/class/powercap/intel-rapl:0";
const TEGRASTATS_DEFAULT: &str = "tegrastats --interval 100";

impl FromStr for PowerMeter {
    type Err = String;

    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        let (kind, rest) = spec.split_once(':').map_or((spec, None), |(k, r)| (k, Some(r)));
        match (kind, rest) {
            ("rapl", dir) => Ok(PowerMeter::Rapl(PathBuf::from(dir.unwrap_or(RAPL_DEFAULT)))),
            ("cmd", Some(command)) if !command.trim().is_empty() => Ok(PowerMeter::Command(command.into())),
            ("tegrastats", command) => Ok(PowerMeter::Tegrastats(command.unwrap_or(TEGRASTATS_DEFAULT).into())),
            _ => Err(format!(
                "`{spec}`: expected rapl[:DIR], cmd:COMMAND (prints watts or seconds,watts per line) or tegrastats[:COMMAND]"
            )),
        }
    }
}

/// A meter reading in the background.
pub struct RunningMeter {
    source: String,
    started: Instant,
    points: Arc<Mutex<Vec<(f64, f64)>>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    process: Option<MeterProcess>,
    reader: Option<JoinHandle<()>>,
}

impl PowerMeter {
    /// Starts reading; `Err` when the meter cannot be opened (no RAPL here, a command that does
    /// not start).
    pub fn start(&self) -> Result<RunningMeter> {
        let mut meter = RunningMeter {
            source: self.to_string(),
            started: Instant::now(),
            points: Arc::default(),
            error: Arc::default(),
            stop: Arc::default(),
            process: None,
            reader: None,
        };
        match self {
            PowerMeter::Rapl(dir) => meter.reader = Some(rapl_thread(dir, &meter)?),
            PowerMeter::Command(command) => meter.spawn(command, parse_csv_line)?,
            PowerMeter::Tegrastats(command) => {
                meter.spawn(command, |l| parse_tegrastats_line(l).map(|w| (None, w)))?
            }
        }
        Ok(meter)
    }
}

impl std::fmt::Display for PowerMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PowerMeter::Rapl(dir) => write!(f, "RAPL {}", dir.display()),
            PowerMeter::Command(c) => write!(f, "cmd: {c}"),
            PowerMeter::Tegrastats(c) => write!(f, "tegrastats: {c}"),
        }
    }
}

/// A parsed meter line: the meter's own seconds (ignored live: lines are timestamped as they
/// arrive, on the clock the timed window is read on) and watts.
type LineParser = fn(&str) -> Option<(Option<f64>, f64)>;

impl RunningMeter {
    /// Seconds since the meter started, on the clock its samples are stamped with.
    pub fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// When the last sample was taken, if any.
    pub fn last_sample_s(&self) -> Option<f64> {
        self.points.lock().expect("meter points").last().map(|p| p.0)
    }

    /// Waits (at most `timeout`) until the meter has a sample at or after `t` seconds, so the
    /// trace brackets a window: before it starts, and after it ends. A meter that stopped
    /// reading does not hold the run up.
    pub fn wait_for_sample_after(&self, t: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let covered =
                self.points.lock().expect("meter points").last().is_some_and(|(last, _)| *last >= t);
            if covered || self.reader.as_ref().is_none_or(|r| r.is_finished()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Runs `command` under `sh -c` and reads its lines as they come.
    fn spawn(&mut self, command: &str, parse: LineParser) -> Result<()> {
        let (process, stdout) = MeterProcess::spawn(command)
            .map_err(|e| Error::Usage(format!("power meter `{command}` did not start: {e}")))?;
        let (points, error, stop, started) =
            (self.points.clone(), self.error.clone(), self.stop.clone(), self.started);
        self.reader = Some(std::thread::spawn(move || {
            if let Err(why) = read_meter_lines(stdout, parse, &points, &stop, started) {
                *error.lock().expect("meter error") = Some(why);
            }
        }));
        self.process = Some(process);
        Ok(())
    }

    /// Stops the meter, once: the command's whole process group ends, and the reader is
    /// given [`READER_DEADLINE`] to finish, so a pipe held open elsewhere cannot hang the run.
    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut process) = self.process.take() {
            process.terminate();
        }
        if let Some(reader) = self.reader.take() {
            join_within(reader, READER_DEADLINE);
        }
    }

    /// Stops reading; the trace so far, or why the meter failed: a command that exited by
    /// itself with a failing status is named with its status and last stderr lines (before
    /// anything its output said, which is a symptom of that).
    pub fn stop(mut self) -> Result<PowerTrace> {
        let output_ended = self.reader.as_ref().is_none_or(|r| r.is_finished());
        let failed = self.process.as_mut().and_then(|p| p.failure(output_ended));
        self.shut_down();
        let misread = self.error.lock().expect("meter error").take();
        let why: Vec<String> = failed.into_iter().chain(misread).collect();
        if !why.is_empty() {
            return Err(Error::Usage(format!("power meter {}: {}", self.source, why.join("; "))));
        }
        let points = std::mem::take(&mut *self.points.lock().expect("meter points"));
        Ok(PowerTrace { source: self.source.clone(), points })
    }
}

impl Drop for RunningMeter {
    /// A meter dropped unstopped (the run failed) leaves no process behind.
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Reads a meter's lines as they come, each stamped with the time it arrived, until its output
/// ends; why it stopped early otherwise. A last line cut off by the meter being stopped is not
/// a reading.
fn read_meter_lines(
    stdout: impl Read,
    parse: LineParser,
    points: &Mutex<Vec<(f64, f64)>>,
    stop: &AtomicBool,
    started: Instant,
) -> std::result::Result<(), String> {
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        match read_bounded_line(&mut lines, &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("line {n}: {e}")),
        }
        let t = started.elapsed().as_secs_f64();
        if !line.ends_with('\n') && stop.load(Ordering::Relaxed) {
            break;
        }
        match parse(line.trim()) {
            Some((_, w)) => {
                let mut p = points.lock().expect("meter points");
                if p.len() < MAX_SAMPLES {
                    p.push((t, w));
                }
            }
            None if line.trim().is_empty() || n == 1 => {} // a header line
            None => return Err(format!("line {n} is not a reading: {:?}", line.trim())),
        }
    }
    Ok(())
}

/// Samples the RAPL counter under `dir` every [`RAPL_PERIOD`] until stopped: watts are the
/// energy difference over the time difference, the counter's wrap-around undone.
fn rapl_thread(dir: &Path, meter: &RunningMeter) -> Result<JoinHandle<()>> {
    let read = |name: &str| -> Result<u64> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| rapl_unreadable(&path, &e))?;
        text.trim().parse().map_err(|_| Error::Usage(format!("{}: not a counter: {text:?}", path.display())))
    };
    let range = read("max_energy_range_uj")?;
    let mut last = (meter.started.elapsed().as_secs_f64(), read("energy_uj")?);
    let counter = dir.join("energy_uj");
    let (points, error, stop, started) =
        (meter.points.clone(), meter.error.clone(), meter.stop.clone(), meter.started);
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(RAPL_PERIOD);
            let now = started.elapsed().as_secs_f64();
            let Some(uj) = std::fs::read_to_string(&counter).ok().and_then(|t| t.trim().parse::<u64>().ok())
            else {
                *error.lock().expect("meter error") = Some(format!("{} stopped reading", counter.display()));
                return;
            };
            let delta = if uj >= last.1 { uj - last.1 } else { uj + range.saturating_sub(last.1) };
            let watts = delta as f64 * 1e-6 / (now - last.0);
            points.lock().expect("meter points").push((now, watts));
            last = (now, uj);
        }
    }))
}

/// Why a RAPL file did not read. Linux has kept the counters root's alone since they were found
/// to be a side channel (PLATYPUS, 2020), so a powercap that is there but refused is told
/// apart from one that is not.
fn rapl_unreadable(path: &Path, e: &std::io::Error) -> Error {
    let path = path.display();
    Error::Usage(match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "power meter RAPL: permission denied reading {path} (RAPL energy counters need root or read access: run as root, or grant it with `sudo chmod o+r {path}`)"
        ),
        _ => format!("power meter RAPL: cannot read {path} ({e}): no powercap here"),
    })
}

/// Reads one line of at most [`MAX_LINE`] bytes.
fn read_bounded_line(reader: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    let n = reader.take(MAX_LINE as u64 + 1).read_line(line)?;
    if n > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(n)
}

/// `watts` or `seconds,watts` (also `;` or tab separated); watts finite and not negative.
pub fn parse_csv_line(line: &str) -> Option<(Option<f64>, f64)> {
    let fields: Vec<&str> = line.split([',', ';', '\t']).map(str::trim).collect();
    let number = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite());
    let (t, w) = match fields.as_slice() {
        [w] => (None, number(w)?),
        [t, w] => (Some(number(t)?), number(w)?),
        _ => return None,
    };
    (w >= 0.0).then_some((t, w))
}

/// The input rail of a `tegrastats` line, in watts: `VDD_IN 4703mW/4703mW` (JetPack 5 and
/// later, current/average), `POM_5V_IN 2143/2143` or `VIN_SYS_5V0 ...` (older, milliwatts).
pub fn parse_tegrastats_line(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| matches!(*w, "VDD_IN" | "POM_5V_IN" | "VIN_SYS_5V0"))?;
    let current = words.get(at + 1)?.split('/').next()?;
    let mw: f64 = current.trim_end_matches("mW").parse().ok().filter(|x: &f64| x.is_finite() && *x >= 0.0)?;
    Some(mw / 1000.0)
}

/// A recorded meter log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `seconds,watts` per line (a header line is skipped).
    Csv,
    /// `tegrastats --logfile` output, one line per `interval_ms`.
    Tegrastats,
}

/// Reads a recorded log into a trace; every line must be a reading (the first may be a
/// header). Tegrastats lines carry no usable time: they are `interval_ms` apart.
pub fn read_log(path: &Path, format: LogFormat, interval_ms: f64) -> Result<PowerTrace> {
    let bad = |line: usize, why: String| Error::Report {
        path: path.to_path_buf(),
        message: format!("line {line}: {why}"),
    };
    let file = crate::vocab::open_regular(path)?;
    let mut reader = BufReader::new(file);
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        if read_bounded_line(&mut reader, &mut line).map_err(|e| bad(n, e.to_string()))? == 0 {
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let reading = match format {
            LogFormat::Csv => parse_csv_line(text).and_then(|(t, w)| t.map(|t| (t, w))),
            LogFormat::Tegrastats => {
                parse_tegrastats_line(text).map(|w| (points.len() as f64 * interval_ms / 1e3, w))
            }
        };
        match reading {
            Some((t, w)) => {
                if points.last().is_some_and(|(last, _)| t <= *last) {
                    return Err(bad(
                        n,
                        format!("time {t} s does not follow {} s", points.last().expect("some").0),
                    ));
                }
                if points.len() == MAX_SAMPLES {
                    return Err(bad(n, format!("more than {MAX_SAMPLES} readings")));
                }
                points.push((t, w));
            }
            None if n == 1 => {}
            None => {
                let expected = match format {
                    LogFormat::Csv => "seconds,watts",
                    LogFormat::Tegrastats => "a VDD_IN, POM_5V_IN or VIN_SYS_5V0 reading",
                };
                return Err(bad(n, format!("expected {expected}, found {text:?}")));
            }
        }
    }
    if points.len() < 2 {
        return Err(Error::Report { path: path.to_path_buf(), message: "fewer than two readings".into() });
    }
    Ok(PowerTrace { source: format!("log {}", path.display()), points })
}

/// The figures `edgecert power` gives for a recorded log.
#[derive(Debug, Clone, Serialize)]
pub struct EnergyReport {
    pub source: String,
    pub from_s: f64,
    pub to_s: f64,
    pub samples: usize,
    pub sample_rate_hz: f64,
    pub average_w: f64,
    pub energy_j: f64,
    pub inferences: usize,
    pub energy_per_inference_mj: f64,
    /// Whether the window holds enough samples for the power check to decide on it.
    pub enough_samples: bool,
}

/// Reads a log and integrates it over `from..to` (default: the whole log) for `inferences`.
pub fn energy_report(
    path: &Path,
    format: LogFormat,
    interval_ms: f64,
    inferences: usize,
    from: Option<f64>,
    to: Option<f64>,
) -> Result<EnergyReport> {
    if !(interval_ms.is_finite() && interval_ms > 0.0) || inferences == 0 {
        return Err(Error::Usage("--interval-ms must be positive and --inferences at least 1".into()));
    }
    let trace = read_log(path, format, interval_ms)?;
    let (first, last) = (trace.points[0].0, trace.points[trace.points.len() - 1].0);
    let (from_s, to_s) = (from.unwrap_or(first), to.unwrap_or(last));
    let energy_j = trace.energy_j(from_s, to_s).filter(|_| to_s > from_s).ok_or_else(|| {
        Error::Usage(format!("the window {from_s}..{to_s} s is not inside the log's {first}..{last} s"))
    })?;
    let samples = trace.samples_in(from_s, to_s);
    Ok(EnergyReport {
        sample_rate_hz: trace.sample_rate_hz(),
        source: trace.source,
        from_s,
        to_s,
        samples,
        average_w: energy_j / (to_s - from_s),
        energy_j,
        inferences,
        energy_per_inference_mj: energy_j * 1e3 / inferences as f64,
        enough_samples: samples >= MIN_WINDOW_SAMPLES,
    })
}

impl EnergyReport {
    pub fn text(&self) -> String {
        let caveat = if self.enough_samples {
            String::new()
        } else {
            format!(
                "\nnote: {} samples in the window; the power check needs at least {MIN_WINDOW_SAMPLES}",
                self.samples
            )
        };
        format!(
            "{}: {:.3} J over {:.3}..{:.3} s ({} samples at {:.1} Hz), {:.3} W average\nenergy per inference: {:.4} mJ ({} inferences){caveat}\n",
            self.source,
            self.energy_j,
            self.from_s,
            self.to_s,
            self.samples,
            self.sample_rate_hz,
            self.average_w,
            self.energy_per_inference_mj,
            self.inferences
        )
    }
}

#[cfg(test)]
mod tests;
