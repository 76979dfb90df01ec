//! Issuing a certificate: the records of one (family, chip) copied into the schema's own types,
//! the coverage of its plan, the overall verdict, and the id sealed over the canonical body.

use std::path::Path;

use super::inputs::Family;
use super::plan::PlannedCheck;
use crate::backend::BackendKind;
use crate::certificate::schema::{
    overall, ArtifactFile, BackendRef, Certificate, CheckRecord, CheckStatus, Coverage, CrossCheckReport,
    DeviceEnvironment, EstimateRecord, GoldenRef, MetricsReport, NodeRecord, NotRun, NotRunReason,
    OutputAgreementRecord, ProfileRef, QuantizedInput, Subject, TestEnvironment, ThermalCurve, Tool,
    SCHEMA_VERSION,
};
use crate::emulator::{Estimate, ThermalRun};
use crate::model::ModelInventory;
use crate::profile::ProfileFile;

pub const DECISION_RULE: &str = "PASS only when the conservative end of the confidence interval meets the limit; FAIL when the optimistic end misses it; otherwise INCONCLUSIVE. A check with a systematic error e (an emulated latency: the emulator's error on that chip, the 90th percentile of its |error| over the chip's scored rows of the measurement corpus where the profile gives one, else its median error at points held out from its calibration across chips; the check's reason says which) is decided across it: PASS needs the upper end at most limit × (1 − e), FAIL the lower end over limit × (1 + e); e is an estimate, not a bound, and the chance that the chip errs further is not in the stated risk. The risk accepted is that of the stated confidence level (two-sided), per check. The certificate is PASS only when every planned check ran and passed; FAIL when any check failed; otherwise INCONCLUSIVE.";

pub const STATEMENT: &str = "Results relate only to the model, golden set and chip profile identified by the digests above. Figures with basis \"emulated\" are predictions of edgecert's cost model, not measurements on the chip; accuracy is measured by real inference on the host.";

/// What one (family, chip) contributes to its certificate besides the check records.
pub(super) struct UnitRecord<'a> {
    pub family: &'a Family,
    pub profile: &'a ProfileFile,
    pub npu_mode: Option<String>,
    pub engine: &'a str,
    pub backend: BackendKind,
    pub estimate: Option<Estimate>,
    pub thermal: Option<ThermalRun>,
    pub metrics: Option<MetricsReport>,
    pub agreement: Option<Vec<OutputAgreementRecord>>,
    pub cross_check: Option<CrossCheckReport>,
    /// The raw observations file the certificate is bound to.
    pub observations: ArtifactFile,
    /// When the run began (RFC 3339).
    pub started_at: &'a str,
    /// The device under test, as its agent or adapter reported it.
    pub device: Option<&'a DeviceEnvironment>,
    /// The ambient temperature the operator stated (`--ambient`).
    pub ambient_c: Option<f64>,
    /// Who issues the certificate (`certify --issuer`).
    pub issuer: Option<crate::certificate::issuer::Issuer>,
}

