//! `cargo xtask fidelity`: the emulator's predicted latency for every (zoo model, profile), and
//! its error against the published on-chip calibration points (shared chip notes), in sample
//! (with the figure calibrated on the point itself) and leave-one-out (the chip's per-layer
//! overhead taken from the other points instead). Other published latencies are deliberately
//! not used here: they are kept for an independent score.

use std::path::Path;

use edgecert::emulator::{estimate, Unit};
use edgecert::model::ModelInventory;
use edgecert::profile::{self, ChipProfile};

/// Which emulated figure a published point is compared with.
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// Single-stream latency.
    Latency,
    /// Offline throughput, compared as ms per inference (1000 / FPS): a dataflow chip's
    /// published FPS is pipelined throughput, not 1 / latency.
    Throughput,
}

/// (chip, zoo model, published ms per inference, scenario, what was measured).
const CALIBRATION: [(&str, &str, f64, Scenario, &str); 4] = [
    (
        "rk3588",
        "mobilenet_v2",
        2.22,
        Scenario::Latency,
        "450.7 FPS, 1 NPU core, inference only, max NPU clock",
    ),
    ("hailo8", "mobilenet_v2", 1000.0 / 2597.0, Scenario::Throughput, "2597 FPS throughput, batch 1"),
    ("edgetpu", "mobilenet_v2", 2.6, Scenario::Latency, "model execution only"),
    (
        "qcs6490",
        "mobilenet_v2",
        1.373,
        Scenario::Latency,
        "RB3 Gen 2, QNN, w8a8, on-device profile, inference only (AI Hub perf.yaml v0.46.1)",
    ),
];

/// `cargo xtask fidelity --chip NAME`: the corpus's rows of one chip, scored (no zoo needed).
pub fn run_chip(chip: &str, profiles_dir: &Path) -> anyhow::Result<()> {
    let profiles = profile::load_dir(profiles_dir)?;
    let scored = score_corpus(&profiles, Some(chip))?;
    print_zoo_rejections(&profiles, Some(chip))?;
    anyhow::ensure!(
        !scored.is_empty() || profiles.iter().any(|p| p.profile.chip.name == chip),
        "no bundled profile `{chip}` in {}",
        profiles_dir.display()
    );
    Ok(())
}

pub fn run(zoo: &Path, profiles_dir: &Path) -> anyhow::Result<()> {
    let profiles = profile::load_dir(profiles_dir)?;
    let names: Vec<&str> = crate::zoo::models().iter().map(|m| m.name).collect();
    print!("{:<28}", "model (int8 QDQ) \\ chip, ms");
    for p in &profiles {
        print!(" {:>15}", p.profile.chip.name);
    }
    println!();
    let mut predicted = std::collections::HashMap::new();
    let mut exports = Vec::new();
    for name in &names {
        let path = zoo.join(format!("{name}_int8.onnx"));
        anyhow::ensure!(path.exists(), "{} is missing: run `cargo xtask zoo` first", path.display());
        let row = predict_row(&path, name, &profiles)?;
        for (chip, figures) in row.iter() {
            predicted.insert((chip.clone(), name.to_string()), *figures);
        }
        predict_row(&zoo.join(format!("{name}_fp32.onnx")), &format!("{name} (fp32)"), &profiles)?;
        let ort = zoo.join(format!("{name}_ort_int8.onnx"));
        if ort.exists() {
            let ort_row = predict_row(&ort, &format!("{name} (ort)"), &profiles)?;
            exports.push((name.to_string(), row, ort_row));
        }
    }
    export_independence(&exports);
    println!("\ncalibration points (emulated / published):");
    for (chip, model, published, scenario, what) in CALIBRATION {
        let figures = predicted.get(&(chip.to_string(), model.to_string())).copied();
        let emulated = figures.and_then(|(latency, per_inference)| match scenario {
            Scenario::Latency => latency,
            Scenario::Throughput => per_inference,
        });
        match emulated {
            Some(ms) => println!(
                "  {chip:<10} {model:<14} {ms:>8.3} ms vs {published:>7.3} ms  ratio {:.2}  ({what}{})",
                ms / published,
                if scenario == Scenario::Throughput { "; emulated 1 / throughput" } else { "" }
            ),
            None => println!("  {chip:<10} {model:<14} no prediction: the profile lacks a figure ({what})"),
        }
    }
    let points = score_corpus(&profiles, None)?;
    print_zoo_rejections(&profiles, None)?;
    let plot = crate::repo_root().join("docs/fidelity.svg");
    std::fs::write(&plot, plot_svg(&points))?;
    println!("predicted against published, log-log: {}", plot.display());
    let held_out = leave_one_out(zoo, &profiles)?;
    println!("? = the cost model lacks a figure it needs (e.g. no DRAM bandwidth, no host CPU); refused = the chip's toolchain would not compile the model (a float model for edgetpu_compiler, an op outside a strict list); hailo8's fp32 rows are the Dataflow Compiler's int8 build of the float model: see `edgecert estimate`.");
    check_held_out_error(held_out)
}

