//! TFLite files (`.tflite`, LiteRT's flatbuffer) as certifiable artifacts: the inventory of the
//! main subgraph read statically from the verified flatbuffer. A TFLite file stores every
//! tensor's shape and type, its weights in buffers and each tensor's quantization (per tensor or
//! per channel), so nothing is inferred here; the builtin operators are named in the profiles'
//! ONNX vocabulary through [`OPERATOR_TABLE`], the one mapping `docs/tflite.md` documents.

use std::collections::BTreeMap;
use std::path::Path;

use tract_tflite::tflite::{self as fb, BuiltinOperator as Op, TensorType};

use super::shapes::{self, Dim, InputShapes, MAX_DIM, MAX_ELEMENTS};
use super::{
    activation_tensors, external, macs, Finding, InputQuantization, ModelFormat, ModelInventory, NodeAttrs,
    NodeInfo, OutputInfo, Quantization, QuantizationSource, QuantizedTensors, TensorInfo,
};
use crate::profile::DType;
use crate::vocab::{Error, Result};

/// Whether `bytes` hold a TFLite flatbuffer: its file identifier `TFL3` at offset 4.
pub fn is_tflite(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"TFL3".as_slice())
}

/// The flatbuffer, verified: every offset, vector and string inside the file, nesting and table
/// count bounded. Nothing reads a TFLite file (tract's loader included) before this passed.
pub fn verified<'a>(path: &Path, bytes: &'a [u8]) -> Result<fb::Model<'a>> {
    let options = flatbuffers::VerifierOptions {
        max_depth: 64,
        max_tables: 4_000_000,
        max_apparent_size: 1 << 31,
        ignore_missing_null_terminator: false,
    };
    let model = fb::root_as_model_with_opts(&options, bytes).map_err(|e| {
        Error::model(path, format!("not a valid TFLite flatbuffer (truncated or corrupt file?): {e}"))
    })?;
    let main = model.subgraphs().filter(|s| !s.is_empty()).map(|s| s.get(0));
    match main.and_then(|s| s.operators()).filter(|ops| !ops.is_empty()) {
        Some(_) => Ok(model),
        None => Err(Error::model(
            path,
            "TFLite model has no operators in its main subgraph (truncated or corrupt file?)",
        )),
    }
}

