"""Quantize a zoo model with onnxruntime's quantize_static (QDQ, per-channel weights), as users'
pipelines do: onnxruntime folds ReLU/Clip into the quantization ranges, so the graph has fewer
nodes than edgecert's own QDQ export of the same network. `cargo xtask zoo` runs this when a
python3 importing onnxruntime and onnx is on PATH; `cargo xtask fidelity` then checks that both
exports predict the same, since the chip runs the same layers.

usage: ort_quantize.py FP32.onnx OUT.onnx SEED
"""

import sys

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
import onnx


class RandomImages(CalibrationDataReader):
    """Two seeded random inputs: latency does not depend on values, only on the graph."""

    def __init__(self, model_path, seed):
        model = onnx.load(model_path)
        first = model.graph.input[0]
        shape = [d.dim_value for d in first.type.tensor_type.shape.dim]
        rng = np.random.default_rng(seed)
        self.batches = iter([{first.name: rng.random(shape, dtype=np.float32)} for _ in range(2)])

    def get_next(self):
        return next(self.batches, None)


def main():
    fp32, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    quantize_static(
        fp32,
        out,
        RandomImages(fp32, seed),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


if __name__ == "__main__":
    main()
