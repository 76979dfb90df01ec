//! Static facts about an ONNX graph: initializers, tensor types, shapes (via tract's shape
//! inference), and which ops the engine implements.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType as PbType;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::checker::tensor_byte_len;
use super::shapes::{self, Dim, InputShapes};
use super::{
    macs, Finding, InputQuantization, NodeAttrs, NodeInfo, OutputInfo, QuantizationSource, TensorInfo,
};
use crate::profile::DType;
use crate::vocab::{Error, Result};

/// Decodes ONNX protobuf bytes, with a clear error for empty, truncated or foreign files.
pub fn decode_model(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto> {
    if bytes.is_empty() {
        return Err(Error::model(path, "file is empty, expected an ONNX model or a TFLite file"));
    }
    let proto = pb::ModelProto::decode(bytes).map_err(|e| {
        // A file that is not TFLite (no `TFL3` identifier) is read as ONNX: the message says
        // both, since a user handing over a damaged `.tflite` file reads this one.
        Error::model(
            path,
            format!("neither a TFLite file (no `TFL3` identifier at byte 4) nor a valid ONNX protobuf (truncated or corrupt file?): {e}"),
        )
    })?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| Error::model(path, "ONNX model has no graph (truncated or corrupt file?)"))?;
    if graph.node.is_empty() {
        return Err(Error::model(path, "ONNX graph has no nodes (truncated or corrupt file?)"));
    }
    Ok(proto)
}

pub(super) struct Initializer {
    pub elem: i32,
    pub dims: Vec<usize>,
    pub bytes: u64,
}

/// What is known about every tensor of the graph.
pub struct GraphFacts {
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<OutputInfo>,
    pub(super) initializers: HashMap<String, Initializer>,
    shapes: HashMap<String, Vec<usize>>,
    elem_types: HashMap<String, i32>,
    pub findings: Vec<Finding>,
}

impl GraphFacts {
    /// Facts of a checked model (see `checker`), with graph inputs at `shapes`.
    pub fn new(path: &Path, proto: &pb::ModelProto, shapes: &InputShapes) -> Result<GraphFacts> {
        let graph = proto.graph.as_ref().expect("checked by decode_model");
        let initializers = constant_tensors(graph);
        let graph_inputs: Vec<&pb::ValueInfoProto> =
            graph.input.iter().filter(|i| !initializers.contains_key(&i.name)).collect();
        shapes::check_names(path, shapes, graph_inputs.iter().map(|i| i.name.as_str()))?;
        let single = graph_inputs.len() == 1;
        let mut inputs: Vec<TensorInfo> =
            graph_inputs.iter().map(|i| input_info(path, i, shapes, single)).collect::<Result<_>>()?;
        for input in inputs.iter_mut().filter(|i| InputQuantization::code_range(&i.dtype).is_some()) {
            input.quantization = input_quantization(graph, &input.name);
        }
        let mut findings = unimplemented_ops(graph);
        let inferred = infer_shapes(path, proto, &inputs, &mut findings);
        findings.extend(dropped_declared_shapes(graph, &inferred));
        let outputs = graph.output.iter().map(|o| output_info(path, o, &inferred)).collect::<Result<_>>()?;
        let elem_types = propagate_types(graph, &inputs, &initializers);
        Ok(GraphFacts { inputs, outputs, initializers, shapes: inferred, elem_types, findings })
    }

    pub fn parameter_count(&self) -> u64 {
        self.initializers.values().map(|i| i.dims.iter().product::<usize>() as u64).sum()
    }

    pub fn weight_bytes_by_dtype(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for i in self.initializers.values() {
            *out.entry(elem_name(i.elem).to_string()).or_insert(0) += i.bytes;
        }
        out
    }

    pub fn shape(&self, tensor: &str) -> Option<Vec<usize>> {
        if let Some(init) = self.initializers.get(tensor) {
            return Some(init.dims.clone());
        }
        self.shapes.get(tensor).cloned()
    }

