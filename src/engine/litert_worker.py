"""edgecert's LiteRT worker: runs one TFLite model with LiteRT's interpreter (`ai-edge-litert`
from PyPI) for an edgecert process, over its standard input and output.

    python3 -c "$(cat litert_worker.py)" MODEL.tflite '[[1, 1, 32, 32]]' ['["Relu;Conv2D"]']

The second argument is each input's shape, as JSON. The optional third names intermediate
tensors to answer instead of the model's outputs (per-layer analysis): the interpreter then keeps
every tensor and runs its reference kernels (a delegate's fused kernels keep none), and each named
tensor is answered dequantized by its own scale(s) and zero point(s). A name that edgecert made
unique as `NAME#INDEX` is tensor INDEX. The worker answers one JSON line: the
model's inputs and outputs, or {"error": ...}. Then, per request, it reads each input's elements
as little-endian float32 (integer inputs arrive as their codes), casts them to the input's type,
invokes the interpreter and answers one JSON line, {"ms": invoke time, "shapes": [...]}, followed
by each output's elements as little-endian float32, or {"error": ...}. End of input ends it.
"""

import json
import sys
import time


def reply(message):
    sys.stdout.buffer.write((json.dumps(message) + "\n").encode())
    sys.stdout.buffer.flush()


def read_exact(stream, n):
    chunks, left = [], n
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def describe(details):
    return [{"name": d["name"], "shape": [int(x) for x in d["shape"]], "dtype": d["dtype"].__name__} for d in details]


def exposed_details(interpreter, names):
    """The details of each named tensor; a KeyError names the first unknown one."""
    details = interpreter.get_tensor_details()
    by_name = {}
    for d in details:
        by_name.setdefault(d["name"], d)
    found = []
    for name in names:
        head, _, index = name.rpartition("#")
        if name in by_name:
            found.append(by_name[name])
        elif head and index.isdigit() and int(index) < len(details):
            found.append(details[int(index)])
        else:
            raise KeyError(f"the model has no tensor named {name!r}")
    return found


def dequantized(np, detail, array):
    """A tensor's real values: its integer codes through its scale(s) and zero point(s)."""
    q = detail.get("quantization_parameters") or {}
    scales, zeros = q.get("scales"), q.get("zero_points")
    if scales is None or len(scales) == 0 or array.dtype.kind not in "iu":
        return array
    if len(scales) == 1:
        return (array.astype("f8") - zeros[0]) * scales[0]
    axis = int(q.get("quantized_dimension", 0))
    shape = [1] * array.ndim
    shape[axis] = len(scales)
    return (array.astype("f8") - zeros.reshape(shape)) * scales.reshape(shape)


def load(model_path, shapes, exposed):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if exposed:
        interpreter = Interpreter(
            model_path=model_path,
            num_threads=1,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    else:
        interpreter = Interpreter(model_path=model_path, num_threads=1)
    for detail, shape in zip(interpreter.get_input_details(), json.loads(shapes)):
        if [int(x) for x in detail["shape"]] != shape:
            interpreter.resize_tensor_input(detail["index"], shape, strict=False)
    interpreter.allocate_tensors()
    outputs = exposed_details(interpreter, exposed) if exposed else interpreter.get_output_details()
    return interpreter, interpreter.get_input_details(), outputs


def main(model_path, shapes, exposed):
    try:
        import numpy as np

        interpreter, inputs, outputs = load(model_path, shapes, exposed)
    except Exception as e:  # the reason goes to edgecert, which names the model
        reply({"error": f"{type(e).__name__}: {e}"})
        return
    reply({"inputs": describe(inputs), "outputs": describe(outputs)})
    sizes = [int(np.prod(d["shape"])) for d in inputs]
    stdin = sys.stdin.buffer
    while True:
        arrays = []
        for detail, size in zip(inputs, sizes):
            raw = read_exact(stdin, size * 4)
            if raw is None:
                return
            arrays.append(np.frombuffer(raw, "<f4").reshape(detail["shape"]).astype(detail["dtype"]))
        try:
            for detail, array in zip(inputs, arrays):
                interpreter.set_tensor(detail["index"], array)
            start = time.perf_counter()
            interpreter.invoke()
            ms = (time.perf_counter() - start) * 1e3
            results = [interpreter.get_tensor(d["index"]) for d in outputs]
            if exposed:
                results = [dequantized(np, d, r) for d, r in zip(outputs, results)]
        except Exception as e:
            reply({"error": f"{type(e).__name__}: {e}"})
            continue
        reply({"ms": ms, "shapes": [list(r.shape) for r in results]})
        for r in results:
            sys.stdout.buffer.write(np.ascontiguousarray(r, dtype="<f4").tobytes())
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else [])
