"""Bandwidth of the mask-unpooling CUDA kernel against a device-to-device copy of the same bytes (issue 15).

The kernel reads x and y and writes out: 2.25 bytes of traffic per output byte. The copy moves a buffer of half
that size (read once, written once), so both move the same bytes and ``kernel / copy`` is the share of the
card's practical bandwidth the kernel reaches. Each figure is the median over ``--repeats`` of
``--calls`` back-to-back launches timed with CUDA events; the scalar kernel (one thread per window, forced
by a misaligned buffer) is measured beside the vectorised one. Needs a CUDA GPU and nvcc:

    python tools/unpool_bandwidth.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch

from toolkit.bench import cuda_ms_per_call

REPO = Path(__file__).resolve().parents[1]
SHAPES = ((1, 64, 360, 480), (8, 64, 360, 480))
DTYPES = ("float16", "float32", "bfloat16")


def build_extension() -> Any:
    """The test binding of the kernel (engines/unpool/torch_binding.cpp), cached in TORCH_EXTENSIONS_DIR."""
    from torch.utils.cpp_extension import load

    unpool = REPO / "engines" / "unpool"
    return load(name="segnet_unpool_ext", sources=[str(unpool / "torch_binding.cpp"), str(unpool / "unpoolKernel.cu")],
                extra_include_paths=[str(unpool)], extra_cflags=["-O2"], extra_cuda_cflags=["-O2"], verbose=False)


def misaligned_like(t: torch.Tensor) -> torch.Tensor:
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = flat[1:].view(t.shape)
    view.copy_(t)
    return view


def measure(ext: Any, shape: tuple[int, ...], dtype_name: str, calls: int, repeats: int) -> dict:
    dtype = getattr(torch, dtype_name)
    n, c, h, w = shape
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape, device="cuda", generator=g).to(dtype)
    y = torch.randn((n, c, h // 2, w // 2), device="cuda", generator=g).to(dtype)
    out = torch.empty_like(x)
    traffic = (x.numel() + y.numel() + out.numel()) * x.element_size()
    assert ext.vectorised(x, y, out)
    kernel = cuda_ms_per_call(lambda: ext.mask_unpool_into(x, y, out), calls, repeats)
    xs, outs = misaligned_like(x), misaligned_like(out)
    assert not ext.vectorised(xs, y, outs)
    scalar = cuda_ms_per_call(lambda: ext.mask_unpool_into(xs, y, outs), calls, repeats)
    src = torch.empty(traffic // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy = cuda_ms_per_call(lambda: dst.copy_(src), calls, repeats)

    def tbps(ms: float) -> float:
        return traffic / (ms * 1e-3) / 1e12

    return {"shape": "x".join(map(str, shape)), "dtype": dtype_name, "bytes": traffic,
            "kernel_ms": round(kernel, 4), "kernel_tbps": round(tbps(kernel), 3),
            "scalar_ms": round(scalar, 4), "scalar_tbps": round(tbps(scalar), 3),
            "copy_ms": round(copy, 4), "copy_tbps": round(tbps(copy), 3),
            "kernel_over_copy": round(copy / kernel, 3), "scalar_over_copy": round(copy / scalar, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="back-to-back launches per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks; the median is reported")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: the kernel runs only on a GPU")
    ext = build_extension()
    rows = [measure(ext, s, d, args.calls, args.repeats) for s in SHAPES for d in DTYPES]
    print(f"card: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print("| shape | dtype | kernel ms | kernel TB/s | scalar TB/s | copy TB/s | kernel / copy | scalar / copy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['dtype']} | {r['kernel_ms']:.4f} | {r['kernel_tbps']:.2f} | {r['scalar_tbps']:.2f} "
              f"| {r['copy_tbps']:.2f} | {r['kernel_over_copy']:.2f} | {r['scalar_over_copy']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"card": torch.cuda.get_device_name(), "rows": rows,
                                         "extensions_dir": os.environ.get("TORCH_EXTENSIONS_DIR")}, indent=1))


if __name__ == "__main__":
    main()
