//! A small ONNX writer on tract-onnx's public protobuf types: enough to emit the CNNs, MLPs and
//! their QDQ versions that edgecert's reference families use, and the shapes of real-world
//! exports the intake must handle (symbolic dimensions, external data, control-flow subgraphs).

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
    /// A subgraph (If branches, Loop and Scan bodies).
    Graph(pb::GraphProto),
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

/// A value whose dimensions are numbers or symbolic names: `["N", "3", "H", "W"]`.
pub fn value_info_dims(name: &str, elem: DataType, dims: &[&str]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let mut v = value_info(name, elem, Some(&[]));
    if let Some(pb::type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape = Some(pb::TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| Dimension {
                    denotation: String::new(),
                    value: Some(match d.parse::<i64>() {
                        Ok(n) => Value::DimValue(n),
                        Err(_) => Value::DimParam(d.to_string()),
                    }),
                })
                .collect(),
        });
    }
    v
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

    /// The graph alone, as a subgraph attribute takes it.
    pub fn into_graph(self, name: &str) -> pb::GraphProto {
        pb::GraphProto {
            node: self.nodes,
            name: name.into(),
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }

    pub fn into_model(self, producer: &str) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: producer.to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(self.into_graph("main")),
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
        Attr::Graph(g) => {
            p.g = Some(g);
            p.r#type = T::Graph as i32;
        }
    }
    p
}

/// Moves the raw data of every main-graph initializer into one side file named `location`, as
/// `onnx.save_model(..., save_as_external_data=True, all_tensors_to_one_file=True)` does, and
/// returns that file's bytes.
pub fn externalize(model: &mut pb::ModelProto, location: &str) -> Vec<u8> {
    use pb::tensor_proto::DataLocation;
    let mut side = Vec::new();
    let graph = model.graph.as_mut().expect("a model has a graph");
    for t in &mut graph.initializer {
        let entry = |key: &str, value: String| pb::StringStringEntryProto { key: key.into(), value };
        t.external_data = vec![
            entry("location", location.to_string()),
            entry("offset", side.len().to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        side.append(&mut t.raw_data);
        t.data_location = Some(DataLocation::External as i32);
    }
    side
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