/// Scores the emulator on `fidelity/measurements.csv`: per chip, the rows that calibrate (a
/// third at most, by the corpus's rule) and, among the others, the accelerator rows at batch 1
/// (where the emulator's figures are) of rebuilt networks (`fidelity/networks/`): within ±10 %
/// and ±20 %, the median |error| and the three worst.
fn score_corpus(profiles: &[profile::ProfileFile], only: Option<&str>) -> anyhow::Result<Vec<Point>> {
    let (rows, calibrating) = corpus()?;
    let mut inventories = Inventories::default();
    let mut chips: Vec<&str> =
        rows.iter().map(|m| m.chip.as_str()).filter(|c| only.is_none_or(|o| o == *c)).collect();
    chips.dedup();
    let mut points = Vec::new();
    println!("\nthe measurement corpus (fidelity/measurements.csv, {} rows), scored rows only:", rows.len());
    for chip in chips {
        let Some(profile) = profiles.iter().find(|p| p.path.file_stem().is_some_and(|s| s == chip)) else {
            println!("  {chip:<11} no bundled profile");
            continue;
        };
        let of_chip: Vec<&crate::corpus::Measurement> = rows.iter().filter(|m| m.chip == chip).collect();
        let ChipScore {
            fitted,
            scored,
            points: chip_points,
            mut fitted_errors,
            fit,
            not_rebuilt,
            unscorable,
        } = score_chip(&profile.profile, &of_chip, &calibrating, &mut inventories)?;
        points.extend(chip_points);
        let within = |limit: f64| scored.iter().filter(|(e, _)| e.abs() <= limit).count();
        let mut magnitudes: Vec<f64> = scored.iter().map(|(e, _)| e.abs()).collect();
        magnitudes.sort_by(f64::total_cmp);
        let median_text = median(&magnitudes).map_or("-".into(), |m| format!("{:.0} %", m * 100.0));
        println!(
            "  {chip:<11} {} rows: {fitted} calibrate; {} scored (accelerator, batch 1, rebuilt), {} within ±10 %, {} within ±20 %, median |error| {median_text}; {not_rebuilt} not rebuilt yet, {unscorable} without a standard network, precision or figure",
            of_chip.len(),
            scored.len(),
            within(0.10),
            within(0.20),
        );
        for (error, what) in scored.iter().take(3) {
            println!("      {:+.0} %  {what}", error * 100.0);
        }
        print_fit(&profile.profile, fit.as_ref(), &mut fitted_errors);
        print_systematic_error(&profile.profile, &scored);
    }
    Ok(points)
}

type Inventories = std::collections::HashMap<String, Option<ModelInventory>>;

/// One chip's corpus rows against the emulator: how many calibrate, the scored rows' signed
/// errors (worst first, each with what it is) and points for the plot, the scored rows'
/// |error| with the chip's fit, the fit, and the rows not scored.
struct ChipScore {
    fitted: usize,
    scored: Vec<(f64, String)>,
    points: Vec<Point>,
    fitted_errors: Vec<f64>,
    fit: Option<crate::fit::Fit>,
    not_rebuilt: usize,
    unscorable: usize,
}

fn score_chip(
    profile: &ChipProfile,
    of_chip: &[&crate::corpus::Measurement],
    calibrating: &std::collections::BTreeMap<usize, bool>,
    inventories: &mut Inventories,
) -> anyhow::Result<ChipScore> {
    let Comparable { rows: comparable, not_rebuilt, mut unscorable } =
        comparable_rows(of_chip, calibrating, inventories)?;
    let fit = fit_chip(profile, &comparable, calibrating, inventories);
    let (mut scored, mut points, mut fitted_errors) = (Vec::new(), Vec::new(), Vec::new());
    for (m, name) in comparable.iter().filter(|(m, _)| !calibrating[&m.line]) {
        let inventory = inventories[name].as_ref().expect("comparable rows are rebuilt");
        let (Some(emulated), Some(published)) =
            (crate::fit::emulated_ms(m, inventory, profile), m.ms_per_inference())
        else {
            unscorable += 1;
            continue;
        };
        if let Some(fitted) = fit.as_ref().and_then(|f| crate::fit::emulated_ms(m, inventory, &f.profile)) {
            fitted_errors.push((fitted / published - 1.0).abs());
        }
        // The note says what the source's figure covers (e.g. post-processing cut off).
        let note: String = m.note.chars().take(70).collect();
        let what = format!(
            "{} {} {} (line {}; {} @ {}) {note}",
            m.model,
            m.precision,
            m.runtime,
            m.line,
            m.source,
            &m.commit[..m.commit.len().min(8)]
        );
        scored.push((emulated / published - 1.0, what));
        points.push(Point { chip: m.chip.clone(), published, emulated });
    }
    scored.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    let fitted = of_chip.iter().filter(|m| calibrating[&m.line]).count();
    Ok(ChipScore { fitted, scored, points, fitted_errors, fit, not_rebuilt, unscorable })
}

/// A chip's rows the emulator can be compared on (accelerator, batch 1, a rebuilt network),
/// each with its network's name, and how many rows outside the calibrating third are not
/// rebuilt yet or have no standard network, precision or figure.
struct Comparable<'a> {
    rows: Vec<(&'a crate::corpus::Measurement, String)>,
    not_rebuilt: usize,
    unscorable: usize,
}

