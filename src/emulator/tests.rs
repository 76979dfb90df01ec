//! The emulator's unit tests: placement, the cost model, conversion, host links, contexts and
//! heat on hand-built models and the bundled profiles.

use super::*;
use crate::model::writer::{encode, Attr, Graph};
use crate::profile::{bundled, ChipProfile, FallbackPolicy};

/// Conv → Relu → Abs → Conv → Relu: Abs is not in RKNN's list.
fn model_with_abs() -> ModelInventory {
    let mut g = Graph::default();
    let x = g.input("input", &[1, 4, 8, 8]);
    let mut a = x;
    for (i, op) in ["Conv", "Relu", "Abs", "Conv", "Relu"].iter().enumerate() {
        a = if *op == "Conv" {
            let w = g.init_f32("w", &[4, 4, 3, 3], &[0.1; 144]);
            g.node(
                "Conv",
                &[&a, &w],
                vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
            )
        } else {
            let _ = i;
            g.node(op, &[&a], vec![])
        };
    }
    g.output(&a, Some(&[1, 4, 8, 8]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.onnx");
    std::fs::write(&path, encode(&g.into_model("test"))).unwrap();
    ModelInventory::load(&path).unwrap()
}

/// A bundled profile, `profiles/<name>.toml`.
fn rk3588(policy: FallbackPolicy) -> ChipProfile {
    let mut p = bundled("rk3588");
    p.operators.fallback = policy;
    p
}

fn units(p: &Placement) -> Vec<Unit> {
    p.nodes.iter().map(|n| n.unit).collect()
}

#[test]
fn placement_follows_each_fallback_policy() {
    let m = model_with_abs();
    use Unit::*;
    let per_op = place(&m, &rk3588(FallbackPolicy::PerOp));
    assert_eq!(units(&per_op), vec![Npu, Npu, Cpu, Npu, Npu]);
    assert_eq!(per_op.boundaries, 2);
    assert!(per_op.nodes[2].reason.contains("`Abs` is not in the profile's operator list"));
    let single = place(&m, &rk3588(FallbackPolicy::SinglePartition));
    assert_eq!(units(&single), vec![Npu, Npu, Cpu, Cpu, Cpu]);
    assert_eq!(single.boundaries, 1);
    let strict = place(&m, &rk3588(FallbackPolicy::Strict));
    assert_eq!(units(&strict), vec![Npu, Npu, Rejected, Npu, Npu]);
}

#[test]
fn a_cpu_fallback_makes_the_model_slower() {
    let m = model_with_abs();
    let mut all_npu = rk3588(FallbackPolicy::PerOp);
    all_npu.operators.supported.push("Abs".into());
    let fast = estimate(&m, &all_npu).latency_ms.unwrap();
    let slow = estimate(&m, &rk3588(FallbackPolicy::PerOp)).latency_ms.unwrap();
    assert!(slow > fast, "{slow} vs {fast}");
}

#[test]
fn parameter_limits_push_a_node_off_the_npu() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.operators.limits.get_mut("Conv").unwrap().kernel = Some([1, 1]);
    let placement = place(&m, &p);
    assert_eq!(placement.nodes[0].unit, Unit::Cpu);
    assert!(placement.nodes[0].reason.contains("kernel 3 is outside"), "{}", placement.nodes[0].reason);
}

#[test]
fn missing_figures_give_no_latency_rather_than_a_guess() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.memory.dram_bandwidth_gbps = None;
    let e = estimate(&m, &p);
    assert!(e.latency_ms.is_none());
    assert!(e.latency_unknown.unwrap().contains("dram_bandwidth_gbps"));
}

#[test]
fn a_calibrated_overhead_can_stand_for_dram_time_and_says_so() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.memory.dram_bandwidth_gbps = None;
    p.memory.dram_in_overhead = Some(true);
    let e = estimate(&m, &p);
    assert!(e.latency_unknown.is_none(), "{:?}", e.latency_unknown);
    assert!(e.nodes.iter().all(|n| n.memory_ms == 0.0), "no DRAM time of its own");
    let with_dram = estimate(&m, &rk3588(FallbackPolicy::PerOp)).latency_ms.unwrap();
    assert!(e.latency_ms.unwrap() < with_dram, "transfers are no longer costed");
    let note = e.calibration.iter().find(|n| n.contains("memory.dram_in_overhead"));
    assert!(note.is_some_and(|n| n.contains("predicted fast")), "{:?}", e.calibration);
    // The latency verdict says so, and that the CPU's share (Abs) is not costed at all.
    let what = super::time_emulated(&e, 1).unwrap().what;
    assert!(what.contains("DRAM time inside the calibrated per-layer overhead"), "{what}");
    assert!(what.contains("the CPU nodes' DRAM time not costed"), "{what}");
}

