//! Checks decided from the files themselves and the placement: size, operators, memory.

use super::{CheckKind, Verdict};
use crate::emulator::{Placement, Unit};
use crate::model::ModelInventory;
use crate::profile::ChipProfile;
use crate::vocab::{Basis, Outcome};

/// The compressed artifact must be at most `limit_bytes`.
pub fn size_check(model: &ModelInventory, limit_bytes: u64) -> Verdict {
    let size = model.file_size_bytes;
    // With external data the limit applies to every file the model needs: say so.
    let what = match model.files.len() {
        0 | 1 => format!("{size} bytes"),
        n => format!("{size} bytes (model and {} external-data file(s))", n - 1),
    };
    let (outcome, reason) = if size <= limit_bytes {
        (Outcome::Pass, format!("{what} is within the {limit_bytes}-byte limit"))
    } else {
        (Outcome::Fail, format!("{what} exceeds the {limit_bytes}-byte limit"))
    };
    Verdict::new(CheckKind::Size, outcome, "bytes", Basis::Static, reason)
        .with_values(size as f64, Some(limit_bytes as f64))
}

/// Every node must be runnable on the chip under its fallback policy, and by the runtime that
/// replays it. The inventory names the ops outside tract's register; they decide only when tract
/// replays the model (`replay_engine` `None` or a tract engine). Another runtime (onnxruntime,
/// a device's, a runtime command) is judged by its own replay: the gaps stay findings.
pub fn operator_check(model: &ModelInventory, placement: &Placement, replay_engine: Option<&str>) -> Verdict {
    let total = placement.nodes.len();
    let off_npu: Vec<_> = placement.nodes.iter().filter(|n| n.unsupported).collect();
    let rejected: Vec<_> = off_npu.iter().filter(|n| n.unit == Unit::Rejected).collect();
    let mut findings: Vec<String> =
        off_npu.iter().map(|n| format!("{} ({}): {}", n.node, n.op_type, n.reason)).collect();
    let gaps: Vec<_> = model.findings.iter().filter(|f| !f.op_type.is_empty()).collect();
    let replayed_elsewhere = replay_engine.filter(|e| !e.starts_with("tract"));
    findings.extend(gaps.iter().map(|f| match replayed_elsewhere {
        None => format!("{}: {}", f.node, f.message),
        Some(engine) => format!(
            "{}: `{}` is outside tract's register; {engine} replays this model, and its replay decides whether it runs",
            f.node, f.op_type
        ),
    }));
    let engine_gaps = if replayed_elsewhere.is_some() { 0 } else { gaps.len() };
    let policy = format!("{:?}", placement.policy).to_lowercase();
    let (outcome, reason) = if engine_gaps > 0 {
        (Outcome::Fail, format!("{engine_gaps} node(s) use operators no available runtime implements"))
    } else if !rejected.is_empty() && rejected.iter().all(|n| n.list_partial) {
        (
            Outcome::Inconclusive,
            format!("{} node(s) are absent from the profile's partial operator list under the strict policy: the vendor list must be read to decide", rejected.len()),
        )
    } else if let Some(first_definite) = rejected.iter().find(|n| !n.list_partial) {
        (
            Outcome::Fail,
            format!(
                "{} node(s) are rejected, so the toolchain would refuse the model; the first: {} ({})",
                rejected.len(),
                first_definite.node,
                first_definite.reason
            ),
        )
    } else if off_npu.is_empty() {
        (Outcome::Pass, format!("all {total} nodes run on the accelerator or are folded by the toolchain"))
    } else {
        (
            Outcome::Pass,
            format!(
                "{} of {total} nodes fall back to the CPU under the {policy} policy; see the placement table",
                off_npu.len()
            ),
        )
    };
    let mut v =
        Verdict::new(CheckKind::Operators, outcome, "nodes off the accelerator", Basis::Static, reason)
            .with_values(
                off_npu.len() as f64,
                (placement.policy == crate::profile::FallbackPolicy::Strict).then_some(0.0),
            );
    // Undecided only where the profile's operator list is partial: reading the vendor's full
    // list (and saying so, `operators.complete`) decides it.
    if outcome == Outcome::Inconclusive {
        v.profile_gap = Some("operators.supported".into());
    }
    v.findings = findings;
    v
}

