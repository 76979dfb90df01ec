//! Model inventory: what an ONNX file contains, read statically (protobuf) plus shape inference
//! through the engine. Nothing here runs the model, and nothing aborts on an unknown operator:
//! an op the engine cannot run is a [`Finding`], as tract keeps an unknown op as a node.

pub mod checker;
pub mod external;
mod graph;

pub(crate) use graph::dtype_bytes_for_activation;
mod macs;
pub mod shapes;
pub mod tflite;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tract_onnx::pb;

use crate::profile::DType;
use crate::vocab::{read_bytes, Error, Result};

pub use external::ArtifactFile;
pub(crate) use graph::datum_type;
pub use graph::{decode_model, GraphFacts};
pub use shapes::{InputShape, InputShapes};

/// Shape and type of a graph input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Concrete dimensions: symbolic ones (batch `N`, `H`, `W`) are fixed by `--input-shape` or
    /// the golden set, never guessed.
    pub shape: Vec<usize>,
    pub dtype: String,
    /// For an integer input (`uint8`, `int8`): how real values become its codes, as the model
    /// reads it (a DequantizeLinear on the input) or as the golden set states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<InputQuantization>,
}

/// How a real value `x` becomes an integer input's code: `clamp(round(x / scale) + zero_point)`
/// to the type's range, the inverse of ONNX's DequantizeLinear and TFLite's input quantization.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputQuantization {
    pub scale: f32,
    pub zero_point: i32,
    /// Where the figures come from: `model` (a DequantizeLinear reading the input) or
    /// `golden set` (`[input.quantization]` in family.toml).
    #[serde(default = "InputQuantization::stated")]
    pub source: QuantizationSource,
}

impl std::str::FromStr for InputQuantization {
    type Err = String;

    /// `SCALE:ZERO_POINT`, e.g. `0.003921569:0` (pixels 0–255 as codes of [0, 1]).
    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        let usage = || format!("expected SCALE:ZERO_POINT such as 0.003921569:0, got `{spec}`");
        let (scale, zero_point) = spec.split_once(':').ok_or_else(usage)?;
        let q = InputQuantization {
            scale: scale.parse().map_err(|_| usage())?,
            zero_point: zero_point.parse().map_err(|_| usage())?,
            source: QuantizationSource::GoldenSet,
        };
        q.check().map(|()| q)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuantizationSource {
    Model,
    GoldenSet,
}

impl InputQuantization {
    fn stated() -> QuantizationSource {
        QuantizationSource::GoldenSet
    }

    /// A scale that is a positive finite number and a zero point an 8-bit type can hold.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!("scale must be a positive finite number, found {}", self.scale));
        }
        if !(-128..=255).contains(&self.zero_point) {
            return Err(format!(
                "zero_point must lie in -128..=255 (int8 or uint8), found {}",
                self.zero_point
            ));
        }
        Ok(())
    }

    /// The code range of integer input type `dtype`; `None` for a type edgecert does not feed
    /// quantized.
    pub fn code_range(dtype: &str) -> Option<(f32, f32)> {
        match dtype {
            "uint8" => Some((0.0, 255.0)),
            "int8" => Some((-128.0, 127.0)),
            _ => None,
        }
    }

    /// `x`'s code in a `(lo, hi)` range, as an f32 the engines cast to the integer type exactly.
    /// Ties round to even, as ONNX's QuantizeLinear does.
    pub fn code(&self, x: f32, (lo, hi): (f32, f32)) -> f32 {
        ((x / self.scale).round_ties_even() + self.zero_point as f32).clamp(lo, hi)
    }
}

/// Shape and type of a graph output, as inference found it from the inputs' shapes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputInfo {
    pub name: String,
    /// Each dimension, `None` (`null`) where inference could not tell it; the whole shape
    /// `None` where not even the rank is known. Unknown is never written as 0.
    pub shape: Option<Vec<Option<usize>>>,
    pub dtype: String,
    /// For an 8-bit output (a TFLite full-integer model's): how its codes read as real values.
    /// The engines' outputs are dequantized with it before any metric sees them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<InputQuantization>,
}

impl OutputInfo {
    /// The shape, when every dimension is known.
    pub fn known_shape(&self) -> Option<Vec<usize>> {
        self.shape.as_ref()?.iter().copied().collect()
    }

