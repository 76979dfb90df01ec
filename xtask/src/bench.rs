//! `cargo xtask bench`: what certifying costs, measured in one command and reported as ratios
//! against baselines run in the same command, so the figures hold on any machine:
//! - **harness overhead**: `certify` of the shapes family on one chip (both models replayed,
//!   scored with the paired bootstrap, emulated, certificate and observations written) against a
//!   bare loop that decodes every sample and runs both models through the same engine with the
//!   same parallelism, and nothing else;
//! - **detection scoring**: `certify` of the ADAS family (500 frames, mAP@0.5 bootstrapped over
//!   2,000 resamples) against its bare loop, since matching and ranking detections for every
//!   resample is the costliest scoring edgecert does;
//! - **memory against golden-set size**: peak RSS of certifying the shapes set at its 500
//!   samples and at 5,000 (the same images ten times over, labels tiled to match);
//! - **tract against onnxruntime**, where onnxruntime is installed, on the SMT set as an `.npy`
//!   stack (2,000 samples): the bare loop on each engine, `certify` on each, `certify` with the
//!   FP32 reference cached (a nightly run), and a plain Python onnxruntime script doing the
//!   same inference (`xtask/bench/ort_script.py`, when a Python with onnxruntime is found).
//!
//! Each measurement runs in its own process (this binary again, with a `bench-child`
//! subcommand), so each peak RSS is that run's alone (`wait4`'s `ru_maxrss`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use edgecert::engine::EngineChoice;
use edgecert::golden::{npy, GoldenSet};
use edgecert::model::InputShapes;
use edgecert::reporter::TerminalFormat;
use edgecert::run::{load_family, Certification, InputSpec, RunOptions, Selection};
use edgecert::workflow::certify;
use rayon::prelude::*;

/// How many times the scaled golden set repeats the shapes set.
const SCALE: usize = 10;

/// What one child process measured.
struct Measured {
    seconds: f64,
    max_rss_kb: i64,
}

pub fn run(root: &Path) -> anyhow::Result<()> {
    let shapes = root.join("golden/shapes");
    let scaled = root.join("target/bench/shapes-x10");
    scale_golden(&shapes, &scaled, SCALE)?;
    let bare = child(&["bare", path_str(&shapes)?, "tract"])?;
    let small = child(&["certify", path_str(&shapes)?, "tract"])?;
    let large = child(&["certify", path_str(&scaled)?, "tract"])?;
    let adas = root.join("golden/adas");
    let adas_bare = child(&["bare", path_str(&adas)?, "tract"])?;
    let adas_certify = child(&["certify", path_str(&adas)?, "tract"])?;
    let adas_samples = GoldenSet::load(&adas)?.len();
    let samples = GoldenSet::load(&shapes)?.len();
    println!("edgecert bench (each figure from its own process; ratios are against baselines run now)");
    println!();
    println!("| measurement | samples | wall s | peak RSS MB | ratio |");
    println!("|---|---|---|---|---|");
    let mb = |m: &Measured| m.max_rss_kb as f64 / 1024.0;
    println!(
        "| bare loop: decode + both models, parallel | {samples} | {:.2} | {:.1} | 1.00 (baseline) |",
        bare.seconds,
        mb(&bare)
    );
    println!(
        "| certify shapes on rk3588 | {samples} | {:.2} | {:.1} | {:.2}× the bare loop's time |",
        small.seconds,
        mb(&small),
        small.seconds / bare.seconds
    );
    println!(
        "| certify shapes ×{SCALE} on rk3588 | {} | {:.2} | {:.1} | {:.2}× the {samples}-sample peak RSS |",
        samples * SCALE,
        large.seconds,
        mb(&large),
        mb(&large) / mb(&small)
    );
    println!(
        "| bare loop, ADAS (3×160×320 frames) | {adas_samples} | {:.2} | {:.1} | 1.00 (baseline) |",
        adas_bare.seconds,
        mb(&adas_bare)
    );
    println!(
        "| certify ADAS on rk3588 (mAP@0.5 bootstrapped: 2000 resamples × 4 height ranges) | {adas_samples} | {:.2} | {:.1} | {:.2}× the ADAS bare loop's time |",
        adas_certify.seconds,
        mb(&adas_certify),
        adas_certify.seconds / adas_bare.seconds
    );
    match edgecert::engine::locate_onnxruntime() {
        Ok(library) => engines(root, &library),
        Err(why) => {
            println!("\ntract against onnxruntime: not measured ({why})");
            Ok(())
        }
    }
}