    pub(super) fn node_info(&self, index: usize, node: &pb::NodeProto) -> NodeInfo {
        let name = if node.name.is_empty() { format!("{}_{index}", node.op_type) } else { node.name.clone() };
        let input_shapes: Vec<_> = node.input.iter().map(|i| self.shape(i)).collect();
        let output_shapes: Vec<_> = node.output.iter().map(|o| self.shape(o)).collect();
        let attrs = node_attrs(node, &input_shapes);
        let dtype = self.compute_dtype(node);
        let work = macs::node_work(&node.op_type, &attrs, &input_shapes, &output_shapes);
        let weight_bytes = node.input.iter().filter_map(|i| self.initializers.get(i)).map(|i| i.bytes).sum();
        let act = dtype.map_or(4, dtype_bytes_for_activation);
        let output_bytes = output_shapes
            .iter()
            .map(|s| s.as_ref().map(|s| s.iter().product::<usize>() as u64 * act))
            .sum::<Option<u64>>();
        NodeInfo {
            name,
            op_type: node.op_type.clone(),
            domain: node.domain.clone(),
            dtype,
            inputs: node.input.clone(),
            outputs: node.output.clone(),
            input_shapes,
            output_shapes,
            attrs,
            macs: work.map(|w| w.macs),
            other_ops: work.map(|w| w.other_ops),
            weight_bytes,
            output_bytes,
        }
    }

    /// The type a node computes in. In a QDQ graph a Conv reads DequantizeLinear outputs (f32 in
    /// ONNX) but a chip toolchain runs it on the quantized type, so that type is what counts.
    fn compute_dtype(&self, node: &pb::NodeProto) -> Option<DType> {
        let elem = match node.op_type.as_str() {
            "QuantizeLinear" => self.elem_types.get(node.output.first()?).copied(),
            "DequantizeLinear" | "QLinearConv" | "QLinearMatMul" | "ConvInteger" | "MatMulInteger" => {
                self.elem_types.get(node.input.first()?).copied()
            }
            _ => node
                .input
                .iter()
                .filter(|i| !self.initializers.contains_key(*i))
                .find_map(|i| self.elem_types.get(&format!("{i}#quantized")).copied())
                .or_else(|| self.elem_types.get(node.input.first()?).copied()),
        };
        elem.and_then(dtype_of)
    }
}

/// The graph's constant tensors by name: its initializers, and the tensors of its `Constant`
/// nodes, where PaddlePaddle's exporter (paddle2onnx 1.x and 2.x) writes every weight. Both are
/// weights to a chip toolchain; counting only initializers gave such a model 0 parameters.
fn constant_tensors(graph: &pb::GraphProto) -> HashMap<String, Initializer> {
    let of = |t: &pb::TensorProto| Initializer {
        elem: t.data_type,
        dims: t.dims.iter().map(|d| (*d).max(0) as usize).collect(),
        bytes: tensor_byte_len(t).unwrap_or(0),
    };
    let constants = constant_nodes(graph).map(|(name, value)| (name.to_string(), of(value)));
    graph.initializer.iter().map(|t| (t.name.clone(), of(t))).chain(constants).collect()
}

/// Each `Constant` node's output name and its tensor (the `value` attribute; the scalar and
/// list forms, `value_float` and the like, are not weights).
fn constant_nodes(graph: &pb::GraphProto) -> impl Iterator<Item = (&str, &pb::TensorProto)> {
    graph
        .node
        .iter()
        .filter(|n| n.op_type == "Constant" && matches!(n.domain.as_str(), "" | "ai.onnx"))
        .filter_map(|n| {
            let value = n.attribute.iter().find(|a| a.name == "value")?.t.as_ref()?;
            Some((n.output.first()?.as_str(), value))
        })
}

fn tensor_type<'a>(path: &Path, v: &'a pb::ValueInfoProto) -> Result<&'a pb::type_proto::Tensor> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => Ok(t),
        _ => Err(Error::model(path, format!("graph input/output `{}` has no tensor type", v.name))),
    }
}