/// Why the memory check has no DRAM size to hold `need` bytes against, in the chip's own terms
/// (a bare chip's DRAM is its board's; a card has none of its own), and the field it lacks.
fn no_dram_size(profile: &ChipProfile, need: u64) -> (&'static str, String) {
    let (chip, memory) = (&profile.chip.name, &profile.memory);
    if memory.is_on_chip_only() {
        ("npu.sram_bytes", format!(
            "`{chip}` has no DRAM and keeps every tensor on chip, but the profile gives no on-chip size to hold the model's {need} bytes against (npu.sram_bytes)"
        ))
    } else if memory.card_link_gbps().is_some() {
        ("memory.dram_bytes", format!(
            "`{chip}` is a card with no DRAM of its own: what its on-chip memory does not hold stays in its host's, which the profile does not describe (memory.dram_bytes); the model needs {need} bytes"
        ))
    } else {
        (
            "memory.dram_bytes",
            format!("the profile gives no DRAM size (memory.dram_bytes); the model needs {need} bytes"),
        )
    }
}

/// A chip without DRAM that gives its on-chip size holds the model there, counted as the
/// emulator counts it: PASS when it fits; beyond it the model runs in contexts reloaded from the
/// host every frame, whose memory the profile does not describe.
fn on_chip_memory(model: &ModelInventory, profile: &ChipProfile) -> Option<Verdict> {
    let sram = profile.npu.as_ref()?.sram_bytes.filter(|_| profile.memory.is_on_chip_only())?;
    let need = crate::emulator::on_chip_working_set(model, profile)?;
    let held = format!("the compiled weights and the activations of its busiest layer, {need} bytes,");
    let (outcome, reason) = if need <= sram {
        (Outcome::Pass, format!("{held} fit {sram} bytes of on-chip memory (the chip has no DRAM)"))
    } else {
        (
            Outcome::Inconclusive,
            format!(
                "{held} exceed {sram} bytes of on-chip memory: the model runs in {} contexts reloaded from the host every frame, whose memory the profile does not describe",
                need.div_ceil(sram)
            ),
        )
    };
    Some(
        Verdict::new(CheckKind::Memory, outcome, "bytes", Basis::Static, reason)
            .with_values(need as f64, Some(sram as f64)),
    )
}

/// Weights plus peak live activations must fit the chip's DRAM (on a chip without DRAM, its
/// on-chip memory).
pub fn memory_check(model: &ModelInventory, profile: &ChipProfile) -> Verdict {
    let verdict = counted_memory_check(model, profile);
    match model.unknown_activation_at() {
        Some(node) if verdict.verdict != Outcome::Fail => unknown_activations(verdict, node),
        _ => verdict,
    }
}

/// A memory figure that misses tensors of unknown size is a lower bound: it can show a model too
/// large (FAIL stands), never that it fits.
fn unknown_activations(counted: Verdict, node: &crate::model::NodeInfo) -> Verdict {
    let reason = format!(
        "the size of the tensors node `{}` ({}) writes could not be inferred, so the peak activation figure counts only the others and cannot show the model fits; counted: {}",
        node.name, node.op_type, counted.reason
    );
    let mut v = Verdict::inconclusive(CheckKind::Memory, "bytes", Basis::Static, reason);
    v.measured = counted.measured;
    v.limit = counted.limit;
    v
}

