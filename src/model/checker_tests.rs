//! One malformed model per row and the message it must produce: each row mutates the valid
//! `small_cnn` (nodes conv_0, relu_1, globalaveragepool_2, flatten_3, gemm_4; initializers
//! w_1 [8,3,3,3], b_2 [8], fw_7 [5,8], fb_8 [5]; Conv writes `conv_3`) in one way.

use tract_onnx::pb;

use crate::model::tests::small_cnn;
use crate::model::writer::{attribute, encode, raw_tensor, value_info, Attr, Graph};
use crate::model::ModelInventory;

type Mutation = fn(&mut pb::ModelProto);

fn graph(m: &mut pb::ModelProto) -> &mut pb::GraphProto {
    m.graph.as_mut().unwrap()
}

fn init<'a>(m: &'a mut pb::ModelProto, name: &str) -> &'a mut pb::TensorProto {
    graph(m).initializer.iter_mut().find(|t| t.name == name).unwrap()
}

fn set_attr(m: &mut pb::ModelProto, node: usize, a: pb::AttributeProto) {
    let attrs = &mut graph(m).node[node].attribute;
    attrs.retain(|x| x.name != a.name);
    attrs.push(a);
}

/// The writer takes a `DataType`; an unknown element type is set by number.
fn set_input_elem_type(m: &mut pb::ModelProto, elem: i32) {
    let t = graph(m).input[0].r#type.as_mut().unwrap();
    if let Some(pb::type_proto::Value::TensorType(t)) = t.value.as_mut() {
        t.elem_type = elem;
    }
}

/// Loop nodes nested `depth` deep, each body holding the next.
fn nested_loops(depth: usize) -> pb::GraphProto {
    let mut body = Graph::default();
    body.node_named("Identity", &["input"], "y", vec![]);
    body.output("y", None);
    let mut g = body.into_graph("innermost");
    for _ in 0..depth {
        let mut outer = Graph::default();
        outer.node_named("Loop", &[], "y", vec![("body", Attr::Graph(g))]);
        outer.output("y", None);
        g = outer.into_graph("body");
    }
    g
}