fn comparable_rows<'a>(
    of_chip: &[&'a crate::corpus::Measurement],
    calibrating: &std::collections::BTreeMap<usize, bool>,
    inventories: &mut Inventories,
) -> anyhow::Result<Comparable<'a>> {
    let mut c = Comparable { rows: Vec::new(), not_rebuilt: 0, unscorable: 0 };
    for m in of_chip.iter().filter(|m| m.batch == 1 && matches!(m.compute_unit.as_str(), "NPU" | "TPU")) {
        let Ok(name) = crate::networks::network_for(m) else {
            c.unscorable += usize::from(!calibrating[&m.line]);
            continue;
        };
        if !inventories.contains_key(&name) {
            inventories.insert(name.clone(), crate::networks::inventory(&name)?);
        }
        match &inventories[&name] {
            Some(_) => c.rows.push((*m, name)),
            None => c.not_rebuilt += usize::from(!calibrating[&m.line]),
        }
    }
    Ok(c)
}

/// The least-squares fit of `profile` on its calibrating comparable rows.
fn fit_chip(
    profile: &ChipProfile,
    comparable: &[(&crate::corpus::Measurement, String)],
    calibrating: &std::collections::BTreeMap<usize, bool>,
    inventories: &Inventories,
) -> Option<crate::fit::Fit> {
    let calibration: Vec<crate::fit::CalibrationRow> = comparable
        .iter()
        .filter(|(m, _)| calibrating[&m.line])
        .filter_map(|(m, name)| {
            Some(crate::fit::CalibrationRow { row: m, inventory: inventories[name].as_ref()? })
        })
        .collect();
    crate::fit::fit(profile, &calibration)
}

/// The measurement corpus, and which of its lines calibrate (by the corpus's rule).
fn corpus() -> anyhow::Result<(Vec<crate::corpus::Measurement>, std::collections::BTreeMap<usize, bool>)> {
    let rows = crate::corpus::load(&crate::repo_root().join("fidelity/measurements.csv"))?;
    let calibrating = crate::corpus::calibrating_lines(&rows);
    Ok((rows, calibrating))
}

