//! `cargo xtask bench`: what certifying costs, measured in one command and reported as ratios
//! against baselines run in the same command, so the figures hold on any machine:
//! - **harness overhead**: `certify` of the shapes family on one chip (both models replayed,
//!   scored with the paired bootstrap, emulated, certificate and observations written) against a
//!   bare loop that decodes every sample and runs both models through the same engine with the
//!   same parallelism, and nothing else;
//! - **memory against golden-set size**: peak RSS of certifying the shapes set at its 500
//!   samples and at 5,000 (the same images ten times over, labels tiled to match).
//!
//! Each measurement runs in its own process (this binary again, with a `bench-child`
//! subcommand), so each peak RSS is that run's alone (`wait4`'s `ru_maxrss`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use edgecert::golden::{npy, GoldenSet};
use edgecert::model::InputShapes;
use edgecert::run::{certify, load_family, Certification, InputSpec, RunOptions, Selection};
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
    let bare = child(&["bare", path_str(&shapes)?])?;
    let small = child(&["certify", path_str(&shapes)?])?;
    let large = child(&["certify", path_str(&scaled)?])?;
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
    Ok(())
}

/// The child side: `bench-child bare DIR` or `bench-child certify DIR`; prints its wall time.
pub fn child_main(args: &[String]) -> anyhow::Result<()> {
    let (what, dir) = match args {
        [what, dir] => (what.as_str(), PathBuf::from(dir)),
        _ => bail!("usage: bench-child bare|certify GOLDEN_DIR"),
    };
    let started = Instant::now();
    match what {
        "bare" => bare_loop(&dir)?,
        "certify" => certify_once(&dir)?,
        other => bail!("unknown bench-child `{other}`"),
    }
    println!("{}", started.elapsed().as_secs_f64());
    Ok(())
}

/// Decodes every sample and runs it through both models: the work a replay cannot avoid.
fn bare_loop(dir: &Path) -> anyhow::Result<()> {
    let family = load_family(dir, None, &InputShapes::default())?;
    let engine = edgecert::engine::default_engine();
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

fn certify_once(dir: &Path) -> anyhow::Result<()> {
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
            backend: edgecert::backend::BackendKind::Emulated,
            ambient_c: None,
            sign_with: None,
            progress: false,
            // Both models replayed every time: the bench measures the replay, not the cache.
            reference_cache: None,
            engine: edgecert::engine::EngineChoice::Tract,
            cross_check: false,
        },
        out: out.clone(),
        format: edgecert::report::TerminalFormat::Terse,
    };
    certify(&request, &mut std::io::sink())?;
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
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg("bench-child")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting a bench child")?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.context("the child's output")?;
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut printed)?;
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("bench child {args:?} failed (status {status})");
    }
    let seconds = printed.trim().parse().with_context(|| format!("bench child printed {printed:?}"))?;
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

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 path")
}
