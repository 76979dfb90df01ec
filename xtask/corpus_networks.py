"""Rebuilds the standard networks of the measurement corpus (`fidelity/measurements.csv`) as the
TFLite files an edge deployment ships, so that edgecert's emulator is fitted and scored on the
layer inventory of the very network each vendor timed.

Each network is rebuilt layer for layer (same layers, shapes, channel counts and strides) after
the reference implementation the vendors measured, with random weights: the emulator needs the
inventory, not the accuracy. Classification networks from TensorFlow sources (Coral, NXP, Hailo's
TF-slim models) come from `tf.keras.applications`; networks the PyTorch-based zoos (Qualcomm AI
Hub, Ascend ModelZoo) took from torchvision come from `tf.keras.applications` where Keras builds
the same layers, and otherwise from the small builders below (torchvision ResNet-18/34/50/101,
SqueezeNet 1.1); YOLOv8 follows ultralytics' `yolov8.yaml`. Every model takes one NHWC float32
image (1, H, W, 3), TFLite's native layout. Two files come out per network:

- OUT_DIR/<name>_fp32.tflite: float32 weights and activations;
- OUT_DIR/<name>_int8.tflite: full-integer int8 (per-channel convolution weights, per-tensor
  activations), calibrated on 4 random images in [0, 1], with float input and output.

`<name>` is `<architecture>_<H>x<W>` with the corpus's architecture name (`resnet50_224x224`).
Without names the script builds every (architecture, input size) of the corpus it knows; a name
it cannot rebuild faithfully is reported as `unfaithful: NAME: reason`. Files that exist are kept,
so a rerun only builds what is missing.

    pip install tensorflow-cpu
    python3 xtask/corpus_networks.py target/corpus-networks
    python3 xtask/corpus_networks.py target/corpus-networks resnet50_224x224 yolov8n_640x640

`cargo xtask corpus-networks` runs it and keeps the files' inventories in `fidelity/networks`.
Made with tensorflow-cpu 2.21.0 (Keras 3.15).
"""

import contextlib
import csv
import io
import math
import re
import sys
from pathlib import Path

import warnings

import numpy as np
import tensorflow as tf

# Calibration covers every activation; the converter still warns about the float input.
warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")

keras = tf.keras
layers = tf.keras.layers

REPO = Path(__file__).resolve().parents[1]
CLASSES = 1000


# --- tf.keras.applications -------------------------------------------------------------------
#
# Keras builds its applications with explicit ZeroPadding2D + VALID convolutions where the
# original pads symmetrically, as a converted PyTorch model does too. `classifier_activation` is
# softmax for TF originals and None (logits) where the measured model is torchvision's.


def without_preprocessing(model):
    """`model` with its input Rescaling/Normalization layers replaced by identities.

    Keras's EfficientNet (v1) always scales and normalizes its input inside the model; the
    measured models (torchvision's, TF's original) take a normalized image and have no such ops.
    """

    def clone(layer):
        if isinstance(layer, (layers.Rescaling, layers.Normalization)):
            return layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def application(constructor, torchvision=False, strip_preprocessing=False, **kwargs):
    """A builder(h, w) for a tf.keras.applications network, 1000-class top, random weights."""

    def build(h, w):
        model = constructor(
            include_top=True,
            weights=None,
            # Batch 1 fixed in the graph, as the measured files have it (Keras leaves it open).
            input_tensor=keras.Input((h, w, 3), batch_size=1),
            classes=CLASSES,
            classifier_activation=None if torchvision else "softmax",
            **kwargs,
        )
        return without_preprocessing(model) if strip_preprocessing else model

    return build


# --- torchvision builders ----------------------------------------------------------------------


def torch_conv(x, filters, kernel, stride=1, bias=False, groups=1):
    """nn.Conv2d(padding=kernel // 2): symmetric padding, explicit (PAD + VALID) when strided.

    At stride 1 TF's SAME padding is the same symmetric padding; at stride 2 TF would pad only
    bottom/right, so the torch padding is kept as its own op, as converted PyTorch models have.
    """
    if stride == 1:
        return layers.Conv2D(filters, kernel, padding="same", use_bias=bias, groups=groups)(x)
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2)(x)
    conv = layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=bias, groups=groups)
    return conv(x)


def conv_bn(x, filters, kernel, stride=1, relu=True, groups=1):
    """Conv (no bias) + BatchNorm (+ ReLU); the converter folds the BatchNorm into the conv."""
    x = torch_conv(x, filters, kernel, stride, groups=groups)
    x = layers.BatchNormalization(epsilon=1e-5)(x)
    return layers.ReLU()(x) if relu else x


