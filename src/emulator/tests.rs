use std::path::Path;

use super::*;
use crate::model::writer::{encode, Attr, Graph};
use crate::profile::{ChipProfile, FallbackPolicy};

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

fn rk3588(policy: FallbackPolicy) -> ChipProfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/rk3588.toml");
    let mut p = ChipProfile::load(&path).unwrap().profile;
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
    p.power = Some(crate::profile::Power { typical_w: Some(10.0), max_w: None });
    let e = estimate(&m, &p);
    let (slow, fast) = (e.avg_power_w(1.0).unwrap(), e.avg_power_w(100.0).unwrap());
    assert!((slow - 1.0).abs() < 0.01, "idle is 10 % of typical: {slow}");
    assert!(fast > slow);
}
