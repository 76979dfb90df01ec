#!/usr/bin/env python3
"""A command-line runtime in the shape of Qualcomm's qnn-net-run, on onnxruntime's Python API.

    ort_net_run.py --model M.onnx --input_list LIST --output_dir DIR

Each line of LIST names one sample's input files (raw float32, little-endian, C order), one per
graph input, in graph order. For sample i, every graph output is written to
DIR/Result_i/<name>.raw (the name with characters other than letters, digits, '-', '_' and '.'
replaced by '_'), and one line `sample i: <ms> ms` is printed, timed around the session's run
alone. edgecert's exec backend drives it through adapters/onnxruntime-python.toml.
"""
import argparse
import os
import re
import sys
import time

import numpy as np
import onnxruntime as ort


def safe(name, k):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"t{k}" if not s or s.startswith(".") else s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--input_list", required=True)
    p.add_argument("--output_dir", required=True)
    a = p.parse_args()
    options = ort.SessionOptions()
    # Single-stream: one inference at a time on one thread, as the host backend times it.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    outputs = [o.name for o in session.get_outputs()]
    with open(a.input_list) as f:
        samples = [line.split() for line in f if line.strip()]
    for i, files in enumerate(samples):
        if len(files) != len(inputs):
            sys.exit(f"sample {i}: {len(files)} input files for {len(inputs)} graph inputs")
        feed = {}
        for spec, path in zip(inputs, files):
            shape = [d if isinstance(d, int) else -1 for d in spec.shape]
            feed[spec.name] = np.fromfile(path, dtype="<f4").reshape(shape)
        start = time.perf_counter()
        result = session.run(outputs, feed)
        ms = (time.perf_counter() - start) * 1e3
        out = os.path.join(a.output_dir, f"Result_{i}")
        os.makedirs(out, exist_ok=True)
        for k, (name, value) in enumerate(zip(outputs, result)):
            np.asarray(value, dtype="<f4").tofile(os.path.join(out, safe(name, k) + ".raw"))
        print(f"sample {i}: {ms:.6f} ms", flush=True)


if __name__ == "__main__":
    main()