/// TFLite builtin operators and the ONNX operator each is in the profiles' vocabulary: the one
/// table, listed in `docs/tflite.md` (a test keeps the two equal). A builtin missing here keeps
/// its TFLite name (`tflite:NAME`), which no profile lists, and a finding says so.
pub const OPERATOR_TABLE: &[(Op, &str)] = &[
    (Op::ABS, "Abs"),
    (Op::ADD, "Add"),
    (Op::ARG_MAX, "ArgMax"),
    (Op::ARG_MIN, "ArgMin"),
    (Op::AVERAGE_POOL_2D, "AveragePool"),
    (Op::BATCH_MATMUL, "MatMul"),
    (Op::BROADCAST_TO, "Expand"),
    (Op::CAST, "Cast"),
    (Op::CEIL, "Ceil"),
    (Op::CONCATENATION, "Concat"),
    (Op::CONV_2D, "Conv"),
    (Op::COS, "Cos"),
    (Op::DEPTH_TO_SPACE, "DepthToSpace"),
    (Op::DEPTHWISE_CONV_2D, "Conv"),
    (Op::DEQUANTIZE, "DequantizeLinear"),
    (Op::DIV, "Div"),
    (Op::ELU, "Elu"),
    (Op::EQUAL, "Equal"),
    (Op::EXP, "Exp"),
    (Op::EXPAND_DIMS, "Unsqueeze"),
    (Op::FLOOR, "Floor"),
    (Op::FULLY_CONNECTED, "Gemm"),
    (Op::GATHER, "Gather"),
    (Op::GATHER_ND, "GatherND"),
    (Op::GELU, "Gelu"),
    (Op::GREATER, "Greater"),
    (Op::GREATER_EQUAL, "GreaterOrEqual"),
    (Op::HARD_SWISH, "HardSwish"),
    (Op::L2_NORMALIZATION, "LpNormalization"),
    (Op::LEAKY_RELU, "LeakyRelu"),
    (Op::LESS, "Less"),
    (Op::LESS_EQUAL, "LessOrEqual"),
    (Op::LOCAL_RESPONSE_NORMALIZATION, "LRN"),
    (Op::LOG, "Log"),
    (Op::LOG_SOFTMAX, "LogSoftmax"),
    (Op::LOGICAL_AND, "And"),
    (Op::LOGICAL_NOT, "Not"),
    (Op::LOGICAL_OR, "Or"),
    (Op::LOGISTIC, "Sigmoid"),
    (Op::MAX_POOL_2D, "MaxPool"),
    (Op::MAXIMUM, "Max"),
    (Op::MEAN, "ReduceMean"),
    (Op::MINIMUM, "Min"),
    (Op::MIRROR_PAD, "Pad"),
    (Op::MUL, "Mul"),
    (Op::NEG, "Neg"),
    (Op::PACK, "Concat"),
    (Op::PAD, "Pad"),
    (Op::PADV2, "Pad"),
    (Op::POW, "Pow"),
    (Op::PRELU, "PRelu"),
    (Op::QUANTIZE, "QuantizeLinear"),
    (Op::REDUCE_MAX, "ReduceMax"),
    (Op::REDUCE_MIN, "ReduceMin"),
    (Op::REDUCE_PROD, "ReduceProd"),
    (Op::RELU, "Relu"),
    (Op::RELU6, "Clip"),
    (Op::RESHAPE, "Reshape"),
    (Op::RESIZE_BILINEAR, "Resize"),
    (Op::RESIZE_NEAREST_NEIGHBOR, "Resize"),
    (Op::ROUND, "Round"),
    (Op::SELECT, "Where"),
    (Op::SELECT_V2, "Where"),
    (Op::SHAPE, "Shape"),
    (Op::SIN, "Sin"),
    (Op::SLICE, "Slice"),
    (Op::SOFTMAX, "Softmax"),
    (Op::SPACE_TO_DEPTH, "SpaceToDepth"),
    (Op::SPLIT, "Split"),
    (Op::SPLIT_V, "Split"),
    (Op::SQRT, "Sqrt"),
    (Op::SQUEEZE, "Squeeze"),
    (Op::STRIDED_SLICE, "Slice"),
    (Op::SUB, "Sub"),
    (Op::SUM, "ReduceSum"),
    (Op::TANH, "Tanh"),
    (Op::TILE, "Tile"),
    (Op::TRANSPOSE, "Transpose"),
    (Op::TRANSPOSE_CONV, "ConvTranspose"),
    (Op::UNPACK, "Split"),
];

/// The builtin operator of each of `model`'s operator codes (the larger of the two code fields:
/// old files fill only the deprecated one), or its custom code's name.
fn builtin_of(code: fb::OperatorCode<'_>) -> Op {
    Op((code.deprecated_builtin_code() as i32).max(code.builtin_code().0))
}

fn op_label(op: Op, code: fb::OperatorCode<'_>) -> String {
    match code.custom_code() {
        Some(custom) if op == Op::CUSTOM => format!("custom:{custom}"),
        _ => op.variant_name().map_or_else(|| format!("builtin {}", op.0), str::to_string),
    }
}