const ROWS: &[(&str, Mutation, &str)] = &[
    ("ir_version", |m| m.ir_version = 999, "ir_version is 999, expected 3 to 11"),
    (
        "no_opset",
        |m| m.opset_import.clear(),
        "opset_import has no entry for the default ONNX domain",
    ),
    (
        "opset_version",
        |m| m.opset_import[0].version = 99,
        "opset_import gives the default domain version 99, expected 1 to 24",
    ),
    ("empty_op_type", |m| graph(m).node[1].op_type.clear(), "node #1 `relu_1` () has an empty op_type"),
    (
        "two_to_the_80_elements",
        |m| init(m, "w_1").dims = vec![1 << 40, 1 << 40],
        "initializer `w_1` declares dims [1099511627776, 1099511627776], more than 2^64 elements, over the 4294967296-element bound",
    ),
    (
        "huge_tensor",
        |m| init(m, "w_1").dims = vec![1 << 20, 1 << 20],
        "initializer `w_1` declares dims [1048576, 1048576], 1099511627776 elements, over the 4294967296-element bound",
    ),
    (
        "raw_data_short",
        |m| init(m, "w_1").raw_data.truncate(100),
        "initializer `w_1` has 100 bytes of raw_data, but its dims [8, 3, 3, 3] of FLOAT need 864",
    ),
    (
        "negative_dim",
        |m| init(m, "w_1").dims[0] = -8,
        "initializer `w_1` has negative dimension -8 at axis 0",
    ),
    (
        "unknown_dtype",
        |m| init(m, "w_1").data_type = 999,
        "initializer `w_1` has data type 999, which is not an ONNX data type",
    ),
    (
        "typed_data_short",
        |m| {
            let b = init(m, "b_2");
            b.raw_data.clear();
            b.float_data = vec![0.0; 3];
        },
        "initializer `b_2` has 8 elements of FLOAT but float_data holds 3 values (expected 8)",
    ),
    (
        "no_data",
        |m| init(m, "b_2").raw_data.clear(),
        "initializer `b_2` has 8 elements of FLOAT but float_data holds 0 values (expected 8)",
    ),
    (
        "input_dtype",
        |m| set_input_elem_type(m, 77),
        "graph input `input` has element type 77, which is not an ONNX data type",
    ),
    (
        "conv_strides_int",
        |m| set_attr(m, 0, attribute("strides", Attr::Int(1))),
        "node #0 `conv_0` (Conv) attribute `strides` is INT, expected INTS",
    ),
    (
        "conv_group_ints",
        |m| set_attr(m, 0, attribute("group", Attr::Ints(vec![1]))),
        "node #0 `conv_0` (Conv) attribute `group` is INTS, expected INT",
    ),
    (
        "gemm_alpha_int",
        |m| set_attr(m, 4, attribute("alpha", Attr::Int(2))),
        "node #4 `gemm_4` (Gemm) attribute `alpha` is INT, expected FLOAT",
    ),
    (
        "gemm_trans_b_float",
        |m| set_attr(m, 4, attribute("transB", Attr::Float(1.0))),
        "node #4 `gemm_4` (Gemm) attribute `transB` is FLOAT, expected INT",
    ),
    (
        "cast_to_unknown",
        |m| {
            graph(m).node[1].op_type = "Cast".into();
            set_attr(m, 1, attribute("to", Attr::Int(999)));
        },
        "node #1 `relu_1` (Cast) attribute `to` is 999, which is not an ONNX data type",
    ),
    (
        "if_without_branches",
        |m| graph(m).node[1].op_type = "If".into(),
        "node #1 `relu_1` (If) has no `then_branch` attribute, which If requires",
    ),
    (
        "ssa",
        |m| graph(m).node[1].output[0] = "conv_3".into(),
        "node #1 `relu_1` (Relu) writes `conv_3`, which is already defined (ONNX graphs are SSA)",
    ),
    (
        "out_of_order",
        |m| graph(m).node.swap(0, 1),
        "node #0 `relu_1` (Relu) reads tensor `conv_3`, which no input, initializer or earlier node provides",
    ),
    (
        "blank_required_input",
        |m| graph(m).node[3].input[0].clear(),
        "node #3 `flatten_3` (Flatten) has 0 of the 1 leading inputs Flatten requires",
    ),
    (
        "gemm_one_input",
        |m| graph(m).node[4].input.truncate(1),
        "node #4 `gemm_4` (Gemm) has 1 of the 2 leading inputs Gemm requires",
    ),
    (
        "conv_pads_length",
        |m| set_attr(m, 0, attribute("pads", Attr::Ints(vec![128, 1, 1]))),
        "node #0 `conv_0` (Conv) attribute `pads` has 3 values, expected 4 (spatial rank 2)",
    ),
    (
        "conv_zero_stride",
        |m| set_attr(m, 0, attribute("strides", Attr::Ints(vec![0, 1]))),
        "node #0 `conv_0` (Conv) attribute `strides` holds 0, expected 1 to 2147483648",
    ),
    (
        "string_raw_data",
        |m| init(m, "b_2").data_type = pb::tensor_proto::DataType::String as i32,
        "initializer `b_2` is a STRING tensor with raw_data; strings go in string_data",
    ),
    (
        "constant_of_shape_huge",
        |m| {
            let dims: Vec<u8> = [100_000i64, 100_000, 1000].iter().flat_map(|d| d.to_le_bytes()).collect();
            graph(m).initializer.push(raw_tensor("shape", &[3], pb::tensor_proto::DataType::Int64, dims));
            graph(m).node[1].op_type = "ConstantOfShape".into();
            graph(m).node[1].input = vec!["shape".into()];
        },
        "node #1 `relu_1` (ConstantOfShape) would fill a tensor of shape [100000, 100000, 1000] (from `shape`), over the 268435456-element bound",
    ),
    ("dangling_output", |m| graph(m).output[0].name = "nope".into(), "graph output `nope` is never produced"),
    (
        "nesting",
        |m| {
            let body = nested_loops(20);
            graph(m).node[1].op_type = "Loop".into();
            set_attr(m, 1, attribute("body", Attr::Graph(body)));
        },
        "subgraphs nest deeper than 16 levels",
    ),
];

#[test]
fn each_malformed_model_gets_its_message() {
    let dir = tempfile::tempdir().unwrap();
    for (name, mutate, want) in ROWS {
        let mut model = small_cnn();
        mutate(&mut model);
        let path = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&path, encode(&model)).unwrap();
        let err = match ModelInventory::load(&path) {
            Ok(_) => panic!("{name}: a malformed model was inventoried"),
            Err(e) => e,
        };
        assert_eq!(err.exit_code(), 2);
        let err = err.to_string();
        assert!(err.starts_with(&format!("{}: ", path.display())), "{name}: names the file: {err}");
        assert!(err.contains(want), "{name}: expected `{want}` in\n{err}");
    }
}

