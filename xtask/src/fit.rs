//! Per-chip least squares: the few emulator figures a chip's calibrating corpus rows can fix,
//! fitted to them and to nothing else. The figures are the cost model's own knobs — the
//! accelerator's per-layer set-up (`npu.layer_overhead_us`), the share of its peak compute its
//! layers reach (`npu.utilization`), and its memory rate (`memory.dram_bandwidth_gbps`, or a
//! dataflow chip's `memory.on_chip_gbps`) — so a fit moves what the model already says, never
//! adds a fudge factor. It minimises the sum of squared log errors (emulated / published) over
//! the chip's calibrating rows by coordinate descent, one golden-section search per figure per
//! sweep, within physical bounds. With few rows it fits fewer figures: the set-up alone below
//! 4 rows, the utilization from 4, the memory rate from 6.

use edgecert::emulator::estimate;
use edgecert::model::ModelInventory;
use edgecert::profile::ChipProfile;

use crate::corpus::{Measure, Measurement};

/// Calibrating rows a fit needs before a bundled profile takes its figures: one row more than
/// twice the three figures it can set. Fixed before any fit was run; below it the fit is shown
/// beside the bundled figures, never in their place.
pub const ROWS_TO_APPLY: usize = 7;

/// One figure the fit may set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    LayerOverheadUs,
    Utilization,
    DramGbps,
    OnChipGbps,
}

impl Figure {
    pub fn field(self) -> &'static str {
        match self {
            Figure::LayerOverheadUs => "npu.layer_overhead_us",
            Figure::Utilization => "npu.utilization",
            Figure::DramGbps => "memory.dram_bandwidth_gbps",
            Figure::OnChipGbps => "memory.on_chip_gbps",
        }
    }

    pub fn get(self, p: &ChipProfile) -> Option<f64> {
        match self {
            Figure::LayerOverheadUs => {
                p.npu.as_ref().map(|n| n.layer_overhead_us.unwrap_or(DEFAULT_OVERHEAD_US))
            }
            Figure::Utilization => p.npu.as_ref().map(|n| n.utilization.unwrap_or(1.0)),
            Figure::DramGbps => p.memory.dram_bandwidth_gbps,
            Figure::OnChipGbps => p.memory.on_chip_gbps,
        }
    }

    pub fn set(self, p: &mut ChipProfile, value: f64) {
        match self {
            Figure::LayerOverheadUs => {
                if let Some(n) = p.npu.as_mut() {
                    n.layer_overhead_us = Some(value)
                }
            }
            Figure::Utilization => {
                if let Some(n) = p.npu.as_mut() {
                    n.utilization = Some(value)
                }
            }
            Figure::DramGbps => p.memory.dram_bandwidth_gbps = Some(value),
            Figure::OnChipGbps => p.memory.on_chip_gbps = Some(value),
        }
    }

    /// The physical bounds searched, from the profile's own value where it has one.
    fn bounds(self, start: f64) -> (f64, f64) {
        match self {
            Figure::LayerOverheadUs => (0.5, 500.0),
            Figure::Utilization => (0.02, 1.0),
            Figure::DramGbps | Figure::OnChipGbps => (start / 20.0, start * 2.0),
        }
    }
}

/// The emulator's default per-layer overhead, where a profile has none.
const DEFAULT_OVERHEAD_US: f64 = edgecert::emulator::DEFAULT_LAYER_OVERHEAD_US;

/// A calibrating row with its rebuilt network.
pub struct CalibrationRow<'a> {
    pub row: &'a Measurement,
    pub inventory: &'a ModelInventory,
}

/// The emulated ms per inference a row's figure is compared with: the latency (also for a
/// serial throughput, one stream on one core), or for a pipelined throughput row the frame
/// interval the emulator's throughput gives.
pub fn emulated_ms(row: &Measurement, inventory: &ModelInventory, profile: &ChipProfile) -> Option<f64> {
    let e = estimate(inventory, profile);
    match row.measure {
        Measure::Latency | Measure::SerialThroughput => e.latency_ms,
        _ => e.throughput_fps.map(|fps| 1000.0 / fps),
    }
}

/// The fitted figures and how well they meet the rows.
pub struct Fit {
    pub figures: Vec<(Figure, f64)>,
    pub profile: ChipProfile,
    pub rows: usize,
    /// The corpus lines of the rows fitted, for the profile's source.
    pub lines: Vec<usize>,
    /// Root-mean-square log error over the rows, before and after.
    pub rms_log_before: f64,
    pub rms_log_after: f64,
}