def basic_block(x, filters, stride):
    """torchvision BasicBlock (ResNet-18/34): two 3x3 convs, the first one strided."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, stride, relu=False)
    y = conv_bn(x, filters, 3, stride)
    y = conv_bn(y, filters, 3, relu=False)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def bottleneck(x, filters, stride):
    """torchvision Bottleneck, ResNet v1.5: the stride is on the 3x3 conv, not the first 1x1."""
    out = filters * 4
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        shortcut = conv_bn(x, out, 1, stride, relu=False)
    y = conv_bn(x, filters, 1)
    y = conv_bn(y, filters, 3, stride)
    y = conv_bn(y, out, 1, relu=False)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def torchvision_resnet(block, repeats):
    """torchvision.models.resnet{18,34,50,101}: 7x7/2 stem, 3x3/2 max pool, four stages."""

    def build(h, w):
        inputs = keras.Input((h, w, 3), batch_size=1)
        x = conv_bn(inputs, 64, 7, 2)
        # MaxPool2d(3, 2, padding=1) after a ReLU: zero padding cannot win the max.
        x = layers.MaxPooling2D(3, 2)(layers.ZeroPadding2D(1)(x))
        for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), repeats)):
            for i in range(n):
                x = block(x, filters, 2 if stage > 0 and i == 0 else 1)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(CLASSES)(x))

    return build


def ceil_max_pool(x):
    """MaxPool2d(3, 2, ceil_mode=True) after a ReLU: pad bottom/right by one when ceil adds a
    window (zeros cannot win the max of non-negative values)."""
    extra = [(n - 3) % 2 for n in x.shape[1:3]]
    if any(extra):
        x = layers.ZeroPadding2D(((0, extra[0]), (0, extra[1])))(x)
    return layers.MaxPooling2D(3, 2)(x)


def fire(x, squeeze, expand):
    """SqueezeNet Fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    s = layers.ReLU()(layers.Conv2D(squeeze, 1)(x))
    e1 = layers.ReLU()(layers.Conv2D(expand, 1)(s))
    e3 = layers.ReLU()(layers.Conv2D(expand, 3, padding="same")(s))
    return layers.Concatenate()([e1, e3])


def squeezenet1_1(h, w):
    """torchvision.models.squeezenet1_1: convs with bias, no BatchNorm, conv classifier."""
    inputs = keras.Input((h, w, 3), batch_size=1)
    x = layers.ReLU()(layers.Conv2D(64, 3, strides=2)(inputs))
    x = ceil_max_pool(x)
    x = fire(fire(x, 16, 64), 16, 64)
    x = ceil_max_pool(x)
    x = fire(fire(x, 32, 128), 32, 128)
    x = ceil_max_pool(x)
    x = fire(fire(x, 48, 192), 48, 192)
    x = fire(fire(x, 64, 256), 64, 256)
    x = layers.ReLU()(layers.Conv2D(CLASSES, 1)(x))
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x))


def regnet_x(depths, widths, group_width):
    """torchvision RegNetX (pycls): 3x3/2 stem of 32, stages of ResBottleneckBlocks (1x1, grouped
    3x3 carrying the stage's stride, 1x1; bottleneck multiplier 1; a strided 1x1 projection on
    each stage's first block), global average pool, 1000-class dense layer."""

    def build(h, w):
        inputs = keras.Input((h, w, 3), batch_size=1)
        x = conv_bn(inputs, 32, 3, 2)
        for depth, width in zip(depths, widths):
            for i in range(depth):
                stride = 2 if i == 0 else 1
                shortcut = x
                if stride != 1 or x.shape[-1] != width:
                    shortcut = conv_bn(x, width, 1, stride, relu=False)
                y = conv_bn(x, width, 1)
                y = conv_bn(y, width, 3, stride, groups=width // group_width)
                y = conv_bn(y, width, 1, relu=False)
                x = layers.ReLU()(layers.Add()([shortcut, y]))
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(CLASSES)(x))

    return build


def inception(x, c1, c3r, c3, c5r, c5, pool_proj):
    """GoogLeNet Inception module (torchvision and TF-slim alike): 1x1; 1x1 then 3x3; 1x1 then
    a second 3x3 where the paper has 5x5 (both implementations use 3x3 there); 3x3/1 max pool
    then 1x1; concatenated."""
    b1 = conv_bn(x, c1, 1)
    b2 = conv_bn(conv_bn(x, c3r, 1), c3, 3)
    b3 = conv_bn(conv_bn(x, c5r, 1), c5, 3)
    b4 = conv_bn(layers.MaxPooling2D(3, 1, padding="same")(x), pool_proj, 1)
    return layers.Concatenate()([b1, b2, b3, b4])