/// The operators of `model`'s main subgraph that are not among `supported`, by name, each once.
pub fn builtins_outside(model: &fb::Model<'_>, supported: &[Op]) -> Vec<String> {
    let Some(codes) = model.operator_codes() else { return Vec::new() };
    let main = model.subgraphs().filter(|s| !s.is_empty()).map(|s| s.get(0));
    let mut names: Vec<String> = main
        .and_then(|s| s.operators())
        .into_iter()
        .flatten()
        .filter_map(|op| codes.iter().nth(op.opcode_index() as usize))
        .filter(|code| !supported.contains(&builtin_of(*code)))
        .map(|code| op_label(builtin_of(code), code))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The ONNX name of `op`, or `None` when the table has no counterpart. A DEQUANTIZE of float16
/// weights is a Cast (TFLite's float16 export), not a dequantization of integers.
fn onnx_name(op: Op, input_type: Option<TensorType>) -> Option<&'static str> {
    if op == Op::DEQUANTIZE && input_type == Some(TensorType::FLOAT16) {
        return Some("Cast");
    }
    OPERATOR_TABLE.iter().find(|(o, _)| *o == op).map(|(_, name)| *name)
}

/// The type's name as inventories spell it (ONNX's), and its size in bits.
fn type_name(t: TensorType) -> (String, u64) {
    let (name, bits) = match t {
        TensorType::FLOAT32 => ("float32", 32),
        TensorType::FLOAT16 => ("float16", 16),
        TensorType::FLOAT64 => ("float64", 64),
        TensorType::INT32 => ("int32", 32),
        TensorType::UINT32 => ("uint32", 32),
        TensorType::INT64 => ("int64", 64),
        TensorType::UINT64 => ("uint64", 64),
        TensorType::INT16 => ("int16", 16),
        TensorType::UINT16 => ("uint16", 16),
        TensorType::INT8 => ("int8", 8),
        TensorType::UINT8 => ("uint8", 8),
        TensorType::INT4 => ("int4", 4),
        TensorType::BOOL => ("bool", 8),
        other => return (format!("tflite type {}", other.0), 0),
    };
    (name.to_string(), bits)
}

fn dtype_of(t: TensorType) -> Option<DType> {
    Some(match t {
        TensorType::FLOAT32 | TensorType::FLOAT64 => DType::Fp32,
        TensorType::FLOAT16 => DType::Fp16,
        TensorType::INT8 => DType::Int8,
        TensorType::UINT8 => DType::Uint8,
        TensorType::INT16 => DType::Int16,
        TensorType::INT4 => DType::Int4,
        _ => return None,
    })
}

/// One tensor of the main subgraph, as the inventory needs it.
struct TensorFacts {
    name: String,
    ttype: TensorType,
    /// The stored shape; `None` where the file's shape is unusable (negative or huge dimensions)
    /// or stale (it depends on an input dimension set to something other than the file's).
    shape: Option<Vec<usize>>,
    /// The shape as declared for inputs: `-1` in `shape_signature` is a free dimension.
    declared: Vec<Dim>,
    /// Bytes of stored data (weights, biases, constants); 0 for an activation.
    const_bytes: u64,
    quantization: Option<(Vec<f32>, Vec<i64>)>,
}

impl TensorFacts {
    fn is_constant(&self) -> bool {
        self.const_bytes > 0
    }

    fn bytes(&self) -> Option<u64> {
        let (_, bits) = type_name(self.ttype);
        Some(self.shape.as_ref()?.iter().map(|&d| d as u64).product::<u64>() * bits / 8)
    }
}

fn stored_shape(dims: Option<flatbuffers::Vector<'_, i32>>) -> Option<Vec<usize>> {
    let dims: Vec<usize> = dims
        .map(|v| v.iter().map(|d| usize::try_from(d).ok().filter(|&d| d as u64 <= MAX_DIM)).collect())
        .unwrap_or(Some(Vec::new()))?;
    let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64))?;
    (elements <= MAX_ELEMENTS).then_some(dims)
}