/// Each bundled chip with corpus rows, scored; chips in parallel (each fit replays the emulator
/// over its rows hundreds of times), in the profiles' order.
#[cfg(test)]
fn chip_scores(profiles: &[profile::ProfileFile]) -> anyhow::Result<Vec<(String, ChipScore)>> {
    use rayon::prelude::*;
    let (rows, calibrating) = corpus()?;
    let scored: Vec<Option<(String, ChipScore)>> = profiles
        .par_iter()
        .map(|p| {
            let chip = p.profile.chip.name.as_str();
            let of_chip: Vec<&crate::corpus::Measurement> = rows.iter().filter(|m| m.chip == chip).collect();
            if of_chip.is_empty() {
                return Ok(None);
            }
            let mut inventories = Inventories::default();
            Ok(Some((chip.to_string(), score_chip(&p.profile, &of_chip, &calibrating, &mut inventories)?)))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(scored.into_iter().flatten().collect())
}

/// A fit on [`crate::fit::ROWS_TO_APPLY`] rows or more is the bundled profile's: each figure it
/// sets within 1 % of the profile's (a least-squares optimum refits to itself; the search is
/// a coordinate descent, so not exactly), and the figure's source names every row it came from.
fn check_applied(profile: &ChipProfile, fit: &crate::fit::Fit) -> Result<(), String> {
    let lines = fit.lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
    for (figure, fitted) in &fit.figures {
        let field = figure.field();
        let bundled = figure.get(profile).unwrap_or(f64::NAN);
        let off = (bundled / fitted - 1.0).abs();
        if off.is_nan() || off > 0.01 {
            return Err(format!(
                "{}: {field} is {bundled} in the bundled profile, but the fit on its {} calibrating rows gives {fitted:.3}: set it to {fitted:.3}",
                profile.chip.name, fit.rows
            ));
        }
        let cited = profile.calibration_source(field).is_some_and(|s| s.contains(&format!("lines {lines}")));
        if !cited {
            return Err(format!(
                "{}: the source of {field} must name the rows it was fitted on: \"fidelity/measurements.csv lines {lines}\"",
                profile.chip.name
            ));
        }
    }
    Ok(())
}

/// A network a vendor's own zoo runs on its chip's accelerator (a corpus row on `NPU` or `TPU`)
/// that the emulator would refuse there: the chip, the network, the op types it rejects, and
/// the corpus line that says the vendor ran it.
#[derive(Debug)]
pub struct Rejection {
    pub chip: String,
    pub network: String,
    pub op_types: Vec<String>,
    pub line: usize,
}

/// Every rebuilt network of a corpus row on a chip's accelerator, placed on that chip's profile:
/// the ones with a rejected node (each (chip, network) once). The vendor ran them there, so
/// the profile's operator table must accept them.
pub fn zoo_rejections(profiles: &[profile::ProfileFile]) -> anyhow::Result<Vec<Rejection>> {
    let rows = crate::corpus::load(&crate::repo_root().join("fidelity/measurements.csv"))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut rejections = Vec::new();
    for m in rows.iter().filter(|m| matches!(m.compute_unit.as_str(), "NPU" | "TPU")) {
        let Some(profile) =
            profiles.iter().find(|p| p.path.file_stem().is_some_and(|s| s == m.chip.as_str()))
        else {
            continue;
        };
        let Ok(network) = crate::networks::network_for(m) else { continue };
        if !seen.insert((m.chip.clone(), network.clone())) {
            continue;
        }
        let Some(inventory) = crate::networks::inventory(&network)? else { continue };
        let e = estimate(&inventory, &profile.profile);
        let mut op_types: Vec<String> = e
            .placement
            .nodes
            .iter()
            .zip(&inventory.nodes)
            .filter(|(p, _)| p.unit == Unit::Rejected)
            .map(|(_, n)| n.op_type.clone())
            .collect();
        op_types.sort();
        op_types.dedup();
        if !op_types.is_empty() {
            rejections.push(Rejection { chip: m.chip.clone(), network, op_types, line: m.line });
        }
    }
    Ok(rejections)
}

/// What a least-squares fit on the chip's calibrating rows would set, and how the scored rows
/// would fare with it. It is applied to a bundled profile only from
/// [`crate::fit::ROWS_TO_APPLY`] calibrating rows, a rule fixed before any fit was run.
fn print_fit(profile: &ChipProfile, fit: Option<&crate::fit::Fit>, fitted_errors: &mut [f64]) {
    let Some(f) = fit else {
        println!("      fit: fewer than 2 calibrating rows with a rebuilt network");
        return;
    };
    fitted_errors.sort_by(f64::total_cmp);
    let median_text = median(fitted_errors).map_or("-".into(), |m| format!("{:.0} %", m * 100.0));
    let applied = match (f.rows >= crate::fit::ROWS_TO_APPLY, check_applied(profile, f)) {
        (false, _) => "not applied".to_string(),
        (true, Ok(())) => "applied: the bundled profile carries it".to_string(),
        (true, Err(e)) => format!("to apply: {e}"),
    };
    println!(
        "      least-squares fit on {} calibrating rows ({applied}; applied from {} rows): {}; rms log error {:.2} -> {:.2}; scored rows with it: median |error| {median_text}",
        f.rows,
        crate::fit::ROWS_TO_APPLY,
        f.figures.iter().map(|(fig, v)| format!("{} = {v:.3}", fig.field())).collect::<Vec<_>>().join(", "),
        f.rms_log_before,
        f.rms_log_after,
    );
}

/// The latency systematic error a chip's scored rows support: the 90th percentile of their
/// |error|, from [`profile::FIDELITY_MIN_ROWS`] rows; `None` below that.
fn own_latency_error(scored: &[(f64, String)]) -> Option<f64> {
    let mut errors: Vec<f64> = scored.iter().map(|(e, _)| e.abs()).collect();
    errors.sort_by(f64::total_cmp);
    (errors.len() >= profile::FIDELITY_MIN_ROWS as usize).then(|| edgecert::vocab::percentile(&errors, 0.90))
}

/// The bundled profile carries the latency error its chip's scored rows support (to the two
/// decimals it is written with), or none where they are too few for one: the figure an
/// emulated latency verdict on that chip is held across (from 1 on, none passes).
fn check_latency_error(profile: &ChipProfile, scored: &[(f64, String)]) -> Result<(), String> {
    let chip = &profile.chip.name;
    match (own_latency_error(scored), &profile.fidelity) {
        (Some(e), Some(f)) if (f.latency_error - e).abs() <= 0.005 && f.scored_rows as usize == scored.len() => Ok(()),
        (Some(e), _) => Err(format!(
            "{chip}: its {} scored rows give a latency error of {e:.2} (90th percentile of |error|): set [fidelity] latency_error = {e:.2}, scored_rows = {}",
            scored.len(),
            scored.len()
        )),
        (None, Some(_)) => Err(format!(
            "{chip}: {} scored rows, {} needed for a latency error of its own: remove [fidelity], the cross-chip figure stands",
            scored.len(),
            profile::FIDELITY_MIN_ROWS
        )),
        (None, None) => Ok(()),
    }
}

fn print_systematic_error(profile: &ChipProfile, scored: &[(f64, String)]) {
    let carried = match (check_latency_error(profile, scored), &profile.fidelity) {
        (Ok(()), Some(_)) => "the bundled profile carries it".to_string(),
        (Ok(()), None) => "the bundled profile gives none of its own".to_string(),
        (Err(e), _) => format!("to apply: {e}"),
    };
    match own_latency_error(scored) {
        Some(e) => println!(
            "      latency systematic error from its {} scored rows: ±{:.0} % (90th percentile of |error|); {carried}",
            scored.len(),
            e * 100.0
        ),
        None => println!(
            "      latency systematic error: the cross-chip ±{:.0} % (edgecert::emulator::HELD_OUT_ERROR); {} scored rows, {} needed for the chip's own; {carried}",
            edgecert::emulator::HELD_OUT_ERROR * 100.0,
            scored.len(),
            profile::FIDELITY_MIN_ROWS
        ),
    }
}

/// Prints the networks a vendor's zoo runs on its accelerator that the chip's profile would
/// refuse (none, when the operator tables agree with the zoos).
fn print_zoo_rejections(profiles: &[profile::ProfileFile], only: Option<&str>) -> anyhow::Result<()> {
    let rejected: Vec<Rejection> =
        zoo_rejections(profiles)?.into_iter().filter(|r| only.is_none_or(|c| c == r.chip)).collect();
    println!("operator tables against the vendors' zoos: {} rebuilt network(s) the vendor runs on its accelerator refused", rejected.len());
    for r in rejected {
        println!(
            "  {} {} rejects {} (measurements.csv line {})",
            r.chip,
            r.network,
            r.op_types.join(", "),
            r.line
        );
    }
    Ok(())
}

/// One scored row: the published ms per inference and the emulated one.
pub struct Point {
    chip: String,
    published: f64,
    emulated: f64,
}

/// Emulated against published ms per inference, log–log, one colour per chip, with the
/// diagonal and the ±10 % band: a self-contained SVG (no script, no font beyond the viewer's).
pub fn plot_svg(points: &[Point]) -> String {
    const SIZE: f64 = 480.0;
    const PAD: f64 = 56.0;
    const COLOURS: [&str; 8] =
        ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6e63", "#30343f"];
    let all = points.iter().flat_map(|p| [p.published, p.emulated]).filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() {
        (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()))
    } else {
        (0.1, 100.0)
    };
    let at = |v: f64| PAD + (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * (SIZE - 2.0 * PAD);
    let (x, y) = (|v: f64| at(v), |v: f64| SIZE - at(v));
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{SIZE}\" height=\"{SIZE}\" viewBox=\"0 0 {SIZE} {SIZE}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let band = |k: f64| {
        format!("{:.1},{:.1} {:.1},{:.1}", x(lo), y(lo * k), x(hi / k.max(1.0)), y(hi / k.max(1.0) * k))
    };
    svg += &format!("<polyline points=\"{}\" stroke=\"#999\" fill=\"none\"/>\n", band(1.0));
    for k in [1.1, 1.0 / 1.1] {
        svg += &format!(
            "<polyline points=\"{}\" stroke=\"#ccc\" stroke-dasharray=\"4 3\" fill=\"none\"/>\n",
            band(k)
        );
    }
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{decade}</text>\n",
            x(decade),
            SIZE - PAD + 16.0
        );
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{decade}</text>\n",
            PAD - 6.0,
            y(decade) + 4.0
        );
        decade *= 10.0;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">published ms per inference</text>\n",
        SIZE / 2.0,
        SIZE - 12.0
    );
    svg += &format!("<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">emulated ms per inference</text>\n", SIZE / 2.0, SIZE / 2.0);
    let mut chips: Vec<&str> = points.iter().map(|p| p.chip.as_str()).collect();
    chips.dedup();
    for (i, chip) in chips.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for p in points.iter().filter(|p| p.chip == *chip && p.published > 0.0 && p.emulated > 0.0) {
            svg += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\" fill-opacity=\"0.75\"><title>{chip}: published {:.3} ms, emulated {:.3} ms</title></circle>\n", x(p.published), y(p.emulated), p.published, p.emulated);
        }
        svg += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{chip}</text>\n", PAD + 8.0, PAD + 14.0 * i as f64, PAD + 16.0, PAD + 4.0 + 14.0 * i as f64);
    }
    svg + "</svg>\n"
}

