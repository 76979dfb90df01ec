//! Per-layer drift analysis (`edgecert analyze`): both models run on the golden samples with
//! their intermediate activations exposed, and each layer of the compressed model is compared
//! with the same layer of the FP32 reference (cosine similarity, SNR, errors), ranked worst
//! first — so a user sees *which layer* costs the accuracy. Vendor toolchains ship this as
//! "accuracy analysis" for their own chip; this works on any ONNX pair.
//!
//! Layers are paired by the name of the tensor they write (quantizers that insert Q/DQ pairs,
//! edgecert's and onnxruntime's, keep the float op's output name, as TensorFlow's converter keeps
//! a layer's tensor name between its float and integer exports), and the rest by order among ops
//! of the same type and output shape.
//!
//! Both models must be of one format. An ONNX graph and a TFLite file of the same network differ
//! in more than layout: TFLite fuses activations into the layer before them and folds
//! normalisation, so a layer of one has no tensor in the other to compare with.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{with_quantized_io, Engine, Tensor};
use crate::golden::GoldenSet;
use crate::metrics::{compare_outputs, Statistic};
use crate::model::{ModelInventory, NodeInfo};
use crate::vocab::{Error, Result};

/// Ops that carry no computation of their own worth comparing.
const PASS_THROUGH: [&str; 12] = [
    "QuantizeLinear",
    "DequantizeLinear",
    "Constant",
    "Shape",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Cast",
    "Gather",
    "Transpose",
];

/// One layer of the compressed model against the same layer of FP32.
#[derive(Debug, Clone, Serialize)]
pub struct LayerDrift {
    /// Position of the layer in the reference graph's node order.
    pub order: usize,
    pub tensor: String,
    pub reference_node: String,
    pub compressed_node: String,
    pub op_type: String,
    pub shape: Option<Vec<usize>>,
    pub cosine: f64,
    /// Cosine lost in this layer: the cosine of the paired layer(s) feeding it (1 for the
    /// model input) minus this layer's. Where it is large, this layer adds the drift.
    pub cosine_lost_here: f64,
    pub snr_db: f64,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
}

/// The drift of every paired layer, worst (lowest cosine) first.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub family: String,
    pub reference: String,
    pub compressed: String,
    pub engine: String,
    pub samples: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    pub layers: Vec<LayerDrift>,
    /// Reference layers with no counterpart in the compressed model.
    pub unpaired: Vec<String>,
}

/// Which golden samples to analyse.
#[derive(Debug, Clone, Default)]
pub struct SampleSelection {
    /// A slice of the family metric (e.g. `micro` for SMT), when the metric defines it.
    pub slice: Option<String>,
    /// At most this many samples (the first ones of the selection).
    pub limit: Option<usize>,
}