#[test]
fn every_defect_is_reported_not_only_the_first() {
    let mut model = small_cnn();
    model.ir_version = 999;
    graph(&mut model).node[1].op_type.clear();
    init(&mut model, "w_1").dims[0] = -8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, encode(&model)).unwrap();
    let err = ModelInventory::load(&path).unwrap_err().to_string();
    let p = path.display();
    assert!(err.starts_with(&format!("{p}: 3 defects make this an invalid ONNX model:")), "{err}");
    for line in [
        "ir_version is 999",
        "node #1 `relu_1` () has an empty op_type",
        "initializer `w_1` has negative dimension -8",
    ] {
        assert!(
            err.contains(&format!("\n  {p}: {line}")),
            "`{line}` on its own line naming the file:\n{err}"
        );
    }
}

#[test]
fn subgraphs_may_read_outer_scope_names() {
    let mut branch = Graph::default();
    branch.node_named("Relu", &["conv_3"], "r", vec![]);
    branch.output("r", None);
    let mut model = small_cnn();
    let g = graph(&mut model);
    g.node[1].op_type = "If".into();
    g.node[1].input = vec!["cond".into()];
    g.input.push(value_info("cond", pb::tensor_proto::DataType::Bool, Some(&[])));
    let branch = branch.into_graph("then");
    set_attr(&mut model, 1, attribute("then_branch", Attr::Graph(branch.clone())));
    set_attr(&mut model, 1, attribute("else_branch", Attr::Graph(branch)));
    assert!(crate::model::checker::check(std::path::Path::new("m.onnx"), &model).is_ok());
    // A branch reading a name no scope defines is a defect, located in its subgraph.
    let mut bad = Graph::default();
    bad.node_named("Relu", &["ghost"], "r", vec![]);
    bad.output("r", None);
    set_attr(&mut model, 1, attribute("else_branch", Attr::Graph(bad.into_graph("else"))));
    let err = crate::model::checker::check(std::path::Path::new("m.onnx"), &model).unwrap_err().to_string();
    assert!(
        err.contains(
            "node #1 `relu_1` (If) subgraph `else_branch`: node #0 `relu_0` (Relu) reads tensor `ghost`"
        ),
        "{err}"
    );
}

#[test]
fn a_flood_of_defects_is_capped_and_counted() {
    let mut model = small_cnn();
    let w = init(&mut model, "w_1").clone();
    for i in 0..60 {
        graph(&mut model).initializer.push(pb::TensorProto {
            name: format!("junk_{i}"),
            dims: vec![-1],
            ..w.clone()
        });
    }
    let err = crate::model::checker::check(std::path::Path::new("m.onnx"), &model).unwrap_err().to_string();
    assert!(err.starts_with("m.onnx: 60 defects make this an invalid ONNX model:"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("negative dimension")).count(), 50);
    assert!(err.ends_with("\n  ... and 10 more"), "{err}");
}

#[test]
fn external_data_inside_a_subgraph_is_refused() {
    use pb::tensor_proto::DataLocation;
    let mut branch = Graph::default();
    let w = branch.init_f32("w", &[2], &[1.0, 2.0]);
    branch.node_named("Add", &["conv_3", &w], "r", vec![]);
    branch.output("r", None);
    let mut branch = branch.into_graph("then");
    branch.initializer[0].raw_data.clear();
    branch.initializer[0].data_location = Some(DataLocation::External as i32);
    let mut model = small_cnn();
    graph(&mut model).node[1].op_type = "If".into();
    set_attr(&mut model, 1, attribute("then_branch", Attr::Graph(branch.clone())));
    set_attr(&mut model, 1, attribute("else_branch", Attr::Graph(branch)));
    let err = crate::model::checker::check(std::path::Path::new("m.onnx"), &model).unwrap_err().to_string();
    assert!(
        err.contains("node #1 `relu_1` (If) subgraph `then_branch`: initializer `w_1` keeps its data in an external file, which edgecert reads only for main-graph initializers"),
        "{err}"
    );
}