/// tract against onnxruntime on the SMT set as an `.npy` stack, and both against a plain
/// Python onnxruntime script.
fn engines(root: &Path, library: &Path) -> anyhow::Result<()> {
    let stack = root.join("target/bench/smt-npy");
    // In a child: the decoded samples would otherwise stay in this process's heap, and every
    // child forked after would inherit that resident size into its peak RSS.
    let status = Command::new(std::env::current_exe()?)
        .args(["bench-child", "npy-golden", path_str(&root.join("golden/smt"))?, path_str(&stack)?])
        .status()?;
    anyhow::ensure!(status.success(), "writing the .npy golden set failed ({status})");
    let dir = path_str(&stack)?;
    let cache = root.join("target/bench/cache");
    std::fs::remove_dir_all(&cache).ok();
    let samples = GoldenSet::load(&stack)?.len();
    let bare_tract = child(&["bare", dir, "tract"])?;
    let bare_ort = child(&["bare", dir, "onnxruntime"])?;
    let certify_tract = child(&["certify", dir, "tract"])?;
    let certify_ort = child(&["certify", dir, "onnxruntime"])?;
    child(&["certify", dir, "onnxruntime", path_str(&cache)?])?;
    let cached_ort = child(&["certify", dir, "onnxruntime", path_str(&cache)?])?;
    let script = python_script(root, library, &stack)?;
    println!();
    println!("| SMT as .npy, {samples} samples, both models | wall s | peak RSS MB | ratio |");
    println!("|---|---|---|---|");
    let row = |what: &str, m: &Measured, ratio: String| {
        println!("| {what} | {:.2} | {:.1} | {ratio} |", m.seconds, m.max_rss_kb as f64 / 1024.0)
    };
    let speed = |base: &Measured, m: &Measured, of: &str| {
        format!("{:.2}× {of}'s throughput", base.seconds / m.seconds)
    };
    row("bare loop, tract", &bare_tract, "1.00 (baseline)".into());
    row("bare loop, onnxruntime", &bare_ort, speed(&bare_tract, &bare_ort, "tract"));
    row("certify, tract", &certify_tract, speed(&bare_tract, &certify_tract, "the tract loop"));
    row("certify --engine onnxruntime", &certify_ort, speed(&bare_ort, &certify_ort, "the onnxruntime loop"));
    row(
        "certify --engine onnxruntime, FP32 cached",
        &cached_ort,
        speed(&bare_ort, &cached_ort, "the onnxruntime loop"),
    );
    match script {
        Some(script) => {
            println!(
                "| plain Python onnxruntime script | {:.2} | {:.1} | baseline below |",
                script.seconds,
                script.max_rss_kb as f64 / 1024.0
            );
            println!();
            println!(
                "certify --engine onnxruntime replays at {:.2}× the script's throughput ({:.2}× with the FP32 reference cached)",
                script.seconds / certify_ort.seconds,
                script.seconds / cached_ort.seconds
            );
        }
        None => {
            println!("\nplain Python onnxruntime script: not measured (no python with onnxruntime found)")
        }
    }
    Ok(())
}

