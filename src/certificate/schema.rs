//! The certificate schema: owned types that serialise *and* read back, independent of the
//! emulator's and the checks' internals (their results are copied in, never embedded), with a
//! JSON Schema generated from them (`edgecert schema certificate`, checked in under
//! `docs/schema/`).
//!
//! The certificate id is the SHA-256 of the certificate's *canonical body*: the certificate as
//! JSON without its `certificate_id` and `signature` members, object keys sorted, no
//! insignificant whitespace, numbers in serde_json's shortest round-trip form. Anyone holding the
//! JSON can recompute it, and a signature has exact bytes to sign.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::hash::sha256_hex;
use crate::vocab::verdict::number_or_null;

pub use crate::checks::{CheckKind, CheckRecord, CheckStatus};
pub use crate::vocab::{Basis, Interval, Outcome, ValuePair};

/// Version of the certificate layout. 2: owned schema, coverage, canonical-body id. 3: the raw
/// observations beside the certificate, bound by digest.
pub const SCHEMA_VERSION: u32 = 3;

/// Members left out of the canonical body: the id is computed over it, a signature signs it.
/// `member_digests` only helps a verifier name what changed; the id and signature decide.
pub const UNSIGNED_MEMBERS: [&str; 3] = ["certificate_id", "signature", "member_digests"];

/// Members without a digest of their own: they hold the run's times, which differ between two
/// runs of the same inputs (certificates are otherwise byte-identical).
const TIMED_MEMBERS: [&str; 2] = ["issued_at", "environment"];

/// One certificate: one compressed model, one golden set, one chip profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub schema_version: u32,
    /// SHA-256 of the canonical body (see the module documentation).
    pub certificate_id: String,
    pub tool: Tool,
    /// The compressed model certified.
    pub subject: Subject,
    /// The FP32 model it was compressed from.
    pub reference: Subject,
    pub profile: ProfileRef,
    pub golden: GoldenRef,
    pub backend: BackendRef,
    /// What was planned for this (model, golden set, chip) and what of it ran.
    pub coverage: Coverage,
    /// Every check that was executed, in plan order.
    pub checks: Vec<CheckRecord>,
    /// FAIL if any check failed; PASS only if every planned check ran and passed; otherwise
    /// INCONCLUSIVE.
    pub verdict: Outcome,
    /// One sentence: why this overall verdict.
    pub verdict_reason: String,
    pub decision_rule: String,
    pub statement: String,
    /// Every value of the family metric for both models (overall, per class, per slice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsReport>,
    /// How closely the compressed model's outputs follow FP32's, per output tensor, when the
    /// golden set sets agreement limits (measured by real inference on the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Vec<OutputAgreementRecord>>,
    /// The compressed model replayed on a second engine (`certify --cross-check`): its metric
    /// there, and how its outputs follow the first engine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheckReport>,
    /// The sustained-load junction temperature curve, when the thermal model ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thermal: Option<ThermalCurve>,
    /// The emulator's prediction for this model on this chip, with per-node placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<EstimateRecord>,
    /// The raw observations the checks decided on (`observations.json` beside the
    /// certificate): per-sample latencies, metric contributions and agreement figures. Bound
    /// by its digest, so a verifier can recompute every verdict (`verify --recompute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<ArtifactFile>,
    /// The conditions the test ran under: the host edgecert ran on, and when the test began and
    /// ended (absent from certificates issued before edgecert recorded them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<TestEnvironment>,
    /// The issuing laboratory, customer, authoriser and specification (`certify --issuer`),
    /// sealed with the rest: a report renders what was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<crate::certificate::issuer::Issuer>,
    /// RFC 3339, UTC.
    pub issued_at: String,
    /// An ed25519 signature of the canonical body, when the certificate was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureRecord>,
    /// SHA-256 of each member's canonical JSON at issue (`issued_at` and `environment`
    /// excepted), so `verify` names the member changed after issue. Not signed and not in the
    /// id: it explains a failed check, it never passes one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub member_digests: std::collections::BTreeMap<String, String>,
}

