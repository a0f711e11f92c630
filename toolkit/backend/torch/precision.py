"""``--precision`` for PyTorch models: which float type a checkpoint runs in on which device.

Why a rule, not a fixed default: fp16 is what a CUDA GPU's tensor cores are fastest at (and what the
zoo's GPU model was validated in); bf16 is fast only on CPUs with AMX (oneDNN's bf16 kernels), slower
than fp32 elsewhere; fp32 stays the reference every parity check compares against, so a library caller
that says nothing gets fp32.
"""

from __future__ import annotations

import torch

from toolkit.errors import ToolkitError, suggest

TORCH_PRECISIONS = ("fp32", "fp16", "bf16")
PRECISION_CHOICES = ("auto", *TORCH_PRECISIONS)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_has_amx_bf16() -> bool:
    from toolkit.sysinfo import cpu_flags

    return cpu_flags().get("amx_bf16", False)


def auto_precision(device: torch.device) -> str:
    """fp16 on CUDA, bf16 on a CPU with AMX, fp32 on other CPUs."""
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_has_amx_bf16() else "fp32"


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """None -> fp32 (the reference); 'auto' -> auto_precision; fp16 and bf16 checked against the device."""
    if precision is None:
        return "fp32"
    text = precision.strip().lower()
    if text not in PRECISION_CHOICES:
        raise ToolkitError(f"--precision {precision}: not a PyTorch precision; {suggest(text, PRECISION_CHOICES)}")
    if text == "auto":
        return auto_precision(device)
    if text == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ToolkitError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support "
                           "(needs compute capability 8.0 or newer); use fp16")
    if text == "fp16" and device.type == "cpu":
        raise ToolkitError("--precision fp16: PyTorch runs fp16 convolutions on the CPU through slow "
                           "fallbacks; use bf16 (fast on CPUs with AMX), fp32, or --device cuda")
    return text