#[test]
fn emulated_latency_samples_are_reproducible_and_scale_with_peak() {
    let m = model_with_abs();
    let p = rk3588(FallbackPolicy::PerOp);
    let e = estimate(&m, &p);
    assert_eq!(e.latency_samples(42), e.latency_samples(42));
    assert_eq!(e.latency_samples(42).unwrap().len(), EMULATED_RUNS);
    let mut slow = p.clone();
    slow.npu.as_mut().unwrap().peak_tops_int8 = Some(0.001);
    slow.operators.dtypes.push(crate::profile::DType::Fp32);
    assert!(estimate(&m, &slow).latency_ms.unwrap() > e.latency_ms.unwrap());
}

#[test]
fn a_working_set_larger_than_sram_goes_through_dram_and_is_slower() {
    let m = model_with_abs();
    let mut roomy = rk3588(FallbackPolicy::PerOp);
    roomy.npu.as_mut().unwrap().sram_bytes = Some(64 * 1024 * 1024);
    let mut tight = roomy.clone();
    tight.npu.as_mut().unwrap().sram_bytes = Some(1024);
    let (a, b) = (estimate(&m, &roomy), estimate(&m, &tight));
    assert_eq!((a.fits_on_chip, b.fits_on_chip), (Some(true), Some(false)));
    assert!(b.latency_ms.unwrap() > a.latency_ms.unwrap());
    assert!(b.energy_mj.unwrap() > a.energy_mj.unwrap(), "DRAM traffic costs energy");
}

#[test]
fn energy_and_power_follow_the_rate() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.power = Some(crate::profile::Power {
        typical_w: Some(10.0),
        max_w: None,
        tops_per_w_int8: None,
        idle_w: None,
    });
    let e = estimate(&m, &p);
    let (slow, fast) = (e.avg_power_w(1.0).unwrap(), e.avg_power_w(100.0).unwrap());
    assert!((slow - 1.0).abs() < 0.01, "idle is 10 % of typical: {slow}");
    assert!(fast > slow);
}

/// A card with no DRAM: weights beyond its on-chip memory cross the host link, at its rate.
#[test]
fn weights_that_do_not_fit_a_card_cross_its_host_link() {
    let m = model_with_abs();
    let mut card = rk3588(FallbackPolicy::PerOp);
    card.memory.dram_bandwidth_gbps = None;
    card.operators.supported.push("Abs".into());
    let npu = card.npu.as_mut().unwrap();
    npu.sram_bytes = Some(1);
    let unknown = estimate(&m, &card);
    assert!(unknown.latency_ms.is_none(), "no DRAM and no link: no prediction");
    assert!(unknown.latency_unknown.unwrap().contains("memory.dram_bandwidth_gbps"));

    card.memory.host_link_gbps = Some(0.5);
    let slow = estimate(&m, &card);
    assert_eq!(slow.fits_on_chip, Some(false));
    let conv = slow.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    let conv_info = m.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    let (weights, output) = (conv_info.weight_bytes as f64, conv_info.output_bytes.unwrap() as f64);
    // Nothing fits in 1 byte: every weight byte streams at 0.5 GB/s, and the output spills over
    // the link too (written to the host and read back).
    assert!((conv.memory_ms - (weights + 2.0 * output) / 0.5e9 * 1e3).abs() < 1e-12, "{}", conv.memory_ms);
    let relu = slow.nodes.iter().find(|n| n.op_type == "Relu").unwrap();
    assert_eq!(relu.memory_ms, 0.0, "an epilogue runs in its layer's buffers");

    // Room for the activations alive at every layer, not for the weights too: outputs stay on
    // chip, and only weights stream — those the memory left over does not cache.
    card.npu.as_mut().unwrap().sram_bytes = Some(m.peak_activation_bytes());
    let tiled = estimate(&m, &card);
    assert_eq!(tiled.fits_on_chip, Some(false));
    let conv = tiled.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    assert!(conv.memory_ms > 0.0 && conv.memory_ms <= weights / 0.5e9 * 1e3 + 1e-12, "{}", conv.memory_ms);

    // Enough on-chip memory for everything: nothing crosses the link.
    card.npu.as_mut().unwrap().sram_bytes = Some(1 << 20);
    let fast = estimate(&m, &card);
    assert!(fast.nodes.iter().all(|n| n.memory_ms == 0.0));
    assert!(fast.latency_ms.unwrap() <= slow.latency_ms.unwrap());
}

