"""ONNX Runtime's CPU kernels in uint8 against float, one op at a time (docs/BENCHMARKS.md, section 4).

    python tools/ort_op_costs.py [--shape 16x1x360x480] [--runs 50]

Why the int8 mask unpooling (``toolkit/quant/mask_codes.py``) builds its full-resolution tensors as
uint8 codes with Mul by a 0/1 mask, but pools its window scores in float: each op below runs alone in
a one-node graph, 1 intra-op thread, on a tensor of the shape of the largest unpooling's (N*C, 1, H, W)
view; the median ms per run is printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def op_ms(node: object, inputs: dict[str, np.ndarray], out_type: int, runs: int) -> float:
    import onnxruntime as ort
    from onnx import helper

    def info(name: str, a: np.ndarray) -> object:
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))

    graph = helper.make_graph([node], "op", [info(k, v) for k, v in inputs.items()],
                              [helper.make_tensor_value_info("out", out_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess.run(None, inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="16x1x360x480")
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    from onnx import TensorProto, helper

    shape = tuple(int(v) for v in args.shape.split("x"))
    half = (*shape[:2], shape[2] // 2, shape[3] // 2)
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 5, shape).astype(np.uint8)
    f32 = u8.astype(np.float32)
    mask = rng.integers(0, 2, shape).astype(bool)
    sizes = np.array(shape, np.int64)
    mk = helper.make_node
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    resize = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    rows = []
    for name, data, low, elem in (("uint8", u8, u8[..., ::2, ::2].copy(), TensorProto.UINT8),
                                  ("float", f32, f32[..., ::2, ::2].copy(), TensorProto.FLOAT)):
        rows += [
            ("Mul", name, op_ms(mk("Mul", ["a", "b"], ["out"]), {"a": data, "b": data}, elem, args.runs)),
            ("Equal", name, op_ms(mk("Equal", ["a", "b"], ["out"]), {"a": data, "b": data}, TensorProto.BOOL,
                                  args.runs)),
            ("Resize nearest 2x (from half size)", name,
             op_ms(mk("Resize", ["a", "", "", "s"], ["out"], **resize), {"a": low, "s": sizes}, elem, args.runs)),
            ("MaxPool 2x2", name, op_ms(mk("MaxPool", ["a"], ["out"], **pool), {"a": data}, elem, args.runs)),
            ("Cast from bool", name, op_ms(mk("Cast", ["m"], ["out"], to=elem), {"m": mask}, elem, args.runs)),
            ("Where", name, op_ms(mk("Where", ["m", "a", "b"], ["out"]), {"m": mask, "a": data, "b": data}, elem,
                                  args.runs)),
        ]
    rows.append(("Cast uint8 -> float", "-", op_ms(mk("Cast", ["a"], ["out"], to=TensorProto.FLOAT), {"a": u8},
                                                   TensorProto.FLOAT, args.runs)))
    print(f"## ONNX Runtime CPU kernels on {'x'.join(map(str, shape))} (Resize from {'x'.join(map(str, half))}), "
          f"1 thread, median of {args.runs}\n")
    print("| op | uint8 ms | float ms |\n|---|---|---|")
    by_op: dict[str, dict[str, float]] = {}
    for op, kind, ms in rows:
        by_op.setdefault(op, {})[kind] = ms
    for op, kinds in by_op.items():
        if "-" in kinds:
            print(f"| {op} | {kinds['-']:.2f} | |")
        else:
            print(f"| {op} | {kinds['uint8']:.2f} | {kinds['float']:.2f} |")


if __name__ == "__main__":
    main()