/// Runs `xtask/bench/ort_script.py` over the stack with the Python the onnxruntime library
/// came with (a virtualenv's), or `python3`; `None` when neither can import onnxruntime.
fn python_script(root: &Path, library: &Path, stack: &Path) -> anyhow::Result<Option<Measured>> {
    let venv_python = library.ancestors().nth(6).map(|v| v.join("bin/python")).filter(|p| p.is_file());
    let python = venv_python.unwrap_or_else(|| PathBuf::from("python3"));
    let probe = Command::new(&python).args(["-c", "import onnxruntime, numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let golden = GoldenSet::load(stack)?;
    let models = [&golden.manifest.models.compressed, &golden.manifest.models.reference];
    let mut command = Command::new(python);
    command.arg(root.join("xtask/bench/ort_script.py")).arg(stack.join(&golden.manifest.input.path));
    command.args(models.iter().map(|m| stack.join(m)));
    measure(command).map(Some)
}

/// The child side: `bench-child bare|certify GOLDEN_DIR ENGINE [CACHE_DIR]`; prints its wall
/// time.
pub fn child_main(args: &[String]) -> anyhow::Result<()> {
    if let [what, src, dst] = args {
        if what == "npy-golden" {
            return npy_golden(Path::new(src), Path::new(dst));
        }
    }
    let (what, dir, engine, cache) = match args {
        [what, dir, engine, rest @ ..] if rest.len() <= 1 => {
            (what.as_str(), PathBuf::from(dir), engine_choice(engine)?, rest.first().map(PathBuf::from))
        }
        _ => bail!("usage: bench-child bare|certify GOLDEN_DIR tract|onnxruntime [CACHE_DIR]"),
    };
    let started = Instant::now();
    match what {
        "bare" => bare_loop(&dir, engine)?,
        "certify" => certify_once(&dir, engine, cache)?,
        other => bail!("unknown bench-child `{other}`"),
    }
    println!("{}", started.elapsed().as_secs_f64());
    Ok(())
}

/// Decodes every sample and runs it through both models: the work a replay cannot avoid.
fn bare_loop(dir: &Path, engine: EngineChoice) -> anyhow::Result<()> {
    let family = load_family(dir, None, &InputShapes::default())?;
    let engine = edgecert::engine::select(engine, &[edgecert::model::ModelFormat::Onnx])?.engine;
    let compressed = engine.load(&family.compressed.path, &family.compressed.inputs)?;
    let reference = engine.load(&family.reference.path, &family.reference.inputs)?;
    (0..family.golden.len()).into_par_iter().try_for_each(|i| -> edgecert::Result<()> {
        let input = [family.golden.sample(i)?];
        compressed.run(&input)?;
        reference.run(&input)?;
        Ok(())
    })?;
    Ok(())
}

fn engine_choice(name: &str) -> anyhow::Result<EngineChoice> {
    match name {
        "tract" => Ok(EngineChoice::Tract),
        "onnxruntime" => Ok(EngineChoice::Onnxruntime),
        other => bail!("unknown engine `{other}`"),
    }
}

/// Certifies the golden set at `dir` on RK3588 on `engine`, with the reference cache at
/// `cache` (or none: both models replayed).
fn certify_once(dir: &Path, engine: EngineChoice, cache: Option<PathBuf>) -> anyhow::Result<()> {
    let root = crate::repo_root();
    let out = tempdir_under(&root.join("target/bench"))?;
    let request = Certification {
        inputs: InputSpec {
            profiles: vec![root.join("profiles/rk3588.toml")],
            profiles_dir: root.join("profiles"),
            golden: vec![dir.to_path_buf()],
            golden_dir: root.join("golden"),
            model: None,
            npu_mode: None,
            input_shapes: InputShapes::default(),
        },
        selection: Selection::default(),
        options: RunOptions {
            reference_cache: cache.map(|dir| edgecert::run::ReferenceCache { dir }),
            engine,
            ..RunOptions::default()
        },
        out: out.clone(),
    };
    certify(&request, TerminalFormat::Terse, &mut std::io::sink())?;
    std::fs::remove_dir_all(&out).ok();
    Ok(())
}

fn tempdir_under(parent: &Path) -> anyhow::Result<PathBuf> {
    let dir = parent.join(format!("out-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs this binary's `bench-child` with `args`; its wall time (as it printed it) and peak RSS.
fn child(args: &[&str]) -> anyhow::Result<Measured> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("bench-child").args(args);
    measure(command)
}

/// Runs `command`, which prints its own wall time last; that time and the process's peak RSS.
fn measure(mut command: Command) -> anyhow::Result<Measured> {
    let args = format!("{command:?}");
    let child = command.stdout(std::process::Stdio::piped()).spawn().context("starting a bench child")?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.context("the child's output")?;
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut printed)?;
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("bench child {args} failed (status {status})");
    }
    let last = printed.lines().last().unwrap_or_default().trim();
    let seconds = last.parse().with_context(|| format!("bench child printed {printed:?}"))?;
    Ok(Measured { seconds, max_rss_kb: usage.ru_maxrss })
}

/// `dst`: the golden set at `src` with its samples repeated `times` over (file names prefixed
/// by the repetition, so sorted order is repetition-major and matches the tiled labels), its
/// models copied, and its digest and sample count recorded afresh.
fn scale_golden(src: &Path, dst: &Path, times: usize) -> anyhow::Result<()> {
    if dst.exists() {
        std::fs::remove_dir_all(dst)?;
    }
    let golden = GoldenSet::load(src)?;
    let samples = dst.join(&golden.manifest.input.path);
    std::fs::create_dir_all(&samples)?;
    let mut names: Vec<_> = std::fs::read_dir(src.join(&golden.manifest.input.path))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for k in 0..times {
        for name in &names {
            let to = samples.join(format!("{k:02}-{}", name.to_string_lossy()));
            std::fs::copy(src.join(&golden.manifest.input.path).join(name), to)?;
        }
    }
    let labels = golden.labels.as_ref().context("the shapes set has labels")?;
    let views: Vec<_> = (0..times).map(|_| labels.view()).collect();
    let tiled = ndarray::concatenate(ndarray::Axis(0), &views)?;
    let spec = golden.manifest.labels.as_ref().context("labels spec")?;
    std::fs::write(dst.join(&spec.path), npy::encode(&tiled))?;
    for model in [&golden.manifest.models.reference, &golden.manifest.models.compressed] {
        std::fs::copy(src.join(model), dst.join(model))?;
    }
    std::fs::copy(src.join("family.toml"), dst.join("family.toml"))?;
    GoldenSet::rehash(dst)?;
    Ok(())
}

/// `dst`: the golden set at `src` with its samples decoded once into an `.npy` stack (as a
/// user's preprocessed set would ship), so edgecert and a Python script read the same floats.
fn npy_golden(src: &Path, dst: &Path) -> anyhow::Result<()> {
    if dst.exists() {
        std::fs::remove_dir_all(dst)?;
    }
    std::fs::create_dir_all(dst)?;
    let golden = GoldenSet::load(src)?;
    let samples: Vec<_> = (0..golden.len()).map(|i| golden.sample(i)).collect::<Result<_, _>>()?;
    let views: Vec<_> = samples.iter().map(|s| s.view()).collect();
    std::fs::write(dst.join("inputs.npy"), npy::encode(&ndarray::concatenate(ndarray::Axis(0), &views)?))?;
    let spec = golden.manifest.labels.as_ref().context("labels spec")?;
    std::fs::copy(src.join(&spec.path), dst.join(&spec.path))?;
    for model in [&golden.manifest.models.reference, &golden.manifest.models.compressed] {
        std::fs::copy(src.join(model), dst.join(model))?;
    }
    let manifest = std::fs::read_to_string(src.join("family.toml"))?;
    let input = format!("format = \"{}\"\npath = \"{}\"", "png", golden.manifest.input.path);
    anyhow::ensure!(
        manifest.contains(&input),
        "{} reads PNG samples from `{}`",
        src.display(),
        golden.manifest.input.path
    );
    std::fs::write(
        dst.join("family.toml"),
        manifest.replace(&input, "format = \"npy\"\npath = \"inputs.npy\""),
    )?;
    GoldenSet::rehash(dst)?;
    Ok(())
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 path")
}