    /// The shape for people: `[1, 1, ?, 640]`, or `?` when the rank is unknown.
    pub fn shape_text(&self) -> String {
        match &self.shape {
            None => "?".into(),
            Some(dims) => {
                let dims: Vec<String> =
                    dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
                format!("[{}]", dims.join(", "))
            }
        }
    }
}

/// One node of the graph with the figures the checks and the emulator need.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// The data type the node computes in: the quantized type for a node fed by
    /// DequantizeLinear (QDQ), else its input's type.
    pub dtype: Option<DType>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub input_shapes: Vec<Option<Vec<usize>>>,
    pub output_shapes: Vec<Option<Vec<usize>>>,
    pub attrs: NodeAttrs,
    /// Multiply-accumulates (conv, matmul, recurrent); `None` when shapes are unknown.
    pub macs: Option<u64>,
    /// Other arithmetic (elementwise, pooling, normalisation), counted as operations.
    pub other_ops: Option<u64>,
    /// Bytes of initializers this node reads (weights, biases, quantization parameters).
    pub weight_bytes: u64,
    /// Bytes of the activations this node writes.
    pub output_bytes: Option<u64>,
}

/// The operator attributes that chip limits are stated in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeAttrs {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub group: Option<usize>,
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub node: String,
    pub op_type: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationTensor {
    pub name: String,
    pub producer: String,
    pub shape: Vec<usize>,
    pub bytes: u64,
}

/// The file formats edgecert certifies, told apart by their content (a TFLite flatbuffer's
/// `TFL3` identifier), not their extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    Onnx,
    Tflite,
}

impl ModelFormat {
    /// The format of the model file at `path` (ONNX unless it holds a TFLite flatbuffer).
    pub fn of(path: &Path) -> Result<ModelFormat> {
        use std::io::Read;
        let mut head = [0u8; 8];
        let mut file = crate::vocab::open_regular(path)?;
        let n = file.read(&mut head).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Ok(if tflite::is_tflite(&head[..n]) { ModelFormat::Tflite } else { ModelFormat::Onnx })
    }

    /// The format's name as users write it.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "ONNX",
            ModelFormat::Tflite => "TFLite",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInventory {
    pub path: PathBuf,
    pub format: ModelFormat,
    /// Size of the whole artifact: the model file and its external-data files.
    pub file_size_bytes: u64,
    /// The model file's SHA-256 when it is the whole artifact; with external data, the digest of
    /// every file of the artifact (see [`external::Artifact`]).
    pub sha256: String,
    /// The files of the artifact, the model file included, by name relative to its folder.
    pub files: Vec<ArtifactFile>,
    pub opset: Option<i64>,
    pub producer: String,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<OutputInfo>,
    pub node_count: usize,
    pub op_histogram: BTreeMap<String, usize>,
    pub parameter_count: u64,
    pub weight_bytes: u64,
    pub weight_bytes_by_dtype: BTreeMap<String, u64>,
    /// Multiply-accumulates of the whole graph; `None` when some node's are unknown (its shapes
    /// could not be inferred, or its work is in a subgraph): [`Self::unknown_macs_at`] names it.
    pub total_macs: Option<u64>,
    pub quantization: Quantization,
    pub quantized: bool,
    /// Tensors with quantization parameters of their own (TFLite stores them per tensor), per
    /// tensor and per channel; `None` where the format keeps them in operators (ONNX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantized_tensors: Option<QuantizedTensors>,
    pub nodes: Vec<NodeInfo>,
    pub activations: Vec<ActivationTensor>,
    pub findings: Vec<Finding>,
}

/// How many tensors are quantized with one scale and zero point, and how many per channel.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct QuantizedTensors {
    pub per_tensor: usize,
    pub per_channel: usize,
}

impl ModelInventory {
    /// Reads a fixed-shape ONNX file and inventories it; see [`ModelInventory::load_with`].
    pub fn load(path: &Path) -> Result<ModelInventory> {
        Self::load_with(path, &InputShapes::default())
    }

