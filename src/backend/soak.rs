//! The sustained-load run (`certify --soak S`): after the timed run, the compressed model runs
//! back to back, or paced at `--soak-rate`, for S seconds, while a second thread reads the
//! device's thermal zones and clocks once a second. Inputs are decoded before the load starts
//! (decoding would cool the chip between inferences), a bounded set cycled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::device::Sensors;
use crate::engine::LoadedModel;
use crate::golden::GoldenSet;
use crate::power::{PowerSource, BRACKET_TIMEOUT};
use crate::vocab::{Observed, PowerTrace, Result, SoakTrace, ThermalSample};

/// Seconds between two readings of the sensors.
pub const SAMPLE_PERIOD_S: f64 = 1.0;

/// Seconds a meter reads the idle device before the load: the board's idle draw.
pub const IDLE_S: f64 = 3.0;

/// Inputs held decoded for the soak, at most.
const SOAK_INPUT_BYTES: usize = 64 << 20;

/// What a soak runs and reads.
#[derive(Clone, Copy)]
pub struct SoakPlan<'a> {
    pub seconds: f64,
    /// Inferences per second to pace the load at; `None`: back to back.
    pub rate_hz: Option<f64>,
    /// Where the thermal zones and clocks are read.
    pub sensors: &'a dyn Sensors,
}

/// A meter read over the soak: the trace on the soak's clock, or why there is none.
fn metered(
    reading: Option<Result<Box<dyn crate::power::PowerReading>>>,
    meter_at_start: Option<f64>,
) -> Option<Observed<PowerTrace>> {
    Some(match reading? {
        Err(e) => Observed::unavailable(e.to_string()),
        Ok(r) => match (r.finish(), meter_at_start) {
            (Ok(mut trace), Some(start)) => {
                trace.points.iter_mut().for_each(|p| p.0 -= start);
                Observed::Observed { value: trace }
            }
            (Ok(_), None) => Observed::unavailable("the meter's clock was not read"),
            (Err(e), _) => Observed::unavailable(e.to_string()),
        },
    })
}

/// Runs the soak: the latencies with the second each finished in, a reading of the sensors at
/// the start, once a second and at the end, and the meter's trace over it where one is given.
pub fn soak_run(
    model: &dyn LoadedModel,
    golden: &GoldenSet,
    plan: &SoakPlan<'_>,
    meter: Option<&dyn PowerSource>,
) -> Result<SoakTrace> {
    let inputs = super::predecode(golden, SOAK_INPUT_BYTES)?;
    let reading = meter.map(|m| m.begin());
    let meter_ok = reading.as_ref().and_then(|r| r.as_ref().ok());
    meter_ok.inspect(|r| r.wait_for_sample_after(0.0, BRACKET_TIMEOUT));
    // The device idles (the timed run is over, nothing is loaded) while the meter reads it.
    let idle_s = if meter_ok.is_some() { IDLE_S } else { 0.0 };
    std::thread::sleep(Duration::from_secs_f64(idle_s));
    let meter_at_start = meter_ok.map(|r| r.now_s());
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let (latencies, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_until(plan.sensors, started, &done));
        let latencies = load(model, &inputs, plan, started);
        done.store(true, Ordering::Relaxed);
        let mut samples = sampler.join().unwrap_or_default();
        samples.push(plan.sensors.sample(started.elapsed().as_secs_f64()));
        (latencies, samples)
    });
    if let (Some(Ok(r)), Some(start)) = (reading.as_ref(), meter_at_start) {
        r.wait_for_sample_after(start + started.elapsed().as_secs_f64(), BRACKET_TIMEOUT);
    }
    Ok(SoakTrace {
        seconds: plan.seconds,
        rate_hz: plan.rate_hz,
        sensors: plan.sensors.describe(),
        latencies: latencies?,
        samples,
        power: metered(reading, meter_at_start),
        idle_s,
    })
}

/// The load: one inference at a time until the soak's seconds are up, each at its slot when
/// paced.
fn load(
    model: &dyn LoadedModel,
    inputs: &[crate::engine::Tensor],
    plan: &SoakPlan<'_>,
    started: Instant,
) -> Result<Vec<(f64, f64)>> {
    let mut latencies = Vec::new();
    let mut i = 0usize;
    while started.elapsed().as_secs_f64() < plan.seconds {
        if let Some(rate) = plan.rate_hz {
            let slot = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = slot.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let (_, ms) = model.run_timed(std::slice::from_ref(&inputs[i % inputs.len()]))?;
        latencies.push((started.elapsed().as_secs_f64(), ms));
        i += 1;
    }
    Ok(latencies)
}

/// Readings at 0 s and every [`SAMPLE_PERIOD_S`] after, until `done`.
fn sample_until(sensors: &dyn Sensors, started: Instant, done: &AtomicBool) -> Vec<ThermalSample> {
    let mut samples = Vec::new();
    let mut next = 0.0;
    while !done.load(Ordering::Relaxed) {
        let now = started.elapsed().as_secs_f64();
        if now >= next {
            samples.push(sensors.sample(now));
            next += SAMPLE_PERIOD_S;
        }
        // Short naps, so the end of the load is not kept waiting a whole period.
        std::thread::sleep(Duration::from_millis(20).min(Duration::from_secs_f64((next - now).max(0.001))));
    }
    samples
}
