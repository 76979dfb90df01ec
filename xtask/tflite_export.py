"""Exports a reference family's FP32 ONNX model as the TFLite files an edge deployment ships, with
TensorFlow's own converter (`tf.lite.TFLiteConverter`), so edgecert's TFLite path is tested on
files the real exporter wrote.

The network is rebuilt op by op from the ONNX file (Conv, Relu, MaxPool, AveragePool,
GlobalAveragePool, Flatten, Gemm, and Add/Sub/Mul by a constant) with the ONNX weights, as
TensorFlow functions in NHWC. The TFLite input keeps the golden set's NCHW shape and the graph
transposes it first, so one golden set feeds both files. Three files come out:

- OUT_fp32.tflite: float32 weights and activations;
- OUT_fp16.tflite: float16 weights, dequantized to float32 in the graph (DEQUANTIZE ops);
- OUT_uint8.tflite: full-integer int8 (per-channel convolution weights, per-tensor
  activations), calibrated on the golden samples, with a uint8 input and output as a camera
  pipeline feeds it.

    pip install tensorflow-cpu onnx
    cargo xtask golden shapes
    python3 xtask/tflite_export.py golden/shapes/shapes_fp32.onnx golden/shapes/samples \
        tests/fixtures/tflite/shapes

The repository keeps the files (made with tensorflow-cpu 2.21.0 and onnx 1.23.2) so that tests
need neither package; this script is how they were made.
"""

import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
import tensorflow as tf


def attribute(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def padding_of(node):
    """TFLite's SAME or VALID for the ONNX pads this script's models use."""
    pads = attribute(node, "pads", [0, 0, 0, 0])
    if not any(pads):
        return "VALID"
    kernel = attribute(node, "kernel_shape")
    if all(p == k // 2 for p, k in zip(pads, list(kernel) * 2)):
        return "SAME"
    raise SystemExit(f"{node.name}: pads {pads} are neither SAME nor VALID")


def rebuilt(model):
    """A function computing `model` in NHWC, from the ONNX graph's nodes and weights."""
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    graph_input = model.graph.input[0].name
    graph_output = model.graph.output[0].name

    def forward(x):
        values = {graph_input: tf.transpose(x, [0, 2, 3, 1])}
        for node in model.graph.node:
            values[node.output[0]] = apply(node, values, weights)
        return values[graph_output]

    return forward


def apply(node, values, weights):
    x = values.get(node.input[0])
    op = node.op_type
    if op == "Conv":
        w = tf.constant(np.transpose(weights[node.input[1]], [2, 3, 1, 0]))
        strides = list(attribute(node, "strides", [1, 1]))
        y = tf.nn.conv2d(x, w, [1, *strides, 1], padding_of(node))
        return tf.nn.bias_add(y, weights[node.input[2]]) if len(node.input) > 2 else y
    if op == "Relu":
        return tf.nn.relu(x)
    if op in ("MaxPool", "AveragePool"):
        pool = tf.nn.max_pool2d if op == "MaxPool" else tf.nn.avg_pool2d
        kernel, strides = list(attribute(node, "kernel_shape")), list(attribute(node, "strides"))
        return pool(x, kernel, strides, padding_of(node))
    if op == "GlobalAveragePool":
        return tf.reduce_mean(x, axis=[1, 2])
    if op == "Flatten":
        return tf.reshape(x, [x.shape[0], -1])
    if op in ("Add", "Sub", "Mul"):
        other = tf.constant(weights[node.input[1]])
        return {"Add": tf.add, "Sub": tf.subtract, "Mul": tf.multiply}[op](x, other)
    if op == "Gemm":
        w = weights[node.input[1]]
        w = w.T if attribute(node, "transB", 0) else w
        return tf.matmul(x, tf.constant(w)) + weights[node.input[2]]
    raise SystemExit(f"{node.name}: {op} is not among the operators this script rebuilds")


def samples(folder, shape):
    """The golden samples, as the float32 tensors edgecert feeds ([0, 1] pixels)."""
    for path in sorted(glob.glob(os.path.join(folder, "*.png")))[:200]:
        image = tf.io.decode_png(tf.io.read_file(path), channels=shape[1])
        image = tf.transpose(tf.cast(image, tf.float32) / 255.0, [2, 0, 1])
        yield [tf.reshape(image, shape)]


def main(onnx_path, samples_folder, out_stem):
    model = onnx.load(onnx_path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    forward = tf.function(rebuilt(model), input_signature=[tf.TensorSpec(shape, tf.float32, "input")])
    concrete = forward.get_concrete_function()

    def converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], forward)

    fp32 = converter()
    fp16 = converter()
    fp16.optimizations = [tf.lite.Optimize.DEFAULT]
    fp16.target_spec.supported_types = [tf.float16]
    full_integer = converter()
    full_integer.optimizations = [tf.lite.Optimize.DEFAULT]
    full_integer.representative_dataset = lambda: samples(samples_folder, shape)
    full_integer.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    full_integer.inference_input_type = tf.uint8
    full_integer.inference_output_type = tf.uint8
    os.makedirs(os.path.dirname(out_stem) or ".", exist_ok=True)
    for suffix, conv in (("fp32", fp32), ("fp16", fp16), ("uint8", full_integer)):
        path = f"{out_stem}_{suffix}.tflite"
        with open(path, "wb") as f:
            f.write(conv.convert())
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: tflite_export.py MODEL.onnx SAMPLES_FOLDER OUT_STEM")
    main(*sys.argv[1:])