    /// Golden samples are float32 (images scaled to [0, 1], `.npy` stacks of `<f4`): the engine
    /// casts them to a float16 input, and an 8-bit integer input is fed their codes under its
    /// quantization (the model's own, or `stated`: the golden set's `[input.quantization]`).
    /// Gives each input its quantization; refuses an input that cannot be fed.
    pub fn resolve_input_feeds(&mut self, stated: Option<InputQuantization>, stated_in: &Path) -> Result<()> {
        for input in &mut self.inputs {
            if matches!(input.dtype.as_str(), "float32" | "float16") {
                continue;
            }
            if InputQuantization::code_range(&input.dtype).is_none() {
                return Err(Error::model(
                    &self.path,
                    format!(
                        "input `{}` is {}, but golden samples are float32: export the model with a float or 8-bit integer input (a Cast inside the graph is fine)",
                        input.name, input.dtype
                    ),
                ));
            }
            input.quantization = match (input.quantization, stated) {
                (Some(own), Some(s)) if (own.scale, own.zero_point) != (s.scale, s.zero_point) => {
                    return Err(Error::golden(
                        stated_in,
                        format!(
                            "[input.quantization] says scale {} and zero point {}, but model {} reads input `{}` with scale {} and zero point {} (its DequantizeLinear): remove the table or make it agree",
                            s.scale, s.zero_point, self.path.display(), input.name, own.scale, own.zero_point
                        ),
                    ))
                }
                (Some(own), _) => Some(own),
                (None, Some(s)) => Some(s),
                (None, None) => {
                    return Err(Error::model(
                        &self.path,
                        format!(
                            "input `{}` is {} and nothing says how golden samples become its codes: no DequantizeLinear reads it; state them in the golden set's family.toml as [input.quantization] scale = …, zero_point = … (or `golden init --input-quant SCALE:ZERO_POINT`)",
                            input.name, input.dtype
                        ),
                    ))
                }
            };
        }
        Ok(())
    }

    /// Reads an ONNX file (and its external data), checks it, and inventories it with its inputs
    /// at `shapes`. Fails when the file is not a usable ONNX model (missing, truncated, invalid,
    /// a symbolic dimension nothing fixes, external data out of bounds); unknown ops are
    /// findings.
    pub fn load_with(path: &Path, shapes: &InputShapes) -> Result<ModelInventory> {
        let bytes = read_bytes(path)?;
        if tflite::is_tflite(&bytes) {
            return tflite::inventory(path, &bytes, shapes);
        }
        let (proto, artifact) = read_checked_bytes(path, bytes)?;
        let facts = GraphFacts::new(path, &proto, shapes)?;
        Ok(Self::build(path, artifact, &proto, facts))
    }