fn tensor_facts(model: &fb::Model<'_>, t: fb::Tensor<'_>, index: usize) -> TensorFacts {
    let const_bytes = match (t.buffer() as usize, model.buffers()) {
        (b, Some(buffers)) if b > 0 && b < buffers.len() => {
            buffers.get(b).data().map_or(0, |d| d.len() as u64)
        }
        _ => 0,
    };
    let signature = t.shape_signature().or(t.shape());
    let declared = signature
        .map(|v| v.iter().map(|d| if d > 0 { Dim::Fixed(d as usize) } else { Dim::Unknown }).collect())
        .unwrap_or_default();
    let quantization = t.quantization().and_then(|q| {
        let scale: Vec<f32> = q.scale()?.iter().collect();
        let zero_point: Vec<i64> = q.zero_point().map(|z| z.iter().collect()).unwrap_or_default();
        (!scale.is_empty()).then_some((scale, zero_point))
    });
    TensorFacts {
        name: t.name().filter(|n| !n.is_empty()).map_or_else(|| format!("tensor#{index}"), str::to_string),
        ttype: t.type_(),
        shape: stored_shape(t.shape()),
        declared,
        const_bytes,
        quantization,
    }
}

/// Inventories a verified TFLite file with its inputs at `shapes`.
pub fn inventory(path: &Path, bytes: &[u8], shapes: &InputShapes) -> Result<ModelInventory> {
    let model = verified(path, bytes)?;
    let subgraphs = model.subgraphs().expect("verified has a subgraph");
    let main = subgraphs.get(0);
    let mut tensors: Vec<TensorFacts> = main
        .tensors()
        .map(|ts| ts.iter().enumerate().map(|(i, t)| tensor_facts(&model, t, i)).collect())
        .unwrap_or_default();
    unique_names(&mut tensors);
    let count = tensors.len();
    // Tensor indices, bounds-checked; -1 is an optional operator input left out (`None`).
    let indices = |list: Option<flatbuffers::Vector<'_, i32>>, whose: &str| -> Result<Vec<Option<usize>>> {
        list.into_iter()
            .flatten()
            .map(|i| match usize::try_from(i) {
                Err(_) => Ok(None),
                Ok(i) if i < count => Ok(Some(i)),
                Ok(i) => Err(Error::model(
                    path,
                    format!("{whose} refers to tensor {i}; the main subgraph has {count}"),
                )),
            })
            .collect()
    };
    let input_ids: Vec<usize> =
        indices(main.inputs(), "the subgraph's inputs")?.into_iter().flatten().collect();
    let output_ids: Vec<usize> =
        indices(main.outputs(), "the subgraph's outputs")?.into_iter().flatten().collect();
    let mut findings = Vec::new();
    let inputs = input_infos(path, &tensors, &input_ids, shapes)?;
    if inputs.iter().zip(&input_ids).any(|(info, &i)| Some(&info.shape) != tensors[i].shape.as_ref()) {
        forget_free_shapes(&mut tensors, &input_ids, &mut findings);
    }
    let codes = model.operator_codes();
    let mut nodes = Vec::new();
    for (index, op) in main.operators().expect("verified has operators").iter().enumerate() {
        let code = codes
            .filter(|c| (op.opcode_index() as usize) < c.len())
            .map(|c| c.get(op.opcode_index() as usize))
            .ok_or_else(|| {
                Error::model(
                    path,
                    format!(
                        "operator {index} names operator code {}, which the file does not define",
                        op.opcode_index()
                    ),
                )
            })?;
        let whose = format!("operator {index}");
        let ins = indices(op.inputs(), &whose)?;
        let outs: Vec<usize> = indices(op.outputs(), &whose)?.into_iter().flatten().collect();
        nodes.push(node_info(index, op, code, &tensors, &ins, &outs, &mut findings));
    }
    if subgraphs.len() > 1 {
        findings.push(Finding {
            node: String::new(),
            op_type: String::new(),
            message: format!(
                "the file has {} subgraphs; the inventory counts the main one (the others are bodies of control flow or extra signatures)",
                subgraphs.len()
            ),
        });
    }
    let outputs = output_ids
        .iter()
        .map(|&i| OutputInfo {
            name: tensors[i].name.clone(),
            shape: tensors[i].shape.as_ref().map(|s| s.iter().map(|&d| Some(d)).collect()),
            dtype: type_name(tensors[i].ttype).0,
            quantization: per_tensor_quantization(&tensors[i]),
        })
        .collect();
    let artifact = external::single_file(path, bytes);
    let constants: Vec<&TensorFacts> = tensors.iter().filter(|t| t.is_constant()).collect();
    let mut weight_bytes_by_dtype = BTreeMap::new();
    for t in &constants {
        *weight_bytes_by_dtype.entry(type_name(t.ttype).0).or_insert(0) += t.const_bytes;
    }
    let mut op_histogram = BTreeMap::new();
    for n in &nodes {
        *op_histogram.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    let quantization = quantization_of(&nodes, &constants);
    Ok(ModelInventory {
        path: path.to_path_buf(),
        format: ModelFormat::Tflite,
        file_size_bytes: artifact.size_bytes,
        sha256: artifact.sha256,
        files: artifact.files,
        opset: None,
        producer: format!("{} (TFLite schema {})", model.description().unwrap_or("TFLite"), model.version()),
        inputs,
        outputs,
        node_count: nodes.len(),
        parameter_count: constants
            .iter()
            .filter_map(|t| t.shape.as_ref())
            .map(|s| s.iter().product::<usize>() as u64)
            .sum(),
        weight_bytes: weight_bytes_by_dtype.values().sum(),
        weight_bytes_by_dtype,
        total_macs: nodes.iter().map(|n| n.macs).sum(),
        quantized: quantization.is_quantized(),
        quantization,
        quantized_tensors: quantized_tensors(&tensors),
        activations: nodes.iter().flat_map(activation_tensors).collect(),
        findings,
        op_histogram,
        nodes,
    })
}