/// Emulated latency verdicts hold across `emulator::HELD_OUT_ERROR`, which must be the median
/// held-out error measured here (to the rounding it is written with).
fn check_held_out_error(measured: Option<f64>) -> anyhow::Result<()> {
    let used = edgecert::emulator::HELD_OUT_ERROR;
    let measured = measured.ok_or_else(|| anyhow::anyhow!("no calibration point gave a held-out error"))?;
    anyhow::ensure!(
        (measured - used).abs() <= 0.005,
        "certificates hold emulated latency verdicts across ±{:.1} % (edgecert::emulator::HELD_OUT_ERROR), but the median held-out error is now {:.1} %: set it to {measured:.2}",
        used * 100.0,
        measured * 100.0
    );
    println!(
        "emulated latency verdicts hold across ±{:.0} % (edgecert::emulator::HELD_OUT_ERROR) where a chip has no error of its own, the median held-out error above",
        edgecert::emulator::HELD_OUT_ERROR * 100.0
    );
    Ok(())
}

/// The one figure a calibration point sets on its chip: the per-layer overhead where the point
/// is a latency, the on-chip streaming rate on a dataflow chip whose point is pipelined
/// throughput (set-up does not recur per frame there, so no overhead can move it).
#[derive(Clone, Copy, PartialEq)]
enum Knob {
    OverheadUs,
    OnChipGbps,
    /// A per-layer overhead that stands for DRAM time too (`memory.dram_in_overhead`): not the
    /// same quantity as [`Knob::OverheadUs`], so neither is held out with the other.
    OverheadWithDramUs,
}