    fn build(path: &Path, artifact: external::Artifact, proto: &pb::ModelProto, facts: GraphFacts) -> Self {
        let graph = proto.graph.as_ref().expect("decode_model checks the graph is present");
        let nodes: Vec<NodeInfo> =
            graph.node.iter().enumerate().map(|(i, n)| facts.node_info(i, n)).collect();
        let mut op_histogram = BTreeMap::new();
        for n in &nodes {
            *op_histogram.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        let quantization = Quantization::of(&op_histogram);
        let activations = nodes.iter().flat_map(activation_tensors).collect();
        ModelInventory {
            path: path.to_path_buf(),
            format: ModelFormat::Onnx,
            file_size_bytes: artifact.size_bytes,
            sha256: artifact.sha256,
            files: artifact.files,
            opset: proto
                .opset_import
                .iter()
                .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
                .map(|o| o.version),
            producer: format!("{} {}", proto.producer_name, proto.producer_version).trim().to_string(),
            inputs: facts.inputs.clone(),
            outputs: facts.outputs.clone(),
            node_count: nodes.len(),
            parameter_count: facts.parameter_count(),
            weight_bytes: facts.weight_bytes_by_dtype().values().sum(),
            weight_bytes_by_dtype: facts.weight_bytes_by_dtype(),
            total_macs: nodes.iter().map(|n| n.macs).sum(),
            quantized: quantization.is_quantized(),
            quantization,
            quantized_tensors: None,
            findings: facts.findings.clone(),
            op_histogram,
            nodes,
            activations,
        }
    }

    /// The node that leaves the total multiply-accumulates unknown: the first whose output shape
    /// inference could not tell (the shapes after it depend on it), else the first whose work is
    /// in a subgraph. `None` when the total is known.
    pub fn unknown_macs_at(&self) -> Option<&NodeInfo> {
        if self.total_macs.is_some() {
            return None;
        }
        let shape_unknown = |n: &&NodeInfo| n.output_shapes.iter().any(Option::is_none);
        self.nodes.iter().find(shape_unknown).or_else(|| self.nodes.iter().find(|n| n.macs.is_none()))
    }

    /// The first node that writes a tensor of unknown size at run time (its output shape could not
    /// be inferred): the peak activation figure counts only the tensors before and beside it.
    pub fn unknown_activation_at(&self) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.op_type != "Constant" && n.output_shapes.iter().any(Option::is_none))
    }

    /// Why the peak activation figure is a lower bound, when it is one (see
    /// [`Self::unknown_activation_at`]).
    pub fn activations_lower_bound_note(&self) -> Option<String> {
        self.unknown_activation_at().map(|n| {
            format!("a lower bound: the tensors node `{}` ({}) writes are of unknown size", n.name, n.op_type)
        })
    }

    /// Per node, whether its outputs vary with the model's inputs (some input of it is a graph
    /// input or a varying node's output). The others compute on constants only (weights, their
    /// dequantization, shape arithmetic): a chip toolchain folds them at conversion.
    pub fn varying_nodes(&self) -> Vec<bool> {
        let mut varying: std::collections::HashSet<&str> =
            self.inputs.iter().map(|t| t.name.as_str()).collect();
        self.nodes
            .iter()
            .map(|n| {
                let varies = n.inputs.iter().any(|t| varying.contains(t.as_str()));
                if varies {
                    varying.extend(n.outputs.iter().map(String::as_str));
                }
                varies
            })
            .collect()
    }

    /// Per node, the weight bytes it reads when the model runs: its own initializers plus those
    /// that reach it through constant-only nodes (a QDQ graph's weights enter a Conv through a
    /// DequantizeLinear that the toolchain folds, so the Conv is what streams them). A constant
    /// tensor feeding several nodes is credited to the first; constant-only nodes read nothing
    /// at run time. (An initializer read by several nodes counts for each, as in `NodeInfo`.)
    pub fn run_time_weight_bytes(&self) -> Vec<u64> {
        self.weight_flow().0
    }

    /// [`Self::run_time_weight_bytes`], and the constant tensors that carry weight bytes to their
    /// consumers (a toolchain folds them into those weights). A constant-only node's output
    /// carries the bytes of its own initializers and of the weight tensors it reads; several
    /// outputs (a constant Split) give them all to the first.
    fn weight_flow(&self) -> (Vec<u64>, std::collections::HashSet<&str>) {
        let varying = self.varying_nodes();
        let mut carried: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        let mut weight_tensors = std::collections::HashSet::new();
        let per_node = self
            .nodes
            .iter()
            .zip(varying)
            .map(|(n, varies)| {
                let inherited: u64 = n
                    .inputs
                    .iter()
                    .filter(|t| !t.is_empty())
                    .filter_map(|t| carried.remove(t.as_str()))
                    .sum();
                let bytes = n.weight_bytes + inherited;
                if varies {
                    return bytes;
                }
                if let Some(out) = n.outputs.first().filter(|o| !o.is_empty() && bytes > 0) {
                    carried.insert(out.as_str(), bytes);
                    weight_tensors.insert(out.as_str());
                }
                0
            })
            .collect();
        (per_node, weight_tensors)
    }

    /// Largest sum of activation bytes alive at once, walking nodes in file order (ONNX nodes
    /// are topologically sorted); a tensor lives from its producer to its last consumer. A
    /// constant tensor derived from weights (a dequantized weight) is not an activation: the
    /// toolchain folds it into the weights, which are counted already (an exporter that lists
    /// every weight's DequantizeLinear first would otherwise keep all weights "alive" from the
    /// start), and neither is a `Constant` node's tensor. Other constants (a mask built from shapes)
    /// stay.
    pub fn peak_activation_bytes(&self) -> u64 {
        let (at_start, per_node) = self.activation_liveness();
        peak_liveness(at_start, &per_node)
    }

    /// Activation bytes alive while each node runs (its outputs, and every tensor still to be
    /// read at or after it), and before the first (the graph's inputs): what an accelerator's
    /// on-chip memory must hold for that node's tensors to stay on chip. Same rules as
    /// [`Self::peak_activation_bytes`], which is the largest of them.
    pub fn activation_liveness(&self) -> (u64, Vec<u64>) {
        let mut last_use: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for input in &n.inputs {
                last_use.insert(input.as_str(), i);
            }
        }
        for out in &self.outputs {
            last_use.insert(out.name.as_str(), usize::MAX);
        }
        let mut sizes: BTreeMap<&str, u64> =
            self.activations.iter().map(|a| (a.name.as_str(), a.bytes)).collect();
        for folded in self.weight_flow().1 {
            sizes.remove(folded);
        }
        for t in &self.inputs {
            sizes.insert(t.name.as_str(), t.shape.iter().product::<usize>() as u64 * 4);
        }
        let mut live: u64 = self.inputs.iter().map(|t| sizes[t.name.as_str()]).sum();
        let at_start = live;
        let mut per_node = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            live += n.outputs.iter().filter_map(|o| sizes.get(o.as_str())).sum::<u64>();
            per_node.push(live);
            for t in n.inputs.iter().chain(&n.outputs) {
                if last_use.get(t.as_str()).copied().unwrap_or(i) == i {
                    if let Some(b) = sizes.get(t.as_str()) {
                        live = live.saturating_sub(*b);
                    }
                }
            }
        }
        (at_start, per_node)
    }
}