/// Tensor names made unique (the inventory links producers and consumers by name): a repeated or
/// missing name gets `#index`.
fn unique_names(tensors: &mut [TensorFacts]) {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tensors.iter_mut().enumerate() {
        if !seen.insert(t.name.clone()) {
            t.name = format!("{}#{i}", t.name);
            seen.insert(t.name.clone());
        }
    }
}

fn input_infos(
    path: &Path,
    tensors: &[TensorFacts],
    ids: &[usize],
    shapes: &InputShapes,
) -> Result<Vec<TensorInfo>> {
    ids.iter()
        .map(|&i| {
            let t = &tensors[i];
            let shape = shapes::resolve(path, &t.name, Some(&t.declared), shapes, ids.len() == 1)?;
            Ok(TensorInfo {
                name: t.name.clone(),
                shape,
                dtype: type_name(t.ttype).0,
                quantization: input_quantization(path, t)?,
            })
        })
        .collect()
}

/// An 8-bit input's scale and zero point, from the file. Per-channel parameters on an input
/// cannot be fed from one golden sample's values and are refused.
fn input_quantization(path: &Path, t: &TensorFacts) -> Result<Option<InputQuantization>> {
    if !matches!(t.ttype, TensorType::INT8 | TensorType::UINT8) {
        return Ok(None);
    }
    if let Some((scale, _)) = t.quantization.as_ref().filter(|(scale, _)| scale.len() > 1) {
        return Err(Error::model(
            path,
            format!(
                "input `{}` has {} scales (per-channel); an input is fed with one scale and zero point",
                t.name,
                scale.len()
            ),
        ));
    }
    let q = per_tensor_quantization(t);
    if let Some(why) = q.and_then(|q| q.check().err()) {
        return Err(Error::model(path, format!("input `{}`: {why}", t.name)));
    }
    Ok(q)
}

/// An 8-bit tensor's one scale and zero point: how its codes read as real values.
fn per_tensor_quantization(t: &TensorFacts) -> Option<InputQuantization> {
    if !matches!(t.ttype, TensorType::INT8 | TensorType::UINT8) {
        return None;
    }
    let (scale, zero_point) = t.quantization.as_ref().filter(|(scale, _)| scale.len() == 1)?;
    Some(InputQuantization {
        scale: scale[0],
        zero_point: zero_point.first().copied().unwrap_or(0).clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        source: QuantizationSource::Model,
    })
}

