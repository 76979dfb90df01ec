//! Structural validation of an ONNX model before anything reads its figures or runs it: the rules
//! of the ONNX spec that a file can break while still decoding as protobuf (IR and opset
//! versions, SSA and topological order, tensor sizes and data lengths, attribute types, bounded
//! subgraph nesting). Every defect is reported, not only the first, each naming the node,
//! tensor or field and what was expected; one or more defects stop the run with exit code 2.
//!
//! Operators the engine cannot run are *not* defects here: they stay findings of the inventory.

use std::collections::HashSet;
use std::path::Path;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType as A;
use tract_onnx::pb::tensor_proto::DataType as T;

use super::external::is_external;
use super::shapes::{element_count, MAX_DIM, MAX_ELEMENTS};
use crate::vocab::{Error, Result};

/// IR versions of released ONNX (3 is ONNX 1.0, 11 is ONNX 1.18).
const IR_VERSIONS: std::ops::RangeInclusive<i64> = 3..=11;
/// Default-domain opset versions of released ONNX.
const OPSET_VERSIONS: std::ops::RangeInclusive<i64> = 1..=24;
/// If/Loop/Scan bodies nest; real models go two or three deep.
const MAX_SUBGRAPH_DEPTH: usize = 16;
/// Largest tensor the engine may be asked to *fill* from a shape in the file (ConstantOfShape,
/// Expand): 2^28 elements is 1 GiB of f32, far above an edge model's constants. Unlike declared
/// tensors, whose bytes the file must hold, these cost nothing in the file and would make shape
/// inference allocate them (an out-of-memory kill, not an error).
const MAX_MATERIALISED: u64 = 1 << 28;
/// A corrupt file can hold millions of defects; past this many the rest are counted.
const MAX_REPORTED: usize = 50;

/// The attribute types of common ops: a wrong type is a corrupt or hand-edited file, and tract
/// would otherwise read a default silently.
const ATTRIBUTE_TYPES: &[(&str, &str, A)] = &[
    ("Conv", "kernel_shape", A::Ints),
    ("Conv", "strides", A::Ints),
    ("Conv", "pads", A::Ints),
    ("Conv", "dilations", A::Ints),
    ("Conv", "group", A::Int),
    ("Conv", "auto_pad", A::String),
    ("ConvTranspose", "kernel_shape", A::Ints),
    ("ConvTranspose", "strides", A::Ints),
    ("ConvTranspose", "pads", A::Ints),
    ("ConvTranspose", "dilations", A::Ints),
    ("ConvTranspose", "output_padding", A::Ints),
    ("ConvTranspose", "group", A::Int),
    ("MaxPool", "kernel_shape", A::Ints),
    ("MaxPool", "strides", A::Ints),
    ("MaxPool", "pads", A::Ints),
    ("MaxPool", "ceil_mode", A::Int),
    ("AveragePool", "kernel_shape", A::Ints),
    ("AveragePool", "strides", A::Ints),
    ("AveragePool", "pads", A::Ints),
    ("AveragePool", "count_include_pad", A::Int),
    ("Gemm", "alpha", A::Float),
    ("Gemm", "beta", A::Float),
    ("Gemm", "transA", A::Int),
    ("Gemm", "transB", A::Int),
    ("Reshape", "allowzero", A::Int),
    ("Cast", "to", A::Int),
    ("Flatten", "axis", A::Int),
    ("Concat", "axis", A::Int),
    ("Softmax", "axis", A::Int),
    ("Gather", "axis", A::Int),
    ("Split", "axis", A::Int),
    ("Transpose", "perm", A::Ints),
    ("Squeeze", "axes", A::Ints),
    ("Unsqueeze", "axes", A::Ints),
    ("ReduceMean", "axes", A::Ints),
    ("ReduceMean", "keepdims", A::Int),
    ("LeakyRelu", "alpha", A::Float),
    ("BatchNormalization", "epsilon", A::Float),
    ("Resize", "mode", A::String),
    ("QuantizeLinear", "axis", A::Int),
    ("DequantizeLinear", "axis", A::Int),
    ("If", "then_branch", A::Graph),
    ("If", "else_branch", A::Graph),
    ("Loop", "body", A::Graph),
    ("Scan", "body", A::Graph),
];