/// A graph input at the shape it runs at: declared, or fixed by `shapes`.
fn input_info(path: &Path, v: &pb::ValueInfoProto, shapes: &InputShapes, single: bool) -> Result<TensorInfo> {
    let tensor = tensor_type(path, v)?;
    let declared = shapes::declared_dims(tensor);
    let shape = shapes::resolve(path, &v.name, declared.as_deref(), shapes, single)?;
    Ok(TensorInfo {
        name: v.name.clone(),
        shape,
        dtype: elem_name(tensor.elem_type).to_string(),
        quantization: None,
    })
}

/// How an 8-bit integer graph input is read, when a DequantizeLinear reads it directly with a
/// per-tensor scale and zero point (the QDQ form of a model taking image codes).
fn input_quantization(graph: &pb::GraphProto, input: &str) -> Option<InputQuantization> {
    let dq = graph
        .node
        .iter()
        .find(|n| n.op_type == "DequantizeLinear" && n.input.first().map(String::as_str) == Some(input))?;
    let scale = scalar(graph, dq.input.get(1)?)? as f32;
    let zero_point = match dq.input.get(2).filter(|z| !z.is_empty()) {
        Some(z) => scalar(graph, z)? as i32,
        None => 0,
    };
    (scale.is_finite() && scale > 0.0).then_some(InputQuantization {
        scale,
        zero_point,
        source: QuantizationSource::Model,
    })
}

/// The value of a one-element constant tensor (an initializer, or a `Constant` node's) of type
/// float, uint8 or int8.
fn scalar(graph: &pb::GraphProto, name: &str) -> Option<f64> {
    let constant = || constant_nodes(graph).find(|(output, _)| *output == name).map(|(_, t)| t);
    let t = graph.initializer.iter().find(|t| t.name == name).or_else(constant)?;
    if t.dims.iter().product::<i64>() != 1 {
        return None;
    }
    let raw = t.raw_data.as_slice();
    match t.data_type {
        d if d == PbType::Float as i32 => t
            .float_data
            .first()
            .copied()
            .or_else(|| Some(f32::from_le_bytes(raw.get(..4)?.try_into().ok()?)))
            .map(f64::from),
        d if d == PbType::Uint8 as i32 => {
            t.int32_data.first().map(|&v| f64::from(v)).or(raw.first().map(|&b| f64::from(b)))
        }
        d if d == PbType::Int8 as i32 => {
            t.int32_data.first().map(|&v| f64::from(v)).or(raw.first().map(|&b| f64::from(b as i8)))
        }
        _ => None,
    }
}

/// A graph output at its inferred shape; where inference could not tell, the dimensions the file
/// fixes, and the others unknown.
fn output_info(
    path: &Path,
    v: &pb::ValueInfoProto,
    inferred: &HashMap<String, Vec<usize>>,
) -> Result<OutputInfo> {
    let tensor = tensor_type(path, v)?;
    let shape = match inferred.get(&v.name) {
        Some(dims) => Some(dims.iter().map(|&d| Some(d)).collect()),
        None => shapes::declared_dims(tensor)
            .map(|dims| dims.iter().map(|d| if let Dim::Fixed(n) = d { Some(*n) } else { None }).collect()),
    };
    Ok(OutputInfo {
        name: v.name.clone(),
        shape,
        dtype: elem_name(tensor.elem_type).to_string(),
        quantization: None,
    })
}