/// How many tensors carry quantization parameters, per tensor and per channel.
fn quantized_tensors(tensors: &[TensorFacts]) -> Option<QuantizedTensors> {
    let scales: Vec<usize> = tensors.iter().filter_map(|t| Some(t.quantization.as_ref()?.0.len())).collect();
    (!scales.is_empty()).then(|| QuantizedTensors {
        per_tensor: scales.iter().filter(|&&n| n == 1).count(),
        per_channel: scales.iter().filter(|&&n| n > 1).count(),
    })
}

/// The file's shapes were computed for its own input shapes: at other input sizes, a tensor
/// whose declared shape has a free dimension (`-1` in its signature) is of unknown shape.
fn forget_free_shapes(tensors: &mut [TensorFacts], inputs: &[usize], findings: &mut Vec<Finding>) {
    let mut forgotten = 0;
    for (i, t) in tensors.iter_mut().enumerate() {
        if !inputs.contains(&i) && !t.is_constant() && t.declared.contains(&Dim::Unknown) {
            t.shape = None;
            forgotten += 1;
        }
    }
    if forgotten > 0 {
        findings.push(Finding {
            node: String::new(),
            op_type: String::new(),
            message: format!(
                "the file stores intermediate shapes for its own input shapes; at the input shapes given, {forgotten} tensors with free dimensions are of unknown shape"
            ),
        });
    }
}

fn node_info(
    index: usize,
    op: fb::Operator<'_>,
    code: fb::OperatorCode<'_>,
    tensors: &[TensorFacts],
    ins: &[Option<usize>],
    outs: &[usize],
    findings: &mut Vec<Finding>,
) -> NodeInfo {
    let builtin = builtin_of(code);
    let first_input = ins.iter().flatten().next().map(|&i| tensors[i].ttype);
    let tflite_name = op_label(builtin, code);
    let (op_type, domain) = match onnx_name(builtin, first_input) {
        Some(name) => (name.to_string(), String::new()),
        None => (format!("tflite:{tflite_name}"), "tflite".to_string()),
    };
    let name = format!("{}_{index}", tflite_name.to_lowercase());
    if domain == "tflite" {
        findings.push(Finding {
            node: name.clone(),
            op_type: op_type.clone(),
            message: format!("TFLite operator {tflite_name} has no counterpart in edgecert's operator table (docs/tflite.md); no profile lists it"),
        });
    }
    let shape_of = |i: &Option<usize>| i.and_then(|i| tensors[i].shape.clone());
    let input_shapes: Vec<Option<Vec<usize>>> = ins.iter().map(shape_of).collect();
    let output_shapes: Vec<Option<Vec<usize>>> = outs.iter().map(|&i| tensors[i].shape.clone()).collect();
    let attrs = attributes(builtin, op, &input_shapes, &output_shapes);
    let work = work_of(builtin, &op_type, &attrs, &input_shapes, &output_shapes);
    let varying = ins.iter().flatten().find(|&&i| !tensors[i].is_constant());
    NodeInfo {
        name,
        op_type,
        domain,
        dtype: varying.or(ins.iter().flatten().next()).and_then(|&i| dtype_of(tensors[i].ttype)),
        inputs: ins.iter().map(|i| i.map_or_else(String::new, |i| tensors[i].name.clone())).collect(),
        outputs: outs.iter().map(|&i| tensors[i].name.clone()).collect(),
        input_shapes,
        output_shapes,
        attrs,
        macs: work.map(|w| w.macs),
        other_ops: work.map(|w| w.other_ops),
        weight_bytes: ins.iter().flatten().map(|&i| tensors[i].const_bytes).sum(),
        output_bytes: outs.iter().map(|&i| tensors[i].bytes()).sum(),
    }
}