/// Leading inputs an op cannot run without: tract's shape rules index them unchecked, so a
/// missing or blanked (`""`) one would crash the engine instead of being reported.
const REQUIRED_INPUTS: &[(&str, usize)] = &[
    ("Conv", 2),
    ("ConvTranspose", 2),
    ("ConvInteger", 2),
    ("QLinearConv", 8),
    ("QLinearMatMul", 8),
    ("Gemm", 2),
    ("MatMul", 2),
    ("MatMulInteger", 2),
    ("Add", 2),
    ("Sub", 2),
    ("Mul", 2),
    ("Div", 2),
    ("Pow", 2),
    ("Relu", 1),
    ("LeakyRelu", 1),
    ("Sigmoid", 1),
    ("Tanh", 1),
    ("Softmax", 1),
    ("Flatten", 1),
    ("Identity", 1),
    ("Cast", 1),
    ("Transpose", 1),
    ("Reshape", 2),
    ("Concat", 1),
    ("MaxPool", 1),
    ("AveragePool", 1),
    ("GlobalAveragePool", 1),
    ("GlobalMaxPool", 1),
    ("BatchNormalization", 5),
    ("QuantizeLinear", 2),
    ("DequantizeLinear", 2),
    ("If", 1),
];

/// Ops with a sliding window: their `kernel_shape`, `strides`, `dilations` and `pads` must agree
/// in length (one value per spatial axis, two for pads) and be in range; tract indexes them by
/// axis and divides by strides.
const WINDOW_OPS: &[&str] =
    &["Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool"];

/// Attributes every node of the op must carry.
const REQUIRED_ATTRIBUTES: &[(&str, &str)] =
    &[("Cast", "to"), ("If", "then_branch"), ("If", "else_branch"), ("Loop", "body"), ("Scan", "body")];

/// Checks `proto`; `Err` lists every defect found, one line each.
pub fn check(path: &Path, proto: &pb::ModelProto) -> Result<()> {
    let mut c = Checker::default();
    c.model(proto);
    if c.defects.is_empty() {
        return Ok(());
    }
    Err(Error::model(path, render(path, &c.defects, c.dropped)))
}

fn render(path: &Path, defects: &[String], dropped: usize) -> String {
    if let [only] = defects {
        return only.clone();
    }
    let mut s = format!("{} defects make this an invalid ONNX model:", defects.len() + dropped);
    for d in defects {
        s.push_str(&format!("\n  {}: {d}", path.display()));
    }
    if dropped > 0 {
        s.push_str(&format!("\n  ... and {dropped} more"));
    }
    s
}

/// Bytes `t`'s dims and type declare, `None` for unknown types or impossible sizes.
pub fn tensor_byte_len(t: &pb::TensorProto) -> Option<u64> {
    let count = element_count(t.dims.iter().map(|&d| u64::try_from(d).ok()).collect::<Option<Vec<_>>>()?)?;
    let bits = elem_bits(T::try_from(t.data_type).ok()?)?;
    count.checked_mul(bits).map(|b| b.div_ceil(8))
}

/// Bits per element; `None` for types without a fixed size (string, undefined).
fn elem_bits(t: T) -> Option<u64> {
    Some(match t {
        T::Uint4 | T::Int4 | T::Float4e2m1 => 4,
        T::Uint8 | T::Int8 | T::Bool => 8,
        T::Float8e4m3fn | T::Float8e4m3fnuz | T::Float8e5m2 | T::Float8e5m2fnuz => 8,
        T::Uint16 | T::Int16 | T::Float16 | T::Bfloat16 => 16,
        T::Float | T::Int32 | T::Uint32 => 32,
        T::Int64 | T::Uint64 | T::Double | T::Complex64 => 64,
        T::Complex128 => 128,
        T::String | T::Undefined => return None,
    })
}

#[derive(Default)]
struct Checker {
    defects: Vec<String>,
    dropped: usize,
}

impl Checker {
    fn defect(&mut self, message: String) {
        if self.defects.len() < MAX_REPORTED {
            self.defects.push(message);
        } else {
            self.dropped += 1;
        }
    }

