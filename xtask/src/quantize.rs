//! Post-training static quantization to QDQ: per-channel symmetric int8 weights, per-tensor
//! asymmetric int8 activations whose ranges are calibrated by running the FP32 model (through
//! edgecert's engine) on calibration data held apart from the golden split.

use std::collections::HashMap;

use edgecert::engine::Tensor;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::run::run_model;
use edgecert::model::writer::{attribute, f32_data, raw_tensor, tensor_f32, value_info, Attr};

/// Ops whose weights and input activation get quantized.
fn weight_axis(node: &pb::NodeProto) -> Option<i64> {
    match node.op_type.as_str() {
        "Conv" => Some(0),
        "Gemm" => {
            let trans_b = node.attribute.iter().find(|a| a.name == "transB").map_or(0, |a| a.i);
            Some(if trans_b == 1 { 0 } else { 1 })
        }
        "MatMul" => Some(1),
        _ => None,
    }
}

/// Min and max of every tensor in `names`, over all calibration samples.
fn calibrate(
    fp32: &pb::ModelProto,
    names: &[String],
    calibration: &[Tensor],
) -> anyhow::Result<HashMap<String, (f32, f32)>> {
    let mut probe = fp32.clone();
    let graph = probe.graph.as_mut().expect("graph");
    graph.output = names.iter().map(|n| value_info(n, DataType::Float, None)).collect();
    let outputs = run_model(&probe, calibration)?;
    let mut ranges = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let mut values: Vec<f32> = outputs.iter().flat_map(|s| s[i].iter().copied()).collect();
        values.sort_by(f32::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        // Percentile calibration: a handful of outliers should not stretch the int8 step for
        // everything else.
        ranges.insert(
            name.clone(),
            (at(1.0 - CALIBRATION_PERCENTILE).min(0.0), at(CALIBRATION_PERCENTILE).max(0.0)),
        );
    }
    Ok(ranges)
}

/// Share of calibration values an activation range must cover.
const CALIBRATION_PERCENTILE: f64 = 0.9999;

pub fn quantize_qdq(fp32: &pb::ModelProto, calibration: &[Tensor]) -> anyhow::Result<pb::ModelProto> {
    let graph = fp32.graph.as_ref().expect("graph");
    let mut activations: Vec<String> = Vec::new();
    for n in graph.node.iter().filter(|n| weight_axis(n).is_some()) {
        if !activations.contains(&n.input[0]) {
            activations.push(n.input[0].clone());
        }
    }
    let ranges = calibrate(fp32, &activations, calibration)?;
    let mut inits: HashMap<String, pb::TensorProto> =
        graph.initializer.iter().map(|t| (t.name.clone(), t.clone())).collect();
    let mut new_inits: Vec<pb::TensorProto> = Vec::new();
    let mut nodes = Vec::new();
    let mut dq_of: HashMap<String, String> = HashMap::new();
    for node in &graph.node {
        let Some(axis) = weight_axis(node) else {
            nodes.push(node.clone());
            continue;
        };
        let mut node = node.clone();
        let act = node.input[0].clone();
        if !dq_of.contains_key(&act) {
            let (lo, hi) = ranges[&act];
            // int8 activations (S8S8), the form NPU toolchains such as RKNN and QNN prefer.
            let scale = ((hi - lo) / 255.0).max(1e-8);
            let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i8;
            let s = format!("{act}_scale");
            let z = format!("{act}_zero_point");
            new_inits.push(tensor_f32(&s, &[], &[scale]));
            new_inits.push(raw_tensor(&z, &[], DataType::Int8, vec![zp as u8]));
            let q = format!("{act}_quantized");
            let dq = format!("{act}_dequantized");
            nodes.push(qdq_node("QuantizeLinear", &[&act, &s, &z], &q, None));
            nodes.push(qdq_node("DequantizeLinear", &[&q, &s, &z], &dq, None));
            dq_of.insert(act.clone(), dq);
        }
        node.input[0] = dq_of[&act].clone();
        let w = inits.remove(&node.input[1]).expect("weights are an initializer");
        let (wq, scales, dims) = quantize_per_channel(&w, axis as usize);
        let base = w.name.clone();
        let channels = scales.len();
        new_inits.push(raw_tensor(
            &format!("{base}_quantized"),
            &dims,
            DataType::Int8,
            wq.iter().map(|&v| v as u8).collect(),
        ));
        new_inits.push(tensor_f32(&format!("{base}_scale"), &[channels], &scales));
        new_inits.push(raw_tensor(
            &format!("{base}_zero_point"),
            &[channels],
            DataType::Int8,
            vec![0; channels],
        ));
        nodes.push(qdq_node(
            "DequantizeLinear",
            &[&format!("{base}_quantized"), &format!("{base}_scale"), &format!("{base}_zero_point")],
            &format!("{base}_dequantized"),
            Some(axis),
        ));
        node.input[1] = format!("{base}_dequantized");
        nodes.push(node);
    }
    let mut q = fp32.clone();
    let g = q.graph.as_mut().expect("graph");
    g.node = nodes;
    let mut kept: Vec<pb::TensorProto> =
        graph.initializer.iter().filter(|t| inits.contains_key(&t.name)).cloned().collect();
    kept.extend(new_inits);
    g.initializer = kept;
    q.producer_name = format!("{} + edgecert-xtask QDQ quantizer", q.producer_name);
    Ok(q)
}

fn qdq_node(op: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: output.to_string(),
        op_type: op.to_string(),
        attribute: axis.map(|a| attribute("axis", Attr::Int(a))).into_iter().collect(),
        ..Default::default()
    }
}

/// Symmetric int8 per output channel along `axis`: scale = max|w| / 127, zero point 0.
fn quantize_per_channel(w: &pb::TensorProto, axis: usize) -> (Vec<i8>, Vec<f32>, Vec<usize>) {
    let dims: Vec<usize> = w.dims.iter().map(|&d| d as usize).collect();
    let data = f32_data(w);
    let channels = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let channel_of = |i: usize| (i / inner) % channels;
    let mut max_abs = vec![0f32; channels];
    for (i, v) in data.iter().enumerate() {
        let c = channel_of(i);
        max_abs[c] = max_abs[c].max(v.abs());
    }
    let scales: Vec<f32> = max_abs.iter().map(|m| (m / 127.0).max(1e-12)).collect();
    let q = data
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[channel_of(i)]).round_ties_even().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales, dims)
}