/// The node's arithmetic. TFLite's FULLY_CONNECTED keeps its input's leading dimensions (a
/// ConvNeXt block's `[1, 56, 56, 96]` in, `[1, 56, 56, 384]` out): each output element is one dot
/// product over the weights' second dimension, where ONNX's 2-D Gemm rule would read the whole
/// input as one row's length.
fn work_of(
    op: Op,
    op_type: &str,
    attrs: &NodeAttrs,
    ins: &[Option<Vec<usize>>],
    outs: &[Option<Vec<usize>>],
) -> Option<macs::Work> {
    if op == Op::FULLY_CONNECTED {
        let depth = *ins.get(1)?.as_ref()?.get(1)? as u64;
        let outputs: u64 = outs.first()?.as_ref()?.iter().map(|&d| d as u64).product();
        return Some(macs::Work { macs: outputs * depth, other_ops: 0 });
    }
    macs::node_work(op_type, attrs, &onnx_layout(op, ins), outs)
}

/// Input shapes in the ONNX layout `macs::node_work` counts with: a depthwise filter
/// `[1, KH, KW, C]` reads one input channel per output (`[C, 1, KH, KW]`), and a transposed
/// convolution's data is its third input, its filter `[O, KH, KW, I]` read as `[I, O, KH, KW]`.
fn onnx_layout(op: Op, shapes: &[Option<Vec<usize>>]) -> Vec<Option<Vec<usize>>> {
    let get = |i: usize| shapes.get(i).cloned().flatten();
    match op {
        Op::DEPTHWISE_CONV_2D => {
            let filter = get(1).filter(|f| f.len() == 4).map(|f| vec![f[3], 1, f[1], f[2]]);
            vec![get(0), filter]
        }
        Op::TRANSPOSE_CONV => {
            let filter = get(1).filter(|f| f.len() == 4).map(|f| vec![f[3], f[0], f[1], f[2]]);
            vec![get(2), filter]
        }
        _ => shapes.to_vec(),
    }
}

/// The attributes chip limits are stated in: kernel, strides, explicit pads (SAME padding as the
/// pads TFLite computes) and the group of a depthwise convolution.
fn attributes(
    op: Op,
    o: fb::Operator<'_>,
    ins: &[Option<Vec<usize>>],
    outs: &[Option<Vec<usize>>],
) -> NodeAttrs {
    let filter = ins.get(1).cloned().flatten().filter(|f| f.len() == 4);
    let (kernel, strides, padding, group) = match op {
        Op::CONV_2D => match (o.builtin_options_as_conv_2_doptions(), filter) {
            (Some(c), Some(f)) => (vec![f[1], f[2]], vec![c.stride_h(), c.stride_w()], c.padding(), None),
            _ => return NodeAttrs::default(),
        },
        Op::DEPTHWISE_CONV_2D => match (o.builtin_options_as_depthwise_conv_2_doptions(), filter) {
            (Some(c), Some(f)) => {
                let channels = ins.first().cloned().flatten().and_then(|s| s.last().copied());
                (vec![f[1], f[2]], vec![c.stride_h(), c.stride_w()], c.padding(), channels)
            }
            _ => return NodeAttrs::default(),
        },
        Op::MAX_POOL_2D | Op::AVERAGE_POOL_2D => match o.builtin_options_as_pool_2_doptions() {
            Some(p) => {
                let kernel = [p.filter_height(), p.filter_width()].map(|k| k.max(1) as usize).to_vec();
                (kernel, vec![p.stride_h(), p.stride_w()], p.padding(), None)
            }
            None => return NodeAttrs::default(),
        },
        _ => return NodeAttrs::default(),
    };
    let strides: Vec<usize> = strides.iter().map(|&s| s.max(1) as usize).collect();
    let pads = match (padding, ins.first().cloned().flatten(), outs.first().cloned().flatten()) {
        (fb::Padding::SAME, Some(i), Some(o)) if i.len() == 4 && o.len() == 4 => {
            let total = |axis: usize| {
                ((o[axis + 1].saturating_sub(1)) * strides[axis] + kernel[axis]).saturating_sub(i[axis + 1])
            };
            let (h, w) = (total(0), total(1));
            vec![h / 2, w / 2, h - h / 2, w - w / 2]
        }
        _ => vec![0; 4],
    };
    NodeAttrs { kernel, strides, pads, group, mode: None }
}