    fn model(&mut self, proto: &pb::ModelProto) {
        if !IR_VERSIONS.contains(&proto.ir_version) {
            self.defect(format!(
                "ir_version is {}, expected {} to {} (an unreleased or corrupt file?)",
                proto.ir_version,
                IR_VERSIONS.start(),
                IR_VERSIONS.end()
            ));
        }
        let default = proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx");
        match default {
            None => self.defect(
                "opset_import has no entry for the default ONNX domain, so no operator has a meaning (truncated file or exporter bug?)".into(),
            ),
            Some(o) if !OPSET_VERSIONS.contains(&o.version) => self.defect(format!(
                "opset_import gives the default domain version {}, expected {} to {}",
                o.version,
                OPSET_VERSIONS.start(),
                OPSET_VERSIONS.end()
            )),
            Some(_) => {}
        }
        if let Some(g) = &proto.graph {
            self.graph(g, &HashSet::new(), 0, "");
        }
    }

    /// One graph; `outer` holds the names a subgraph may read from enclosing scopes, `at` says
    /// where the graph is ("" for the main graph).
    fn graph(&mut self, g: &pb::GraphProto, outer: &HashSet<String>, depth: usize, at: &str) {
        let mut defined: HashSet<String> = outer.clone();
        let mut produced: HashSet<&str> = HashSet::new();
        for i in &g.input {
            self.value_info(i, at, "graph input");
            produced.insert(&i.name);
        }
        for t in &g.initializer {
            let what = format!("{at}initializer `{}`", t.name);
            self.tensor(t, &what, depth > 0);
            // An initializer may repeat a graph input's name (IR < 4 required it), not another's.
            if !produced.insert(&t.name) && !g.input.iter().any(|i| i.name == t.name) {
                self.defect(format!("{what} is defined twice (ONNX names are assigned once)"));
            }
        }
        defined.extend(produced.iter().map(|s| s.to_string()));
        for (ix, node) in g.node.iter().enumerate() {
            let who = format!("{at}node #{ix} `{}` ({})", node.name, node.op_type);
            self.node(node, &who, &defined, depth);
            self.materialised(node, &who, &g.initializer);
            for o in node.output.iter().filter(|o| !o.is_empty()) {
                if !produced.insert(o) {
                    self.defect(format!(
                        "{who} writes `{o}`, which is already defined (ONNX graphs are SSA)"
                    ));
                }
                defined.insert(o.clone());
            }
        }
        for o in &g.output {
            self.value_info(o, at, "graph output");
            if !defined.contains(&o.name) {
                self.defect(format!("{at}graph output `{}` is never produced", o.name));
            }
        }
    }