fn counted_memory_check(model: &ModelInventory, profile: &ChipProfile) -> Verdict {
    if let Some(verdict) = on_chip_memory(model, profile) {
        return verdict;
    }
    let need = model.weight_bytes + model.peak_activation_bytes();
    let Some(have) = profile.memory.dram_bytes else {
        let (field, why) = no_dram_size(profile, need);
        return Verdict::lacking(CheckKind::Memory, "bytes", Basis::Static, field, why)
            .with_values(need as f64, None);
    };
    let (outcome, reason) = if need <= have {
        (
            Outcome::Pass,
            format!(
                "weights {} + peak activations {} bytes fit {have} bytes of DRAM",
                model.weight_bytes,
                need - model.weight_bytes
            ),
        )
    } else {
        (
            Outcome::Fail,
            format!(
                "weights {} + peak activations {} bytes exceed {have} bytes of DRAM",
                model.weight_bytes,
                need - model.weight_bytes
            ),
        )
    };
    Verdict::new(CheckKind::Memory, outcome, "bytes", Basis::Static, reason)
        .with_values(need as f64, Some(have as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::bundled;

    /// Tensors of unknown size leave the memory figure a lower bound: it cannot PASS, and it names
    /// the node whose output shape stopped inference; a lower bound over the limit still FAILs.
    #[test]
    fn memory_with_tensors_of_unknown_size_cannot_pass_and_names_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = crate::model::tests::small_cnn();
        m.opset_import
            .push(tract_onnx::pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 });
        let relu = &mut m.graph.as_mut().unwrap().node[1];
        relu.op_type = "Inverse".into();
        relu.domain = "com.microsoft".into();
        let path = dir.path().join("unknown.onnx");
        std::fs::write(&path, crate::model::writer::encode(&m)).unwrap();
        let model = ModelInventory::load(&path).unwrap();
        let v = memory_check(&model, &bundled("rk3588"));
        assert_eq!(v.verdict, Outcome::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("(Inverse) writes could not be inferred"), "{}", v.reason);
        assert!(v.measured.is_some_and(|m| m > 0.0), "the counted lower bound is kept");
        let mut tiny = bundled("rk3588");
        tiny.memory.dram_bytes = Some(1000);
        assert_eq!(memory_check(&model, &tiny).verdict, Outcome::Fail);
    }

    /// A chip without DRAM is held to its on-chip memory where the profile gives its size, as
    /// the emulator counts it, and otherwise says in its own terms why memory is undecided: a
    /// dataflow chip lacks its on-chip size, a card its host's memory.
    #[test]
    fn a_chip_without_dram_is_held_to_its_on_chip_memory() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/shapes/shapes_int8.onnx");
        let model = ModelInventory::load(&path).unwrap();
        let mut hailo = bundled("hailo8");
        let undecided = memory_check(&model, &hailo);
        assert_eq!(undecided.verdict, Outcome::Inconclusive);
        assert!(undecided.reason.contains("no on-chip size") && undecided.reason.contains("npu.sram_bytes"));
        let need = crate::emulator::on_chip_working_set(&model, &hailo).unwrap();
        hailo.npu.as_mut().unwrap().sram_bytes = Some(need);
        let fits = memory_check(&model, &hailo);
        assert_eq!(
            (fits.verdict, fits.measured, fits.limit),
            (Outcome::Pass, Some(need as f64), Some(need as f64))
        );
        assert_eq!(crate::emulator::estimate(&model, &hailo).fits_on_chip, Some(true), "the estimate agrees");
        // Negative control: one byte short, and the model runs in contexts, as the estimate says.
        hailo.npu.as_mut().unwrap().sram_bytes = Some(need - 1);
        let short = memory_check(&model, &hailo);
        assert_eq!(short.verdict, Outcome::Inconclusive);
        assert!(short.reason.contains("runs in 2 contexts"), "{}", short.reason);
        assert_eq!(crate::emulator::estimate(&model, &hailo).contexts, Some(2), "the estimate agrees");

        let coral = memory_check(&model, &bundled("coral-usb"));
        assert_eq!(coral.verdict, Outcome::Inconclusive);
        assert!(coral.reason.contains("card with no DRAM of its own"), "{}", coral.reason);
        let rk = memory_check(&model, &bundled("rk3588"));
        assert!(rk.reason.starts_with("the profile gives no DRAM size"), "{}", rk.reason);
    }
}