def googlenet(h, w):
    """torchvision.models.googlenet (Qualcomm's `googlenet`) and TF-slim inception_v1 (Coral's,
    Hailo's `inception_v1`): the same stem, nine Inception modules with the paper's channel
    counts, BatchNorm after every conv, global average pool and a 1000-class dense layer (the
    auxiliary heads are training-only)."""
    inputs = keras.Input((h, w, 3), batch_size=1)
    x = conv_bn(inputs, 64, 7, 2)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = conv_bn(conv_bn(x, 64, 1), 192, 3)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = inception(x, 64, 96, 128, 16, 32, 32)  # 3a
    x = inception(x, 128, 128, 192, 32, 96, 64)  # 3b
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    for spec in [
        (192, 96, 208, 16, 48, 64),  # 4a
        (160, 112, 224, 24, 64, 64),  # 4b
        (128, 128, 256, 24, 64, 64),  # 4c
        (112, 144, 288, 32, 64, 64),  # 4d
        (256, 160, 320, 32, 128, 128),  # 4e
    ]:
        x = inception(x, *spec)
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = inception(x, 256, 160, 320, 32, 128, 128)  # 5a
    x = inception(x, 384, 192, 384, 48, 128, 128)  # 5b
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(CLASSES)(x))


# --- ultralytics YOLOv8 detect -----------------------------------------------------------------


def yolo_conv(x, filters, kernel=1, stride=1, act=True):
    """ultralytics Conv: Conv2d(autopad k // 2, no bias) + BatchNorm + SiLU (none: act=False)."""
    x = torch_conv(x, filters, kernel, stride)
    x = layers.BatchNormalization(epsilon=1e-3)(x)
    return layers.Activation("silu")(x) if act else x


