"""Exports a small text detector the way PaddleOCR ships one: PaddlePaddle's own `paddle.jit.save`,
then `paddle2onnx` at opset 11, with a dynamic batch, height and width.

The network is the shape of PaddleOCR's DB detector, scaled down: a strided convolutional backbone
(Conv + BatchNorm + ReLU, stride-2 stages), an FPN-style neck (nearest upsampling, Add, Concat)
and a probability-map head (Conv, ConvTranspose, Sigmoid). Weights are random with a fixed seed:
edgecert needs the file's structure (opset 11, every weight in a `Constant` node, dynamic
dimensions named `DynamicDimension.k`), not a trained detector.

Beside OUT.onnx it writes OUT_symbolic.onnx: the same model after onnxruntime's symbolic shape
inference, which writes every intermediate shape into `value_info` as an expression such as
`floor(DynamicDimension.1/2 - 1/2) + 1` — what PaddleOCR's detectors look like once a deployment
pipeline has run it.

    pip install paddlepaddle paddle2onnx onnxruntime sympy
    python3 xtask/paddle_export.py tests/fixtures/paddle/db_det_opset11.onnx

The repository keeps both files (made with paddlepaddle 3.3.1, paddle2onnx 2.1.0 and onnxruntime
1.32.0) so that tests need none of these packages; this script is how they were made.
"""

import os
import sys
import tempfile

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import paddle2onnx


def conv_bn(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2D(cin, cout, 3, stride=stride, padding=1, bias_attr=False),
        nn.BatchNorm2D(cout),
        nn.ReLU(),
    )


def upsample_to(x, like):
    """Nearest upsampling to another feature map's size, read at run time (as PaddleOCR's FPN
    necks do for inputs of any size): Shape, Slice and Resize in the exported graph."""
    return F.interpolate(x, size=paddle.shape(like)[2:], mode="nearest")


class TinyDbDetector(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8, 2)
        self.stage2 = conv_bn(8, 16, 2)
        self.stage3 = conv_bn(16, 24, 2)
        self.stage4 = conv_bn(24, 32, 2)
        self.lateral = nn.LayerList([nn.Conv2D(c, 16, 1) for c in (16, 24, 32)])
        self.smooth = nn.Conv2D(48, 16, 3, padding=1)
        self.head = nn.Sequential(
            conv_bn(16, 8, 1),
            nn.Conv2DTranspose(8, 8, 2, stride=2),
            nn.ReLU(),
            nn.Conv2DTranspose(8, 1, 2, stride=2),
        )

    def forward(self, x):
        c1 = self.stem(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        p4 = self.lateral[2](c4)
        p3 = self.lateral[1](c3) + upsample_to(p4, c3)
        p2 = self.lateral[0](c2) + upsample_to(p3, c2)
        up3 = upsample_to(p3, c2)
        up4 = upsample_to(p4, c2)
        fused = self.smooth(paddle.concat([p2, up3, up4], axis=1))
        return F.sigmoid(self.head(fused))


def main(out):
    paddle.seed(20261207)
    model = TinyDbDetector()
    model.eval()
    spec = [paddle.static.InputSpec(shape=[None, 3, None, None], dtype="float32", name="x")]
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "inference")
        paddle.jit.save(model, prefix, input_spec=spec)
        files = os.listdir(tmp)
        model_file = next(os.path.join(tmp, f) for f in files if f.endswith((".json", ".pdmodel")))
        params_file = prefix + ".pdiparams"
        paddle2onnx.export(model_file, params_file, out, opset_version=11, enable_onnx_checker=True)
    print(f"wrote {out}")
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    symbolic = out.removesuffix(".onnx") + "_symbolic.onnx"
    onnx.save(SymbolicShapeInference.infer_shapes(onnx.load(out), auto_merge=True), symbolic)
    print(f"wrote {symbolic}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