/// The test conditions (ISO/IEC 17025 §7.8.3 a, §7.8.2.1 k): the host's system, kernel, CPU
/// and its frequency governor as read there, and the test's start and end. Figures measured on
/// a device name it in `tool.engine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEnvironment {
    /// The operating system (`/etc/os-release`'s name, else the platform's).
    pub os: String,
    /// The kernel release, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    pub arch: String,
    /// The CPU model, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Cores available to edgecert.
    pub cores: usize,
    /// The CPU frequency governor (`performance`, `schedutil`, ...), where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governor: Option<String>,
    /// RFC 3339, UTC: when the run began, and when this certificate's checks were done.
    pub started_at: String,
    pub finished_at: String,
    /// The ambient temperature (°C) the operator stated (`certify --ambient`): stated, not
    /// measured; absent when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient_c: Option<f64>,
    /// The device that produced the compressed model's outputs and times (`remote`, `exec`), as
    /// its agent or adapter reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceEnvironment>,
}

/// The device under test as reported to edgecert: who reported it, and each fact by name
/// (board, kernel, CPU, runtime and driver versions, governor and clocks, facts an operator
/// stated). What the reporter did not say is absent, never guessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceEnvironment {
    /// Who reported the facts: the edgecert agent (with its address) or the adapter's
    /// `device_command`.
    pub reported_by: String,
    pub facts: std::collections::BTreeMap<String, String>,
}

/// Who signed, and the signature of the canonical body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRecord {
    /// `ed25519`.
    pub algorithm: String,
    /// The signer's public key, hex.
    pub public_key: String,
    /// 32 hex digits of the SHA-256 of the public key.
    pub key_fingerprint: String,
    /// The signature, hex.
    pub value: String,
}

/// The compressed model on a second engine. Accuracy verdicts rest on `verdict_engine`
/// (`tool.engine`); where the two engines would decide an accuracy check differently, the
/// check is INCONCLUSIVE and says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrossCheckReport {
    /// The engine every accuracy verdict rests on.
    pub verdict_engine: String,
    /// The engine that replayed the compressed model again.
    pub engine: String,
    /// The family metric on the second engine (compressed there, FP32 on the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsReport>,
    /// Per output tensor: the second engine's outputs against the first's.
    pub agreement: Vec<OutputAgreementRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The inference engine that produced every output.
    pub engine: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub model: String,
    /// The model file's SHA-256 when it is the whole artifact; with external data, the digest of
    /// every (name, bytes) of `files` in name order (`hash::sha256_of_parts`).
    pub sha256: String,
    /// Bytes of the whole artifact: the model file and its external-data files.
    pub size_bytes: u64,
    pub quantization: String,
    /// Every file of the artifact, the model file included. Absent in certificates written
    /// before external data was read.
    #[serde(default)]
    pub files: Vec<ArtifactFile>,
    /// The model's 8-bit integer inputs and how the golden samples were coded for them; absent
    /// for a model with float inputs only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_quantization: Vec<QuantizedInput>,
}

/// An integer input fed the codes `clamp(round(x / scale) + zero_point)` of the golden samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantizedInput {
    pub input: String,
    pub dtype: String,
    pub scale: f32,
    pub zero_point: i32,
    /// `model` (its DequantizeLinear on the input) or `golden_set` (`[input.quantization]`).
    pub source: crate::model::QuantizationSource,
}

/// One file: of a model artifact (path relative to the model's folder, `/`-separated), or the
/// raw observations (a file name beside the certificate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactFile {
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRef {
    pub name: String,
    /// The NPU compute mode the profile was certified in, when not its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npu_mode: Option<String>,
    pub display_name: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub samples: usize,
    pub metric: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendRef {
    /// `emulated` or `host`.
    pub kind: String,
    pub emulated: bool,
    pub note: String,
}

/// The planned checks and what became of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Every check the plan holds for this (family, chip), selected or not.
    pub planned: Vec<CheckKind>,
    /// The checks that ran to a verdict.
    pub executed: Vec<CheckKind>,
    /// Planned checks with no verdict of their own: filtered out, skipped, or stopped by an
    /// internal error (those also appear in `checks` with status `error`).
    pub not_run: Vec<NotRun>,
}