    fn node(&mut self, node: &pb::NodeProto, who: &str, defined: &HashSet<String>, depth: usize) {
        if node.op_type.is_empty() {
            self.defect(format!("{who} has an empty op_type"));
        }
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input) {
                self.defect(format!(
                    "{who} reads tensor `{input}`, which no input, initializer or earlier node provides (nodes out of order, or a truncated or corrupt file?)"
                ));
            }
        }
        let std_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        for a in &node.attribute {
            if std_domain {
                self.attribute_type(node, a, who);
            }
            for t in a.t.iter().chain(&a.tensors) {
                self.tensor(t, &format!("{who} attribute `{}`", a.name), true);
            }
            for (k, sub) in a.g.iter().chain(&a.graphs).enumerate() {
                let at = format!(
                    "{who} subgraph `{}`{}: ",
                    a.name,
                    if k > 0 { format!("[{k}]") } else { String::new() }
                );
                if depth + 1 > MAX_SUBGRAPH_DEPTH {
                    self.defect(format!("{at}subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels"));
                } else {
                    self.graph(sub, defined, depth + 1, &at);
                }
            }
        }
        if std_domain {
            self.arity(node, who);
            if WINDOW_OPS.contains(&node.op_type.as_str()) {
                self.window(node, who);
            }
            for (_, name) in REQUIRED_ATTRIBUTES.iter().filter(|(op, _)| *op == node.op_type) {
                if !node.attribute.iter().any(|a| a.name == *name) {
                    self.defect(format!("{who} has no `{name}` attribute, which {} requires", node.op_type));
                }
            }
        }
    }

    /// A shape given as an initializer to an op that fills a tensor of that shape.
    fn materialised(&mut self, node: &pb::NodeProto, who: &str, inits: &[pb::TensorProto]) {
        let shape_input = match node.op_type.as_str() {
            "ConstantOfShape" => 0,
            "Expand" => 1,
            _ => return,
        };
        let Some(name) = node.input.get(shape_input) else { return };
        let Some(shape) = inits.iter().find(|t| &t.name == name).and_then(int64_values) else { return };
        let count = element_count(shape.iter().map(|&d| u64::try_from(d).unwrap_or(0)));
        if shape.iter().any(|&d| d < 0) || count.is_none_or(|n| n > MAX_MATERIALISED) {
            self.defect(format!(
                "{who} would fill a tensor of shape {shape:?} (from `{name}`), over the {MAX_MATERIALISED}-element bound"
            ));
        }
    }

    fn arity(&mut self, node: &pb::NodeProto, who: &str) {
        let Some((_, need)) = REQUIRED_INPUTS.iter().find(|(op, _)| *op == node.op_type) else {
            return;
        };
        let present = node.input.iter().take(*need).filter(|i| !i.is_empty()).count();
        if present < *need {
            self.defect(format!(
                "{who} has {present} of the {need} leading inputs {} requires (a missing or empty name)",
                node.op_type
            ));
        }
    }

    fn window(&mut self, node: &pb::NodeProto, who: &str) {
        let ints = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.as_slice());
        let rank = ["kernel_shape", "strides", "dilations"]
            .iter()
            .find_map(|n| ints(n))
            .map(<[i64]>::len)
            .or_else(|| ints("pads").map(|p| p.len() / 2));
        let Some(rank) = rank else { return };
        for (name, len, min) in
            [("kernel_shape", rank, 1), ("strides", rank, 1), ("dilations", rank, 1), ("pads", 2 * rank, 0)]
        {
            let Some(values) = ints(name) else { continue };
            if values.len() != len {
                self.defect(format!(
                    "{who} attribute `{name}` has {} values, expected {len} (spatial rank {rank})",
                    values.len()
                ));
            }
            if let Some(bad) = values.iter().find(|&&v| v < min || v > MAX_DIM as i64) {
                self.defect(format!("{who} attribute `{name}` holds {bad}, expected {min} to {MAX_DIM}"));
            }
        }
    }

    fn attribute_type(&mut self, node: &pb::NodeProto, a: &pb::AttributeProto, who: &str) {
        let Some((_, _, want)) =
            ATTRIBUTE_TYPES.iter().find(|(op, name, _)| *op == node.op_type && *name == a.name)
        else {
            return;
        };
        let found = effective_type(a);
        if found == A::Undefined {
            // An old file with the type unset and a zero value: nothing says it is wrong.
            return;
        }
        if found != *want {
            self.defect(format!(
                "{who} attribute `{}` is {}, expected {}",
                a.name,
                found.as_str_name(),
                want.as_str_name()
            ));
        } else if node.op_type == "Cast" && a.name == "to" && !known_dtype(a.i) {
            self.defect(format!("{who} attribute `to` is {}, which is not an ONNX data type", a.i));
        }
    }

    fn value_info(&mut self, v: &pb::ValueInfoProto, at: &str, what: &str) {
        use pb::tensor_shape_proto::dimension::Value;
        let Some(pb::type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            // Sequence and map inputs are legal ONNX; the engine reports what it cannot run.
            return;
        };
        if !known_dtype(t.elem_type as i64) {
            self.defect(format!(
                "{at}{what} `{}` has element type {}, which is not an ONNX data type",
                v.name, t.elem_type
            ));
        }
        for (axis, d) in t.shape.iter().flat_map(|s| &s.dim).enumerate() {
            if let Some(Value::DimValue(n)) = d.value {
                if n > MAX_DIM as i64 {
                    self.defect(format!(
                        "{at}{what} `{}` has dimension {n} at axis {axis}, over the {MAX_DIM} bound",
                        v.name
                    ));
                }
            }
        }
    }

    /// Type, dims and data of an initializer or attribute tensor.
    fn tensor(&mut self, t: &pb::TensorProto, what: &str, in_subgraph: bool) {
        if !known_dtype(t.data_type as i64) {
            self.defect(format!("{what} has data type {}, which is not an ONNX data type", t.data_type));
            return;
        }
        if let Some((axis, d)) = t.dims.iter().enumerate().find(|(_, &d)| d < 0) {
            self.defect(format!("{what} has negative dimension {d} at axis {axis}"));
            return;
        }
        let count = element_count(t.dims.iter().map(|&d| d as u64));
        match count {
            Some(n) if n <= MAX_ELEMENTS => {}
            _ => {
                self.defect(format!(
                    "{what} declares dims {:?}, {} elements, over the {MAX_ELEMENTS}-element bound",
                    t.dims,
                    count.map_or("more than 2^64".to_string(), |n| n.to_string())
                ));
                return;
            }
        }
        if is_external(t) {
            if in_subgraph {
                self.defect(format!("{what} keeps its data in an external file, which edgecert reads only for main-graph initializers"));
            } else if !t.raw_data.is_empty() {
                self.defect(format!("{what} is marked EXTERNAL but also holds raw_data"));
            }
            return;
        }
        self.data_length(t, what, count.unwrap_or(0));
    }

    fn data_length(&mut self, t: &pb::TensorProto, what: &str, count: u64) {
        if t.data_type == T::String as i32 && !t.raw_data.is_empty() {
            self.defect(format!("{what} is a STRING tensor with raw_data; strings go in string_data"));
            return;
        }
        if !t.raw_data.is_empty() {
            let need = tensor_byte_len(t);
            if need.is_some_and(|n| n != t.raw_data.len() as u64) {
                self.defect(format!(
                    "{what} has {} bytes of raw_data, but its dims {:?} of {} need {}",
                    t.raw_data.len(),
                    t.dims,
                    dtype_name(t.data_type),
                    need.unwrap_or(0)
                ));
            }
            return;
        }
        let (field, held, per_element) = typed_field(t);
        if held != count * per_element {
            self.defect(format!(
                "{what} has {count} elements of {} but {field} holds {held} values (expected {})",
                dtype_name(t.data_type),
                count * per_element
            ));
        }
    }
}

