//! Command-line interface: parses arguments and calls the library. Exit codes: 0 every
//! certificate PASS, 1 some check FAIL or INCONCLUSIVE or a planned check not run, 2 bad input
//! or usage (nothing written), 3 `certify --baseline` found a regression against the baseline
//! (before 0 and 1). `diff`: 0 no regression, 1 a regression, 2 bad input.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::BackendKind;
use crate::diff::{self, Runs};
use crate::engine::EngineChoice;
use crate::model::{InputShape, InputShapes, ModelInventory};
use crate::profile::ChipProfile;
use crate::reporter::{QuietPipe, TerminalFormat};
use crate::run::{self, BackendFlags, BackendTarget, Certification, InputSpec, RunOptions, Selection};
use crate::vocab::{exit_code, Error, Result};
use crate::workflow;

#[derive(Parser, Debug)]
#[command(name = "edgecert", version, about = "Certify compressed ONNX models against edge-chip profiles")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Certify models against chip profiles. With no model, runs the reference program: every
    /// golden set under --golden-dir against every profile under --profiles-dir.
    Certify(Box<CertifyArgs>),
    /// Print the plan `certify` would run with the same arguments, without running it.
    Plan(Box<PlanArgs>),
    /// Read a certificate back and print its verdict table.
    Show {
        certificate: PathBuf,
        /// The certificate as it was read (validated), as JSON.
        #[arg(long)]
        json: bool,
        /// Language of the text (BCP 47: en, zh-CN, es, pt-BR, fr, vi, id, th).
        #[arg(long, default_value = crate::i18n::DEFAULT_LANGUAGE)]
        lang: String,
    },
    /// Render a certificate as a test report for a technical file (ISO/IEC 17025 §7.8.2.1).
    Report(Box<ReportArgs>),
    /// Measured thermal figures for a board profile.
    #[command(subcommand)]
    Thermal(ThermalCommand),
    /// Record existing certificates (files, certificate folders, certify --out folders) in a
    /// records database, as one run.
    Record {
        /// The records database: a SQLite file (created if absent) or a postgres:// URL;
        /// migrated on open.
        db: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The run's label (default: the current folder's git commit).
        #[arg(long)]
        label: Option<String>,
    },
    /// The recorded runs per (model, chip) over time: each check's verdict, value and interval,
    /// and what regressed since the run before (diff's statistics). Exit 1 if any regressed.
    History {
        /// The records database: a SQLite file or a postgres:// URL.
        db: PathBuf,
        #[command(flatten)]
        filter: RecordsFilterArgs,
        /// Only this check's column.
        #[arg(long)]
        check: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print the recorded certificate with this id (or a unique prefix of 8 or more hex
        /// digits) as it was recorded, checked against its id, instead of the history.
        #[arg(long, value_name = "ID", conflicts_with_all = ["check", "json"])]
        certificate: Option<String>,
    },
    /// The recorded runs as one self-contained HTML page: per (model, chip), p99 latency and each
    /// accuracy check over time, intervals as bands, verdict changes and regressions marked.
    Trend {
        /// The records database: a SQLite file or a postgres:// URL.
        db: PathBuf,
        #[command(flatten)]
        filter: RecordsFilterArgs,
        /// Where to write the page.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Language of the page (BCP 47: en, zh-CN, es, pt-BR, fr, vi, id, th).
        #[arg(long, default_value = crate::i18n::DEFAULT_LANGUAGE)]
        lang: String,
    },
    /// Export a certificate for other tools: a CycloneDX 1.6 AI bill of materials.
    Export {
        certificate: PathBuf,
        #[arg(long, value_enum)]
        format: crate::render::ExportFormat,
        /// Where to write (default: `bom.cdx.json` beside the certificate).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make an ed25519 key pair for signing certificates: KEY (secret, mode 0600) and KEY.pub.
    Keygen {
        key: PathBuf,
        /// The issuer file of the key's owner: its authoriser (name, role) and laboratory are
        /// recorded in KEY.pub, and the entry for a verifier's trusted-keys file is printed.
        #[arg(long, value_name = "FILE")]
        issuer: Option<PathBuf>,
        /// The last day (YYYY-MM-DD) a certificate may be issued with the key (with --issuer).
        #[arg(long, value_name = "DATE", requires = "issuer")]
        expires: Option<String>,
    },
    /// Check a certificate: its content against its id, its signature, and the files it names.
    Verify {
        certificate: PathBuf,
        /// The public key (KEY.pub) the certificate must be signed with.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The keys whose signatures you accept (TOML, `[[key]]` entries as `keygen --issuer`
        /// prints them, with `revoked`/`expires` dates): says who signed, refuses any other key.
        #[arg(long, value_name = "FILE")]
        trusted_keys: Option<PathBuf>,
        /// The model (its weights files included) the certificate must cover.
        #[arg(long)]
        model: Option<PathBuf>,
        /// The golden-set folder the certificate must cover.
        #[arg(long)]
        golden: Option<PathBuf>,
        /// The chip profile the certificate must cover.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Decide every check again from the raw observations beside the certificate and the
        /// certified artifacts (the paths the certificate records, or --model/--golden/--profile).
        #[arg(long)]
        recompute: bool,
    },
    /// Compare two runs: verdict changes, changed inputs, latency and accuracy regressions.
    /// Exit 0 no regression, 1 a regression, 2 bad input.
    Diff {
        /// The baseline: a certificate.json, a certificate's folder or a certify output folder.
        old: PathBuf,
        /// The run compared with it, in the same forms.
        new: PathBuf,
        /// Write the Markdown summary to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put the partial results of `certify --shard K/N` together: every shard of one plan,
    /// each once; the certificates as one process would have written them, with the run's
    /// junit.xml and summary.txt. Exit 0 every certificate PASS, 1 otherwise, 2 bad input.
    Merge {
        /// Where the merged reports go.
        #[arg(long)]
        out: PathBuf,
        /// The --out folders of the shards.
        #[arg(required = true)]
        partials: Vec<PathBuf>,
    },
    /// Energy per inference from a recorded power meter log (a bench meter's CSV or a Jetson's
    /// tegrastats log) over the window the inferences ran in.
    Power(PowerArgs),
    /// Serve this device's runtime to `certify --backend remote` over TCP (protocol in
    /// docs/protocol.md): models uploaded by digest, inferences timed on the device.
    Agent(Box<AgentArgs>),
    /// Print the JSON Schema of an edgecert file format.
    Schema {
        #[arg(value_enum)]
        format: SchemaFormat,
    },
    /// Per-layer drift: where the compressed model's activations leave FP32's, worst first.
    Analyze(Box<AnalyzeArgs>),
    /// Print a model's inventory: ops, parameters, weight bytes, MACs, activations.
    Inspect {
        model: PathBuf,
        #[command(flatten)]
        shapes: ShapeArgs,
        /// Machine-readable JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Emulated latency, memory and per-node placement of one model on one chip, or one model
    /// compared across several chips.
    Estimate {
        model: PathBuf,
        #[command(flatten)]
        shapes: ShapeArgs,
        /// Chip profile. Repeat it to compare the model across chips in one table (`--json`:
        /// an array, one report per profile).
        #[arg(long, required_unless_present = "profiles_dir")]
        profile: Vec<PathBuf>,
        /// Compare the model across every profile (*.toml) in DIR, as repeated `--profile`s.
        #[arg(long, value_name = "DIR", conflicts_with = "profile")]
        profiles_dir: Option<PathBuf>,
        /// Machine-readable JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Inferences per second for the average-power figure.
        #[arg(long, default_value_t = 30.0)]
        rate: f64,
        /// NPU compute mode from the profile's `npu.modes` (default: the profile's main figures).
        #[arg(long)]
        npu_mode: Option<String>,
        /// List every node in the table, those absorbed at conversion and fused epilogues too
        /// (by default only the layers the chip runs; `--json` always lists every node).
        #[arg(long)]
        all_nodes: bool,
    },
    /// Chip-profile tools.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Golden-set tools: make one from your own models and samples, record a changed digest.
    #[command(subcommand)]
    Golden(GoldenCommand),
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    pub certificate: PathBuf,
    #[arg(long, value_enum, default_value = "html")]
    pub format: crate::render::ReportFormat,
    /// Language (BCP 47: en, zh-CN, es, pt-BR, fr, vi, id, th).
    #[arg(long, default_value = crate::i18n::DEFAULT_LANGUAGE)]
    pub lang: String,
    /// Where to write (default: `report.<lang>.<ext>` beside the certificate).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The issuing laboratory and customer, TOML (see docs/issuer.example.toml).
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// The report's revision: 1 for the first issue, one more for each amended re-issue,
    /// which then states that it replaces the earlier ones. Part of the report number.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub revision: u32,
}

#[derive(Subcommand, Debug)]
pub enum ThermalCommand {
    /// Fit a board's thermal resistance and time constant from a soak with a power meter
    /// (certify --soak S --power-meter M --ambient C): prints a [thermal] snippet for its
    /// profile, labelled measured with the certificate's id.
    Fit {
        /// The soak's certificate.json (its observations.json beside it).
        certificate: PathBuf,
        /// Write the snippet here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct PowerArgs {
    /// The meter's log.
    pub log: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::power::LogFormat,
    /// Milliseconds between tegrastats lines (its --interval).
    #[arg(long, default_value_t = 1000.0)]
    pub interval_ms: f64,
    /// Inferences run inside the window.
    #[arg(long)]
    pub inferences: usize,
    /// Window start and end, seconds on the log's clock (default: the whole log).
    #[arg(long)]
    pub from: Option<f64>,
    #[arg(long)]
    pub to: Option<f64>,
    /// The figures as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// A file holding the shared token clients must prove they hold (at least 16 bytes).
    /// Required on a non-loopback address.
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// Serve without a token on a non-loopback address (a closed lab network only).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Where uploaded models are stored, by digest.
    #[arg(long, default_value = "edgecert-agent-store")]
    pub store: PathBuf,
    /// The runtime models run on here.
    #[arg(long, value_enum, default_value = "tract")]
    pub engine: EngineChoice,
    /// The device's name in certificates (default: the host name).
    #[arg(long)]
    pub device_name: Option<String>,
    /// A fact about the device that it cannot read itself (firmware build, ambient, cooling),
    /// NAME=VALUE, repeatable: certificates record it as `stated.NAME`, stated by the operator.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_fact)]
    pub device_fact: Vec<(String, String)>,
    /// Read the device's /proc and /sys under DIR instead of / (a recorded tree).
    #[arg(long, value_name = "DIR")]
    pub system_root: Option<PathBuf>,
    /// Largest model upload accepted, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub max_model_mb: u64,
    /// Most the model store may hold, in MiB: an upload past it is refused (remove old models).
    #[arg(long, default_value_t = 8192)]
    pub store_max_mb: u64,
    /// Seconds a connection may sit idle between requests.
    #[arg(long, default_value_t = 300)]
    pub idle_seconds: u64,
    /// Seconds a begun frame may take to arrive (plus one per MiB of body): a client
    /// trickling bytes is cut off after it.
    #[arg(long, default_value_t = 30)]
    pub frame_seconds: u64,
    /// A meter on this device (`rapl[:DIR]`, `cmd:COMMAND`, `tegrastats[:COMMAND]`), read
    /// beside a remote certification's timed run when the harness asks.
    #[arg(long, value_name = "METER")]
    pub power_meter: Option<crate::power::PowerMeter>,
    /// Fault injection for resume tests: exit abruptly on the inference after this many.
    #[arg(long, hide = true)]
    pub exit_after_inferences: Option<u64>,
    /// The newest protocol version to speak (an agent of an older build, for compatibility tests).
    #[arg(long, hide = true)]
    pub newest_version: Option<u32>,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// The golden set whose samples both models run on.
    #[arg(long)]
    pub golden: PathBuf,
    /// A compressed model to analyse instead of the golden set's own.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub shapes: ShapeArgs,
    /// Only the samples of this slice of the family metric (e.g. `micro` for SMT).
    #[arg(long)]
    pub slice: Option<String>,
    /// At most this many samples.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Layers shown in the table.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// The inference engine that runs both models.
    #[arg(long, value_enum, default_value = "tract")]
    pub engine: EngineChoice,
    /// Every layer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum GoldenCommand {
    /// Write a complete golden set (metric `output_agreement`, no labels) from a model pair and
    /// sample inputs, and print the `certify` command to run next.
    Init(Box<GoldenInitArgs>),
    /// Record the present digest and sample count of a golden set's files in its family.toml.
    Rehash { dir: PathBuf },
}

#[derive(Args, Debug)]
pub struct GoldenInitArgs {
    /// The golden-set folder to create; its name becomes the family name.
    pub dir: PathBuf,
    /// The FP32 model.
    #[arg(long)]
    pub reference: PathBuf,
    /// The compressed model compared against it.
    #[arg(long)]
    pub compressed: PathBuf,
    /// A folder of PNG/JPEG images, or one stacked float32 `.npy` array [N, ...].
    #[arg(long)]
    pub inputs: PathBuf,
    /// One sample's shape as the model takes it, `NAME:1x3x224x224` (needed when the model's
    /// input has symbolic dimensions).
    #[arg(long, value_name = "NAME:DIMS")]
    pub input_shape: Option<InputShape>,
    /// Resize images to the input's H×W instead of requiring that size.
    #[arg(long)]
    pub resize: bool,
    /// Per-channel mean subtracted after scaling pixels to [0, 1], e.g. `0.485,0.456,0.406`.
    #[arg(long, value_delimiter = ',')]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, e.g. `0.229,0.224,0.225`.
    #[arg(long, value_delimiter = ',')]
    pub std: Vec<f32>,
    /// Channel order of 3-channel inputs.
    #[arg(long, value_enum, default_value = "rgb")]
    pub channels: crate::golden::ChannelOrder,
    /// The single-inference latency budget (p99, ms) to certify against.
    #[arg(long)]
    pub latency_p99_ms: Option<f64>,
    /// For a model whose input is 8-bit integers with no DequantizeLinear reading it: how samples
    /// become its codes, `SCALE:ZERO_POINT` (`0.003921569:0` for pixels 0–255 of [0, 1] images).
    #[arg(long, value_name = "SCALE:ZERO_POINT")]
    pub input_quant: Option<crate::model::InputQuantization>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaFormat {
    /// `certificate.json`.
    Certificate,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Validate a profile; every error names file, line and field.
    Check { profiles: Vec<PathBuf> },
}

/// Shapes for models with symbolic input dimensions.
#[derive(Args, Debug, Default)]
pub struct ShapeArgs {
    /// Run input NAME at this shape, in trtexec's spelling: `images:1x3x640x640` (repeatable).
    /// Needed for every symbolic dimension (`N`, `H`, `W`) that a golden set's `input.shape`
    /// does not fix; a dimension the model fixes must agree.
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    pub input_shapes: Vec<InputShape>,
}

impl ShapeArgs {
    fn shapes(&self) -> InputShapes {
        InputShapes::new(self.input_shapes.clone())
    }
}

/// What to certify.
#[derive(Args, Debug)]
pub struct InputArgs {
    /// Chip profile(s) to certify against (default: every profile in --profiles-dir).
    #[arg(long = "profile")]
    pub profiles: Vec<PathBuf>,
    /// A compressed model to certify instead of the golden set's own (needs --golden).
    #[arg(long, requires = "golden")]
    pub model: Option<PathBuf>,
    /// Golden-set folder(s) (default: every family under --golden-dir).
    #[arg(long)]
    pub golden: Vec<PathBuf>,
    /// NPU compute mode, applied to every profile that lists it in `npu.modes`.
    #[arg(long)]
    pub npu_mode: Option<String>,
    #[arg(long, default_value = "profiles")]
    pub profiles_dir: PathBuf,
    #[arg(long, default_value = "golden")]
    pub golden_dir: PathBuf,
    #[command(flatten)]
    pub shapes: ShapeArgs,
}

/// Which checks of the plan run, in libtest's syntax.
#[derive(Args, Debug)]
pub struct SelectionArgs {
    /// Run only checks whose id (`family::chip::check`) contains one of these.
    pub filters: Vec<String>,
    /// Filters must equal the id.
    #[arg(long)]
    pub exact: bool,
    /// Do not run checks whose id contains this (repeatable).
    #[arg(long)]
    pub skip: Vec<String>,
    /// Run only shard K of N: the (family, chip) units whose index is K-1 modulo N; combine
    /// the shards with `edgecert merge`. Default: from a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) or a Slurm array (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT) when those are set.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<run::Shard>,
    /// What a shard is a slice of: `units` ((family, chip) pairs, whole certificates per
    /// shard) or `samples` (a range of every golden set, for sets too large for one machine;
    /// `edgecert merge` then issues the certificates).
    #[arg(long, value_enum, default_value = "units")]
    pub shard_by: run::ShardBy,
}

#[derive(Args, Debug)]
pub struct CertifyArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[arg(long, value_enum, default_value = "emulated")]
    pub backend: BackendKind,
    /// The inference engine (default: tract; onnxruntime under --cross-check). `onnxruntime`
    /// loads ORT_DYLIB_PATH or an installed `onnxruntime` wheel's library for ONNX files;
    /// `litert` runs TFLite files on an installed `ai-edge-litert`; `auto` uses each where
    /// present and tract (which reads both formats) otherwise.
    #[arg(long, value_enum)]
    pub engine: Option<EngineChoice>,
    /// Read a power meter beside the host backend's timed run (`--backend host`): `rapl[:DIR]`
    /// (Linux powercap), `cmd:COMMAND` (prints watts or seconds,watts per line), or
    /// `tegrastats[:COMMAND]`. The power check then decides on the metered watts.
    #[arg(long, value_name = "METER")]
    pub power_meter: Option<crate::power::PowerMeter>,
    /// The edgecert agent serving the device (`--backend remote`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub device: Option<String>,
    /// A file holding the agent's shared token.
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// The adapter describing a vendor's command-line runtime (`--backend exec`); see
    /// `adapters/`.
    #[arg(long, value_name = "ADAPTER.toml")]
    pub adapter: Option<PathBuf>,
    /// The shortest single-stream run of a measured backend (host, remote, exec), in seconds:
    /// MLPerf's single-stream runs at least 600. At least 700 queries and the whole set run
    /// whatever this says.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub min_duration: f64,
    /// After the timed run, run the model under sustained load for SECONDS (`--backend host`,
    /// `remote` or `exec`), reading the device's thermal zones and clocks once a second: the
    /// thermal check decides on the measured heat and throttling, the latency check on the
    /// worse of cold and hot p99.
    #[arg(long, value_name = "SECONDS")]
    pub soak: Option<f64>,
    /// Pace the soak at this many inferences per second (default: back to back).
    #[arg(long, value_name = "HZ", requires = "soak")]
    pub soak_rate: Option<f64>,
    /// Read the thermal zones and clocks under DIR instead of / (a recorded or replayed
    /// sysfs tree: DIR/sys/class/thermal, DIR/sys/devices/system/cpu/cpufreq, ...).
    #[arg(long, value_name = "DIR", requires = "soak")]
    pub thermal_root: Option<PathBuf>,
    /// Record every certificate this run issues in the records database DB (SQLite; created
    /// and migrated on open): `edgecert history DB` then shows them over time.
    #[arg(long, value_name = "DB")]
    pub record: Option<PathBuf>,
    /// The run's label in the records (default: the current folder's git commit).
    #[arg(long, value_name = "TEXT", requires = "record")]
    pub label: Option<String>,
    /// The worst-case ambient (°C) the thermal verdict must hold at: a soak's measured
    /// temperature is moved there linearly in its rise over the stated --ambient.
    #[arg(long, value_name = "C")]
    pub ambient_max: Option<f64>,
    /// Seconds the agent may take to answer one request (an upload, a load, an inference).
    #[arg(long, default_value_t = 120)]
    pub device_timeout: u64,
    /// Replay the compressed model on both engines (tract and onnxruntime), report how their
    /// outputs agree, and make an accuracy check INCONCLUSIVE where they would decide it
    /// differently.
    #[arg(long)]
    pub cross_check: bool,
    /// Ambient temperature (°C) for the thermal model (default: the profile's, else 25).
    #[arg(long)]
    pub ambient: Option<f64>,
    /// Where reports go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Sign every certificate with this ed25519 secret key (made by `edgecert keygen`).
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// The issuing laboratory, customer, authoriser and specification, TOML (see
    /// docs/issuer.example.toml): sealed into every certificate, so its reports render it.
    #[arg(long, value_name = "FILE")]
    pub issuer: Option<PathBuf>,
    /// Replay the FP32 reference even when its contributions are cached (the cache is
    /// EDGECERT_CACHE_DIR, else $XDG_CACHE_HOME/edgecert, else ~/.cache/edgecert).
    #[arg(long)]
    pub no_cache: bool,
    /// Compare the new certificates with this earlier run (a certificate file or folder, or a
    /// certify output folder) as `edgecert diff` does: print the Markdown after the usual
    /// output, write it to OUT/diff.md, and exit 3 on a regression.
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Print the selected checks of the plan (`family::chip::check: test`) and run nothing.
    #[arg(long)]
    pub list: bool,
    /// Terse output: one character per check.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "pretty")]
    pub format: TerminalFormat,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// The whole plan as JSON (every planned check, selected or not, and the input digests).
    #[arg(long)]
    pub json: bool,
}

impl InputArgs {
    fn spec(&self) -> InputSpec {
        InputSpec {
            profiles: self.profiles.clone(),
            profiles_dir: self.profiles_dir.clone(),
            golden: self.golden.clone(),
            golden_dir: self.golden_dir.clone(),
            model: self.model.clone(),
            npu_mode: self.npu_mode.clone(),
            input_shapes: self.shapes.shapes(),
        }
    }
}

impl SelectionArgs {
    fn selection(&self) -> Result<Selection> {
        let shard = match self.shard {
            Some(shard) => Some(shard),
            None => run::Shard::from_env(|name| std::env::var(name).ok())?.map(|(shard, from)| {
                eprintln!("certifying shard {shard} ({from} in the environment)");
                shard
            }),
        };
        Ok(Selection {
            filters: self.filters.clone(),
            exact: self.exact,
            skip: self.skip.clone(),
            shard,
            shard_by: self.shard_by,
        })
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_code::BAD_INPUT } else { exit_code::PASS };
        }
    };
    let mut stdout = QuietPipe::new(std::io::stdout().lock());
    match run(cli, &mut stdout) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    match cli.command {
        Command::Certify(args) => certify(*args, out),
        Command::Plan(args) => {
            let plan = run::plan(&args.inputs.spec(), &args.selection.selection()?)?;
            if args.json {
                print(out, &plan.to_json())
            } else {
                print(out, &list(&plan))
            }
        }
        Command::Show { certificate, json, lang } => {
            let catalog = crate::i18n::Catalog::load(&lang)?;
            let cert = crate::certificate::read_certificate(&certificate)?;
            if json {
                print(out, &String::from_utf8_lossy(&cert.to_json()))?;
            } else {
                print(out, &crate::render::certificate_text_in(&cert, &catalog))?;
            }
            Ok(if cert.verdict == crate::certificate::schema::Outcome::Pass {
                exit_code::PASS
            } else {
                exit_code::NOT_CERTIFIED
            })
        }
        Command::Report(args) => {
            let ReportArgs { certificate, format, lang, out: path, issuer, revision } = *args;
            let written = crate::render::write_report(&crate::render::ReportRequest {
                certificate,
                format,
                lang,
                out: path,
                issuer,
                revision,
            })?;
            print(out, &format!("report written to {}\n", written.display()))
        }
        Command::Record { db, paths, label } => {
            let recorded = crate::records::record_paths(&db, &paths, &crate::records::RunMeta::here(label))?;
            print(out, &recorded.text(&db))
        }
        Command::History { db, filter, check, json, certificate } => {
            if let Some(id) = certificate {
                return print(out, &crate::records::recorded_certificate(&db, &id)?);
            }
            let history = crate::records::history_of(&db, &filter.with_check(check))?;
            print(out, &if json { history.json() } else { history.text() })?;
            Ok(if history.has_regressions() { exit_code::NOT_CERTIFIED } else { exit_code::PASS })
        }
        Command::Trend { db, filter, out: path, lang } => {
            let written = crate::records::write_trend(&db, &filter.with_check(None), &path, &lang)?;
            print(out, &format!("trend page written to {}\n", written.display()))
        }
        Command::Thermal(ThermalCommand::Fit { certificate, out: path }) => {
            let snippet = crate::views::thermal_fit(&certificate)?.snippet();
            match path {
                Some(path) => {
                    crate::vocab::write_all_atomically(&[(path.clone(), snippet.into_bytes())])?;
                    print(out, &format!("thermal figures written to {}\n", path.display()))
                }
                None => print(out, &snippet),
            }
        }
        Command::Export { certificate, format, out: path } => {
            let written = crate::render::write_export(&certificate, format, path)?;
            print(out, &format!("{} written to {}\n", "CycloneDX 1.6 bill of materials", written.display()))
        }
        Command::Keygen { key, issuer, expires } => {
            let owner = issuer
                .map(|path| {
                    let issuer = crate::certificate::issuer::Issuer::load(&path)?;
                    crate::certificate::trust::KeyOwner::from_issuer(&path, &issuer, expires)
                })
                .transpose()?;
            let (public, verifying) = crate::certificate::sign::keygen(&key, owner.as_ref())?;
            let mut text = format!(
                "secret key {} (mode 0600), public key {}, fingerprint {}\n",
                key.display(),
                public.display(),
                crate::certificate::sign::fingerprint(&verifying)
            );
            if let Some(owner) = owner {
                text.push_str(&format!(
                    "\nfor a verifier's trusted-keys file (verify --trusted-keys):\n{}",
                    owner.trusted_entry(&verifying)
                ));
            }
            print(out, &text)
        }
        Command::Verify { certificate, key, trusted_keys, model, golden, profile, recompute } => {
            let request = crate::certificate::VerifyRequest {
                certificate,
                key,
                trusted_keys,
                model,
                golden,
                profile,
                recompute,
            };
            let verification = crate::run::verify(&request)?;
            print(out, &verification.text())?;
            Ok(if verification.ok() { exit_code::PASS } else { exit_code::NOT_CERTIFIED })
        }
        Command::Merge { out: dir, partials } => {
            let merged = workflow::merge(&dir, &partials, out)?;
            print(out, &merged.closing_text(partials.len(), &dir))?;
            Ok(if merged.summary.certified() { exit_code::PASS } else { exit_code::NOT_CERTIFIED })
        }
        Command::Diff { old, new, markdown, json } => {
            let comparison = diff::diff(&Runs::load(&old)?, &Runs::load(&new)?);
            if let Some(file) = &markdown {
                crate::vocab::write_all_atomically(&[(file.clone(), comparison.markdown().into_bytes())])?;
            }
            if json {
                print(out, &comparison.to_json())?;
            } else if let Some(file) = &markdown {
                print(out, &format!("{}: written to {}\n", comparison.verdict_line(), file.display()))?;
            } else {
                print(out, &comparison.markdown())?;
            }
            Ok(if comparison.has_regressions() { exit_code::DIFF_REGRESSION } else { exit_code::PASS })
        }
        Command::Schema { format: SchemaFormat::Certificate } => {
            print(out, &crate::certificate::schema::certificate_json_schema())
        }
        Command::Inspect { model, shapes, json } => {
            let inv = ModelInventory::load_with(&model, &shapes.shapes())?;
            if json {
                print(out, &pretty_json(&inv))
            } else {
                print(out, &crate::views::inventory_text(&inv))
            }
        }
        Command::Estimate { model, shapes, profile, profiles_dir, json, rate, npu_mode, all_nodes } => {
            let request = crate::views::EstimateRequest {
                model,
                shapes: shapes.shapes(),
                profiles: match profiles_dir {
                    Some(dir) => crate::views::ProfileChoice::Dir(dir),
                    None => crate::views::ProfileChoice::Files(profile),
                },
                rate_hz: rate,
                npu_mode,
                all_nodes,
            };
            let estimates = crate::views::Estimates::load(&request)?;
            print(out, &if json { estimates.json() } else { estimates.text(all_nodes) })
        }
        Command::Profile(ProfileCommand::Check { profiles }) => check_profiles(&profiles, out),
        Command::Golden(GoldenCommand::Init(args)) => golden_init(*args, out),
        Command::Analyze(args) => {
            let golden = crate::golden::GoldenSet::load(&args.golden)?;
            let reference = ModelInventory::load(&golden.reference_model())?;
            let compressed =
                ModelInventory::load(&args.model.clone().unwrap_or_else(|| golden.compressed_model()))?;
            let selection =
                crate::analyze::SampleSelection { slice: args.slice.clone(), limit: args.samples };
            let engine = crate::engine::select(args.engine, &[reference.format, compressed.format])?;
            if let Some(why) = &engine.fallback {
                eprintln!("--engine auto fell back to tract: {why}");
            }
            let report = crate::analyze::analyze(
                &golden,
                &reference,
                &compressed,
                engine.engine.as_ref(),
                &selection,
            )?;
            print(out, &if args.json { pretty_json(&report) } else { report.text(args.top) })
        }
        Command::Agent(args) => agent(*args, out),
        Command::Power(args) => {
            let report = crate::power::energy_report(
                &args.log,
                args.format,
                args.interval_ms,
                args.inferences,
                args.from,
                args.to,
            )?;
            print(out, &if args.json { pretty_json(&report) } else { report.text() })
        }
        Command::Golden(GoldenCommand::Rehash { dir }) => {
            let sha256 = crate::golden::GoldenSet::rehash(&dir)?;
            print(out, &format!("{}: dataset.sha256 = {sha256}\n", dir.join("family.toml").display()))
        }
    }
}

fn golden_init(args: GoldenInitArgs, out: &mut dyn Write) -> Result<i32> {
    let request = crate::golden::InitRequest {
        dir: args.dir,
        reference: args.reference,
        compressed: args.compressed,
        inputs: args.inputs,
        input_shape: args.input_shape,
        preprocess: crate::golden::Preprocess {
            resize: args.resize,
            channels: args.channels,
            mean: args.mean,
            std: args.std,
        },
        latency_p99_ms: args.latency_p99_ms,
        input_quant: args.input_quant,
    };
    let done = crate::golden::init(&request)?;
    let dir = done.dir.display();
    print(
        out,
        &format!(
            "golden set `{}` written to {dir}: {} samples, dataset sha256 {}\nnext: edgecert certify --golden {dir} --profile profiles/<chip>.toml   (e.g. profiles/rk3588.toml)\n",
            done.name, done.samples, done.sha256
        ),
    )
}

fn certify(args: CertifyArgs, out: &mut dyn Write) -> Result<i32> {
    let format =
        if args.quiet && args.format == TerminalFormat::Pretty { TerminalFormat::Terse } else { args.format };
    let backend = BackendTarget::from_flags(&backend_flags(&args), &args.out)?;
    let issuer = args.issuer.as_deref().map(crate::certificate::issuer::Issuer::load).transpose()?;
    let sign_with = args
        .sign_key
        .as_deref()
        .map(|key| crate::certificate::trust::load_signer(key, issuer.as_ref()))
        .transpose()?;
    let request = Certification {
        inputs: args.inputs.spec(),
        selection: args.selection.selection()?,
        options: RunOptions {
            backend,
            ambient_c: args.ambient,
            issuer,
            sign_with,
            progress: !args.quiet && args.format == TerminalFormat::Pretty,
            reference_cache: if args.no_cache {
                None
            } else {
                run::ReferenceCache::default_dir(|name| std::env::var(name).ok())
                    .map(|dir| run::ReferenceCache { dir })
            },
            engine: args.engine.unwrap_or(run::default_engine(args.cross_check)),
            cross_check: args.cross_check,
            given_replays: None,
            power_meter: args.power_meter,
            min_duration_s: args.min_duration,
            soak: args.soak.map(|seconds| run::SoakOptions {
                seconds,
                rate_hz: args.soak_rate,
                thermal_root: args.thermal_root.clone(),
            }),
            ambient_max_c: args.ambient_max,
        },
        out: args.out,
    };
    request.validate()?;
    if args.list {
        return print(out, &list(&run::plan(&request.inputs, &request.selection)?));
    }
    let baseline = args.baseline.as_deref().map(Runs::load).transpose()?;
    let record = |summary: &run::RunSummary, out: &mut dyn Write| -> Result<()> {
        let Some(db) = &args.record else { return Ok(()) };
        let meta = crate::records::RunMeta::here(args.label.clone());
        let recorded = crate::records::record_issued(db, &request.out, &summary.issued, &meta)?;
        print(out, &recorded.text(db)).map(drop)
    };
    let Some(baseline) = baseline else {
        let summary = workflow::certify(&request, format, out)?;
        reports_written(&request, format, out)?;
        record(&summary, out)?;
        // A sample shard issues no certificate: it succeeded once its replays are written.
        return Ok(if summary.certified() || request.sample_shard().is_some() {
            exit_code::PASS
        } else {
            exit_code::NOT_CERTIFIED
        });
    };
    let (summary, comparison) = workflow::certify_against_baseline(&request, format, &baseline, out)?;
    reports_written(&request, format, out)?;
    record(&summary, out)?;
    // A JSON event stream on standard output must stay JSON: the Markdown is in diff.md.
    if format != TerminalFormat::Json {
        print(out, &format!("\n{}", comparison.markdown()))?;
    }
    Ok(if comparison.has_regressions() {
        exit_code::BASELINE_REGRESSION
    } else if summary.certified() {
        exit_code::PASS
    } else {
        exit_code::NOT_CERTIFIED
    })
}

fn backend_flags(args: &CertifyArgs) -> BackendFlags<'_> {
    BackendFlags {
        kind: args.backend,
        device: args.device.as_deref(),
        token_file: args.token_file.as_deref(),
        device_timeout_s: args.device_timeout,
        adapter: args.adapter.as_deref(),
    }
}

/// `NAME=VALUE`, a name of letters, digits, `_`, `-` and `.`, both within a fact's bounds.
fn parse_fact(text: &str) -> std::result::Result<(String, String), String> {
    use crate::device::MAX_FACT_BYTES;
    let (name, value) = text.split_once('=').ok_or("expected NAME=VALUE")?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !name_ok || name.len() > MAX_FACT_BYTES - 7 || value.len() > MAX_FACT_BYTES {
        return Err(format!("NAME is letters, digits, _ - . and both are at most {MAX_FACT_BYTES} bytes"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn agent(args: AgentArgs, out: &mut dyn Write) -> Result<i32> {
    let mut config = crate::remote::AgentConfig::new(args.listen, args.store);
    config.token = args.token_file.as_deref().map(crate::remote::protocol::read_token).transpose()?;
    config.allow_unauthenticated = args.allow_unauthenticated;
    config.engine = args.engine;
    config.device_name = args.device_name;
    config.stated_facts = args.device_fact;
    if let Some(dir) = &args.system_root {
        config.system_root = crate::device::SystemRoot::at(dir);
    }
    config.max_model_bytes = args.max_model_mb.saturating_mul(1 << 20);
    config.store_max_bytes = args.store_max_mb.saturating_mul(1 << 20);
    config.idle = std::time::Duration::from_secs(args.idle_seconds.max(1));
    config.frame = std::time::Duration::from_secs(args.frame_seconds.max(1));
    config.exit_after_inferences = args.exit_after_inferences;
    if let Some(newest) = args.newest_version {
        config.versions.retain(|&v| v <= newest);
    }
    config.power_meter = args.power_meter;
    let agent = crate::remote::Agent::bind(config)?;
    print(out, &format!("{}\n", agent.banner()))?;
    agent.serve()?;
    Ok(exit_code::PASS)
}

fn reports_written(request: &Certification, format: TerminalFormat, out: &mut dyn Write) -> Result<()> {
    if format != TerminalFormat::Json {
        print(out, &format!("reports written to {}\n", request.out.display()))?;
    }
    Ok(())
}

/// The selected checks, one per line, in libtest's `--list` form.
fn list(plan: &run::Plan) -> String {
    plan.selected().map(|c| format!("{}: test\n", c.name)).collect()
}

fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data") + "\n"
}

/// Writes to standard output; a closed pipe is not an error (the writer goes quiet).
fn print(out: &mut dyn Write, text: &str) -> Result<i32> {
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(std::path::Path::new("standard output"), e))?;
    Ok(exit_code::PASS)
}

fn check_profiles(paths: &[PathBuf], out: &mut dyn Write) -> Result<i32> {
    if paths.is_empty() {
        return Err(Error::Usage("profile check needs at least one profile path".into()));
    }
    let mut errors = Vec::new();
    for p in paths {
        match ChipProfile::load(p) {
            Ok(f) => {
                let extends: String = f.extends.iter().map(|e| format!(" extends {}", e.display())).collect();
                print(
                    out,
                    &format!(
                        "ok: {} ({}){extends} sha256 {}\n",
                        p.display(),
                        f.profile.display_name(),
                        f.sha256
                    ),
                )?;
            }
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(exit_code::PASS),
        1 => Err(errors.remove(0)),
        _ => {
            for e in &errors[1..] {
                eprintln!("error: {e}");
            }
            Err(errors.remove(0))
        }
    }
}

/// Which recorded runs `history` and `trend` show.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordsFilterArgs {
    /// The model's path or file name.
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    chip: Option<String>,
    /// Runs issued on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
}

impl RecordsFilterArgs {
    fn with_check(self, check: Option<String>) -> crate::records::HistoryFilter {
        crate::records::HistoryFilter { model: self.model, chip: self.chip, check, since: self.since }
    }
}
