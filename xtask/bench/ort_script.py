"""The plain onnxruntime script edgecert's replay is compared with (`cargo xtask bench`).

What a user would otherwise write: load both models, run every sample of an `.npy` stack
through each, one sample at a time, with onnxruntime's own threading (intra-op threads = the
machine's cores). Prints the seconds from creating the sessions to the last output.
"""
import sys
import time

import numpy as np
import onnxruntime as ort

inputs, *models = sys.argv[1:]
started = time.perf_counter()
options = ort.SessionOptions()
sessions = [ort.InferenceSession(m, options, providers=["CPUExecutionProvider"]) for m in models]
names = [s.get_inputs()[0].name for s in sessions]
stack = np.load(inputs, mmap_mode="r")
for i in range(len(stack)):
    x = np.ascontiguousarray(stack[i : i + 1], dtype=np.float32)
    for session, name in zip(sessions, names):
        session.run(None, {name: x})
print(time.perf_counter() - started)