/// The values of a small INT64 tensor (a shape), from raw_data or int64_data.
fn int64_values(t: &pb::TensorProto) -> Option<Vec<i64>> {
    if t.data_type != T::Int64 as i32 {
        return None;
    }
    if t.raw_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    let chunks = t.raw_data.chunks_exact(8);
    if !chunks.remainder().is_empty() {
        return None;
    }
    Some(chunks.map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk"))).collect())
}

/// The typed data field a tensor of this type uses, its length, and values per element.
fn typed_field(t: &pb::TensorProto) -> (&'static str, u64, u64) {
    let n = |len: usize| len as u64;
    match T::try_from(t.data_type).unwrap_or(T::Undefined) {
        T::Float => ("float_data", n(t.float_data.len()), 1),
        T::Complex64 => ("float_data", n(t.float_data.len()), 2),
        T::Double => ("double_data", n(t.double_data.len()), 1),
        T::Complex128 => ("double_data", n(t.double_data.len()), 2),
        T::Int64 => ("int64_data", n(t.int64_data.len()), 1),
        T::Uint32 | T::Uint64 => ("uint64_data", n(t.uint64_data.len()), 1),
        T::String => ("string_data", n(t.string_data.len()), 1),
        _ => ("int32_data", n(t.int32_data.len()), 1),
    }
}

/// The attribute's declared type, or, for old files that leave it unset, the field it fills.
fn effective_type(a: &pb::AttributeProto) -> A {
    match A::try_from(a.r#type) {
        Ok(t) if t != A::Undefined => t,
        _ if !a.ints.is_empty() => A::Ints,
        _ if !a.floats.is_empty() => A::Floats,
        _ if !a.s.is_empty() => A::String,
        _ if a.g.is_some() => A::Graph,
        _ if a.t.is_some() => A::Tensor,
        _ if a.f != 0.0 => A::Float,
        _ if a.i != 0 => A::Int,
        _ => A::Undefined,
    }
}

fn known_dtype(t: i64) -> bool {
    i32::try_from(t).ok().and_then(|t| T::try_from(t).ok()).is_some_and(|t| t != T::Undefined)
}

fn dtype_name(t: i32) -> &'static str {
    T::try_from(t).map(|t| t.as_str_name()).unwrap_or("UNKNOWN")
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
