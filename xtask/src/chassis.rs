//! The `chassis` family: sideslip-angle (β) estimation from standard vehicle sensors.
//!
//! No open real-vehicle sideslip dataset exists, so the golden set comes from a simulator: a
//! single-track (bicycle) model with Pacejka tyres, integrated with RK4 at 1 ms and sampled at
//! 100 Hz, driven through step steer, sine with dwell, double lane change and random steering
//! at 10–35 m/s on dry, wet and snowy roads. Each sample is a 0.5 s window (50 steps × 6
//! channels: steering-wheel angle, speed, yaw rate, longitudinal and lateral acceleration,
//! steering rate) with sensor noise; the label is β at the window's end, in degrees, and μ.
//!
//! The model is a one-hidden-layer network: random ReLU features of the standardised window
//! with a ridge-regression read-out (an extreme learning machine), exported as Gemm–Relu–Gemm.

use edgecert::metrics::MetricKind;
use edgecert::model::writer::{Attr, Graph};
use edgecert::stats::SplitMix64;
use ndarray::{ArrayD, IxDyn};

use crate::family::{FamilyBuilder, Format, Meta, Split, Trained};
use crate::train::{features_of, fit_readout, standardise};

pub const STEPS: usize = 50;
pub const CHANNELS: usize = 6;
const HIDDEN: usize = 768;
const WINDOW_STRIDE: usize = 25;
const RUN_SECONDS: f64 = 8.0;
/// Steering ratio: steering-wheel angle per road-wheel angle.
const STEERING_RATIO: f64 = 15.0;
/// Runs that spin out (|β| beyond this) leave the estimator's operating range and are dropped.
const MAX_BETA_DEG: f64 = 20.0;

/// Vehicle parameters (shared notes: m, I_z, l_f, l_r, Pacejka C, E, B per axle).
struct Vehicle {
    m: f64,
    iz: f64,
    lf: f64,
    lr: f64,
    c: f64,
    e: f64,
    bf: f64,
    br: f64,
}

const CAR: Vehicle = Vehicle { m: 1500.0, iz: 2500.0, lf: 1.1, lr: 1.6, c: 1.9, e: 0.97, bf: 6.6, br: 10.5 };
const G: f64 = 9.81;

impl Vehicle {
    fn pacejka(&self, b: f64, d: f64, alpha: f64) -> f64 {
        let ba = b * alpha;
        d * (self.c * (ba - self.e * (ba - ba.atan())).atan()).sin()
    }

    /// Lateral tyre forces (front, rear) for state (v_y, r).
    fn forces(&self, mu: f64, vx: f64, vy: f64, r: f64, delta: f64) -> (f64, f64) {
        let l = self.lf + self.lr;
        let alpha_f = delta - ((vy + self.lf * r) / vx).atan();
        let alpha_r = -((vy - self.lr * r) / vx).atan();
        let fzf = self.m * G * self.lr / l;
        let fzr = self.m * G * self.lf / l;
        (self.pacejka(self.bf, mu * fzf, alpha_f), self.pacejka(self.br, mu * fzr, alpha_r))
    }

    /// d(v_y, r)/dt and the lateral acceleration.
    fn derivatives(&self, mu: f64, vx: f64, vy: f64, r: f64, delta: f64) -> (f64, f64, f64) {
        let (fyf, fyr) = self.forces(mu, vx, vy, r, delta);
        let ay = (fyf * delta.cos() + fyr) / self.m;
        (ay - vx * r, (self.lf * fyf * delta.cos() - self.lr * fyr) / self.iz, ay)
    }
}

#[derive(Clone, Copy)]
enum Manoeuvre {
    StepSteer,
    SineWithDwell,
    DoubleLaneChange,
    RandomSteer([(f64, f64, f64); 4]),
}

