"""Plain PyTorch on a CUDA GPU, as fast as a few lines make it, beside ``toolkit bench`` in the same process.

The reference rows time the model alone, input already on the GPU and logits left there: fp32 eager,
fp16 channels_last eager, and fp16 channels_last replayed from a CUDA graph (batch 1 and 8). The toolkit
rows are ``toolkit.bench.bench_models`` on the same checkpoint, in both of its I/O modes (logits: float
tensor from and logits to the host; frames: uint8 frame up, class map down), and with two concurrent
callers (``--streams 2``: one prepares its call while the GPU runs the other's). Issue 15's target is the
toolkit's fp16 CUDA-graph figure >= 0.9x the reference's graph figure; the ratio is printed. Needs a GPU:

    python tools/torch_cuda_reference.py [--model enhanced-w64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

from toolkit.bench import bench_models, cuda_ms_per_call
from toolkit.checkpoint import load_checkpoint
from toolkit.zoo import resolve_model_path


def reference_rows(model: torch.nn.Module, hw: tuple[int, int], calls: int, repeats: int) -> list[dict]:
    rows = []
    model = model.cuda().eval()

    def ms(fn: Callable[[], object]) -> float:
        return cuda_ms_per_call(fn, calls, repeats, warmup=5)

    with torch.inference_mode():
        x32 = torch.randn(1, 3, *hw, device="cuda")
        rows.append({"what": "fp32 eager", "batch": 1, "ms": ms(lambda: model(x32))})
        half = model.half().to(memory_format=torch.channels_last)
        for batch in (1, 8):
            x = torch.randn(batch, 3, *hw, device="cuda").half().contiguous(memory_format=torch.channels_last)
            if batch == 1:
                rows.append({"what": "fp16 channels_last eager", "batch": 1,
                             "ms": ms(lambda x=x: half(x))})
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    half(x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                half(x)
            rows.append({"what": "fp16 channels_last CUDA graph", "batch": batch,
                         "ms": ms(graph.replay)})
    for r in rows:
        r["ms"] = round(r["ms"], 4)
        r["fps"] = round(1e3 * r["batch"] / r["ms"], 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="enhanced-w64", help="zoo name or checkpoint")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300, help="toolkit bench's timed calls per entry")
    parser.add_argument("--compile", action="store_true", help="also bench the toolkit runner with --compile")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU")
    path = resolve_model_path(args.model, "cuda")
    model, meta = load_checkpoint(path)
    hw = meta.padded_input_size
    torch.backends.cudnn.benchmark = True
    ref = reference_rows(model, hw, args.calls, args.repeats)
    shape = (1, 3, *hw)
    kit = []
    for label, kwargs in (("toolkit fp16 graph, logits", {"io": "logits"}),
                          ("toolkit fp16 graph, frames", {"io": "frames"}),
                          ("toolkit fp16 graph, frames, 2 streams", {"io": "frames", "streams": 2}),
                          ("toolkit fp16 eager, logits", {"io": "logits", "cuda_graph": False}),
                          ("toolkit fp32 graph, logits", {"io": "logits", "precision": "fp32"}),
                          *((("toolkit fp16 compile+graph, frames", {"io": "frames", "compile": True}),)
                            if args.compile else ())):
        kw = {"precision": "auto", **kwargs}
        (res,) = bench_models([path], shape, device="cuda", warmup=20, iterations=args.iterations, rounds=3, **kw)
        kit.append({"what": label, "p50_ms": res.latency_ms["p50"], "fps": res.throughput_fps,
                    "stages_ms": res.stages_ms})
    graph1 = next(r for r in ref if r["what"].endswith("graph") and r["batch"] == 1)
    print(f"card: {torch.cuda.get_device_name()}, torch {torch.__version__}, model {args.model} {shape}")
    print("| reference (plain PyTorch, tensors on the GPU) | batch | ms per call | FPS |\n|---|---|---|---|")
    for r in ref:
        print(f"| {r['what']} | {r['batch']} | {r['ms']:.3f} | {r['fps']:.0f} |")
    print("\n| toolkit bench (host numpy in and out) | p50 ms | FPS | h2d / compute / d2h ms | x vs reference graph |")
    print("|---|---|---|---|---|")
    for k in kit:
        st = k["stages_ms"] or {}
        stages = " / ".join(f"{st.get(s, float('nan')):.3f}" for s in ("h2d", "compute", "d2h"))
        k["ratio_vs_reference_graph"] = round(k["fps"] / graph1["fps"], 3)
        print(f"| {k['what']} | {k['p50_ms']:.3f} | {k['fps']:.0f} | {stages} | {k['ratio_vs_reference_graph']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"card": torch.cuda.get_device_name(), "model": args.model,
                                         "reference": ref, "toolkit": kit}, indent=1))


if __name__ == "__main__":
    main()
