"""``--device`` for PyTorch: one line instead of a traceback when the name is wrong or this build has no CUDA.

Why here: eval, infer, bench (through TorchRunner) and train all turn the same option into a
``torch.device``; a CPU-only wheel (what the README installs) raises deep inside ``.to("cuda")``.
"""

from __future__ import annotations

import torch

from toolkit.errors import DeviceError, suggest

DEVICE_NAMES = ("cpu", "cuda")
CUDA_WHEELS = "https://pytorch.org/get-started/locally/"


def _no_cuda(text: str) -> str:
    if torch.version.cuda is None:
        return (f"--device {text}: this PyTorch build ({torch.__version__}) has no CUDA; install a CUDA build of "
                f"PyTorch ({CUDA_WHEELS}) on a machine with an NVIDIA GPU, or use --device cpu")
    return (f"--device {text}: PyTorch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU (no driver, "
            "or CUDA_VISIBLE_DEVICES hides it; nvidia-smi shows what the system sees); or use --device cpu")


def torch_device(text: str | torch.device) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' as a torch.device this process can use, or a DeviceError saying why not."""
    text = str(text)
    base, sep, index = text.strip().lower().partition(":")
    if base == "gpu":
        if torch.cuda.is_available():
            raise DeviceError(f"--device {text}: PyTorch calls GPUs 'cuda'; use --device cuda or cuda:N")
        raise DeviceError(f"--device {text}: PyTorch calls GPUs 'cuda', and {_no_cuda('cuda').split(': ', 1)[1]}")
    if base not in DEVICE_NAMES or (sep and (base != "cuda" or not index.isdigit())):
        raise DeviceError(f"--device {text}: expected cpu, cuda or cuda:N; {suggest(base, DEVICE_NAMES)}")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(_no_cuda(text))
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise DeviceError(f"--device {text}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device(f"{base}{sep}{index}")