impl Knob {
    fn of(profile: &ChipProfile) -> Knob {
        match profile.npu.as_ref().and_then(|n| n.kind.as_deref()) {
            Some("dataflow") => Knob::OnChipGbps,
            _ if profile.memory.has_dram_in_overhead() => Knob::OverheadWithDramUs,
            _ => Knob::OverheadUs,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Knob::OverheadUs => "layer_overhead_us",
            Knob::OnChipGbps => "on_chip_gbps",
            Knob::OverheadWithDramUs => "layer_overhead_us (DRAM inside)",
        }
    }

    fn get(self, profile: &ChipProfile) -> Option<f64> {
        let npu = profile.npu.as_ref()?;
        match self {
            Knob::OverheadUs | Knob::OverheadWithDramUs => npu.layer_overhead_us,
            Knob::OnChipGbps => profile.memory.on_chip_gbps,
        }
    }

    /// The figure the emulator uses when the profile gives none (no on-chip rate: never the
    /// bottleneck, an infinite one).
    fn default(self) -> f64 {
        match self {
            Knob::OverheadUs | Knob::OverheadWithDramUs => edgecert::emulator::DEFAULT_LAYER_OVERHEAD_US,
            Knob::OnChipGbps => f64::INFINITY,
        }
    }

    /// The range searched, ordered so the emulated figure grows from the first bound to the second.
    fn range(self) -> (f64, f64) {
        match self {
            Knob::OverheadUs | Knob::OverheadWithDramUs => (0.0, 500.0),
            Knob::OnChipGbps => (1e6, 0.01),
        }
    }
}

/// Per chip: (latency, ms per inference offline)
type Row = Vec<(String, (Option<f64>, Option<f64>))>;

/// Prints one model's latency on every profile, and returns its figures per chip.
fn predict_row(path: &Path, label: &str, profiles: &[profile::ProfileFile]) -> anyhow::Result<Row> {
    let inv = ModelInventory::load(path)?;
    print!("{label:<28}");
    let mut row = Vec::new();
    for p in profiles {
        let e = estimate(&inv, &p.profile);
        match e.latency_ms {
            Some(ms) => print!(" {ms:>15.3}"),
            // A model the toolchain refuses is an answer, not a missing figure.
            None if e.placement.nodes.iter().any(|n| n.unit == Unit::Rejected) => {
                print!(" {:>15}", "refused")
            }
            None => print!(" {:>15}", "?"),
        }
        row.push((p.profile.chip.name.clone(), (e.latency_ms, e.throughput_fps.map(|fps| 1000.0 / fps))));
    }
    let gmacs = inv.total_macs.map_or("?".into(), |m| format!("{:.2}", m as f64 / 1e9));
    println!("   ({gmacs} GMAC, {} nodes)", inv.nodes.len());
    Ok(row)
}

/// The same network exported by edgecert's quantizer and by onnxruntime's `quantize_static`
/// (fewer nodes: activations folded) runs the same layers on a chip, so it must predict the same.
fn export_independence(exports: &[(String, Row, Row)]) {
    if exports.is_empty() {
        println!("\nno onnxruntime-quantized exports (`cargo xtask zoo` with python3 importing onnxruntime and onnx)");
        return;
    }
    let mut worst: Option<(f64, String)> = None;
    for (name, ours, ort) in exports {
        for ((chip, (a, _)), (_, (b, _))) in ours.iter().zip(ort) {
            if let (Some(a), Some(b)) = (a, b) {
                let deviation = (b / a - 1.0).abs();
                if worst.as_ref().is_none_or(|(w, _)| deviation > *w) {
                    worst = Some((deviation, format!("{name} on {chip}: {a:.3} vs {b:.3} ms")));
                }
            }
        }
    }
    if let Some((deviation, at)) = worst {
        println!(
            "\nexport independence: onnxruntime quantize_static vs edgecert's QDQ export, largest deviation {:.1} % ({at})",
            deviation * 100.0
        );
    }
}

/// The emulated figure a point is compared with, for `profile` with its knob set to `value`.
fn emulate(inv: &ModelInventory, profile: &ChipProfile, value: f64, scenario: Scenario) -> Option<f64> {
    let mut profile = profile.clone();
    match Knob::of(&profile) {
        Knob::OverheadUs | Knob::OverheadWithDramUs => profile.npu.as_mut()?.layer_overhead_us = Some(value),
        Knob::OnChipGbps => profile.memory.on_chip_gbps = Some(value),
    }
    let e = estimate(inv, &profile);
    match scenario {
        Scenario::Latency => e.latency_ms,
        Scenario::Throughput => e.throughput_fps.map(|fps| 1000.0 / fps),
    }
}