/// SRAM tiling on a DRAM-backed accelerator: a layer whose live activations fit on chip streams
/// only its weights; one whose do not spills its output to DRAM and reads it back.
#[test]
fn a_layer_whose_activations_fit_on_chip_moves_only_its_weights() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.operators.supported.push("Abs".into());
    let conv_info = m.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    let (weights, output) = (conv_info.weight_bytes as f64, conv_info.output_bytes.unwrap() as f64);
    let conv_ms =
        |p: &ChipProfile| estimate(&m, p).nodes.iter().find(|n| n.op_type == "Conv").unwrap().memory_ms;
    let at_34_gbps = |bytes: f64| bytes / 34e9 * 1e3;
    // No on-chip size: every layer goes through DRAM, as before tiling.
    assert!((conv_ms(&p) - at_34_gbps(weights + 2.0 * output)).abs() < 1e-12);
    p.npu.as_mut().unwrap().sram_bytes = Some(m.peak_activation_bytes());
    assert_eq!(estimate(&m, &p).fits_on_chip, Some(false), "the weights do not fit beside them");
    assert!((conv_ms(&p) - at_34_gbps(weights)).abs() < 1e-12, "{}", conv_ms(&p));
    // A layer whose output the CPU reads (Abs, once off the list) writes it to DRAM however
    // much room there is.
    let mut cpu_next = p.clone();
    cpu_next.operators.supported.retain(|op| op != "Abs");
    assert!((conv_ms(&cpu_next) - at_34_gbps(weights + 2.0 * output)).abs() < 1e-12, "leaves for the CPU");
    p.npu.as_mut().unwrap().sram_bytes = Some(1);
    assert!((conv_ms(&p) - at_34_gbps(weights + 2.0 * output)).abs() < 1e-12, "spills");
}

/// On-chip memory holds the accelerator's layers as the compiler builds them: the f32 graph
/// input and its uint8 copy (alive together, on the host, before the first layer) do not count.
#[test]
fn only_the_accelerators_layers_count_against_its_on_chip_memory() {
    let m = onnxruntime_style_qdq();
    let mut p = rk3588(FallbackPolicy::PerOp);
    // Room for the weights and the Conv's uint8 input and int8 output (16 + 16 bytes), not for
    // the whole model's peak (64 + 16).
    p.npu.as_mut().unwrap().sram_bytes = Some(m.weight_bytes + 40);
    assert_eq!(m.peak_activation_bytes(), 80);
    let e = estimate(&m, &p);
    assert_eq!(e.fits_on_chip, Some(true));
    assert!(e.nodes.iter().all(|n| n.memory_ms == 0.0));
    // A model with no accelerator layer says nothing about on-chip memory.
    p.operators.supported.clear();
    assert_eq!(estimate(&m, &p).fits_on_chip, None);
}

/// A dataflow chip that a model does not fit runs it in contexts: every frame, each context's
/// weights come back over the host link.
#[test]
fn a_model_larger_than_a_dataflow_chip_runs_in_contexts_over_its_host_link() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.operators.supported.push("Abs".into());
    p.memory = crate::profile::Memory {
        dram_bytes: None,
        dram_bandwidth_gbps: None,
        on_chip_only: Some(true),
        host_link_gbps: None,
        on_chip_gbps: None,
        dram_in_overhead: None,
    };
    p.npu.as_mut().unwrap().kind = Some("dataflow".into());
    // No size given: the chip is taken at its word, everything on chip.
    let whole = estimate(&m, &p);
    assert_eq!((whole.fits_on_chip, whole.contexts), (Some(true), None));
    assert!(whole.nodes.iter().all(|n| n.memory_ms == 0.0));
    // Room for the activations, not for the weights beside them: two contexts, which need the
    // host link.
    p.npu.as_mut().unwrap().sram_bytes = Some(m.peak_activation_bytes());
    assert!(m.weight_bytes < m.peak_activation_bytes(), "so two contexts hold it");
    let stuck = estimate(&m, &p);
    assert_eq!((stuck.fits_on_chip, stuck.contexts), (Some(false), Some(2)));
    assert!(stuck.latency_unknown.unwrap().contains("memory.host_link_gbps"));
    p.memory.host_link_gbps = Some(4.0);
    let split = estimate(&m, &p);
    let conv = split.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    let weights = m.nodes.iter().find(|n| n.op_type == "Conv").unwrap().weight_bytes as f64;
    assert!((conv.memory_ms - weights / 4e9 * 1e3).abs() < 1e-12, "all its weights, every frame");
    assert!(split.latency_ms.unwrap() > whole.latency_ms.unwrap());
}

/// Offline throughput: cores / latency (capped by DRAM) on a chip that runs one inference per
/// core at a time; on a dataflow chip, whose layers are pipeline stages in balance, 1 / the
/// model's work at the whole chip's rate.
#[test]
fn throughput_is_serial_or_pipelined_by_the_chip_kind() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.operators.supported.push("Abs".into());
    p.npu.as_mut().unwrap().cores = Some(1);
    let serial = estimate(&m, &p);
    assert_eq!(serial.scenario, Scenario::Serial);
    let latency = serial.latency_ms.unwrap();
    assert!((serial.throughput_fps.unwrap() - 1000.0 / latency).abs() < 1e-9);

    p.npu.as_mut().unwrap().kind = Some("dataflow".into());
    let piped = estimate(&m, &p);
    assert_eq!(piped.scenario, Scenario::Pipelined);
    let period: f64 = piped.nodes.iter().map(|n| n.compute_ms.max(n.memory_ms)).sum();
    assert!((piped.throughput_fps.unwrap() - 1000.0 / period).abs() < 1e-9);
    assert_eq!(piped.latency_ms, serial.latency_ms, "latency is still the sum of the stages");
    assert!(
        piped.throughput_fps.unwrap() > 2.0 * serial.throughput_fps.unwrap(),
        "set-up does not recur per frame"
    );

    // Three cores run three streams, until DRAM is the bound.
    p.npu.as_mut().unwrap().kind = None;
    p.npu.as_mut().unwrap().cores = Some(3);
    let three = estimate(&m, &p);
    assert!((three.throughput_fps.unwrap() - 3000.0 / three.latency_ms.unwrap()).abs() < 1e-9);
    p.memory.dram_bandwidth_gbps = Some(0.001);
    let starved = estimate(&m, &p);
    let memory_ms: f64 = starved.nodes.iter().map(|n| n.memory_ms).sum();
    assert!((starved.throughput_fps.unwrap() - 1000.0 / memory_ms).abs() < 1e-9, "DRAM-bound");

    p.memory.dram_bandwidth_gbps = None;
    assert_eq!(estimate(&m, &p).throughput_fps, None, "no latency, no throughput");
}