impl Coverage {
    pub fn is_complete(&self) -> bool {
        self.not_run.is_empty() && self.executed.len() == self.planned.len()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotRun {
    pub check: CheckKind,
    pub reason: NotRunReason,
    /// Which filter or pattern, or the error.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotRunReason {
    /// Not selected by the name filters.
    Filtered,
    /// Excluded by `--skip`.
    Skipped,
    /// Started, but stopped by an internal error (a panic) before reaching a verdict.
    Error,
}

impl NotRunReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NotRunReason::Filtered => "filtered out",
            NotRunReason::Skipped => "skipped",
            NotRunReason::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsReport {
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardest_slice: Option<String>,
    /// Every value (`primary`, per class, `slice.<name>`, ...) for FP32 and compressed, each
    /// with its bootstrap interval over the golden samples.
    pub values: BTreeMap<String, ValuePair>,
}

/// The agreement statistics of one output tensor, compressed against FP32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputAgreementRecord {
    pub output: String,
    pub samples: usize,
    pub statistics: Vec<StatisticRecord>,
}

/// One statistic over the golden set with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatisticRecord {
    /// `cosine`, `snr_db`, `max_abs_error` (p99 over samples), `mean_abs_error`,
    /// `top1_agreement`.
    pub statistic: String,
    #[serde(deserialize_with = "number_or_null")]
    #[schemars(with = "Option<f64>")]
    pub value: f64,
    pub ci: Interval,
}

/// The lumped thermal model's run at the family's operating rate (emulated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThermalCurve {
    pub ambient_c: f64,
    pub power_w: f64,
    pub steady_state_c: f64,
    pub peak_c: f64,
    /// Seconds into the run when throttling first started.
    pub throttled_at_s: Option<f64>,
    /// Share of the run spent throttled.
    pub throttled_share: f64,
    /// Latency while throttled (ms).
    pub throttled_latency_ms: Option<f64>,
    /// (time s, junction °C), every 10 s.
    pub curve: Vec<(f64, f64)>,
}

/// The emulator's figures for one model on one chip; every figure here is emulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRecord {
    pub chip: String,
    /// Modelled latency of one inference without jitter (ms).
    pub latency_ms: Option<f64>,
    /// Why there is no latency figure, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_unknown: Option<String>,
    /// Offline throughput: inferences per second at batch 1 with the pipeline full. `null` when
    /// the latency is unknown; absent from certificates issued before it existed.
    #[serde(default)]
    pub throughput_fps: Option<f64>,
    /// How throughput follows from the node costs: `pipelined` (a dataflow chip: a balanced
    /// pipeline, 1 / the model's work at the whole chip's rate, for the busier of its compute and
    /// its on-chip memory) or `serial` (one stream per NPU
    /// core: cores / latency, capped by DRAM; on a card, each stream also waits for its host
    /// transfers, and the link caps the rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    pub npu_time_share: Option<f64>,
    pub weights_bytes: u64,
    pub peak_activation_bytes: u64,
    /// Whether the weights and the activations alive at any accelerator layer fit the chip's
    /// on-chip memory (then the accelerator moves no DRAM bytes); null without an on-chip
    /// size or without an accelerator layer.
    pub fits_on_chip: Option<bool>,
    /// Dynamic energy of one inference (mJ).
    pub energy_mj: Option<f64>,
    /// Idle power (W).
    pub static_w: Option<f64>,
    /// What the chip's toolchain made of the model before it ran, when it changed it: a float
    /// model quantized by the toolchain is predicted as that int8 build. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<String>,
    /// The figures behind the prediction that no datasheet gives: each calibrated one with its
    /// published point, each emulator default standing in for a missing one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<String>,
    /// On an accelerator card: bytes one inference moves over the host link (inputs in, outputs
    /// back; 8-bit where the chip runs the model quantized). Absent for a chip with its own DRAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_transfer_bytes: Option<u64>,
    /// Their time at the link's nominal rate (ms), a lower bound, which `latency_ms` (model
    /// execution on the card) leaves out: an application waits for both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_transfer_ms: Option<f64>,
    /// `per-op`, `single-partition` or `strict`.
    pub fallback_policy: String,
    /// NPU↔CPU hand-overs along the node order.
    pub boundaries: usize,
    pub nodes: Vec<NodeRecord>,
}

/// Where one node runs, why, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub node: String,
    pub op_type: String,
    /// `npu`, `cpu`, `absorbed` or `rejected`.
    pub unit: String,
    pub reason: String,
    pub unsupported: bool,
    /// `null` when the cost model cannot price the node (the estimate says why).
    pub time_ms: Option<f64>,
    pub compute_ms: Option<f64>,
    pub memory_ms: Option<f64>,
    /// Streaming the node's output through on-chip memory, on a chip whose profile gives that
    /// rate (`memory.on_chip_gbps`); absent where nothing is costed so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_chip_ms: Option<f64>,
    pub energy_uj: Option<f64>,
}