/// Ops outside tract's ONNX operator register are findings. tract registers the
/// `com.microsoft` contrib ops it implements (FastGelu, Attention, ...) by name beside the
/// standard ones; any other domain is a finding.
fn unimplemented_ops(graph: &pb::GraphProto) -> Vec<Finding> {
    let register = tract_onnx::onnx().op_register;
    graph
        .node
        .iter()
        .filter(|n| {
            let known_domain = matches!(n.domain.as_str(), "" | "ai.onnx" | "com.microsoft");
            !known_domain || !register.0.contains_key(&n.op_type)
        })
        .map(|n| Finding {
            node: n.name.clone(),
            op_type: n.op_type.clone(),
            message: format!(
                "operator `{}`{} is not implemented by the tract engine: the model cannot be replayed",
                n.op_type,
                if n.domain.is_empty() { String::new() } else { format!(" (domain {})", n.domain) }
            ),
        })
        .collect()
}

/// Shapes of every named tensor, from tract's shape inference with the inputs at their resolved
/// shapes. The model passed the checker, but tract is a large parser fed untrusted files: a panic
/// in it becomes a finding (figures unknown), never a crash of the inventory.
fn infer_shapes(
    path: &Path,
    proto: &pb::ModelProto,
    inputs: &[TensorInfo],
    findings: &mut Vec<Finding>,
) -> HashMap<String, Vec<usize>> {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut found = Vec::new();
        let shapes = tract_shapes(path, proto, inputs, &mut found);
        (shapes, found)
    }));
    match run {
        Ok((shapes, found)) => {
            findings.extend(found);
            shapes
        }
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            findings.push(Finding {
                node: String::new(),
                op_type: String::new(),
                message: format!("the engine crashed during shape inference ({why}); figures are unknown"),
            });
            HashMap::new()
        }
    }
}

fn tract_shapes(
    path: &Path,
    proto: &pb::ModelProto,
    inputs: &[TensorInfo],
    findings: &mut Vec<Finding>,
) -> HashMap<String, Vec<usize>> {
    let dir = path.parent().and_then(|p| p.to_str());
    let parsed = match tract_onnx::onnx().parse(&without_declared_shapes(proto), dir) {
        Ok(p) => p,
        Err(e) => {
            findings.push(Finding {
                node: String::new(),
                op_type: String::new(),
                message: format!("engine could not parse the graph: {e}"),
            });
            return HashMap::new();
        }
    };
    let mut model = parsed.model;
    for (ix, input) in inputs.iter().enumerate() {
        let dt = datum_type(&input.dtype).unwrap_or(f32::datum_type());
        let _ = model.set_input_fact(ix, InferenceFact::dt_shape(dt, input.shape.clone()));
    }
    if let Err(e) = model.analyse(true) {
        findings.push(Finding {
            node: String::new(),
            op_type: String::new(),
            message: format!("shape inference stopped early, some figures are unknown: {e}"),
        });
    }
    parsed
        .outlets_by_name
        .iter()
        .filter_map(|(name, outlet)| {
            let fact = model.outlet_fact(*outlet).ok()?;
            let dims = fact.shape.concretize()?;
            let dims: Option<Vec<usize>> = dims.iter().map(|d| d.to_i64().ok().map(|x| x as usize)).collect();
            Some((name.clone(), dims?))
        })
        .collect()
}

/// The model without its intermediate `value_info`. tract takes a declared shape as a fact, so
/// one it cannot read or one that contradicts the graph stops the inference of every shape after
/// it; exporters write both (Paddle2ONNX models after onnxruntime's symbolic shape inference
/// carry `floor(DynamicDimension.1/2 - 1/2) + 1`; a graph edited after export keeps stale ones).
/// With the inputs fixed, the graph alone determines every shape.
fn without_declared_shapes(proto: &pb::ModelProto) -> std::borrow::Cow<'_, pb::ModelProto> {
    let graph = proto.graph.as_ref().expect("checked by decode_model");
    if graph.value_info.is_empty() {
        return std::borrow::Cow::Borrowed(proto);
    }
    let mut bare = proto.clone();
    bare.graph.as_mut().expect("cloned with its graph").value_info.clear();
    std::borrow::Cow::Owned(bare)
}

/// Most examples a finding names of one kind of dropped declared shape.
const DROPPED_EXAMPLES: usize = 3;