/// Where the profile gives `memory.on_chip_gbps`, an accelerator layer's output streams through
/// on-chip memory at that rate (written, then read by the next layer): the layer takes the
/// larger of its compute and that, and a dataflow chip's period is the larger of the two totals,
/// its compute and its on-chip memory being allocated apart.
#[test]
fn on_chip_streaming_bounds_a_layer_and_a_dataflow_period() {
    let m = model_with_abs();
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.operators.supported.push("Abs".into());
    p.npu.as_mut().unwrap().kind = Some("dataflow".into());
    p.memory.on_chip_only = Some(true);
    let unlimited = estimate(&m, &p);
    assert!(unlimited.nodes.iter().all(|n| n.on_chip_ms == 0.0), "without the rate, never the bottleneck");
    let compute_ms: f64 = unlimited.nodes.iter().map(|n| n.compute_ms.max(n.memory_ms)).sum();
    let streamed = |n: &NodeCost| match n.fused_into {
        Some(_) => 0.0,
        None => m.nodes.iter().find(|x| x.name == n.node).unwrap().output_bytes.unwrap() as f64 * 2.0,
    };
    let bytes: f64 = unlimited.nodes.iter().map(streamed).sum();
    assert!(bytes > 0.0);

    // A slow rate binds: every layer's output twice, at 1 MB/s.
    p.memory.on_chip_gbps = Some(1e-3);
    let bound = estimate(&m, &p);
    for n in &bound.nodes {
        assert!((n.on_chip_ms - streamed(n) / 1e6 * 1e3).abs() < 1e-9, "{}: {}", n.node, n.on_chip_ms);
        assert!((n.time_ms - (n.overhead_ms + n.compute_ms.max(n.on_chip_ms))).abs() < 1e-12, "{}", n.node);
    }
    let on_chip_ms: f64 = bound.nodes.iter().map(|n| n.on_chip_ms).sum();
    assert!(on_chip_ms > compute_ms);
    assert!((bound.throughput_fps.unwrap() - 1000.0 / on_chip_ms).abs() < 1e-9, "memory-bound");
    assert!(bound.latency_ms.unwrap() > unlimited.latency_ms.unwrap());

    // A rate at which on-chip memory needs half the compute's time: compute is the period, even
    // though some stages stream longer than they compute (their memory is allocated elsewhere).
    p.memory.on_chip_gbps = Some(bytes / (compute_ms / 2.0 * 1e-3) / 1e9);
    let fast = estimate(&m, &p);
    assert!(fast.nodes.iter().any(|n| n.on_chip_ms > n.compute_ms), "the case must be tested");
    assert!((fast.throughput_fps.unwrap() - 1000.0 / compute_ms).abs() < 1e-6, "{:?}", fast.throughput_fps);

    // A view moves nothing: an Identity between two layers streams no bytes of its own.
    p.operators.supported.push("Identity".into());
    let viewed = estimate(&chain(&["Conv", "Identity", "Conv"]), &p);
    let identity = viewed.nodes.iter().find(|n| n.op_type == "Identity").unwrap();
    assert_eq!((identity.unit, identity.on_chip_ms), (Unit::Npu, 0.0));
    assert!(viewed.nodes.iter().filter(|n| n.op_type == "Conv").all(|n| n.on_chip_ms > 0.0));

    // An output that spills (an on-chip size below a layer's live activations) is charged to
    // DRAM, once: it does not stream on chip as well.
    p.npu.as_mut().unwrap().sram_bytes = Some(1);
    let spilled = estimate(&m, &p);
    let layers = spilled.nodes.iter().filter(|n| n.unit == Unit::Npu && n.fused_into.is_none());
    for n in layers {
        assert!(n.on_chip_ms == 0.0 && n.memory_ms > 0.0, "{}: {} / {}", n.node, n.on_chip_ms, n.memory_ms);
    }
}

