"""Shared fixtures for the engines/ (TensorRT plugin) tests: tool discovery and one build directory per session.

Everything that needs a tool which may be missing (nvcc, a host C++ compiler, TensorRT headers, a GPU) skips with
the reason instead of failing, so the suite passes on CPU-only machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINES_DIR = REPO_ROOT / "engines"
UNPOOL_DIR = ENGINES_DIR / "unpool"

# Standard TensorRT header locations (Debian/Ubuntu packages, tarball installs, NGC containers).
STANDARD_TRT_INCLUDE_DIRS = (
    "/usr/include/x86_64-linux-gnu",
    "/usr/include/aarch64-linux-gnu",
    "/usr/local/TensorRT/include",
    "/usr/local/tensorrt/include",
    "/opt/tensorrt/include",
    "/usr/include",
)


def run_cmd(cmd: list[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure raise an AssertionError carrying the full command and its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed (rc={proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def _find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, candidates):
        path = Path(root) / "bin" / "nvcc"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _cuda_roots() -> list[Path]:
    roots: list[Path] = []
    nvcc = _find_nvcc()
    if nvcc:
        roots.append(Path(nvcc).resolve().parent.parent)
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            roots.append(Path(root))
    return roots


def _find_cuda_include() -> Path | None:
    for root in _cuda_roots():
        for inc in (root / "include", root / "targets" / "x86_64-linux" / "include",
                    root / "targets" / "sbsa-linux" / "include"):
            if (inc / "cuda_runtime_api.h").is_file() and (inc / "cuda_fp16.h").is_file():
                return inc
    return None


def _find_cudart_static_dir() -> Path | None:
    for root in _cuda_roots():
        for lib in (root / "lib64", root / "lib", root / "targets" / "x86_64-linux" / "lib",
                    root / "targets" / "sbsa-linux" / "lib"):
            if (lib / "libcudart_static.a").is_file():
                return lib
    return None


def _find_trt_include() -> tuple[Path | None, str]:
    env_inc = os.environ.get("TENSORRT_INCLUDE_DIR")
    if env_inc:
        if (Path(env_inc) / "NvInfer.h").is_file():
            return Path(env_inc), f"TENSORRT_INCLUDE_DIR={env_inc}"
        return None, f"TENSORRT_INCLUDE_DIR={env_inc} has no NvInfer.h"
    env_root = os.environ.get("TENSORRT_ROOT")
    if env_root and (Path(env_root) / "include" / "NvInfer.h").is_file():
        return Path(env_root) / "include", f"TENSORRT_ROOT={env_root}"
    for inc in STANDARD_TRT_INCLUDE_DIRS:
        if (Path(inc) / "NvInfer.h").is_file():
            return Path(inc), inc
    return None, (
        "TensorRT headers (NvInfer.h) not found: set TENSORRT_INCLUDE_DIR (or TENSORRT_ROOT) or install "
        "libnvinfer-dev; searched " + ", ".join(STANDARD_TRT_INCLUDE_DIRS)
    )


def trt_version(include_dir: Path) -> str:
    text = (include_dir / "NvInferVersion.h").read_text(errors="replace")
    import re

    parts = []
    for part in ("MAJOR", "MINOR", "PATCH", "BUILD"):
        m = re.search(rf"#define\s+(?:NV_TENSORRT_{part}|TRT_{part}_\w+)\s+(\d+)", text)
        parts.append(m.group(1) if m else "?")
    return ".".join(parts)


@pytest.fixture(scope="session")
def run():
    """The run_cmd helper, as a fixture (test modules do not import conftest, so any pytest import mode works)."""
    return run_cmd


@pytest.fixture(scope="session")
def trt_version_of():
    return trt_version


@pytest.fixture(scope="session")
def nvcc() -> str:
    path = _find_nvcc()
    if path is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda/bin)")
    return path


@pytest.fixture(scope="session")
def cxx() -> str:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip("no host C++ compiler (g++/c++/clang++) found")


@pytest.fixture(scope="session")
def cuda_include() -> Path:
    inc = _find_cuda_include()
    if inc is None:
        pytest.skip("CUDA headers (cuda_runtime_api.h, cuda_fp16.h) not found")
    return inc


@pytest.fixture(scope="session")
def cudart_static_dir() -> Path:
    lib = _find_cudart_static_dir()
    if lib is None:
        pytest.skip("libcudart_static.a not found in the CUDA toolkit")
    return lib


@pytest.fixture(scope="session")
def trt_include() -> Path:
    inc, why = _find_trt_include()
    if inc is None:
        pytest.skip(why)
    return inc


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("segnet_engines_build")


@pytest.fixture(scope="session")
def kernel_object(nvcc: str, build_dir: Path) -> Path:
    """engines/unpool/unpoolKernel.cu compiled with nvcc -c (position independent, one architecture)."""
    obj = build_dir / "unpoolKernel.o"
    run_cmd([
        nvcc, "-std=c++17", "-c", str(UNPOOL_DIR / "unpoolKernel.cu"), "-o", str(obj),
        "-arch=sm_75", "-O2", "-I", str(ENGINES_DIR),
        "-Xcompiler", "-fPIC,-fvisibility=hidden,-Wall,-Wextra", "-Werror", "all-warnings",
    ], timeout=180)
    return obj


# ---------------------------------------------------------------------------------------------------------------------
# References and inputs for the numerical tests (torch is imported lazily: it is only needed by those tests)
# ---------------------------------------------------------------------------------------------------------------------

class UnpoolRefs:
    """Torch references of the SegNetMaskUnpool op, plus tie-heavy input cases (CPU tensors)."""

    def __init__(self, torch_module):
        self.torch = torch_module

    def bits(self, t):
        torch = self.torch
        return t.contiguous().view({torch.float32: torch.int32, torch.float16: torch.int16,
                                    torch.bfloat16: torch.int16}[t.dtype])

    def bit_equal(self, a, b) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype and bool(self.torch.equal(self.bits(a), self.bits(b)))

    def torch_reference(self, x, y):
        """max_pool2d(2, 2, return_indices=True) + max_unpool2d: the PyTorch definition (NaN-free inputs)."""
        import torch.nn.functional as F

        _, idx = F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)
        return F.max_unpool2d(y, idx, kernel_size=2, stride=2, output_size=x.shape[-2:])

    def spec_reference(self, x, y):
        """The written rule, NaN case included: m = NaN-propagating max, k* = first k with x_k == m, else 3."""
        torch = self.torch
        n, c, h, w = x.shape
        win = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        m = win.amax(dim=-1, keepdim=True)  # propagates NaN
        eq = win == m
        k = torch.where(eq[..., 0], 0, torch.where(eq[..., 1], 1, torch.where(eq[..., 2], 2, 3)))
        pos = torch.arange(4).view(1, 1, 1, 1, 4)
        out = torch.where(pos == k.unsqueeze(-1), y.unsqueeze(-1), torch.zeros((), dtype=x.dtype))
        return out.reshape(n, c, h // 2, w // 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w).contiguous()

    def cases(self, dtype, seed: int = 0):
        """(name, x, y) NaN-free cases: random and tie-heavy inputs."""
        torch = self.torch
        g = torch.Generator().manual_seed(seed)

        def y_for(x):
            n, c, h, w = x.shape
            y = torch.randn(n, c, h // 2, w // 2, generator=g)
            y.view(-1)[::7] = -0.0  # the selected position carries y exactly, -0.0 included
            return y.to(dtype)

        def choice(values, shape):
            vals = torch.tensor(values, dtype=torch.float32)
            return vals[torch.randint(len(values), shape, generator=g)].to(dtype)

        tiny = torch.finfo(dtype).tiny  # smallest normal of dtype; tiny/4, tiny/2 are subnormal in dtype
        inf = float("inf")
        out = []
        x = torch.randn(2, 3, 8, 10, generator=g).to(dtype)
        out.append(("random", x))
        out.append(("all_zero_windows", torch.zeros(1, 4, 6, 6, dtype=dtype)))
        out.append(("few_levels", (torch.randint(-2, 3, (2, 5, 12, 8), generator=g).float() * 0.5).to(dtype)))
        out.append(("two_levels", choice([0.0, 1.0], (3, 4, 10, 10))))
        out.append(("signed_zeros", choice([0.0, -0.0], (2, 3, 8, 8))))
        out.append(("zeros_and_negatives", choice([0.0, -0.0, -1.0, -2.0], (2, 3, 8, 8))))
        out.append(("infinities", choice([-inf, -1.0, 0.0, 1.0, inf], (2, 3, 8, 8))))
        out.append(("all_neg_inf", torch.full((1, 2, 4, 6), -inf, dtype=dtype)))
        out.append(("subnormals", choice([0.0, -0.0, tiny / 4, tiny / 2, -tiny / 4], (2, 3, 8, 8))))
        collide = (1.0 + torch.randint(0, 4, (2, 3, 8, 8), generator=g).float() * 1e-4).to(dtype)
        out.append(("rounding_collisions", collide))
        out.append(("min_shape", torch.randn(1, 1, 2, 2, generator=g).to(dtype)))
        out.append(("thin", choice([0.0, 1.0, 2.0], (3, 1, 2, 14))))
        out.append(("bigger", (torch.randint(-3, 4, (2, 16, 32, 48), generator=g).float()).to(dtype)))
        return [(name, x.contiguous(), y_for(x)) for name, x in out]

    def nan_cases(self, dtype, seed: int = 1):
        torch = self.torch
        g = torch.Generator().manual_seed(seed)
        out = []
        x = torch.randint(-2, 3, (2, 4, 8, 8), generator=g).float()
        x[torch.rand(x.shape, generator=g) < 0.15] = float("nan")
        out.append(("sparse_nan", x.to(dtype)))
        out.append(("all_nan", torch.full((1, 2, 4, 4), float("nan"), dtype=dtype)))
        x = torch.zeros(1, 1, 2, 8)
        x[0, 0, 0, 0] = float("nan")  # window 0: NaN at k=0, others 0
        x[0, 0, 1, 3] = float("nan")  # window 1: NaN at k=3
        x[0, 0, 0, 5] = float("nan")  # window 2: NaN at k=1, k=0 is +inf
        x[0, 0, 0, 4] = float("inf")
        out.append(("placed_nan", x.to(dtype)))
        result = []
        for name, x in out:
            n, c, h, w = x.shape
            result.append((name, x.contiguous(), torch.randn(n, c, h // 2, w // 2, generator=g).to(dtype)))
        return result


@pytest.fixture(scope="session")
def unpool_refs() -> UnpoolRefs:
    torch = pytest.importorskip("torch", reason="torch is needed for the numerical reference")
    return UnpoolRefs(torch)
