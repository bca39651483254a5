"""This CPU's arithmetic peak as ONNX Runtime reaches it, for `cargo xtask bench`.

A served encoder spends nearly all its time in matrix products, so the rate of ONNX
Runtime's own matrix product on large, well-shaped operands is the physical limit the bench
holds every peer to: a model of G billion operations per sequence cannot be served faster
than peak / G sequences per second on this CPU, by any server.

Two products, each one `InferenceSession` with `--threads` intra-op threads (the bench's
thread budget), timed for `--seconds`:

- INT8: `MatMulInteger` of uint8 activations by int8 weights into int32 — what the
  dynamically quantized variants run (optimum's `avx512_vnni`/`avx2` configs: uint8
  activations, int8 weights);
- FP32: `MatMul` of float32 operands — the FP32 variants and what quantization leaves in
  float (the attention's n×n products).

Operands are M×K by K×N with M = K = N = 1024: 2.1 billion operations a run, large
enough that packing and threading cost little (1,024 rows are a batch of 32 texts of 32
tokens). The figure is the median run's rate, in billions of operations per second (a
multiply-add is two). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

SIZE = 1024


def product(kind: str):
    """A one-node graph multiplying its input by a constant weight of `kind`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "int8":
        weight = rng.integers(-127, 128, size=(SIZE, SIZE), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        input_type, output_type = TensorProto.UINT8, TensorProto.INT32
        feed = rng.integers(0, 256, size=(SIZE, SIZE), dtype=np.uint8)
    else:
        weight = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        input_type, output_type = TensorProto.FLOAT, TensorProto.FLOAT
        feed = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    graph = helper.make_graph(
        [node],
        f"{kind}-product",
        [helper.make_tensor_value_info("a", input_type, [SIZE, SIZE])],
        [helper.make_tensor_value_info("y", output_type, [SIZE, SIZE])],
        initializer=[numpy_helper.from_array(weight, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString(), feed


def rate(kind: str, threads: int, seconds: float) -> dict:
    import onnxruntime as ort

    model, feed = product(kind)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    inputs = {"a": feed}
    for _ in range(3):
        session.run(None, inputs)
    runs = []
    until = time.perf_counter() + seconds
    while time.perf_counter() < until or len(runs) < 5:
        started = time.perf_counter()
        session.run(None, inputs)
        runs.append(time.perf_counter() - started)
    operations = 2 * SIZE**3
    return {
        "gop_per_second": operations / statistics.median(runs) / 1e9,
        "runs": len(runs),
        "shape": [SIZE, SIZE, SIZE],
        "operator": "MatMulInteger (uint8 x int8 -> int32)" if kind == "int8" else "MatMul (float32)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    import onnxruntime as ort

    print(
        json.dumps(
            {
                "threads": args.threads,
                "onnxruntime": ort.__version__,
                "int8": rate("int8", args.threads, args.seconds),
                "fp32": rate("fp32", args.threads, args.seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