pub fn analyze(
    golden: &GoldenSet,
    reference: &ModelInventory,
    compressed: &ModelInventory,
    engine: &dyn Engine,
    selection: &SampleSelection,
) -> Result<DriftReport> {
    if reference.format != compressed.format {
        return Err(Error::Usage(format!(
            "per-layer analysis compares two graphs of one format; {} is {} and {} is {}: give the FP32 export of the compressed model's own format (--golden's reference), and compare across formats on outputs with certify",
            reference.path.display(),
            reference.format.name(),
            compressed.path.display(),
            compressed.format.name()
        )));
    }
    let samples = select_samples(golden, selection)?;
    let pairs = pair_layers(&reference.nodes, &compressed.nodes);
    if pairs.is_empty() {
        return Err(Error::model(
            &compressed.path,
            format!(
                "no layer pairs with {}: the graphs share no op outputs by name or by order",
                reference.path.display()
            ),
        ));
    }
    let exposed = |nodes: Vec<&NodeInfo>| nodes.iter().map(|n| n.outputs[0].clone()).collect::<Vec<_>>();
    let (ref_tensors, cmp_tensors) =
        (exposed(pairs.iter().map(|p| p.0).collect()), exposed(pairs.iter().map(|p| p.1).collect()));
    let run = |model: &ModelInventory, tensors: &[String]| -> Result<Vec<Vec<Tensor>>> {
        let loaded = engine.load_exposing(&model.path, &model.inputs, tensors)?;
        let loaded = with_quantized_io(loaded, &model.inputs, &[]);
        samples.par_iter().map(|&i| loaded.run(&[golden.sample(i)?])).collect()
    };
    let (out_r, out_c) = (run(reference, &ref_tensors)?, run(compressed, &cmp_tensors)?);
    let compared =
        compare_outputs(&out_c, &out_r, &ref_tensors).map_err(|e| Error::model(&compressed.path, e))?;
    // Node names are optional in ONNX: a layer's place is its index in the reference graph.
    let order = |node: &NodeInfo| reference.nodes.iter().position(|n| std::ptr::eq(n, node)).unwrap_or(0);
    let mut layers: Vec<LayerDrift> = pairs
        .iter()
        .zip(&compared)
        .map(|((r, c), s)| LayerDrift {
            order: order(r),
            tensor: r.outputs[0].clone(),
            reference_node: r.name.clone(),
            compressed_node: c.name.clone(),
            op_type: r.op_type.clone(),
            shape: r.output_shapes.first().cloned().flatten(),
            cosine: s.value(Statistic::Cosine),
            cosine_lost_here: 0.0,
            snr_db: s.value(Statistic::SnrDb),
            max_abs_error: s.value(Statistic::MaxAbsError),
            mean_abs_error: s.value(Statistic::MeanAbsError),
        })
        .collect();
    attribute_drift(&mut layers, &reference.nodes);
    layers.sort_by(|a, b| a.cosine.total_cmp(&b.cosine).then(a.order.cmp(&b.order)));
    let paired: Vec<*const NodeInfo> = pairs.iter().map(|p| p.0 as *const NodeInfo).collect();
    Ok(DriftReport {
        family: golden.name().to_string(),
        reference: reference.path.display().to_string(),
        compressed: compressed.path.display().to_string(),
        engine: engine.name().to_string(),
        samples: samples.len(),
        slice: selection.slice.clone(),
        layers,
        unpaired: layers_of(&reference.nodes)
            .filter(|n| !paired.contains(&(*n as *const NodeInfo)))
            .map(|n| n.name.clone())
            .collect(),
    })
}

/// Sets each layer's `cosine_lost_here` from the paired layers upstream of it, walking back
/// through pass-through ops (reshapes, Q/DQ) to the nearest compared tensors.
fn attribute_drift(layers: &mut [LayerDrift], nodes: &[NodeInfo]) {
    let producer: HashMap<&str, &NodeInfo> =
        nodes.iter().flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n))).collect();
    let mut upstream =
        Upstream { producer, cosine: layers.iter().map(|l| (l.tensor.clone(), l.cosine)).collect() };
    for layer in layers.iter_mut() {
        let feeding = nodes[layer.order].inputs.iter().map(|i| upstream.cosine_of(i, 0)).fold(1.0, f64::min);
        layer.cosine_lost_here = feeding - layer.cosine;
    }
}

/// The lowest cosine among the compared tensors that feed a tensor (1: only model inputs),
/// remembered per tensor so shared branches are walked once.
struct Upstream<'a> {
    producer: HashMap<&'a str, &'a NodeInfo>,
    cosine: HashMap<String, f64>,
}

impl Upstream<'_> {
    fn cosine_of(&mut self, tensor: &str, depth: usize) -> f64 {
        if let Some(c) = self.cosine.get(tensor) {
            return *c;
        }
        let value = match self.producer.get(tensor).copied() {
            Some(n) if depth < 256 => {
                n.inputs.iter().map(|i| self.cosine_of(i, depth + 1)).fold(1.0, f64::min)
            }
            _ => 1.0,
        };
        self.cosine.insert(tensor.to_string(), value);
        value
    }
}

fn select_samples(golden: &GoldenSet, selection: &SampleSelection) -> Result<Vec<usize>> {
    let mut samples: Vec<usize> = match &selection.slice {
        None => (0..golden.len()).collect(),
        Some(name) => {
            let kind = golden.manifest.metric.kind;
            golden.labels.as_ref().and_then(|labels| kind.slice_samples(labels, name)).ok_or_else(|| {
                Error::Usage(format!(
                    "metric `{}` of {} defines no sample slice `{name}` (SMT: micro, normal; chassis: dry, wet, snow)",
                    kind.name(),
                    golden.manifest_path.display()
                ))
            })?
        }
    };
    if let Some(limit) = selection.limit {
        samples.truncate(limit);
    }
    if samples.is_empty() {
        return Err(Error::Usage("the selection holds no golden samples".into()));
    }
    Ok(samples)
}

/// Nodes whose output is worth comparing: a computation with a float activation of its own.
fn layers_of(nodes: &[NodeInfo]) -> impl Iterator<Item = &NodeInfo> {
    nodes.iter().filter(|n| !PASS_THROUGH.contains(&n.op_type.as_str()) && !n.outputs.is_empty())
}