/// The knob's value at which the point is met, if one in its range meets it (the figure is
/// monotonic in it, so bisection finds it).
fn calibrate(inv: &ModelInventory, profile: &ChipProfile, published: f64, scenario: Scenario) -> Option<f64> {
    let (mut low, mut high) = Knob::of(profile).range();
    if emulate(inv, profile, low, scenario)? > published || emulate(inv, profile, high, scenario)? < published
    {
        return None;
    }
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if emulate(inv, profile, mid, scenario)? < published {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some((low + high) / 2.0)
}

/// Per point: the value of its chip's knob that meets it; the error with the profile's own
/// figure (in sample when the profile's figure was calibrated on this point); and the error when
/// the figure is the mean of what the *other* points of the same knob calibrate, or the
/// emulator's default where no other point sets that knob (leave-one-out). Returns the median
/// absolute held-out error.
fn leave_one_out(zoo: &Path, profiles: &[profile::ProfileFile]) -> anyhow::Result<Option<f64>> {
    struct Point<'a> {
        chip: &'a str,
        published: f64,
        scenario: Scenario,
        inv: ModelInventory,
        profile: ChipProfile,
        knob: Knob,
        calibrated: Option<f64>,
    }
    let mut points = Vec::new();
    for (chip, model, published, scenario, _) in CALIBRATION {
        let Some(p) = profiles.iter().find(|p| p.profile.chip.name == chip) else { continue };
        let inv = ModelInventory::load(&zoo.join(format!("{model}_int8.onnx")))?;
        let calibrated = calibrate(&inv, &p.profile, published, scenario);
        let (profile, knob) = (p.profile.clone(), Knob::of(&p.profile));
        points.push(Point { chip, published, scenario, inv, profile, knob, calibrated });
    }
    println!("\nleave-one-out (each chip's calibrated figure replaced by what the other points give):");
    let (mut in_sample, mut out_of_sample) = (Vec::new(), Vec::new());
    for (i, p) in points.iter().enumerate() {
        let others: Vec<f64> = points
            .iter()
            .enumerate()
            .filter(|(j, q)| *j != i && q.knob == p.knob)
            .filter_map(|(_, q)| q.calibrated)
            .collect();
        let error =
            |value: f64| emulate(&p.inv, &p.profile, value, p.scenario).map(|ms| ms / p.published - 1.0);
        let show = |e: Option<f64>| e.map_or("no prediction".to_string(), |e| format!("{:+.1} %", e * 100.0));
        let name = p.knob.name();
        let own = p.knob.get(&p.profile);
        let in_error = own.and_then(error);
        let (held_out, whence) = match others.is_empty() {
            true => (p.knob.default(), "the default: no other point sets it"),
            false => (others.iter().sum::<f64>() / others.len() as f64, "the other points' mean"),
        };
        let out_error = error(held_out);
        let meets = p.calibrated.map_or(format!("no {name} meets it"), |v| format!("{name} {v:.3} meets it"));
        let sample = match own {
            Some(v) => format!("profile's {v:.3}, in sample: {}", show(in_error)),
            None => "the profile has no calibrated figure".into(),
        };
        let held_out_shown = match held_out.is_finite() {
            true => format!("{held_out:.3}"),
            false => "none".into(),
        };
        println!(
            "  {:<10} {meets}; {sample}; held out {held_out_shown} ({whence}): {}",
            p.chip,
            show(out_error)
        );
        in_sample.extend(in_error);
        out_of_sample.extend(out_error);
    }
    summarize("in sample", &in_sample, points.len());
    Ok(summarize("leave-one-out", &out_of_sample, points.len()))
}

/// Prints how many of `points` the `errors` put within ±10 % and their median |error|, which
/// it returns.
fn summarize(name: &str, errors: &[f64], points: usize) -> Option<f64> {
    let mut abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let within = abs.iter().filter(|e| **e <= 0.10).count();
    let median = median(&abs);
    let shown = median.map_or("-".into(), |m| format!("{:.1} %", m * 100.0));
    println!(
        "  {name}: {within} of {} points within ±10 % ({} points without a prediction); median |error| {shown}",
        abs.len(),
        points - abs.len()
    );
    median
}