/// Road-wheel angle (rad) at time t for amplitude `a`.
fn steering(m: Manoeuvre, a: f64, t: f64) -> f64 {
    let tau = t - 1.0;
    if tau < 0.0 {
        return 0.0;
    }
    let two_pi = 2.0 * std::f64::consts::PI;
    match m {
        Manoeuvre::StepSteer => a * (tau / 0.2).min(1.0),
        Manoeuvre::SineWithDwell => {
            let period = 1.0 / 0.7;
            if tau < 0.75 * period {
                a * (two_pi * tau / period).sin()
            } else if tau < 0.75 * period + 0.5 {
                -a
            } else if tau < period + 0.5 {
                a * (two_pi * (tau - 0.5) / period).sin()
            } else {
                0.0
            }
        }
        Manoeuvre::DoubleLaneChange => {
            if tau < 2.5 {
                a * (two_pi * tau / 2.5).sin()
            } else if tau < 5.0 {
                -a * (two_pi * (tau - 2.5) / 2.5).sin()
            } else {
                0.0
            }
        }
        Manoeuvre::RandomSteer(waves) => {
            waves.iter().map(|(amp, f, phase)| amp * (two_pi * f * tau + phase).sin()).sum::<f64>() * a
        }
    }
}

/// One simulated run sampled at 100 Hz: rows of [δ_sw°, v_x, r°/s, a_x, a_y, δ̇_sw°/s] and β°.
struct Run {
    sensors: Vec<[f64; CHANNELS]>,
    beta_deg: Vec<f64>,
    mu: f64,
}

fn simulate(rng: &mut SplitMix64) -> Run {
    let mu = [1.0, 0.8, 0.3][rng.below(3)];
    let v0 = 10.0 + rng.next_f64() * 25.0;
    let phase = rng.next_f64() * 6.3;
    let manoeuvre = match rng.below(4) {
        0 => Manoeuvre::StepSteer,
        1 => Manoeuvre::SineWithDwell,
        2 => Manoeuvre::DoubleLaneChange,
        _ => {
            let mut w = [(0.0, 0.0, 0.0); 4];
            for x in &mut w {
                *x = (0.25 + rng.next_f64() * 0.25, 0.1 + rng.next_f64() * 1.2, rng.next_f64() * 6.3);
            }
            Manoeuvre::RandomSteer(w)
        }
    };
    // Amplitude: up to 6° of road-wheel angle at 15 m/s, less at speed, enough to saturate the
    // tyres on wet and snowy roads (where β grows and estimators struggle).
    let a = (0.5 + rng.next_f64() * 5.5).to_radians() * (15.0 / v0).clamp(0.3, 1.0);
    let vx_at = |t: f64| v0 + (2.0 * std::f64::consts::PI * t / 6.0 + phase).sin();
    let ax_at =
        |t: f64| (2.0 * std::f64::consts::PI / 6.0) * (2.0 * std::f64::consts::PI * t / 6.0 + phase).cos();
    let dt = 1e-3;
    let (mut vy, mut r) = (0.0f64, 0.0f64);
    let mut run = Run { sensors: Vec::new(), beta_deg: Vec::new(), mu };
    let steps = (RUN_SECONDS / dt) as usize;
    for k in 0..steps {
        let t = k as f64 * dt;
        let f = |t: f64, vy: f64, r: f64| {
            let (dvy, dr, _) = CAR.derivatives(mu, vx_at(t).max(2.0), vy, r, steering(manoeuvre, a, t));
            (dvy, dr)
        };
        if k % 10 == 0 {
            let vx = vx_at(t).max(2.0);
            let delta = steering(manoeuvre, a, t);
            let (_, _, ay) = CAR.derivatives(mu, vx, vy, r, delta);
            let rate = (steering(manoeuvre, a, t + dt) - delta) / dt;
            let noise = |rng: &mut SplitMix64, sd: f64| sd * rng.normal();
            run.sensors.push([
                (delta * STEERING_RATIO).to_degrees() + noise(rng, 0.1),
                vx + noise(rng, 0.05),
                r.to_degrees() + noise(rng, 0.1),
                ax_at(t) + noise(rng, 0.05),
                ay + noise(rng, 0.05),
                (rate * STEERING_RATIO).to_degrees() + noise(rng, 1.0),
            ]);
            run.beta_deg.push((vy / vx).atan().to_degrees());
        }
        let (k1y, k1r) = f(t, vy, r);
        let (k2y, k2r) = f(t + dt / 2.0, vy + dt / 2.0 * k1y, r + dt / 2.0 * k1r);
        let (k3y, k3r) = f(t + dt / 2.0, vy + dt / 2.0 * k2y, r + dt / 2.0 * k2r);
        let (k4y, k4r) = f(t + dt, vy + dt * k3y, r + dt * k3r);
        vy += dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y);
        r += dt / 6.0 * (k1r + 2.0 * k2r + 2.0 * k3r + k4r);
    }
    run
}