/// One finding for the intermediate shapes the file declares that inference did not use: those
/// written as expressions, and those that contradict what the graph computes. Declared shapes
/// that agree, or name a dimension by a plain symbol, say nothing worth a finding.
fn dropped_declared_shapes(
    graph: &pb::GraphProto,
    inferred: &HashMap<String, Vec<usize>>,
) -> Option<Finding> {
    let mut expressions = Vec::new();
    let mut contradictions = Vec::new();
    for v in &graph.value_info {
        let Some(pb::type_proto::Value::TensorType(tensor)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            continue;
        };
        let Some(declared) = shapes::declared_dims(tensor) else { continue };
        if let Some(expr) = declared.iter().find_map(|d| match d {
            Dim::Symbolic(s) if !is_plain_symbol(s) => Some(s),
            _ => None,
        }) {
            expressions.push(format!("`{}`: `{expr}`", v.name));
        } else if let Some(computed) = inferred.get(&v.name) {
            let agrees = declared.len() == computed.len()
                && declared.iter().zip(computed).all(|(d, &c)| !matches!(d, Dim::Fixed(n) if *n != c));
            if !agrees {
                let declared: Vec<String> = declared.iter().map(Dim::label).collect();
                contradictions.push(format!(
                    "`{}`: declared [{}], computed {computed:?}",
                    v.name,
                    declared.join(", ")
                ));
            }
        }
    }
    if expressions.is_empty() && contradictions.is_empty() {
        return None;
    }
    let kind = |what: &str, found: &[String]| {
        (!found.is_empty()).then(|| {
            let more = found.len().saturating_sub(DROPPED_EXAMPLES);
            let examples = found[..found.len().min(DROPPED_EXAMPLES)].join("; ");
            format!(
                "{} {what} ({examples}{})",
                found.len(),
                if more > 0 { format!("; {more} more") } else { String::new() }
            )
        })
    };
    let kinds: Vec<String> =
        [kind("written as expressions", &expressions), kind("contradicting the graph", &contradictions)]
            .into_iter()
            .flatten()
            .collect();
    Some(Finding {
        node: String::new(),
        op_type: String::new(),
        message: format!(
            "the file declares shapes for {} intermediate tensors; every shape here is inferred from the graph, and these declarations were ignored: {}",
            graph.value_info.len(),
            kinds.join(", ")
        ),
    })
}

/// A dimension name (`N`, `batch_size`, `p2o.DynamicDimension.0`, `unk__12`) rather than an
/// expression over names.
fn is_plain_symbol(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':'))
}

/// Element types through the graph. A DequantizeLinear output is recorded twice: as f32 (its
/// ONNX type) and, under `name#quantized`, as the quantized type it came from.
fn propagate_types(
    graph: &pb::GraphProto,
    inputs: &[TensorInfo],
    initializers: &HashMap<String, Initializer>,
) -> HashMap<String, i32> {
    let mut types: HashMap<String, i32> = initializers.iter().map(|(k, v)| (k.clone(), v.elem)).collect();
    for i in inputs {
        types.insert(i.name.clone(), pb_type_of(&i.dtype));
    }
    let float = PbType::Float as i32;
    for node in &graph.node {
        let first = node.input.first().and_then(|i| types.get(i)).copied();
        let out_type = match node.op_type.as_str() {
            "QuantizeLinear" => {
                node.input.get(2).and_then(|z| types.get(z)).copied().or(Some(PbType::Uint8 as i32))
            }
            "DequantizeLinear" => {
                if let (Some(out), Some(q)) = (node.output.first(), first) {
                    types.insert(format!("{out}#quantized"), q);
                }
                Some(float)
            }
            "QLinearConv" | "QLinearMatMul" => node.input.get(7).and_then(|z| types.get(z)).copied(),
            "ConvInteger" | "MatMulInteger" => Some(PbType::Int32 as i32),
            "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" => Some(PbType::Int64 as i32),
            "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "Not" | "And" | "Or" => {
                Some(PbType::Bool as i32)
            }
            _ => {
                // A chip runs the ops between a DequantizeLinear and the next QuantizeLinear in
                // the quantized type too (the toolchain fuses and requantizes), so that type
                // flows through them.
                let quantized = node.input.iter().find_map(|i| types.get(&format!("{i}#quantized")).copied());
                if let Some(q) = quantized {
                    for o in &node.output {
                        types.insert(format!("{o}#quantized"), q);
                    }
                }
                first
            }
        };
        if let Some(t) = out_type {
            for o in &node.output {
                types.entry(o.clone()).or_insert(t);
            }
        }
    }
    types
}