/// The median of sorted values: the middle one, or the mean of the two middle ones.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type BundledScores = (Vec<profile::ProfileFile>, Vec<(String, ChipScore)>);

    /// The bundled profiles and their corpus scores, computed once for the tests that read them
    /// (scoring replays the fit over every chip's rows: the longest step of these tests).
    fn bundled_scores() -> &'static BundledScores {
        static SCORES: std::sync::OnceLock<BundledScores> = std::sync::OnceLock::new();
        SCORES.get_or_init(|| {
            let profiles = profile::load_dir(&crate::repo_root().join("profiles")).unwrap();
            let scores = chip_scores(&profiles).unwrap();
            (profiles, scores)
        })
    }

    /// The calibration points' models built afresh, so the test needs no `cargo xtask zoo`.
    #[test]
    fn the_error_certificates_hold_verdicts_across_is_the_one_measured_held_out() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        for m in crate::zoo::models().iter().filter(|m| CALIBRATION.iter().any(|p| p.1 == m.name)) {
            let (_, int8) = crate::zoo::build(m).unwrap();
            std::fs::write(dir.join(format!("{}_int8.onnx", m.name)), edgecert::model::writer::encode(&int8))
                .unwrap();
        }
        let profiles = profile::load_dir(&crate::repo_root().join("profiles")).unwrap();
        let measured = leave_one_out(dir, &profiles).unwrap();
        check_held_out_error(measured).unwrap();
        // Negative control: a figure off by more than its rounding is refused, naming the fix.
        let off = check_held_out_error(measured.map(|m| m + 0.01)).unwrap_err().to_string();
        assert!(off.contains("set it to"), "{off}");
    }

    /// A chip with enough calibrating rows carries its least-squares fit in its bundled profile,
    /// each figure citing the rows: the test fails when a row, a network or the cost model moves
    /// the fit, and names the figure to write.
    #[test]
    fn a_chip_with_enough_calibrating_rows_carries_its_fit_in_its_profile() {
        let (profiles, scores) = bundled_scores();
        let applied: Vec<(&String, &crate::fit::Fit)> = scores
            .iter()
            .filter_map(|(chip, s)| Some((chip, s.fit.as_ref()?)))
            .filter(|(_, f)| f.rows >= crate::fit::ROWS_TO_APPLY)
            .collect();
        assert!(!applied.is_empty(), "no chip has {} calibrating rows", crate::fit::ROWS_TO_APPLY);
        for (chip, fit) in &applied {
            let bundled = &profiles.iter().find(|p| &p.profile.chip.name == *chip).unwrap().profile;
            check_applied(bundled, fit).unwrap();
            // The control: the first figure moved 10 % off is refused, naming the fix.
            let (figure, value) = fit.figures[0];
            let mut off = bundled.clone();
            figure.set(&mut off, value * 1.1);
            let e = check_applied(&off, fit).unwrap_err();
            assert!(
                e.contains(&format!("{}: {} is", chip, figure.field())) && e.contains("set it to"),
                "{e}"
            );
        }
    }

    /// Each chip's latency systematic error is the one its scored rows give, or the cross-chip
    /// one where they are too few: the test fails when a row, a network or the cost model
    /// moves it, naming what to write.
    #[test]
    fn each_chip_carries_the_latency_error_its_scored_rows_give() {
        let (profiles, scores) = bundled_scores();
        let bundled = |chip: &str| &profiles.iter().find(|p| p.profile.chip.name == chip).unwrap().profile;
        for (chip, score) in scores {
            check_latency_error(bundled(chip), &score.scored).unwrap();
        }
        let (chip, own) = scores
            .iter()
            .find(|(_, s)| own_latency_error(&s.scored).is_some())
            .expect("a chip with enough scored rows for its own error");
        // The controls: that chip with its figure off by 0.02, and with none, are refused; a
        // chip with too few rows that claims one is told to remove it.
        let mut off = bundled(chip).clone();
        off.fidelity.as_mut().unwrap().latency_error += 0.02;
        let e = check_latency_error(&off, &own.scored).unwrap_err();
        assert!(e.contains("set [fidelity] latency_error = "), "{e}");
        off.fidelity = None;
        assert!(check_latency_error(&off, &own.scored).is_err());
        let few = &own.scored[..5];
        let e = check_latency_error(bundled(chip), few).unwrap_err();
        assert!(e.contains("5 scored rows, 10 needed") && e.contains("remove [fidelity]"), "{e}");
    }

    #[test]
    fn the_plot_places_each_scored_row_with_its_chip_and_figures() {
        let points = [
            Point { chip: "rk3588".into(), published: 2.0, emulated: 2.2 },
            Point { chip: "hailo8".into(), published: 0.5, emulated: 0.4 },
        ];
        let svg = plot_svg(&points);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert_eq!(svg.matches("<title>").count(), 2);
        assert!(svg.contains("<title>rk3588: published 2.000 ms, emulated 2.200 ms</title>"), "{svg}");
        assert!(svg.contains(">hailo8</text>") && !svg.contains("<script"), "{svg}");
    }

    /// Each rebuilt network a vendor's zoo runs on its accelerator places there with no
    /// rejected node: the operator tables agree with the vendors' zoos.
    #[test]
    fn every_network_a_vendor_zoo_runs_on_its_accelerator_places_there_with_nothing_rejected() {
        let profiles = profile::load_dir(&crate::repo_root().join("profiles")).unwrap();
        let rejected = zoo_rejections(&profiles).unwrap();
        let listed: Vec<String> = rejected
            .iter()
            .map(|r| {
                format!(
                    "{} {} rejects {:?} (measurements.csv line {})",
                    r.chip, r.network, r.op_types, r.line
                )
            })
            .collect();
        assert!(listed.is_empty(), "{}", listed.join("\n"));
        // The control: a table without Conv rejects every network, on every chip.
        let mut stripped = profiles.clone();
        for p in &mut stripped {
            p.profile.operators.supported.retain(|op| op != "Conv");
        }
        let controls = zoo_rejections(&stripped).unwrap();
        assert!(controls.iter().any(|r| r.op_types.contains(&"Conv".to_string())), "{controls:?}");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[0.1, 0.2, 0.9]), Some(0.2));
        assert_eq!(median(&[0.16, 0.35, 0.40, 0.85]), Some(0.375));
    }
}