/// Fits `profile`'s figures to `rows` (at least 2 with an emulated figure); `None` otherwise.
pub fn fit(profile: &ChipProfile, rows: &[CalibrationRow]) -> Option<Fit> {
    let usable: Vec<&CalibrationRow> = rows
        .iter()
        .filter(|r| r.row.ms_per_inference().is_some() && emulated_ms(r.row, r.inventory, profile).is_some())
        .collect();
    if usable.len() < 2 {
        return None;
    }
    let mut figures = vec![Figure::LayerOverheadUs];
    if usable.len() >= 4 {
        figures.push(Figure::Utilization);
    }
    if usable.len() >= 6 {
        if profile.memory.dram_bandwidth_gbps.is_some() {
            figures.push(Figure::DramGbps);
        } else if profile.memory.on_chip_gbps.is_some() {
            figures.push(Figure::OnChipGbps);
        }
    }
    figures.retain(|f| f.get(profile).is_some());
    let loss = |p: &ChipProfile| -> f64 {
        usable
            .iter()
            .map(|r| match (emulated_ms(r.row, r.inventory, p), r.row.ms_per_inference()) {
                (Some(e), Some(m)) => (e / m).ln().powi(2),
                _ => 1e6,
            })
            .sum()
    };
    let before = loss(profile);
    let mut current = profile.clone();
    for _sweep in 0..6 {
        for figure in &figures {
            let start = figure.get(&current).unwrap_or(1.0);
            let (lo, hi) = figure.bounds(start);
            let best = golden_section(lo.ln(), hi.ln(), |x| {
                let mut trial = current.clone();
                figure.set(&mut trial, x.exp());
                loss(&trial)
            });
            figure.set(&mut current, best.exp());
        }
    }
    let after = loss(&current);
    let n = usable.len() as f64;
    Some(Fit {
        figures: figures.iter().map(|f| (*f, f.get(&current).unwrap_or_default())).collect(),
        profile: current,
        rows: usable.len(),
        lines: usable.iter().map(|r| r.row.line).collect(),
        rms_log_before: (before / n).sqrt(),
        rms_log_after: (after / n).sqrt(),
    })
}

/// The minimum of `f` on `[lo, hi]` by golden-section search (40 steps: the interval shrinks to
/// under 1e-8 of its width).
fn golden_section(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..40 {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = f(b);
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows whose "published" figures are the emulator's own with a planted overhead: the fit
    /// starts from another overhead and recovers the planted one; the control, rows from the
    /// bundled figure, leaves it where it was.
    #[test]
    fn the_fit_recovers_a_planted_layer_overhead_and_leaves_a_right_one_alone() {
        let profiles = edgecert::profile::load_dir(&crate::repo_root().join("profiles")).unwrap();
        let rk3588 = profiles.iter().find(|p| p.profile.chip.name == "rk3588").unwrap().profile.clone();
        let names = ["mobilenet_v2_224x224_int8", "resnet50_224x224_int8", "yolov8n_640x640_int8"];
        let inventories: Vec<ModelInventory> =
            names.iter().map(|n| crate::networks::inventory(n).unwrap().unwrap()).collect();
        let rows_at = |overhead_us: f64| -> Vec<Measurement> {
            let mut planted = rk3588.clone();
            planted.npu.as_mut().unwrap().layer_overhead_us = Some(overhead_us);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.csv");
            let mut csv = crate::corpus::COLUMNS.join(",") + "\n";
            for inv in &inventories {
                let ms = estimate(inv, &planted).latency_ms.unwrap();
                csv += &format!(
                    "rk3588,m,a,1x3x224x224,int8,rknn,latency,1,{ms},ms,NPU,,,a/b:c,{},\n",
                    "0".repeat(40)
                );
            }
            std::fs::write(&path, csv).unwrap();
            crate::corpus::load(&path).unwrap()
        };
        for (planted, start) in [(45.0, 19.9), (19.9, 19.9)] {
            let rows = rows_at(planted);
            let calibration: Vec<CalibrationRow> = rows
                .iter()
                .zip(&inventories)
                .map(|(row, inventory)| CalibrationRow { row, inventory })
                .collect();
            let mut from = rk3588.clone();
            from.npu.as_mut().unwrap().layer_overhead_us = Some(start);
            let fit = fit(&from, &calibration).unwrap();
            assert_eq!(fit.figures.len(), 1, "3 rows fit the set-up alone");
            let (figure, value) = fit.figures[0];
            assert_eq!(figure, Figure::LayerOverheadUs);
            assert!((value - planted).abs() < 0.05, "planted {planted}, fitted {value}");
            assert!(fit.rms_log_after < 1e-4, "{}", fit.rms_log_after);
        }
    }

    #[test]
    fn golden_section_finds_a_parabolas_minimum() {
        let x = golden_section(-5.0, 5.0, |x| (x - 1.25).powi(2));
        assert!((x - 1.25).abs() < 1e-6, "{x}");
    }
}