/// Pairs reference layers with compressed ones: by output tensor name and op type first; the
/// layers whose names do not carry over, by order among layers of the same op type and output
/// shape. Reference order is kept.
fn pair_layers<'a>(
    reference: &'a [NodeInfo],
    compressed: &'a [NodeInfo],
) -> Vec<(&'a NodeInfo, &'a NodeInfo)> {
    let by_output: HashMap<(&str, &str), &NodeInfo> =
        layers_of(compressed).map(|n| ((n.outputs[0].as_str(), n.op_type.as_str()), n)).collect();
    let named: Vec<Option<&NodeInfo>> = layers_of(reference)
        .map(|r| by_output.get(&(r.outputs[0].as_str(), r.op_type.as_str())).copied())
        .collect();
    let taken: Vec<*const NodeInfo> = named.iter().flatten().map(|c| *c as *const NodeInfo).collect();
    let key = |n: &NodeInfo| (n.op_type.clone(), n.output_shapes.first().cloned().flatten());
    let mut queues: HashMap<_, std::collections::VecDeque<&NodeInfo>> = HashMap::new();
    for c in layers_of(compressed).filter(|c| !taken.contains(&(*c as *const NodeInfo))) {
        queues.entry(key(c)).or_default().push_back(c);
    }
    layers_of(reference)
        .zip(named)
        .filter_map(|(r, c)| Some((r, c.or_else(|| queues.get_mut(&key(r))?.pop_front())?)))
        .collect()
}

impl DriftReport {
    /// The report as text: the worst `top` layers, then what was left out.
    pub fn text(&self, top: usize) -> String {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "rank",
            "layer (graph order)",
            "op",
            "output",
            "cosine",
            "lost here",
            "SNR dB",
            "max |Δ| p99",
            "mean |Δ|",
        ]);
        for (rank, l) in self.layers.iter().take(top).enumerate() {
            t.add_row(vec![
                (rank + 1).to_string(),
                format!("{} (#{})", l.reference_node, l.order),
                l.op_type.clone(),
                l.shape.as_ref().map_or("?".into(), |s| format!("{s:?}")),
                format!("{:.6}", l.cosine),
                format!("{:+.6}", l.cosine_lost_here),
                format!("{:.2}", l.snr_db),
                format!("{:.5}", l.max_abs_error),
                format!("{:.5}", l.mean_abs_error),
            ]);
        }
        let slice = self.slice.as_ref().map_or(String::new(), |s| format!(", slice `{s}`"));
        let mut out = format!(
            "per-layer drift of {} against {} on {} golden samples of `{}`{slice} ({} engine), worst first:\n{t}\n",
            self.compressed, self.reference, self.samples, self.family, self.engine
        );
        if self.layers.len() > top {
            out.push_str(&format!("({} more layers: --top or --json for all)\n", self.layers.len() - top));
        }
        if !self.unpaired.is_empty() {
            out.push_str(&format!(
                "layers with no counterpart in the compressed model: {}\n",
                self.unpaired.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, op: &str, output: &str, shape: &[usize]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            op_type: op.into(),
            outputs: vec![output.into()],
            output_shapes: vec![Some(shape.to_vec())],
            ..NodeInfo::default()
        }
    }

    #[test]
    fn layers_pair_by_name_and_the_renamed_rest_by_order_of_type_and_shape() {
        let reference = [
            node("conv", "Conv", "Relu;Conv2D", &[1, 8]),
            node("quant", "QuantizeLinear", "q", &[1, 8]),
            node("fc", "Gemm", "Identity", &[1, 4]),
            node("other", "Gemm", "Logits", &[1, 2]),
        ];
        let compressed = [
            node("conv_q", "Conv", "Relu;Conv2D", &[1, 8]),
            node("fc_q", "Gemm", "Identity1", &[1, 4]),
            node("requant", "QuantizeLinear", "Identity", &[1, 4]),
        ];
        let pairs: Vec<(&str, &str)> = pair_layers(&reference, &compressed)
            .iter()
            .map(|(r, c)| (r.name.as_str(), c.name.as_str()))
            .collect();
        // `Identity` names a quantizer in the compressed graph, not the classifier: the op type
        // must match too. `Logits` has no layer of its shape left and stays unpaired.
        assert_eq!(pairs, [("conv", "conv_q"), ("fc", "fc_q")]);
    }
}