/// A chain of `ops` on a 1x4x8x8 input (3x3 convolutions); `"SiLU"` is Sigmoid and Mul on the
/// same input, `"Residual"` adds the chain's value to the input of the previous op.
fn chain(ops: &[&str]) -> ModelInventory {
    let mut g = Graph::default();
    let x = g.input("input", &[1, 4, 8, 8]);
    let (mut a, mut before) = (x.clone(), x);
    for op in ops {
        let next = match *op {
            "Conv" => {
                let w = g.init_f32("w", &[4, 4, 3, 3], &[0.1; 144]);
                let attrs =
                    vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))];
                g.node("Conv", &[&a, &w], attrs)
            }
            "SiLU" => {
                let s = g.node("Sigmoid", &[&a], vec![]);
                g.node("Mul", &[&a, &s], vec![])
            }
            "Residual" => g.node("Add", &[&a, &before], vec![]),
            "Clip" => {
                let (lo, hi) = (g.init_f32("lo", &[], &[0.0]), g.init_f32("hi", &[], &[6.0]));
                g.node("Clip", &[&a, &lo, &hi], vec![])
            }
            other => g.node(other, &[&a], vec![]),
        };
        before = std::mem::replace(&mut a, next);
    }
    g.output(&a, Some(&[1, 4, 8, 8]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.onnx");
    std::fs::write(&path, encode(&g.into_model("test"))).unwrap();
    ModelInventory::load(&path).unwrap()
}

fn fused(e: &Estimate) -> Vec<Option<&str>> {
    e.nodes.iter().map(|n| n.fused_into.as_deref()).collect()
}

#[test]
fn activations_fuse_into_their_layer_so_the_export_does_not_change_the_prediction() {
    let p = rk3588(FallbackPolicy::PerOp);
    let bare = estimate(&chain(&["Conv", "Conv"]), &p);
    for activations in [["Conv", "Clip", "Conv", "Relu"], ["Conv", "SiLU", "Conv", "Clip"]] {
        let e = estimate(&chain(&activations), &p);
        assert_eq!(e.latency_ms, bare.latency_ms, "{activations:?}");
        assert!(e.nodes.iter().filter(|n| n.fused_into.is_some()).all(|n| n.time_ms == 0.0));
    }
    let silu = estimate(&chain(&["Conv", "SiLU"]), &p);
    let head = silu.nodes[0].node.as_str();
    assert_eq!(fused(&silu), vec![None, Some(head), Some(head)], "Sigmoid and Mul both fuse into the Conv");
}

#[test]
fn a_residual_add_of_two_layers_stays_a_layer_and_an_activation_after_it_fuses_into_it() {
    let p = rk3588(FallbackPolicy::PerOp);
    let e = estimate(&chain(&["Conv", "Conv", "Residual", "Relu"]), &p);
    let add = e.nodes[2].node.as_str();
    assert_eq!(fused(&e), vec![None, None, None, Some(add)]);
    assert!(e.nodes[2].time_ms > 0.0, "the Add is a layer of its own");
    // Off the accelerator nothing fuses: a CPU-placed activation costs its own time.
    let mut no_relu = p.clone();
    no_relu.operators.supported.retain(|o| o != "Relu");
    let e = estimate(&chain(&["Conv", "Relu"]), &no_relu);
    assert_eq!(fused(&e), vec![None, None]);
    assert!(e.nodes[1].time_ms > 0.0);
}

#[test]
fn energy_per_mac_follows_the_chips_published_efficiency() {
    let m = chain(&["Conv", "Conv"]);
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.npu.as_mut().unwrap().sram_bytes = Some(64 << 20);
    p.operators.dtypes.push(crate::profile::DType::Fp32);
    p.quantization.dtypes.push(crate::profile::DType::Fp32);
    let energy = |tops_per_w: Option<f64>| {
        let mut p = p.clone();
        p.power = Some(crate::profile::Power {
            typical_w: Some(5.0),
            max_w: None,
            tops_per_w_int8: tops_per_w,
            idle_w: None,
        });
        estimate(&m, &p).energy_mj.unwrap()
    };
    let (efficient, default, wasteful) = (energy(Some(10.4)), energy(None), energy(Some(0.33)));
    assert!(efficient < default && default < wasteful, "{efficient} {default} {wasteful}");
    assert!((wasteful / efficient - 10.4 / 0.33).abs() < 1e-6, "on chip, energy is MACs times pJ per MAC");
}

/// onnxruntime's `quantize_static` export of Conv → Relu: uint8 activations, int8 per-tensor
/// weights, an int32 bias behind its own DequantizeLinear.
fn onnxruntime_style_qdq() -> ModelInventory {
    use crate::model::writer::raw_tensor;
    use tract_onnx::pb::tensor_proto::DataType;
    let mut g = Graph::default();
    let x = g.input("input", &[1, 4, 2, 2]);
    let constant = |g: &mut Graph, name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>| {
        g.initializers.push(raw_tensor(name, dims, dt, raw));
        name.to_string()
    };
    let scale = g.init_f32("scale", &[], &[0.02]);
    let zp_u8 = constant(&mut g, "zp_u8", &[], DataType::Uint8, vec![128]);
    let zp_i8 = constant(&mut g, "zp_i8", &[], DataType::Int8, vec![0]);
    let w = constant(&mut g, "w_i8", &[4, 4, 3, 3], DataType::Int8, vec![3; 144]);
    let b = constant(
        &mut g,
        "b_i32",
        &[4],
        DataType::Int32,
        [7i32; 4].iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    let q = g.node("QuantizeLinear", &[&x, &scale, &zp_u8], vec![]);
    let dq = g.node("DequantizeLinear", &[&q, &scale, &zp_u8], vec![]);
    let w_dq = g.node("DequantizeLinear", &[&w, &scale, &zp_i8], vec![]);
    let b_dq = g.node("DequantizeLinear", &[&b, &scale], vec![]);
    let attrs = vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))];
    let conv = g.node("Conv", &[&dq, &w_dq, &b_dq], attrs);
    let relu = g.node("Relu", &[&conv], vec![]);
    g.output(&relu, Some(&[1, 4, 2, 2]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ort_qdq.onnx");
    std::fs::write(&path, encode(&g.into_model("onnxruntime.quantization"))).unwrap();
    ModelInventory::load(&path).unwrap()
}

#[test]
fn uint8_activations_run_as_int8_and_constant_dequantization_is_folded() {
    use Unit::*;
    let m = onnxruntime_style_qdq();
    let e = estimate(&m, &rk3588(FallbackPolicy::PerOp));
    let placed: Vec<(&str, Unit)> = e.placement.nodes.iter().map(|n| (n.op_type.as_str(), n.unit)).collect();
    assert_eq!(
        placed,
        vec![
            ("QuantizeLinear", Absorbed),
            ("DequantizeLinear", Absorbed),
            ("DequantizeLinear", Absorbed),
            ("DequantizeLinear", Absorbed),
            ("Conv", Npu),
            ("Relu", Npu),
        ],
        "{:?}",
        e.placement.nodes
    );
    assert!(e.placement.nodes[3].reason.contains("constant"), "the int32 bias is folded at conversion");
    assert_eq!(e.placement.boundaries, 0);
    // A chip taking neither int8 nor uint8 runs the uint8 kernels on its CPU.
    let mut fp16_only = rk3588(FallbackPolicy::PerOp);
    fp16_only.operators.dtypes = vec![crate::profile::DType::Fp16];
    fp16_only.quantization.dtypes = vec![crate::profile::DType::Fp16];
    let e = estimate(&m, &fp16_only);
    assert_eq!(e.placement.nodes[4].unit, Cpu, "{:?}", e.placement.nodes[4]);
}

#[test]
fn a_qdq_layer_streams_the_weights_its_folded_dequantization_feeds_it() {
    let m = onnxruntime_style_qdq();
    // w_i8 (144 bytes), b_i32 (16) and their two f32 scales and int8 zero point (9) reach the
    // Conv through DequantizeLinear nodes, which read nothing themselves.
    let run_time = m.run_time_weight_bytes();
    assert_eq!(run_time, vec![5, 5, 0, 0, 144 + 16 + 9, 0]);
    // The dequantized weights are not activations (counted, the Conv's inputs would make the
    // peak 16 + 144 + 16 + 16 bytes): the peak is the f32 graph input (64) and its uint8 copy.
    assert_eq!(m.peak_activation_bytes(), 64 + 16);
    let profile = rk3588(FallbackPolicy::PerOp);
    let e = estimate(&m, &profile);
    let conv = &e.nodes[4];
    let bytes = conv.memory_ms * 1e-3 * profile.memory.dram_bandwidth_gbps.unwrap() * 1e9;
    assert!(
        (bytes - (169.0 + 2.0 * 16.0)).abs() < 1e-6,
        "weights once, the int8 output written and read: {bytes}"
    );
}

#[test]
fn a_toolchain_that_quantizes_float_models_is_predicted_on_its_int8_build() {
    use crate::profile::FloatGraphs;
    let float = chain(&["Conv", "Relu", "Conv", "Relu"]);
    let mut int8_only = rk3588(FallbackPolicy::Strict);
    int8_only.operators.dtypes = vec![crate::profile::DType::Int8];
    int8_only.quantization.dtypes = vec![crate::profile::DType::Int8];
    let as_float = estimate(&float, &int8_only);
    assert!(
        as_float.latency_unknown.as_deref().unwrap_or("").contains("fp32"),
        "{:?}",
        as_float.latency_unknown
    );
    assert_eq!(as_float.conversion, None);

    int8_only.quantization.float_graphs = FloatGraphs::Quantized;
    let quantized = estimate(&float, &int8_only);
    assert!(quantized.conversion.as_deref().unwrap().contains("int8 build"), "{:?}", quantized.conversion);
    assert!(quantized.nodes.iter().all(|n| n.unit == Unit::Npu), "{:?}", quantized.placement.nodes);
    assert_eq!(quantized.weights_bytes, float.weight_bytes / 4, "int8 weights are a quarter of fp32's");
    // The graph input stays f32 (1024 bytes); the first int8 output beside it is 256 bytes.
    assert_eq!((quantized.peak_activation_bytes, float.peak_activation_bytes()), (1024 + 256, 1024 + 1024));

    int8_only.quantization.float_graphs = FloatGraphs::Refused;
    int8_only.operators.fallback = FallbackPolicy::SinglePartition;
    let refused = estimate(&float, &int8_only);
    assert!(refused.placement.nodes.iter().all(|n| n.unit == Unit::Rejected && !n.list_partial));
    let why = refused.latency_unknown.unwrap();
    assert!(why.contains("compiles only quantized models"), "{why}");
    // An int8 model on the same profile is unaffected.
    assert!(estimate(&onnxruntime_style_qdq(), &int8_only).latency_ms.is_some());
}

#[test]
fn a_small_layer_leaves_gpu_units_idle_in_its_last_wave() {
    // One 1x4x8x8 convolution: a 64 × 4 GEMM, one 64 × 64 block, so one unit of eight works.
    let m = chain(&["Conv"]);
    let mut gpu = rk3588(FallbackPolicy::PerOp);
    let npu = gpu.npu.as_mut().unwrap();
    npu.kind = Some("gpu".into());
    npu.compute_units = Some(1);
    let whole = estimate(&m, &gpu).nodes[0].compute_ms;
    gpu.npu.as_mut().unwrap().compute_units = Some(8);
    let eighth = estimate(&m, &gpu).nodes[0].compute_ms;
    assert!((eighth / whole - 8.0).abs() < 1e-9, "{eighth} vs {whole}");
    // An NPU-class profile does not model blocks at all.
    gpu.npu.as_mut().unwrap().kind = Some("npu".into());
    assert!((estimate(&m, &gpu).nodes[0].compute_ms - whole).abs() < 1e-12);
}

#[test]
fn an_estimate_names_its_calibrated_and_defaulted_figures() {
    let m = chain(&["Conv"]);
    let calibrated = estimate(&m, &rk3588(FallbackPolicy::PerOp)).calibration;
    assert_eq!(calibrated.len(), 1, "{calibrated:?}");
    assert!(calibrated[0].starts_with("npu.layer_overhead_us = 19.9: calibrated"), "{calibrated:?}");
    assert!(calibrated[0].contains("2.22 ms"), "the point it was calibrated on: {calibrated:?}");
    let mut uncalibrated = rk3588(FallbackPolicy::PerOp);
    uncalibrated.npu.as_mut().unwrap().layer_overhead_us = None;
    let defaulted = estimate(&m, &uncalibrated).calibration;
    assert!(
        defaulted[0].contains("default") && defaulted[0].contains("not calibrated for this chip"),
        "{defaulted:?}"
    );
}

#[test]
fn a_cards_inputs_and_outputs_cross_its_host_link_beside_the_latency() {
    // A QDQ model crosses as 8-bit tensors (the runtime quantizes on the host): 16 elements in,
    // 16 out, at the Coral's 0.5 GB/s.
    let coral = bundled("coral-usb");
    let e = estimate(&onnxruntime_style_qdq(), &coral);
    let t = e.host_transfer.expect("a card has a host transfer");
    assert_eq!((t.input_bytes, t.output_bytes), (16, 16));
    assert!((t.ms - 32.0 / 0.5e9 * 1e3).abs() < 1e-15, "{}", t.ms);
    // The latency is model execution only: the transfer is not in it.
    let on_card: f64 = e.nodes.iter().map(|n| n.time_ms).sum();
    assert!((e.latency_ms.unwrap() - on_card - INFERENCE_OVERHEAD_S * 1e3).abs() < 1e-12);
    // A float model on a card that takes it crosses at its own width: 4 bytes per element.
    let mut card = rk3588(FallbackPolicy::PerOp);
    card.memory.dram_bandwidth_gbps = None;
    card.memory.host_link_gbps = Some(0.5);
    card.operators.supported.push("Abs".into());
    let float = estimate(&model_with_abs(), &card).host_transfer.unwrap();
    assert_eq!((float.input_bytes, float.output_bytes), (4 * 256, 4 * 256));
    // A chip with DRAM of its own has none, nor does a model with no latency.
    assert!(estimate(&onnxruntime_style_qdq(), &rk3588(FallbackPolicy::PerOp)).host_transfer.is_none());
    card.operators.supported.retain(|op| op != "Abs");
    card.operators.fallback = FallbackPolicy::Strict;
    let refused = estimate(&model_with_abs(), &card);
    assert!(refused.latency_ms.is_none() && refused.host_transfer.is_none());
}

#[test]
fn a_cards_offline_throughput_waits_for_its_transfers_and_its_link() {
    let m = onnxruntime_style_qdq();
    // The Coral's runtime is blocking: one stream's frame is execution plus its transfers.
    let mut coral = bundled("coral-usb");
    coral.memory.host_link_gbps = Some(1e-6);
    let serial = estimate(&m, &coral);
    let t = serial.host_transfer.unwrap();
    let expected = 1e3 / (serial.latency_ms.unwrap() + t.ms);
    assert!(
        (serial.throughput_fps.unwrap() - expected).abs() < 1e-9,
        "{:?} vs {expected}",
        serial.throughput_fps
    );
    // A pipelined card overlaps them with its stages, but its link carries no more frames than
    // its rate allows, in the busier direction: 16 bytes in (and nothing streamed), 16 out.
    let mut hailo = bundled("hailo8");
    let free = estimate(&m, &hailo).throughput_fps.unwrap();
    hailo.memory.host_link_gbps = Some(1e-6);
    let piped = estimate(&m, &hailo);
    let link_fps = 1e3 / (16.0 / 1e3 * 1e3);
    assert!(link_fps < free, "the slow link must bind");
    assert!((piped.throughput_fps.unwrap() - link_fps).abs() < 1e-9, "{:?}", piped.throughput_fps);
}

mod hostile_figures {
    use proptest::prelude::*;

    use super::*;

    /// A figure anywhere validation lets through: from its floor to 1e6, log-uniform.
    fn figure() -> impl Strategy<Value = f64> {
        let floor = crate::profile::SMALLEST_FIGURE;
        (floor.log10()..6.0).prop_map(move |e| 10f64.powf(e).max(floor))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever rates a valid profile gives, a latency is finite and positive or absent with
        /// its reason, and so are the throughput and energy: never NaN, never infinite.
        #[test]
        fn any_valid_rates_give_finite_figures(
            tops in figure(), dram in figure(), link in figure(), on_chip in figure(), overhead in figure(),
            dataflow in any::<bool>(), on_chip_only in any::<bool>(),
        ) {
            let m = model_with_abs();
            let mut p = rk3588(FallbackPolicy::PerOp);
            p.operators.supported.push("Abs".into());
            let npu = p.npu.as_mut().unwrap();
            npu.peak_tops_int8 = Some(tops);
            npu.peak_tflops_fp16 = None;
            npu.layer_overhead_us = Some(overhead);
            npu.kind = dataflow.then(|| "dataflow".to_string());
            p.memory.dram_bandwidth_gbps = (!on_chip_only).then_some(dram);
            p.memory.on_chip_only = Some(on_chip_only);
            p.memory.host_link_gbps = Some(link);
            p.memory.on_chip_gbps = Some(on_chip);
            let e = estimate(&m, &p);
            match e.latency_ms {
                Some(ms) => {
                    prop_assert!(ms.is_finite() && ms > 0.0, "latency {ms}");
                    let fps = e.throughput_fps.unwrap();
                    prop_assert!(fps.is_finite() && fps > 0.0, "throughput {fps}");
                    prop_assert!(e.energy_mj.unwrap().is_finite());
                }
                None => prop_assert!(e.latency_unknown.is_some()),
            }
        }
    }
}

#[test]
fn the_idle_draw_is_the_boards_measured_one_else_a_tenth_of_the_budget() {
    let mut p = rk3588(FallbackPolicy::PerOp);
    p.power = Some(crate::profile::Power {
        typical_w: None,
        max_w: Some(9.0),
        tops_per_w_int8: None,
        idle_w: None,
    });
    assert_eq!(crate::emulator::idle_w(&p), Some(0.9));
    assert_eq!(crate::emulator::idle_basis(&p), "idle, assumed 10 % of the budget");
    p.power.as_mut().unwrap().idle_w = Some(1.5);
    assert_eq!(crate::emulator::idle_w(&p), Some(1.5));
    assert_eq!(crate::emulator::idle_basis(&p), "idle, measured (power.idle_w)");
}

/// An emulated latency is held across the chip's own error where its profile gives one (the
/// QCS6490's, from its scored corpus rows; a board over it inherits it), else across the
/// cross-chip figure, and its source says which.
#[test]
fn emulated_latency_carries_the_chip_s_own_error_or_the_cross_chip_one_and_says_which() {
    let m = model_with_abs();
    let error_on = |chip: &str| {
        let e = estimate(&m, &bundled(chip));
        super::time_emulated(&e, 1).unwrap().systematic_error.unwrap()
    };
    let own = error_on("qcs6490");
    assert_eq!(own.relative, bundled("qcs6490").fidelity.unwrap().latency_error);
    assert!(own.relative > HELD_OUT_ERROR, "{own:?}");
    assert!(own.source.starts_with("the emulator's latency error on this chip, over 13 scored rows of the measurement corpus (fidelity.latency_error; cargo xtask fidelity over fidelity/measurements.csv: the 90th percentile"), "{}", own.source);
    assert_eq!(error_on("dragon-q6a-8gb"), own);
    let cross = error_on("ascend310b");
    assert_eq!(cross.relative, HELD_OUT_ERROR);
    assert!(
        cross.source.contains("across chips")
            && cross.source.contains("profile `ascend310b` gives no latency error of its own"),
        "{}",
        cross.source
    );
}