/// FAIL when any check failed; PASS only when every planned check ran and passed; otherwise
/// INCONCLUSIVE, saying what is missing or undecided.
pub fn overall(checks: &[CheckRecord], coverage: &Coverage) -> (Outcome, String) {
    let named = |outcome: Outcome| -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.verdict == outcome && c.status == CheckStatus::Ran)
            .map(|c| c.name.name())
            .collect()
    };
    let failed = named(Outcome::Fail);
    if !failed.is_empty() {
        return (Outcome::Fail, format!("{} failed: {}", plural(failed.len(), "check"), failed.join(", ")));
    }
    let mut why = Vec::new();
    if !coverage.not_run.is_empty() {
        let list: Vec<String> =
            coverage.not_run.iter().map(|n| format!("{} ({})", n.check, n.reason.as_str())).collect();
        why.push(format!(
            "incomplete: {} of {} planned did not run: {}",
            plural(coverage.not_run.len(), "check"),
            coverage.planned.len(),
            list.join(", ")
        ));
    }
    let undecided = named(Outcome::Inconclusive);
    if !undecided.is_empty() {
        why.push(format!("{} inconclusive: {}", plural(undecided.len(), "check"), undecided.join(", ")));
    }
    if why.is_empty() && coverage.is_complete() {
        return (Outcome::Pass, format!("all {} planned checks ran and passed", coverage.planned.len()));
    }
    (Outcome::Inconclusive, why.join("; "))
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl Certificate {
    /// The canonical body: every member but the id and the signature, keys sorted, compact.
    pub fn canonical_body(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("a certificate is plain data");
        if let Some(obj) = value.as_object_mut() {
            for member in UNSIGNED_MEMBERS {
                obj.remove(member);
            }
        }
        canonical_json(&value)
    }

    /// The id this certificate's content gives.
    pub fn content_id(&self) -> String {
        sha256_hex(&self.canonical_body())
    }

    /// Sets `certificate_id` (and the member digests) from the content; call last, after every
    /// other member is final.
    pub fn seal(mut self) -> Certificate {
        self.certificate_id = self.content_id();
        self.member_digests = self.digests_of_members();
        self
    }

    /// The digest of each member that has one, as [`Certificate::member_digests`] records them.
    fn digests_of_members(&self) -> std::collections::BTreeMap<String, String> {
        let value = serde_json::to_value(self).expect("a certificate is plain data");
        let Some(members) = value.as_object() else { return Default::default() };
        members
            .iter()
            .filter(|(name, _)| {
                !UNSIGNED_MEMBERS.contains(&name.as_str()) && !TIMED_MEMBERS.contains(&name.as_str())
            })
            .map(|(name, member)| (name.clone(), sha256_hex(&canonical_json(member))))
            .collect()
    }

    /// What changed since issue, for a certificate whose content no longer gives its id: the
    /// members whose digest differs from the one recorded, or that were added or removed.
    pub fn changed_members(&self) -> String {
        if self.member_digests.is_empty() {
            return "the certificate records no member digests to tell which member".into();
        }
        let now = self.digests_of_members();
        let names: std::collections::BTreeSet<&String> =
            now.keys().chain(self.member_digests.keys()).collect();
        let changed: Vec<&str> = names
            .into_iter()
            .filter(|n| now.get(*n) != self.member_digests.get(*n))
            .map(|n| n.as_str())
            .collect();
        match changed.as_slice() {
            [] => format!(
                "no member with a digest changed: {} (which have none) did",
                TIMED_MEMBERS.join(" or ")
            ),
            names => {
                format!("changed: {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// Pretty JSON with a final newline, as written to `certificate.json`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a certificate is plain data");
        out.push(b'\n');
        out
    }
}

/// Compact JSON with object keys sorted at every depth (whatever map order serde_json was
/// built with), so equal values always give equal bytes.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("a string serialises"));
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("a scalar serialises")),
    }
}

/// The JSON Schema of [`Certificate`], as checked in at `docs/schema/certificate.schema.json`.
pub fn certificate_json_schema() -> String {
    let schema = schemars::schema_for!(Certificate);
    serde_json::to_string_pretty(&schema).expect("a schema is plain data") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [1, 2.5], "c": "x"}}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":{"c":"x","d":[1,2.5]},"b":1}"#);
    }

    #[test]
    fn outcomes_and_bases_use_their_documented_spellings() {
        assert_eq!(serde_json::to_string(&Outcome::Inconclusive).unwrap(), "\"INCONCLUSIVE\"");
        assert_eq!(serde_json::to_string(&Basis::Emulated).unwrap(), "\"emulated\"");
        assert_eq!(serde_json::to_string(&NotRunReason::Filtered).unwrap(), "\"filtered\"");
    }
}