/// The tensors a node writes at run time. A `Constant` node's tensor is a weight (see
/// `GraphFacts`): the toolchain stores it with the weights, where it is counted already.
fn activation_tensors(n: &NodeInfo) -> Vec<ActivationTensor> {
    if n.op_type == "Constant" {
        return Vec::new();
    }
    n.outputs
        .iter()
        .zip(&n.output_shapes)
        .filter_map(|(name, shape)| {
            let shape = shape.clone()?;
            let elem = n.dtype.map_or(4, graph::dtype_bytes_for_activation);
            Some(ActivationTensor {
                name: name.clone(),
                producer: n.name.clone(),
                bytes: shape.iter().product::<usize>() as u64 * elem,
                shape,
            })
        })
        .collect()
}

/// How a model is quantized, read from its operators or, in TFLite, its tensors (serialised as
/// `qdq`, `qoperator`, `integer`, `full_integer`, `dynamic_range` or `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    /// onnxruntime's QLinear operators (`QLinearConv`, `QLinearMatMul`).
    QOperator,
    /// Integer operators with float rescaling around them (`ConvInteger`, `MatMulInteger`).
    Integer,
    /// Quantize/Dequantize pairs around float operators.
    Qdq,
    /// TFLite full-integer: operators compute on 8-bit tensors, each with its own scale and
    /// zero point (per channel for convolution weights).
    FullInteger,
    /// TFLite dynamic range: 8-bit weights, float activations.
    DynamicRange,
    /// A float model.
    None,
}

impl Quantization {
    fn of(ops: &BTreeMap<String, usize>) -> Self {
        let has = |op: &str| ops.contains_key(op);
        if has("QLinearConv") || has("QLinearMatMul") {
            Quantization::QOperator
        } else if has("ConvInteger") || has("MatMulInteger") {
            Quantization::Integer
        } else if has("DequantizeLinear") {
            Quantization::Qdq
        } else {
            Quantization::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::QOperator => "qoperator",
            Quantization::Integer => "integer",
            Quantization::Qdq => "qdq",
            Quantization::FullInteger => "full_integer",
            Quantization::DynamicRange => "dynamic_range",
            Quantization::None => "none",
        }
    }

    pub fn is_quantized(self) -> bool {
        self != Quantization::None
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The files of a model's artifact and their digest, without an inventory (so without input
/// shapes): what comparing a model against a certificate needs.
pub fn artifact(path: &Path) -> Result<external::Artifact> {
    let bytes = read_bytes(path)?;
    if tflite::is_tflite(&bytes) {
        tflite::verified(path, &bytes)?;
        return Ok(external::single_file(path, &bytes));
    }
    read_checked_bytes(path, bytes).map(|(_, artifact)| artifact)
}

/// Decodes and checks a model's bytes, with its external data read into the protobuf.
fn read_checked_bytes(path: &Path, bytes: Vec<u8>) -> Result<(pb::ModelProto, external::Artifact)> {
    let mut proto = decode_model(path, &bytes)?;
    checker::check(path, &proto)?;
    let graph = proto.graph.as_mut().expect("decode_model checks the graph is present");
    let artifact = external::resolve(path, &bytes, graph)?;
    Ok((proto, artifact))
}

/// A model path with a clear error when it does not exist.
pub fn require_file(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::model(path, "model file not found"))
    }
}

/// The largest of [`ModelInventory::activation_liveness`]'s figures: the peak activation bytes.
pub fn peak_liveness(at_start: u64, per_node: &[u64]) -> u64 {
    per_node.iter().copied().fold(at_start, u64::max)
}

#[cfg(test)]
pub(crate) mod tests;
