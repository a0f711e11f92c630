"""Where an ONNX model's CPU time goes: ONNX Runtime's profiler, summed per op type (docs/BENCHMARKS.md, table 4).

    python tools/profile_onnx.py model.onnx [more.onnx ...] --shape 1x3x360x480 --threads 2 --runs 5
    python tools/profile_onnx.py int8.onnx --by node --top 20     # the costliest nodes, not op types

The per-op times come from a profiled session of each model; the whole-model time per run is
``toolkit bench``'s (``toolkit.bench.bench_models``: all models in one interleaved run, profiler off,
its median latency), so it is the same figure ``toolkit bench`` prints for the same options.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np


def profile(path: str, shape: tuple[int, ...], threads: int | None, runs: int, opt: str,
            by: str = "op") -> dict[str, float]:
    """Mean ms per run for each op type or node (kernel time only) over ``runs`` profiled runs."""
    import onnxruntime as ort

    from toolkit.backend.onnxrt.custom_ops import prepare_plugin_model
    from toolkit.core.onnx_file import load_onnx

    model, _ = prepare_plugin_model(load_onnx(path), "auto")  # plugin graphs run as the ORT runner runs them
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[opt]
    with tempfile.TemporaryDirectory() as tmp:
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32).astype(dtype)
        for _ in range(1 + runs):  # one warm-up, excluded below by counting only the last runs
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_run: dict[str, float] = defaultdict(float)
    runs_seen = [e for e in events if e.get("name") == "model_run"]
    keep_from = runs_seen[-runs]["ts"] if len(runs_seen) >= runs else 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep_from:
            op = e["args"].get("op_name", "?")
            key = op if by == "op" else f"{e['name'].removesuffix('_kernel_time')} ({op})"
            per_run[key] += e["dur"] / 1e3 / runs
    return dict(per_run)


def wall_ms(paths: list[str], shape: tuple[int, ...], threads: int | None, runs: int, opt: str) -> list[float]:
    """Median ms per whole-model run of each file, timed by ``toolkit bench``'s loop (interleaved, no profiler)."""
    from toolkit.bench import bench_models

    results = bench_models(paths, shape, threads=threads, warmup=1, iterations=runs, rounds=min(2, runs),
                           graph_opt=opt)
    return [r.latency_ms["p50"] for r in results]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--shape", default="1x3x360x480")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--opt", default="all", choices=["all", "extended", "basic"])
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--by", default="op", choices=["op", "node"], help="sum per op type, or list single nodes")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split("x"))
    walls = wall_ms(args.models, shape, args.threads, args.runs, args.opt)
    for path, total in zip(args.models, walls, strict=True):
        prof = profile(path, shape, args.threads, args.runs, args.opt, args.by)
        kern = sum(prof.values())
        print(f"\n{path}: {total:.1f} ms per run (median wall), kernels {kern:.1f} ms")
        print(f"| {'op type' if args.by == 'op' else 'node (op type)'} | ms per run | share |\n|---|---|---|")
        for op, ms in sorted(prof.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"| {op} | {ms:.1f} | {100 * ms / kern:.0f}% |")


if __name__ == "__main__":
    main()
