"""GPU test of the SegNetMaskUnpool CUDA kernel (engines/unpool/unpoolKernel.cu) through a small torch extension
(engines/unpool/torch_binding.cpp, built with torch.utils.cpp_extension.load).

Reference: torch max_pool2d(2, 2, return_indices=True) + max_unpool2d on the same GPU, computed here directly (no
dependency on the toolkit package); NaN windows are checked against the written rule (k* = 3). Bit-exact.
Skips cleanly without a CUDA GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is needed for the kernel test")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA GPU available (torch.cuda.is_available() is False): the kernel can only be executed on a GPU",
    ),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
UNPOOL_DIR = REPO_ROOT / "engines" / "unpool"
DTYPES = ("float32", "float16", "bfloat16")


@pytest.fixture(scope="module")
def ext(tmp_path_factory, nvcc):
    from torch.utils.cpp_extension import load

    os.environ.setdefault("CUDA_HOME", str(Path(nvcc).resolve().parent.parent))
    # TORCH_EXTENSIONS_DIR set (tools/gpu_checks.sh): build once there, shared with tools/unpool_bandwidth.py
    build = None if os.environ.get("TORCH_EXTENSIONS_DIR") else str(tmp_path_factory.mktemp("segnet_unpool_ext"))
    return load(
        name="segnet_unpool_ext",
        sources=[str(UNPOOL_DIR / "torch_binding.cpp"), str(UNPOOL_DIR / "unpoolKernel.cu")],
        extra_include_paths=[str(UNPOOL_DIR)],
        extra_cflags=["-O2"],
        extra_cuda_cflags=["-O2"],
        build_directory=build,
        verbose=False,
    )


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_kernel_matches_torch_maxpool_unpool(ext, unpool_refs, dtype_name):
    dtype = getattr(torch, dtype_name)
    failures = []
    for name, x, y in unpool_refs.cases(dtype):
        xd, yd = x.cuda(), y.cuda()
        expected = unpool_refs.torch_reference(xd, yd).cpu()
        got = ext.mask_unpool(xd, yd)
        torch.cuda.synchronize()
        if not unpool_refs.bit_equal(got.cpu(), expected):
            failures.append(name)
    assert not failures, f"{dtype_name}: kernel differs from torch max_pool2d+max_unpool2d for {failures}"


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_kernel_nan_rule(ext, unpool_refs, dtype_name):
    dtype = getattr(torch, dtype_name)
    for name, x, y in unpool_refs.nan_cases(dtype):
        expected = unpool_refs.spec_reference(x, y)
        got = ext.mask_unpool(x.cuda(), y.cuda()).cpu()
        assert unpool_refs.bit_equal(got, expected), f"{dtype_name}/{name}"


@pytest.mark.parametrize("dtype_name", ("float32", "float16"))
def test_kernel_large_random(ext, unpool_refs, dtype_name):
    """More windows (20.9M) than the capped grid has threads (65535 x 256 = 16.8M): the scalar kernel's grid-stride
    loop (misaligned buffers), and the vectorised kernel on the same data."""
    dtype = getattr(torch, dtype_name)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randint(-3, 4, (4, 64, 512, 640), device="cuda", generator=g).to(dtype)  # 20.9M windows
    y = torch.randn(4, 64, 256, 320, device="cuda", generator=g).to(dtype)
    expected = unpool_refs.torch_reference(x, y)
    got = ext.mask_unpool(x, y)
    assert unpool_refs.bit_equal(got, expected)
    xs, out = _misaligned_like(x), _misaligned_like(torch.empty_like(x))
    assert not ext.vectorised(xs, y, out)
    ext.mask_unpool_into(xs, y, out)
    assert unpool_refs.bit_equal(out, expected)


def test_kernel_rejects_bad_shapes(ext):
    x = torch.zeros(1, 1, 5, 4, device="cuda")
    y = torch.zeros(1, 1, 2, 2, device="cuda")
    with pytest.raises(RuntimeError):
        ext.mask_unpool(x, y)


def _misaligned_like(t):
    """A contiguous copy of ``t`` starting one element past an aligned allocation: forces the scalar kernel."""
    flat = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = flat[1:].view(t.shape)
    view.copy_(t)
    return view


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_kernel_paths(ext, dtype_name):
    """The SegNet shapes (W/2 a multiple of 4) take the vectorised kernel; odd widths or offsets the scalar one."""
    dtype = getattr(torch, dtype_name)
    for h, w in ((360, 480), (180, 240), (90, 120), (46, 64)):
        x = torch.zeros(1, 8, h, w, dtype=dtype, device="cuda")
        y = torch.zeros(1, 8, h // 2, w // 2, dtype=dtype, device="cuda")
        assert ext.vectorised(x, y, torch.empty_like(x)), (h, w)
    x = torch.zeros(1, 8, 8, 10, dtype=dtype, device="cuda")
    y = torch.zeros(1, 8, 4, 5, dtype=dtype, device="cuda")
    assert not ext.vectorised(x, y, torch.empty_like(x))
    x = torch.zeros(1, 8, 8, 16, dtype=dtype, device="cuda")
    y = torch.zeros(1, 8, 4, 8, dtype=dtype, device="cuda")
    assert not ext.vectorised(_misaligned_like(x), y, torch.empty_like(x))


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_scalar_kernel_matches_on_every_case(ext, unpool_refs, dtype_name):
    """The same cases through the scalar kernel (misaligned buffers), so both paths are held to one rule."""
    dtype = getattr(torch, dtype_name)
    failures = []
    for name, x, y in [*unpool_refs.cases(dtype), *unpool_refs.nan_cases(dtype)]:
        xd, yd = _misaligned_like(x.cuda()), y.cuda().contiguous()
        out = _misaligned_like(torch.empty_like(xd))
        assert not ext.vectorised(xd, yd, out)
        ext.mask_unpool_into(xd, yd, out)
        expected = ext.mask_unpool(x.cuda(), yd)  # the vectorised kernel where the shape allows it
        if not unpool_refs.bit_equal(out.cpu(), expected.cpu()):
            failures.append(name)
    assert not failures, f"{dtype_name}: scalar and vectorised kernels differ for {failures}"


def test_vectorised_kernel_grid_stride(ext, unpool_refs):
    """More 4-window groups (21M) than the capped grid has threads (16.8M): the vectorised kernel's loop."""
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randint(-3, 4, (16, 64, 512, 640), device="cuda", generator=g).to(torch.float16)
    y = torch.randn(16, 64, 256, 320, device="cuda", generator=g).to(torch.float16)
    out = torch.empty_like(x)
    assert ext.vectorised(x, y, out)
    ext.mask_unpool_into(x, y, out)
    assert unpool_refs.bit_equal(out, unpool_refs.torch_reference(x, y))
