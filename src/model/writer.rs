//! A small ONNX writer on tract-onnx's public protobuf types: enough to emit the CNNs, MLPs and
//! their QDQ versions that edgecert's reference families use.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

pub const OPSET: i64 = 13;

#[derive(Default)]
pub struct Graph {
    pub nodes: Vec<pb::NodeProto>,
    pub initializers: Vec<pb::TensorProto>,
    pub inputs: Vec<pb::ValueInfoProto>,
    pub outputs: Vec<pb::ValueInfoProto>,
    counter: usize,
}

pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

pub fn value_info(name: &str, elem: DataType, shape: Option<&[usize]>) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let shape = shape.map(|s| pb::TensorShapeProto {
        dim: s
            .iter()
            .map(|&d| Dimension { denotation: String::new(), value: Some(Value::DimValue(d as i64)) })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape,
            })),
        }),
        doc_string: String::new(),
    }
}

pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    raw_tensor(name, dims, DataType::Float, data.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub fn raw_tensor(name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

impl Graph {
    pub fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> String {
        self.inputs.push(value_info(name, DataType::Float, Some(shape)));
        name.to_string()
    }

    pub fn output(&mut self, name: &str, shape: Option<&[usize]>) {
        self.outputs.push(value_info(name, DataType::Float, shape));
    }

    pub fn init_f32(&mut self, stem: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(stem);
        self.initializers.push(tensor_f32(&name, dims, data));
        name
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node_named(op, inputs, &out, attrs);
        out
    }

    pub fn node_named(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, Attr)>) {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name,
            op_type: op.to_string(),
            domain: String::new(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            doc_string: String::new(),
        });
    }

    pub fn into_model(self, producer: &str) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: producer.to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(pb::GraphProto {
                node: self.nodes,
                name: "main".into(),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

pub fn attribute(name: &str, a: Attr) -> pb::AttributeProto {
    use pb::attribute_proto::AttributeType as T;
    let mut p = pb::AttributeProto { name: name.to_string(), ..Default::default() };
    match a {
        Attr::Int(i) => {
            p.i = i;
            p.r#type = T::Int as i32;
        }
        Attr::Ints(v) => {
            p.ints = v;
            p.r#type = T::Ints as i32;
        }
        Attr::Float(f) => {
            p.f = f;
            p.r#type = T::Float as i32;
        }
        Attr::Str(s) => {
            p.s = s.as_bytes().to_vec();
            p.r#type = T::String as i32;
        }
    }
    p
}

pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// f32 values of an initializer stored as raw little-endian bytes.
pub fn f32_data(t: &pb::TensorProto) -> Vec<f32> {
    if !t.float_data.is_empty() {
        return t.float_data.clone();
    }
    t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