/// The certificate of one (family, chip): `planned` is every check the plan holds for it,
/// `checks` the records of those that were executed.
pub(super) fn issue(
    unit: UnitRecord<'_>,
    planned: &[&PlannedCheck],
    checks: Vec<CheckRecord>,
) -> Certificate {
    let coverage = coverage(planned, &checks);
    let (verdict, verdict_reason) = overall(&checks, &coverage);
    let family = unit.family;
    let manifest = &family.golden.manifest;
    Certificate {
        schema_version: SCHEMA_VERSION,
        certificate_id: String::new(),
        tool: Tool {
            name: crate::TOOL_NAME.into(),
            version: crate::TOOL_VERSION.into(),
            engine: unit.engine.to_string(),
        },
        subject: subject(&family.compressed),
        reference: subject(&family.reference),
        profile: ProfileRef {
            name: unit.profile.profile.chip.name.clone(),
            npu_mode: unit.npu_mode,
            display_name: unit.profile.profile.display_name().to_string(),
            path: display(&unit.profile.path),
            sha256: unit.profile.sha256.clone(),
        },
        golden: GoldenRef {
            name: family.golden.name().to_string(),
            path: display(&family.golden.dir),
            sha256: family.golden.sha256.clone(),
            samples: family.golden.len(),
            metric: manifest.metric.kind.name().to_string(),
        },
        backend: BackendRef {
            kind: unit.backend.name().to_string(),
            emulated: unit.backend == BackendKind::Emulated,
            note: unit.backend.note().to_string(),
        },
        coverage,
        checks,
        verdict,
        verdict_reason,
        decision_rule: DECISION_RULE.into(),
        statement: STATEMENT.into(),
        metrics: unit.metrics,
        agreement: unit.agreement,
        cross_check: unit.cross_check,
        thermal: unit.thermal.map(thermal_curve),
        estimate: unit.estimate.as_ref().map(estimate_record),
        observations: Some(unit.observations),
        environment: Some(test_environment(unit.started_at, unit.ambient_c, unit.device.cloned())),
        issuer: unit.issuer,
        issued_at: now_rfc3339(),
        signature: None,
        member_digests: Default::default(),
    }
    .seal()
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// This host as the certificate records it, read where Linux exposes it; what cannot be read is
/// left out, never guessed. `device` is the device under test, where one produced the figures.
fn test_environment(
    started_at: &str,
    ambient_c: Option<f64>,
    device: Option<DeviceEnvironment>,
) -> TestEnvironment {
    let host = crate::device::SystemRoot::live();
    TestEnvironment {
        os: host.os().unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: host.kernel(),
        arch: std::env::consts::ARCH.to_string(),
        cpu: host.cpu(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        governor: host.governor(),
        started_at: started_at.to_string(),
        finished_at: now_rfc3339(),
        ambient_c,
        device,
    }
}

fn coverage(planned: &[&PlannedCheck], checks: &[CheckRecord]) -> Coverage {
    let mut not_run: Vec<NotRun> = planned
        .iter()
        .filter_map(|c| {
            let why = c.not_run.as_ref()?;
            Some(NotRun { check: c.id.check, reason: why.reason, detail: why.detail.clone() })
        })
        .collect();
    not_run.extend(checks.iter().filter(|c| c.status == CheckStatus::Error).map(|c| NotRun {
        check: c.name,
        reason: NotRunReason::Error,
        detail: c.reason.clone(),
    }));
    Coverage {
        planned: planned.iter().map(|c| c.id.check).collect(),
        executed: checks.iter().filter(|c| c.status == CheckStatus::Ran).map(|c| c.name).collect(),
        not_run,
    }
}

fn subject(m: &ModelInventory) -> Subject {
    Subject {
        model: display(&m.path),
        sha256: m.sha256.clone(),
        size_bytes: m.file_size_bytes,
        quantization: m.quantization.to_string(),
        files: m
            .files
            .iter()
            .map(|f| ArtifactFile {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
                size_bytes: f.size_bytes,
            })
            .collect(),
        input_quantization: m
            .inputs
            .iter()
            .filter_map(|i| {
                let q = i.quantization?;
                Some(QuantizedInput {
                    input: i.name.clone(),
                    dtype: i.dtype.clone(),
                    scale: q.scale,
                    zero_point: q.zero_point,
                    source: q.source,
                })
            })
            .collect(),
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

fn thermal_curve(run: ThermalRun) -> ThermalCurve {
    ThermalCurve {
        ambient_c: run.ambient_c,
        power_w: run.power_w,
        steady_state_c: run.steady_state_c,
        peak_c: run.peak_c,
        throttled_at_s: run.throttled_at_s,
        throttled_share: run.throttled_share,
        throttled_latency_ms: run.throttled_latency_ms,
        curve: run.curve,
    }
}

fn estimate_record(est: &Estimate) -> EstimateRecord {
    let costs: std::collections::HashMap<&str, &crate::emulator::NodeCost> =
        est.nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    let nodes = est
        .placement
        .nodes
        .iter()
        .map(|p| {
            let cost = costs.get(p.node.as_str());
            NodeRecord {
                node: p.node.clone(),
                op_type: p.op_type.clone(),
                unit: p.unit.name().to_string(),
                reason: p.reason.clone(),
                unsupported: p.unsupported,
                time_ms: cost.map(|c| c.time_ms),
                compute_ms: cost.map(|c| c.compute_ms),
                memory_ms: cost.map(|c| c.memory_ms),
                on_chip_ms: cost.map(|c| c.on_chip_ms).filter(|&ms| ms > 0.0),
                energy_uj: cost.map(|c| c.energy_uj),
            }
        })
        .collect();
    EstimateRecord {
        chip: est.chip.clone(),
        latency_ms: est.latency_ms,
        latency_unknown: est.latency_unknown.clone(),
        throughput_fps: est.throughput_fps,
        scenario: Some(est.scenario.name().to_string()),
        npu_time_share: est.npu_time_share,
        weights_bytes: est.weights_bytes,
        peak_activation_bytes: est.peak_activation_bytes,
        fits_on_chip: est.fits_on_chip,
        energy_mj: est.energy_mj,
        static_w: est.static_w,
        conversion: est.conversion.clone(),
        calibration: est.calibration.clone(),
        host_transfer_bytes: est.host_transfer.map(|t| t.input_bytes + t.output_bytes),
        host_transfer_ms: est.host_transfer.map(|t| t.ms),
        fallback_policy: est.placement.policy.name().to_string(),
        boundaries: est.placement.boundaries,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckKind;
    use crate::vocab::{Basis, Outcome};

    fn kind(name: &str) -> CheckKind {
        CheckKind::from_name(name).unwrap()
    }

    fn record(name: &str, verdict: Outcome, status: CheckStatus) -> CheckRecord {
        CheckRecord {
            name: kind(name),
            status,
            verdict,
            measured: None,
            limit: None,
            unit: "x".into(),
            basis: Basis::Static,
            ci: None,
            systematic_error: None,
            profile_gap: None,
            reason: "because".into(),
            findings: vec![],
            samples: None,
            samples_to_decide: None,
        }
    }

    fn coverage_of(planned: &[&str], executed: &[&str], not_run: &[(&str, NotRunReason)]) -> Coverage {
        Coverage {
            planned: planned.iter().map(|s| kind(s)).collect(),
            executed: executed.iter().map(|s| kind(s)).collect(),
            not_run: not_run
                .iter()
                .map(|(c, r)| NotRun { check: kind(c), reason: *r, detail: String::new() })
                .collect(),
        }
    }

    #[test]
    fn a_run_with_a_filtered_check_never_passes() {
        let checks = [record("size", Outcome::Pass, CheckStatus::Ran)];
        let cov = coverage_of(&["size", "latency"], &["size"], &[("latency", NotRunReason::Filtered)]);
        let (verdict, reason) = overall(&checks, &cov);
        assert_eq!(verdict, Outcome::Inconclusive);
        assert_eq!(reason, "incomplete: 1 check of 2 planned did not run: latency (filtered out)");
    }

    #[test]
    fn a_failed_check_fails_the_certificate_even_when_incomplete() {
        let checks = [record("size", Outcome::Fail, CheckStatus::Ran)];
        let cov = coverage_of(&["size", "latency"], &["size"], &[("latency", NotRunReason::Skipped)]);
        assert_eq!(overall(&checks, &cov), (Outcome::Fail, "1 check failed: size".to_string()));
    }

    #[test]
    fn an_errored_check_is_listed_and_blocks_pass() {
        let checks = [
            record("size", Outcome::Pass, CheckStatus::Ran),
            record("accuracy", Outcome::Inconclusive, CheckStatus::Error),
        ];
        let cov = coverage_of(&["size", "accuracy"], &["size"], &[("accuracy", NotRunReason::Error)]);
        let (verdict, reason) = overall(&checks, &cov);
        assert_eq!(verdict, Outcome::Inconclusive);
        assert!(reason.contains("accuracy (error)"), "{reason}");
    }

    #[test]
    fn every_planned_check_passing_passes() {
        let checks = [
            record("size", Outcome::Pass, CheckStatus::Ran),
            record("memory", Outcome::Pass, CheckStatus::Ran),
        ];
        let cov = coverage_of(&["size", "memory"], &["size", "memory"], &[]);
        assert_eq!(overall(&checks, &cov).0, Outcome::Pass);
    }
}