def yolo_dwconv(x, kernel=3, act=True):
    """ultralytics DWConv (channels in = out): depthwise Conv2d + BatchNorm + SiLU."""
    x = layers.DepthwiseConv2D(kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(epsilon=1e-3)(x)
    return layers.Activation("silu")(x) if act else x


def c2f(x, filters, n, shortcut):
    """ultralytics C2f: 1x1 conv to 2c, split in halves, n bottlenecks chained on the second
    half, every intermediate concatenated, 1x1 conv to `filters`."""
    c = filters // 2
    y = list(keras.ops.split(yolo_conv(x, 2 * c), 2, axis=-1))
    for _ in range(n):
        z = yolo_conv(yolo_conv(y[-1], c, 3), c, 3)
        y.append(layers.Add()([y[-1], z]) if shortcut else z)
    return yolo_conv(layers.Concatenate()(y), filters)


def sppf(x, filters, k=5):
    """ultralytics SPPF: 1x1 conv to c/2, three chained 5x5/1 max pools, concat, 1x1 conv."""
    y = [yolo_conv(x, x.shape[-1] // 2)]
    for _ in range(3):
        y.append(layers.MaxPooling2D(k, 1, padding="same")(y[-1]))
    return yolo_conv(layers.Concatenate()(y), filters)


class NearestUpsample(layers.Layer):
    """nn.Upsample(scale_factor=2, mode="nearest") as TFLite's RESIZE_NEAREST_NEIGHBOR, the op
    exported YOLOv8 files have (Keras's UpSampling2D converts to TILE and RESHAPE)."""

    def call(self, x):
        return tf.image.resize(x, [2 * x.shape[1], 2 * x.shape[2]], method="nearest")


class DetectDecode(layers.Layer):
    """The Detect head's inference tail (export mode): DFL (softmax over 16 bins, expectation by
    the fixed 1x1 conv arange(16)), distances to xywh boxes around the anchor points, times the
    level's stride, concatenated with the sigmoid class scores: (1, anchors, 4 + classes).

    ultralytics exports it as (1, 84, anchors); here the channels stay last (NHWC), no transpose.
    """

    def __init__(self, anchors, strides, reg_max=16, **kwargs):
        super().__init__(**kwargs)
        self.anchors = anchors
        self.strides = strides
        self.reg_max = reg_max

    def call(self, x):
        box, cls = tf.split(x, [4 * self.reg_max, x.shape[-1] - 4 * self.reg_max], axis=-1)
        box = tf.nn.softmax(tf.reshape(box, [1, -1, 4, self.reg_max]), axis=-1)
        # DFL's fixed 1x1 conv (reg_max -> 1, weights 0..reg_max-1), a CONV_2D as in the export.
        bins = tf.reshape(tf.range(self.reg_max, dtype=tf.float32), [1, 1, self.reg_max, 1])
        dist = tf.reshape(tf.nn.conv2d(box, bins, 1, "VALID"), [1, -1, 4])
        lt, rb = tf.split(dist, 2, axis=-1)
        anchors = tf.constant(self.anchors)
        x1y1, x2y2 = anchors - lt, anchors + rb
        xywh = tf.concat([(x1y1 + x2y2) / 2, x2y2 - x1y1], axis=-1) * tf.constant(self.strides)
        return tf.concat([xywh, tf.sigmoid(cls)], axis=-1)


def detect(features, input_h, classes=80, reg_max=16, v11=False):
    """ultralytics Detect: per level a box branch (two 3x3 Conv, 1x1 conv to 4 * reg_max) and a
    class branch (two 3x3 Conv, or with `v11` DWConv + 1x1 Conv twice; 1x1 conv to classes),
    both last 1x1 convs with bias; then decoded."""
    c2 = max(16, features[0].shape[-1] // 4, reg_max * 4)
    c3 = max(features[0].shape[-1], min(classes, 100))
    levels, anchors, strides = [], [], []
    for f in features:
        box = layers.Conv2D(4 * reg_max, 1)(yolo_conv(yolo_conv(f, c2, 3), c2, 3))
        if v11:
            hidden = yolo_conv(yolo_dwconv(yolo_conv(yolo_dwconv(f), c3)), c3)
        else:
            hidden = yolo_conv(yolo_conv(f, c3, 3), c3, 3)
        cls = layers.Conv2D(classes, 1)(hidden)
        h, w = f.shape[1:3]
        level = layers.Concatenate()([box, cls])
        levels.append(layers.Reshape((h * w, 4 * reg_max + classes))(level))
        # make_anchors: cell centres (x + 0.5, y + 0.5) in grid units, row-major.
        gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        anchors.append(np.stack([gx.ravel(), gy.ravel()], axis=-1))
        strides.append(np.full((h * w, 1), input_h / h))
    anchors = np.concatenate(anchors).astype(np.float32)
    strides = np.concatenate(strides).astype(np.float32)
    return DetectDecode(anchors, strides, reg_max)(layers.Concatenate(axis=1)(levels))


def segment(features, input_h, protos, masks=32):
    """ultralytics Segment: Detect, plus per level a mask-coefficient branch (two 3x3 Conv to
    c4 = max(c / 4, 32), 1x1 conv to 32) concatenated after the decoded boxes and classes, and
    the Proto module on P3 (3x3 Conv, 2x2/2 ConvTranspose with bias, 3x3 Conv, 1x1 Conv to 32
    masks): outputs (1, anchors, 84 + 32) and (1, 2 H/8, 2 W/8, 32)."""
    c4 = max(features[0].shape[-1] // 4, masks)
    coefficients = [
        layers.Reshape((f.shape[1] * f.shape[2], masks))(layers.Conv2D(masks, 1)(yolo_conv(yolo_conv(f, c4, 3), c4, 3)))
        for f in features
    ]
    boxes = detect(features, input_h)
    out = layers.Concatenate()([boxes, layers.Concatenate(axis=1)(coefficients)])
    p = yolo_conv(features[0], protos, 3)
    p = layers.Conv2DTranspose(protos, 2, 2)(p)
    proto = yolo_conv(yolo_conv(p, protos, 3), masks)
    return [out, proto]


# --- ultralytics YOLO11 detect -------------------------------------------------------------------


def bottleneck_yolo(x, c, shortcut, e=1.0):
    """ultralytics Bottleneck(c, c, shortcut, k=(3, 3), e): 3x3 Conv to c * e, 3x3 Conv back,
    added back. C3k passes e=1.0; C3k2's own Bottlenecks take the default 0.5."""
    y = yolo_conv(yolo_conv(x, int(c * e), 3), c, 3)
    return layers.Add()([x, y]) if shortcut else y


def c3k(x, filters, n=2, shortcut=True):
    """ultralytics C3k (a C3 with 3x3 bottlenecks): 1x1 Conv to c/2 through n bottlenecks,
    beside a second 1x1 Conv, concatenated, 1x1 Conv to `filters`."""
    c_ = filters // 2
    y = yolo_conv(x, c_)
    for _ in range(n):
        y = bottleneck_yolo(y, c_, shortcut)
    return yolo_conv(layers.Concatenate()([y, yolo_conv(x, c_)]), filters)


def c3k2(x, filters, n, use_c3k, e=0.5, shortcut=True):
    """ultralytics C3k2: C2f with hidden width filters * e, its n blocks C3k (use_c3k) or
    Bottlenecks, every intermediate concatenated, 1x1 Conv to `filters`."""
    c = int(filters * e)
    y = list(keras.ops.split(yolo_conv(x, 2 * c), 2, axis=-1))
    for _ in range(n):
        y.append(c3k(y[-1], c, 2, shortcut) if use_c3k else bottleneck_yolo(y[-1], c, shortcut, 0.5))
    return yolo_conv(layers.Concatenate()(y), filters)


class AttentionCore(layers.Layer):
    """ultralytics Attention's inner product: qkv (1, H, W, heads * (2 key + head)) split per head
    into q, k, v; softmax(q k^T * key^-0.5) applied to v. Returns the mixed values and v, both
    (1, H, W, C), as the module's view/reshape of NCHW tensors lays their channels out."""

    def __init__(self, heads, key_dim, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.key_dim, self.head_dim = heads, key_dim, head_dim

    def call(self, qkv):
        _, h, w, _ = qkv.shape
        n, c = h * w, self.heads * self.head_dim
        t = tf.transpose(tf.reshape(qkv, [1, n, self.heads, 2 * self.key_dim + self.head_dim]), [0, 2, 1, 3])
        q, k, v = tf.split(t, [self.key_dim, self.key_dim, self.head_dim], axis=-1)
        attn = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * self.key_dim**-0.5, axis=-1)
        mixed = tf.reshape(tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3]), [1, h, w, c])
        return mixed, tf.reshape(tf.transpose(v, [0, 2, 1, 3]), [1, h, w, c])


def psa_attention(x, heads, attn_ratio=0.5):
    """ultralytics Attention(dim, heads, attn_ratio): qkv 1x1 Conv (no act), the inner product,
    plus a 3x3 depthwise positional encoding of v (no act), then a 1x1 projection (no act)."""
    dim = x.shape[-1]
    head_dim = dim // heads
    key_dim = int(head_dim * attn_ratio)
    qkv = yolo_conv(x, dim + 2 * key_dim * heads, act=False)
    mixed, v = AttentionCore(heads, key_dim, head_dim)(qkv)
    return yolo_conv(layers.Add()([mixed, yolo_dwconv(v, act=False)]), dim, act=False)


def c2psa(x, n=1):
    """ultralytics C2PSA: 1x1 Conv to 2c (c = half the input), PSABlocks (attention with
    c / 64 heads, then a 1x1 Conv to 2c and back, each added back) on the second half,
    concatenated with the first, 1x1 Conv back to the input's channels."""
    c1 = x.shape[-1]
    c = c1 // 2
    a, b = keras.ops.split(yolo_conv(x, 2 * c), 2, axis=-1)
    for _ in range(n):
        b = layers.Add()([b, psa_attention(b, c // 64)])
        b = layers.Add()([b, yolo_conv(yolo_conv(b, 2 * c), c, act=False)])
    return yolo_conv(layers.Concatenate()([a, b]), c1)


def yolo_scale(depth, width, max_channels):
    """ultralytics parse_model's scaling at one scale: channels make_divisible(min(c,
    max_channels) * width, 8), repeats max(round(n * depth), 1)."""

    def ch(c):
        return int(math.ceil(min(c, max_channels) * width / 8) * 8)

    def n(k):
        return max(round(k * depth), 1) if k > 1 else k

    return ch, n


def yolo11(depth, width, max_channels, c3k_everywhere):
    """ultralytics yolo11.yaml at one scale; `c3k_everywhere` for m/l/x, whose parse_model sets
    every C3k2's c3k. Detect is v11's: its class branch is DWConv + 1x1 Conv, twice, then the
    1x1 conv to the classes."""

    ch, n = yolo_scale(depth, width, max_channels)

    def build(h, w):
        inputs = keras.Input((h, w, 3), batch_size=1)
        x = yolo_conv(inputs, ch(64), 3, 2)  # 0 P1/2
        x = yolo_conv(x, ch(128), 3, 2)  # 1 P2/4
        x = c3k2(x, ch(256), n(2), c3k_everywhere, 0.25)  # 2
        x = yolo_conv(x, ch(256), 3, 2)  # 3 P3/8
        p3 = c3k2(x, ch(512), n(2), c3k_everywhere, 0.25)  # 4
        x = yolo_conv(p3, ch(512), 3, 2)  # 5 P4/16
        p4 = c3k2(x, ch(512), n(2), True)  # 6
        x = yolo_conv(p4, ch(1024), 3, 2)  # 7 P5/32
        x = c3k2(x, ch(1024), n(2), True)  # 8
        p5 = c2psa(sppf(x, ch(1024)), n(2))  # 9-10
        h4 = c3k2(layers.Concatenate()([NearestUpsample()(p5), p4]), ch(512), n(2), c3k_everywhere)  # 11-13
        o3 = c3k2(layers.Concatenate()([NearestUpsample()(h4), p3]), ch(256), n(2), c3k_everywhere)  # 14-16
        x = layers.Concatenate()([yolo_conv(o3, ch(256), 3, 2), h4])  # 17-18
        o4 = c3k2(x, ch(512), n(2), c3k_everywhere)  # 19
        x = layers.Concatenate()([yolo_conv(o4, ch(512), 3, 2), p5])  # 20-21
        o5 = c3k2(x, ch(1024), n(2), True)  # 22
        return keras.Model(inputs, detect([o3, o4, o5], h, v11=True))  # 23

    return build


def yolov8(depth, width, max_channels, seg=False):
    """ultralytics yolov8.yaml (yolov8-seg.yaml with `seg`) at one scale (depth, width,
    max_channels): 80-class Detect, or Segment with 32 masks and ch(256) protos (parse_model
    scales the protos by the width like any channel count)."""

    ch, n = yolo_scale(depth, width, max_channels)

    def build(h, w):
        inputs = keras.Input((h, w, 3), batch_size=1)
        x = yolo_conv(inputs, ch(64), 3, 2)  # 0 P1/2
        x = yolo_conv(x, ch(128), 3, 2)  # 1 P2/4
        x = c2f(x, ch(128), n(3), True)  # 2
        x = yolo_conv(x, ch(256), 3, 2)  # 3 P3/8
        p3 = c2f(x, ch(256), n(6), True)  # 4
        x = yolo_conv(p3, ch(512), 3, 2)  # 5 P4/16
        p4 = c2f(x, ch(512), n(6), True)  # 6
        x = yolo_conv(p4, ch(1024), 3, 2)  # 7 P5/32
        x = c2f(x, ch(1024), n(3), True)  # 8
        p5 = sppf(x, ch(1024))  # 9
        h4 = c2f(layers.Concatenate()([NearestUpsample()(p5), p4]), ch(512), n(3), False)  # 10-12
        o3 = c2f(layers.Concatenate()([NearestUpsample()(h4), p3]), ch(256), n(3), False)  # 13-15
        x = layers.Concatenate()([yolo_conv(o3, ch(256), 3, 2), h4])  # 16-17
        o4 = c2f(x, ch(512), n(3), False)  # 18 (P4/16)
        x = layers.Concatenate()([yolo_conv(o4, ch(512), 3, 2), p5])  # 19-20
        o5 = c2f(x, ch(1024), n(3), False)  # 21 (P5/32)
        if seg:
            return keras.Model(inputs, segment([o3, o4, o5], h, ch(256)))  # 22
        return keras.Model(inputs, detect([o3, o4, o5], h))  # 22

    return build


# --- ultralytics YOLOv5 (v6.0 to v7.0) ------------------------------------------------------------


def c3(x, filters, n, shortcut=True):
    """yolov5 C3: 1x1 Conv to c/2 through n Bottlenecks (1x1 Conv, 3x3 Conv, added back with
    `shortcut`), beside a second 1x1 Conv, concatenated, 1x1 Conv to `filters`."""
    c_ = filters // 2
    y = yolo_conv(x, c_)
    for _ in range(n):
        z = yolo_conv(yolo_conv(y, c_), c_, 3)
        y = layers.Add()([y, z]) if shortcut else z
    return yolo_conv(layers.Concatenate()([y, yolo_conv(x, c_)]), filters)


def yolov5(depth, width, seg=False):
    """ultralytics/yolov5 yolov5*.yaml since v6.0 (6x6/2 stem Conv, C3, SPPF), at one scale;
    the head ends in its per-level 1x1 convs (3 anchors x (80 classes + 5), or + 32 mask
    coefficients with `seg`, whose Proto on P3 is 3x3 Conv, nearest 2x upsample, 3x3 Conv, 1x1
    Conv to 32 masks). No decode: RKNN's and Hailo's exports cut the model there."""
    ch, n = yolo_scale(depth, width, 1 << 30)

    def build(h, w):
        inputs = keras.Input((h, w, 3), batch_size=1)
        x = layers.ZeroPadding2D(2)(inputs)  # Conv(3, 64, 6, 2, 2): padding 2, not 6 // 2
        x = layers.Conv2D(ch(64), 6, strides=2, padding="valid", use_bias=False)(x)
        x = layers.Activation("silu")(layers.BatchNormalization(epsilon=1e-3)(x))  # 0 P1/2
        x = yolo_conv(x, ch(128), 3, 2)  # 1 P2/4
        x = c3(x, ch(128), n(3))  # 2
        x = yolo_conv(x, ch(256), 3, 2)  # 3 P3/8
        p3 = c3(x, ch(256), n(6))  # 4
        x = yolo_conv(p3, ch(512), 3, 2)  # 5 P4/16
        p4 = c3(x, ch(512), n(9))  # 6
        x = yolo_conv(p4, ch(1024), 3, 2)  # 7 P5/32
        x = c3(x, ch(1024), n(3))  # 8
        h10 = yolo_conv(sppf(x, ch(1024)), ch(512))  # 9-10
        x = c3(layers.Concatenate()([NearestUpsample()(h10), p4]), ch(512), n(3), False)  # 11-13
        h14 = yolo_conv(x, ch(256))  # 14
        o3 = c3(layers.Concatenate()([NearestUpsample()(h14), p3]), ch(256), n(3), False)  # 15-17
        x = layers.Concatenate()([yolo_conv(o3, ch(256), 3, 2), h14])  # 18-19
        o4 = c3(x, ch(512), n(3), False)  # 20
        x = layers.Concatenate()([yolo_conv(o4, ch(512), 3, 2), h10])  # 21-22
        o5 = c3(x, ch(1024), n(3), False)  # 23
        per_anchor = 80 + 5 + (32 if seg else 0)
        outputs = [layers.Conv2D(3 * per_anchor, 1)(f) for f in (o3, o4, o5)]  # 24
        if seg:
            protos = ch(256)
            p = NearestUpsample()(yolo_conv(o3, protos, 3))
            outputs.append(yolo_conv(yolo_conv(p, protos, 3), 32))
        return keras.Model(inputs, outputs)

    return build


# --- the registry ------------------------------------------------------------------------------

apps = keras.applications

# Corpus architecture name -> builder(h, w), and the reference it follows.
REGISTRY = {
    # Coral, Hailo (TF-slim), NXP: TensorFlow MobileNets; Ascend's PyTorch port has the same layers.
    "mobilenet_v1": application(apps.MobileNet, alpha=1.0),
    "mobilenet_v2": application(apps.MobileNetV2, alpha=1.0),
    "mobilenet_v2_1.4": application(apps.MobileNetV2, alpha=1.4),
    # torchvision (Qualcomm): Keras builds the same blocks, SE sizes and 960/1280 (576/1024) head.
    "mobilenet_v3_large": application(
        apps.MobileNetV3Large, torchvision=True, minimalistic=False, include_preprocessing=False
    ),
    "mobilenet_v3_small": application(
        apps.MobileNetV3Small, torchvision=True, minimalistic=False, include_preprocessing=False
    ),
    # torchvision (Qualcomm; Hailo's resnet_v1_18/34 have torchvision's MACs). At 224x224 the
    # `resnet50` rows also hold NXP's resnet50_int8.tflite, which its recipe builds from Keras's
    # ResNet50V2, and Hailo's resnet_v1_50 (TF-slim, 3.5 GMACs): other networks under that name.
    "resnet18": torchvision_resnet(basic_block, (2, 2, 2, 2)),
    "resnet34": torchvision_resnet(basic_block, (3, 4, 6, 3)),
    "resnet50": torchvision_resnet(bottleneck, (3, 4, 6, 3)),
    "resnet101": torchvision_resnet(bottleneck, (3, 4, 23, 3)),
    # Coral: Keras/TF-slim ResNet v2 (pre-activation, stride on each stage's last unit).
    "resnet50_v2": application(apps.ResNet50V2),
    "resnet152_v2": application(apps.ResNet152V2),
    "squeezenet1_1": squeezenet1_1,
    # Coral (Keras) and Ascend (torchvision): the same 13 convs and 3 dense layers at 224.
    "vgg16": application(apps.VGG16),
    "vgg19": application(apps.VGG19),
    # Qualcomm: torchvision Inception3 has Keras's layers (aux head off at inference).
    "inception_v3": application(apps.InceptionV3, torchvision=True),
    "inception_resnet_v2": application(apps.InceptionResNetV2),
    # torchvision / TF EfficientNet share the compound scaling (b4: width 1.4, depth 1.8).
    "efficientnet_b0": application(apps.EfficientNetB0, torchvision=True, strip_preprocessing=True),
    "efficientnet_b4": application(apps.EfficientNetB4, torchvision=True, strip_preprocessing=True),
    "densenet121": application(apps.DenseNet121, torchvision=True),
    "convnext_tiny": application(apps.ConvNeXtTiny, torchvision=True, include_preprocessing=False),
    # ultralytics scales: (depth, width, max_channels).
    "yolov8n": yolov8(0.33, 0.25, 1024),
    "yolov8s": yolov8(0.33, 0.50, 1024),
    "yolov8m": yolov8(0.67, 0.75, 768),
    "yolov8l": yolov8(1.00, 1.00, 512),
    "yolov8x": yolov8(1.00, 1.25, 512),
    "yolov8n_seg": yolov8(0.33, 0.25, 1024, seg=True),
    "yolov8s_seg": yolov8(0.33, 0.50, 1024, seg=True),
    "yolov8m_seg": yolov8(0.67, 0.75, 768, seg=True),
    # ultralytics/yolov5 scales (depth, width); the -seg models are v7.0's.
    "yolov5n": yolov5(0.33, 0.25),
    "yolov5s": yolov5(0.33, 0.50),
    "yolov5m": yolov5(0.67, 0.75),
    "yolov5n_seg": yolov5(0.33, 0.25, seg=True),
    "yolov5s_seg": yolov5(0.33, 0.50, seg=True),
    "yolov5m_seg": yolov5(0.67, 0.75, seg=True),
    "yolov5l_seg": yolov5(1.00, 1.00, seg=True),
    # ultralytics yolo11.yaml scales: (depth, width, max_channels), c3k set for m/l/x.
    "yolo11n": yolo11(0.50, 0.25, 1024, False),
    "yolo11s": yolo11(0.50, 0.50, 1024, False),
    "yolo11m": yolo11(0.50, 1.00, 512, True),
    # torchvision GoogLeNet (Qualcomm) and TF-slim Inception v1 (Coral, Hailo): one network.
    "googlenet": googlenet,
    "inception_v1": googlenet,
    # torchvision regnet_x_3_2gf (pycls RegNetX-3.2GF): depths 2/6/15/2, widths 96/192/432/1008,
    # group width 48.
    "regnet_x_3_2gf": regnet_x((2, 6, 15, 2), (96, 192, 432, 1008), 48),
}

# (architecture, H, W) whose corpus rows measured another network than the architecture's
# builder: the one that was measured at that size.
SIZE_OVERRIDES = {
    # Coral's "ResNet-50 V1 (299x299)" is TensorFlow's, with the stride on the first 1x1 conv.
    ("resnet50", 299, 299): application(apps.ResNet50),
}

# Names the corpus has but this script cannot rebuild faithfully, and why.
UNFAITHFUL = {
    ("mobilenet_v1", 128, 128): "the corpus rows at 128x128 are MobileNet V1 0.25 (NXP's "
    "mobilenet_v1_0.25_128_quant), a width multiplier the architecture name does not carry",
    ("resnet50_v2", 224, 224): "the 224x224 row is RKNN's resnet50-v2-7 (ONNX zoo, MXNet Gluon "
    "ResNetV2: stride on each stage's first unit), not Keras's ResNet50V2",
    ("regnet_y_800mf", 224, 224): "torchvision's regnet_y_800mf has stage widths 64/144/320/784 "
    "(its quantized parameters), pycls's and Keras's RegNetY008 64/128/320/768",
    ("squeezenet", 224, 224): "the rows mix Ascend's SqueezeNet 1.1 with Coral's unversioned "
    "SqueezeNet; rows known to be 1.1 are named squeezenet1_1",
}


def builder_for(arch, h, w):
    """The builder for `arch` at h x w, or the reason there is none."""
    if (arch, h, w) in UNFAITHFUL:
        return None, UNFAITHFUL[(arch, h, w)]
    if (arch, h, w) in SIZE_OVERRIDES:
        return SIZE_OVERRIDES[(arch, h, w)], None
    if arch in REGISTRY:
        return REGISTRY[arch], None
    return None, f"no builder for architecture {arch}"


# --- conversion --------------------------------------------------------------------------------


def macs(model):
    """Multiply-accumulates of the model's convolutions and dense layers (batch 1)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # ConvNeXt's stem and downsampling are Sequentials
            total += macs(layer)
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            # Kernels: Conv2D (kh, kw, in / groups, out), depthwise (kh, kw, in, multiplier),
            # Dense (in, out); each output value takes one MAC per kernel entry feeding it.
            kernel = layer.kernel.shape
            depthwise = isinstance(layer, layers.DepthwiseConv2D)
            per_output = int(np.prod(kernel[:2] if depthwise else kernel[:-1]))
            total += int(np.prod(layer.output.shape[1:])) * per_output
    return total


def convert(model, h, w, int8):
    """The TFLite flatbuffer of `model`: float, or full-integer int8 with float input/output."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:

        def representative():
            rng = np.random.default_rng(0)
            for _ in range(4):
                yield [rng.random((1, h, w, 3), dtype=np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # The converter saves the Keras model first and prints its signature; keep one line a file.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def build(name, arch, h, w, out_dir):
    """Writes OUT_DIR/<name>_int8.tflite and _fp32.tflite, those that do not exist yet."""
    paths = {v: out_dir / f"{name}_{v}.tflite" for v in ("int8", "fp32")}
    missing = [v for v, p in paths.items() if not p.exists()]
    if not missing:
        for p in paths.values():
            print(f"exists {p} ({p.stat().st_size} bytes)")
        return
    builder, _ = builder_for(arch, h, w)
    keras.backend.clear_session()
    model = builder(h, w)
    count = macs(model)
    for variant in missing:
        paths[variant].write_bytes(convert(model, h, w, variant == "int8"))
        size = paths[variant].stat().st_size
        print(f"wrote {paths[variant]} ({size} bytes, {count / 1e9:.3f} GMACs)")


def corpus_names():
    """Every (architecture, H, W) of the corpus with a 3-channel NCHW image input."""
    names = {}
    with open(REPO / "fidelity/measurements.csv", newline="") as f:
        for row in csv.DictReader(f):
            dims = row["input_shape"].split("x")
            if row["architecture"] and len(dims) == 4 and dims[1] == "3":
                h, w = int(dims[2]), int(dims[3])
                names[f"{row['architecture']}_{h}x{w}"] = (row["architecture"], h, w)
    return names


def main(out_dir, names):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if names:
        wanted = {}
        for name in names:
            m = re.fullmatch(r"(.+)_(\d+)x(\d+)", name)
            if not m:
                print(f"unfaithful: {name}: not <architecture>_<H>x<W>")
                continue
            wanted[name] = (m[1], int(m[2]), int(m[3]))
    else:
        corpus = corpus_names()
        # Without names, only the architectures this script knows; the others are summed up.
        wanted = {n: a for n, a in corpus.items() if a[0] in REGISTRY or a in UNFAITHFUL}
        print(f"{len(corpus)} corpus networks, {len(corpus) - len(wanted)} with no builder")
    for name, (arch, h, w) in sorted(wanted.items()):
        _, reason = builder_for(arch, h, w)
        if reason:
            print(f"unfaithful: {name}: {reason}")
            continue
        try:
            build(name, arch, h, w, out_dir)
        except Exception as e:  # one network failing must not stop the others
            print(f"unfaithful: {name}: conversion failed: {type(e).__name__}: {e}".splitlines()[0])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: corpus_networks.py OUT_DIR [NAME ...]  (NAME: <architecture>_<H>x<W>)")
    main(sys.argv[1], sys.argv[2:])