fn node_attrs(node: &pb::NodeProto, input_shapes: &[Option<Vec<usize>>]) -> NodeAttrs {
    let ints = |name: &str| -> Option<Vec<usize>> {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.iter().map(|&x| x.max(0) as usize).collect())
    };
    let int = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i.max(0) as usize);
    let weight_index = match node.op_type.as_str() {
        "QLinearConv" => 3,
        _ => 1,
    };
    let kernel = ints("kernel_shape").unwrap_or_else(|| {
        if node.op_type.contains("Conv") {
            input_shapes
                .get(weight_index)
                .cloned()
                .flatten()
                .map(|w| w[2.min(w.len())..].to_vec())
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    });
    NodeAttrs {
        kernel,
        strides: ints("strides").unwrap_or_default(),
        pads: ints("pads").unwrap_or_default(),
        group: int("group"),
        mode: node
            .attribute
            .iter()
            .find(|a| a.name == "mode")
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()),
    }
}

pub(crate) fn elem_name(t: i32) -> &'static str {
    match PbType::try_from(t) {
        Ok(PbType::Float) => "float32",
        Ok(PbType::Uint8) => "uint8",
        Ok(PbType::Int8) => "int8",
        Ok(PbType::Uint16) => "uint16",
        Ok(PbType::Int16) => "int16",
        Ok(PbType::Int32) => "int32",
        Ok(PbType::Int64) => "int64",
        Ok(PbType::Bool) => "bool",
        Ok(PbType::Float16) => "float16",
        Ok(PbType::Double) => "float64",
        Ok(PbType::Bfloat16) => "bfloat16",
        Ok(PbType::Uint32) => "uint32",
        Ok(PbType::Uint64) => "uint64",
        _ => "other",
    }
}

fn pb_type_of(name: &str) -> i32 {
    (0..20).find(|&t| elem_name(t) == name).unwrap_or(PbType::Float as i32)
}

/// tract's type for an inventory dtype name (`float16`, ...).
pub(crate) fn datum_type(name: &str) -> Option<DatumType> {
    Some(match name {
        "float32" => f32::datum_type(),
        "float16" => f16::datum_type(),
        "float64" => f64::datum_type(),
        "int8" => i8::datum_type(),
        "uint8" => u8::datum_type(),
        "int32" => i32::datum_type(),
        "int64" => i64::datum_type(),
        "bool" => bool::datum_type(),
        _ => return None,
    })
}

fn dtype_of(t: i32) -> Option<DType> {
    Some(match PbType::try_from(t).ok()? {
        PbType::Float | PbType::Double => DType::Fp32,
        PbType::Float16 => DType::Fp16,
        PbType::Bfloat16 => DType::Bf16,
        PbType::Int8 => DType::Int8,
        PbType::Uint8 => DType::Uint8,
        PbType::Int16 | PbType::Uint16 => DType::Int16,
        _ => return None,
    })
}

/// Bytes per activation element on a chip for a node computing in `dtype`.
pub(crate) fn dtype_bytes_for_activation(dtype: DType) -> u64 {
    match dtype {
        DType::Int4 | DType::Int8 | DType::Uint8 => 1,
        DType::Int16 | DType::Fp16 | DType::Bf16 => 2,
        DType::Fp32 => 4,
    }
}