/// Windows of `runs` runs from `seed`: inputs [1, 50, 6] and labels [N, 2] (β°, μ).
fn windows(seed: u64, min_windows: usize) -> Split {
    let mut rng = SplitMix64::new(seed);
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    while inputs.len() < min_windows {
        let run = simulate(&mut rng);
        if run.beta_deg.iter().any(|b| b.abs() > MAX_BETA_DEG || !b.is_finite()) {
            continue;
        }
        let mut start = 0;
        while start + STEPS <= run.sensors.len() {
            let flat: Vec<f32> =
                run.sensors[start..start + STEPS].iter().flatten().map(|&v| v as f32).collect();
            inputs.push(ArrayD::from_shape_vec(IxDyn(&[1, STEPS, CHANNELS]), flat).expect("50x6"));
            labels.extend([run.beta_deg[start + STEPS - 1] as f32, run.mu as f32]);
            start += WINDOW_STRIDE;
        }
    }
    let n = inputs.len();
    Split { inputs, labels: ArrayD::from_shape_vec(IxDyn(&[n, 2]), labels).expect("N x 2") }
}

pub struct Chassis;

impl FamilyBuilder for Chassis {
    fn meta(&self) -> Meta {
        Meta {
            name: "chassis",
            task: "regression",
            description: "Chassis dynamics: sideslip angle (deg) from 0.5 s of steering, speed, yaw rate and accelerations; single-track model with Pacejka tyres, dry/wet/snow.",
            classes: vec![],
            input_shape: vec![1, STEPS, CHANNELS],
            format: Format::Npy,
            metric: MetricKind::SideslipRmse,
            hardest_slice: Some("snow"),
            latency_p99_ms: 1.0,
            abs_floor: 0.9,
            rel_floor: 0.85,
        }
    }

    fn golden(&self) -> Split {
        windows(0x901d_c4a5, 2000)
    }

    fn train(&self) -> anyhow::Result<Trained> {
        let train = windows(0x7a11_c4a5, 24_000);
        let calibration = windows(0xca11_c4a5, 200).inputs;
        let d = STEPS * CHANNELS;
        // Standardise each input column in the graph (Sub, Mul) so that the int8 activations
        // after it share one scale; raw channels span 0.05 m/s² to 60° and would not.
        let flat: Vec<Vec<f32>> = train.inputs.iter().map(|t| t.iter().copied().collect()).collect();
        let (mean, sd) = standardise(&flat);
        let inv_sd: Vec<f32> = sd.iter().map(|s| 1.0 / s).collect();
        let mut rng = SplitMix64::new(0x5eed_c4a5);
        let scale = (1.0 / d as f64).sqrt();
        let w1: Vec<f32> = (0..HIDDEN * d).map(|_| (rng.normal() * scale) as f32).collect();
        let b1: Vec<f32> = (0..HIDDEN).map(|_| (rng.normal() * 0.5) as f32).collect();
        let hidden = |g: &mut Graph| {
            let x = g.input("input", &[1, STEPS, CHANNELS]);
            let m = g.init_f32("input_mean", &[1, STEPS, CHANNELS], &mean);
            let s = g.init_f32("input_inv_sd", &[1, STEPS, CHANNELS], &inv_sd);
            let centred = g.node("Sub", &[&x, &m], vec![]);
            let z = g.node("Mul", &[&centred, &s], vec![]);
            let flat = g.node("Flatten", &[&z], vec![("axis", Attr::Int(1))]);
            let w = g.init_f32("hidden_w", &[HIDDEN, d], &w1);
            let b = g.init_f32("hidden_b", &[HIDDEN], &b1);
            let h = g.node("Gemm", &[&flat, &w, &b], vec![("transB", Attr::Int(1))]);
            g.node("Relu", &[&h], vec![])
        };
        let mut g = Graph::default();
        let h = hidden(&mut g);
        g.output(&h, Some(&[1, HIDDEN]));
        let features = features_of(&g.into_model("probe"), &train.inputs)?;
        let targets: Vec<Vec<f32>> = (0..train.inputs.len()).map(|i| vec![train.labels[[i, 0]]]).collect();
        let readout = fit_readout(&features, &targets, 1.0);
        let mut g = Graph::default();
        let h = hidden(&mut g);
        let beta = readout.gemm(&mut g, &h);
        g.output(&beta, Some(&[1, 1]));
        Ok(Trained { fp32: g.into_model("edgecert-xtask chassis"), calibration })
    }
}
