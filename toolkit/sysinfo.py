"""What this machine offers the toolkit: library versions, GPU presence and CPU instruction sets."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
                         "amx_int8", "amx_bf16")


def package_version(name: str) -> str:
    """Installed distribution version, or 'not installed'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_flags() -> dict[str, bool]:
    """The instruction sets that decide bf16/int8 speed (from /proc/cpuinfo; all False elsewhere)."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {f: f in flags for f in CPU_FLAGS_OF_INTEREST}


def cuda_available() -> bool:
    """True where this PyTorch build sees a CUDA GPU (picks the zoo's GPU model as the default)."""
    import torch

    return bool(torch.cuda.is_available())


def system_info() -> dict:
    """Versions and hardware, as ``toolkit info`` prints them."""
    import torch

    onnxruntime = package_version("onnxruntime")
    if onnxruntime == "not installed":
        onnxruntime = package_version("onnxruntime-gpu")
    cuda = torch.cuda.is_available()
    return {
        "toolkit": package_version("segnet-toolkit"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "onnx": package_version("onnx"),
        "onnxruntime": onnxruntime,
        "tensorrt": package_version("tensorrt"),
        "cuda_available": cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_flags": cpu_flags(),
    }