/// TFLite's kinds of quantization, read from the tensors: operators computing on 8-bit tensors
/// (full integer), 8-bit weights with float activations (dynamic range), or neither.
fn quantization_of(nodes: &[NodeInfo], constants: &[&TensorFacts]) -> Quantization {
    let integer_compute = nodes
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul" | "ConvTranspose"))
        .any(|n| n.dtype.is_some_and(|d| !d.is_float()));
    if integer_compute {
        Quantization::FullInteger
    } else if constants.iter().any(|t| matches!(t.ttype, TensorType::INT8 | TensorType::INT4)) {
        Quantization::DynamicRange
    } else {
        Quantization::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> (std::path::PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite").join(name);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    #[test]
    fn every_row_of_the_operator_table_is_in_the_documentation() {
        let doc =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tflite.md")).unwrap();
        for (op, onnx) in OPERATOR_TABLE {
            let row = format!("| `{}` | `{onnx}` |", op.variant_name().unwrap());
            assert!(doc.contains(&row), "docs/tflite.md lacks the row {row}");
        }
        let table = &doc[doc.find("## Operator table").expect("the table's section")..];
        let rows = table.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, OPERATOR_TABLE.len(), "docs/tflite.md lists operators the table does not");
    }

    #[test]
    fn a_depthwise_filter_counts_one_input_channel_per_output() {
        let shapes = [Some(vec![1, 8, 8, 16]), Some(vec![1, 3, 3, 16])];
        let onnx = onnx_layout(Op::DEPTHWISE_CONV_2D, &shapes);
        let work = macs::node_work("Conv", &NodeAttrs::default(), &onnx, &[Some(vec![1, 8, 8, 16])]);
        assert_eq!(work.unwrap().macs, 8 * 8 * 16 * 9);
    }

    #[test]
    fn a_fully_connected_layer_on_a_feature_map_is_one_dot_product_per_output() {
        let ins = [Some(vec![1, 56, 56, 96]), Some(vec![384, 96]), Some(vec![384])];
        let work =
            work_of(Op::FULLY_CONNECTED, "Gemm", &NodeAttrs::default(), &ins, &[Some(vec![1, 56, 56, 384])]);
        assert_eq!(work.unwrap().macs, 56 * 56 * 384 * 96);
        let flat = [Some(vec![1, 48]), Some(vec![4, 48]), Some(vec![4])];
        let work = work_of(Op::FULLY_CONNECTED, "Gemm", &NodeAttrs::default(), &flat, &[Some(vec![1, 4])]);
        assert_eq!(work.unwrap().macs, 4 * 48);
    }

    #[test]
    fn a_file_without_the_tflite_identifier_is_not_tflite_and_a_truncated_one_is_refused() {
        let (path, bytes) = fixture("shapes_uint8.tflite");
        assert!(is_tflite(&bytes));
        assert!(!is_tflite(b"\x08\x07\x12\x04onnx"));
        let err = inventory(&path, &bytes[..bytes.len() / 3], &InputShapes::default()).unwrap_err();
        assert!(err.to_string().contains("not a valid TFLite flatbuffer"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// A hostile file: any bytes of a real export changed. The inventory either reads it or
        /// says why, and never panics (the verifier bounds every offset before anything reads).
        #[test]
        fn a_corrupted_tflite_file_is_read_or_refused_never_a_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12)
        ) {
            let (path, mut bytes) = fixture("shapes_uint8.tflite");
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let _ = inventory(&path, &bytes, &InputShapes::default());
        }
    }
}
