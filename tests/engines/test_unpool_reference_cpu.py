"""Executed evidence without a GPU: the kernel's per-window code (engines/unpool/unpoolWindow.h, the exact code each
CUDA thread runs) compiled for the host and run on the CPU, compared bit for bit with

* torch max_pool2d(2, 2, return_indices=True) + max_unpool2d (NaN-free inputs, random and tie-heavy), and
* the written rule (NaN windows: k* = 3).

The runner is built twice: with the host C++ compiler (g++) and with nvcc (host path of the same
__host__ __device__ code, fp16/bf16 conversions from cuda_fp16.hpp/cuda_bf16.hpp as nvcc sees them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINES_DIR = REPO_ROOT / "engines"
RUNNER_SRC = ENGINES_DIR / "tests" / "unpool_reference_host.cpp"

DTYPES = ("float32", "float16", "bfloat16")
RUNNER_DTYPE = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


@pytest.fixture(scope="module", params=["cxx", "nvcc"])
def runner(request, build_dir, cuda_include, run) -> Path:
    exe = build_dir / f"unpool_reference_host_{request.param}"
    if not exe.exists():
        if request.param == "cxx":
            compiler = request.getfixturevalue("cxx")
            cmd = [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]
        else:
            compiler = request.getfixturevalue("nvcc")
            cmd = [compiler, "-std=c++17", "-O2", "-x", "cu", "-Xcompiler", "-Wall,-Wextra", "-Werror", "all-warnings"]
        run([*cmd, str(RUNNER_SRC), "-o", str(exe), "-I", str(ENGINES_DIR), "-isystem", str(cuda_include)],
            timeout=180)
    return exe


def run_runner(runner_exe: Path, refs, x, y, workdir: Path, run):
    torch = refs.torch
    n, c, h, w = x.shape
    xf, yf, of = workdir / "x.bin", workdir / "y.bin", workdir / "out.bin"
    xf.write_bytes(refs.bits(x).numpy().tobytes())
    yf.write_bytes(refs.bits(y).numpy().tobytes())
    dtype_name = str(x.dtype).removeprefix("torch.")
    run([str(runner_exe), RUNNER_DTYPE[dtype_name], str(n * c), str(h), str(w), str(xf), str(yf), str(of)])
    int_dtype = refs.bits(x).dtype
    import numpy as np

    raw = np.fromfile(of, dtype={torch.int32: np.int32, torch.int16: np.int16}[int_dtype])
    return torch.from_numpy(raw).view(x.dtype).reshape(n, c, h, w)


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_cpu_window_code_matches_torch_maxpool_unpool(runner, unpool_refs, dtype_name, tmp_path, run):
    torch = unpool_refs.torch
    dtype = getattr(torch, dtype_name)
    failures = []
    for name, x, y in unpool_refs.cases(dtype):
        expected = unpool_refs.torch_reference(x, y)
        # The written rule and PyTorch agree on NaN-free input (sanity check of the spec reference itself).
        assert unpool_refs.bit_equal(unpool_refs.spec_reference(x, y), expected), name
        got = run_runner(runner, unpool_refs, x, y, tmp_path, run)
        if not unpool_refs.bit_equal(got, expected):
            failures.append(name)
        # Never -0.0 at the unselected positions (-0.0 only where y itself is -0.0 and was selected).
        zero_pos = unpool_refs.bits(expected) == 0
        assert torch.equal(unpool_refs.bits(got)[zero_pos], unpool_refs.bits(expected)[zero_pos]), name
    assert not failures, f"{dtype_name}: runner differs from torch max_pool2d+max_unpool2d for {failures}"


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_cpu_window_code_nan_rule(runner, unpool_refs, dtype_name, tmp_path, run):
    torch = unpool_refs.torch
    dtype = getattr(torch, dtype_name)
    for name, x, y in unpool_refs.nan_cases(dtype):
        expected = unpool_refs.spec_reference(x, y)
        got = run_runner(runner, unpool_refs, x, y, tmp_path, run)
        assert unpool_refs.bit_equal(got, expected), f"{dtype_name}/{name}"
    # Spot check of the rule on the hand-placed windows: y lands at k = 3 in every NaN window.
    x = torch.zeros(1, 1, 2, 4, dtype=dtype)
    x[0, 0, 0, 0] = float("nan")
    x[0, 0, 0, 3] = float("nan")
    y = torch.tensor([[[[5.0, 7.0]]]], dtype=dtype)
    got = run_runner(runner, unpool_refs, x, y, tmp_path, run)
    assert got[0, 0].float().tolist() == [[0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 7.0]]
