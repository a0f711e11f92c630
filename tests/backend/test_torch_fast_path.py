"""The PyTorch GPU path's logic, on the CPU: precision rules, the graph cache's bookkeeping, options the
factory refuses, bench's device-stage columns and frames mode, and the video pipeline's frames-on-device
route (through a CPU stand-in runner). The CUDA execution itself is tests/backend/test_torch_cuda.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.export.helpers import tiny_checkpoint, tiny_onnx
from toolkit.backend import BaseRunner, make_runner
from toolkit.backend.base import INPUT_NAME, OUTPUT_NAME
from toolkit.backend.factory import split_precision
from toolkit.backend.torch import precision as prec
from toolkit.backend.torch.graphs import GraphCache
from toolkit.bench import bench_runners, format_table, make_call
from toolkit.core.description import ModelDescription
from toolkit.errors import ToolkitError


# -- precision ------------------------------------------------------------------------------------------
def test_precision_defaults_to_the_fp32_reference() -> None:
    assert prec.resolve_precision(None, torch.device("cpu")) == "fp32"


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu_is_bf16_only_with_amx(monkeypatch: pytest.MonkeyPatch, amx: bool, expected: str) -> None:
    monkeypatch.setattr(prec, "cpu_has_amx_bf16", lambda: amx)
    assert prec.resolve_precision("auto", torch.device("cpu")) == expected
    assert prec.auto_precision(torch.device("cuda")) == "fp16"


def test_bad_precisions_get_one_line() -> None:
    with pytest.raises(ToolkitError, match="Did you mean 'fp16'"):
        prec.resolve_precision("fp61", torch.device("cpu"))
    with pytest.raises(ToolkitError, match="fp16 convolutions on the CPU"):
        prec.resolve_precision("fp16", torch.device("cpu"))


def test_split_precision() -> None:
    assert split_precision("enhanced-w64@fp16") == ("enhanced-w64", "fp16")
    assert split_precision("runs/a@b/model.safetensors@BF16") == ("runs/a@b/model.safetensors", "bf16")
    assert split_precision("me@host.onnx") == ("me@host.onnx", None)  # not a precision: the name stays whole
    assert split_precision("@fp16") == ("@fp16", None)


# -- the graph cache --------------------------------------------------------------------------------------
def test_graph_cache_captures_once_per_shape_and_evicts_the_oldest() -> None:
    captured: list[tuple] = []
    cache: GraphCache[str] = GraphCache(lambda key, graph: captured.append(key) or f"slot{key}", capacity=2)
    assert cache.get((1, 2)) == "slot(1, 2)" and cache.get((1, 2)) == "slot(1, 2)"
    cache.get((3, 4))
    cache.get((1, 2))  # most recent now: (3, 4) is the oldest
    cache.get((5, 6))
    assert cache.keys() == [(1, 2), (5, 6)] and captured == [(1, 2), (3, 4), (5, 6)]
    cache.get((3, 4))  # evicted before: captured again
    assert cache.captures == 4 and cache.keys() == [(5, 6), (3, 4)]
    with pytest.raises(ValueError, match="capacity"):
        GraphCache(lambda key, graph: key, capacity=0)


def test_graph_cache_stops_capturing_after_max_captures() -> None:
    """A stream of ever new shapes (a folder of mixed image sizes) must not capture a graph per frame."""
    made: list[tuple[int, bool]] = []
    cache: GraphCache[int] = GraphCache(lambda key, graph: made.append((key, graph)) or key, capacity=2,
                                        max_captures=3)
    for key in (1, 2, 3, 4, 5, 1):
        cache.get(key)
    assert made == [(1, True), (2, True), (3, True), (4, False), (5, False), (1, False)]
    assert (cache.captures, cache.misses) == (3, 6)


def test_last_stage_ms_is_per_thread() -> None:
    """bench --streams 2 reads each caller's own stage times, not whichever thread wrote last."""
    import threading

    runner = _StagedRunner()
    runner.last_stage_ms = {"h2d": 1.0, "compute": 1.0, "d2h": 1.0}
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(runner.last_stage_ms))
    thread.start()
    thread.join()
    assert seen == [None] and runner.last_stage_ms == {"h2d": 1.0, "compute": 1.0, "d2h": 1.0}


# -- the runner on the CPU ------------------------------------------------------------------------------
def test_bf16_on_the_cpu_runs_and_says_so(tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = tiny_checkpoint(tmp_path_factory)
    x = {INPUT_NAME: np.random.default_rng(0).standard_normal((1, 3, 64, 96)).astype(np.float32)}
    with make_runner(ckpt) as ref, make_runner(ckpt, precision="bf16") as fast:
        want, got = ref.infer(x)[OUTPUT_NAME], fast.infer(x)[OUTPUT_NAME]
        assert fast.info.precision == "bf16" and ref.info.precision == "fp32"
        assert not fast.info.frames_on_device and fast.last_stage_ms is None
    assert got.dtype == np.float32 and got.shape == want.shape
    assert float(np.abs(got - want).max()) < 0.25 * float(np.abs(want).max())  # bf16 rounding, not garbage
    # 0.9: a floor, not a measurement (not measured here): bf16 keeps 8 significant bits, the bound above catches a
    # scale error; a wrong path or garbage agrees on ~1/K of the pixels
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9


def test_cpu_refuses_what_needs_cuda(tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = tiny_checkpoint(tmp_path_factory)
    with pytest.raises(ToolkitError, match="CUDA graphs need --device cuda"):
        make_runner(ckpt, cuda_graph=True)
    with make_runner(ckpt) as runner, pytest.raises(ToolkitError, match="preprocessed tensors only"):
        runner.infer_frame(np.zeros((64, 96, 3), np.uint8))


def test_precision_of_a_file_model_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    onnx = tiny_onnx(tmp_path_factory, "mask")
    with pytest.raises(ToolkitError, match="applies to PyTorch checkpoints only"):
        make_runner(onnx, precision="fp16")
    make_runner(onnx, precision="auto")  # 'auto' means "each model its own": no error
    with pytest.raises(ToolkitError, match="--compile applies to PyTorch checkpoints only"):
        make_runner(onnx, compile=True)
    with pytest.raises(ToolkitError, match="--cuda-graph applies to PyTorch checkpoints, AOTInductor packages"):
        make_runner(onnx, cuda_graph=True)
    make_runner(onnx, cuda_graph=False)  # --no-cuda-graph asks for nothing ONNX Runtime would do


def test_cli_choices_are_the_librarys() -> None:
    """The CLI's closed sets (toolkit/cli/options.py, torch-free for a fast --help) name what the library takes."""
    from toolkit.bench import IO_MODES
    from toolkit.cli.options import Io, RunPrecision

    assert tuple(p.value for p in RunPrecision) == prec.PRECISION_CHOICES
    assert tuple(m.value for m in Io) == IO_MODES


# -- bench ------------------------------------------------------------------------------------------------
class _StagedRunner(BaseRunner):
    """Reports device stage times like a GPU runner, computes nothing."""

    backend = "fake"

    def _activate_impl(self) -> ModelDescription:
        return ModelDescription()

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.last_stage_ms = {"h2d": 0.1, "compute": 1.0, "d2h": 0.3}
        return {OUTPUT_NAME: np.zeros((1, 2, 8, 8), np.float32)}


def test_bench_reports_device_stages_where_runners_time_them(tmp_path_factory: pytest.TempPathFactory) -> None:
    with make_runner(tiny_checkpoint(tmp_path_factory)) as cpu, _StagedRunner() as gpu:
        cpu_res, gpu_res = bench_runners([cpu, gpu], (1, 3, 64, 96), warmup=0, iterations=2, rounds=1, pause_s=0)
    assert cpu_res.stages_ms is None and gpu_res.stages_ms == {"h2d": 0.1, "compute": 1.0, "d2h": 0.3}
    table = format_table([cpu_res, gpu_res])
    assert "h2d / compute / d2h ms" in table and "0.100 / 1.000 / 0.300" in table


def test_bench_frames_mode_needs_a_frames_runner(tmp_path_factory: pytest.TempPathFactory) -> None:
    with make_runner(tiny_checkpoint(tmp_path_factory)) as cpu:
        with pytest.raises(ToolkitError, match="takes preprocessed tensors only"):
            make_call(cpu, (1, 3, 64, 96), io="frames")
        with pytest.raises(ToolkitError, match="--io tensors"):
            make_call(cpu, (1, 3, 64, 96), io="tensors")


# -- the fast path's model and preprocessing, checked on the CPU ------------------------------------------
def test_batchnorm_folding_keeps_the_outputs() -> None:
    from tests.export.helpers import tiny_model
    from toolkit.models.fold import fold_batchnorm

    model = tiny_model()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # 1e-4: folding BatchNorm reassociates w * gamma / sqrt(var + eps) in float32 (~1e-7 relative per op), grown
        # over the network's layers; a wrong fold (eps, bias) is off by >1e-2
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("src", "dst", "max_levels"), [
    ((180, 240), (180, 240), 0.0),  # no resize
    ((360, 480), (180, 240), 0.0),  # 2x shrink: OpenCV's area filter is a 2x2 mean
    ((300, 400), (180, 240), 0.0),  # a fractional shrink: the same overlap weights
    ((240, 320), (180, 240), 0.0),  # a 4/3 shrink: OpenCV rounds its float sums half to even (was 1 level off)
    ((270, 360), (180, 240), 0.0),  # 3/2
    ((360, 240), (180, 240), 0.0),  # rows 2x, columns kept: half to even (only 2x2 rounds half up)
    ((720, 960), (180, 240), 0.0),  # 4x: OpenCV's integer path, rounded half to even
    ((200, 240), (180, 240), 1.0),  # 10/9: OpenCV's float sums round a level apart on 0.2 % of the values
    ((120, 160), (180, 240), 1.0),  # enlarging: OpenCV's fixed-point bilinear rounds a level apart here and there
    ((180, 480), (180, 240), 1.0),  # rows kept, columns shrink: the host asks for bilinear, no area filter
    ((120, 480), (180, 240), 1.0),  # rows grow, columns shrink: bilinear too
])
def test_device_preprocessing_equals_the_hosts(src: tuple[int, int], dst: tuple[int, int],
                                               max_levels: float) -> None:
    """What the GPU runner does inside its graph (frames.frame_to_input), run here on the CPU, against the
    host pipeline's FastPreprocess: differences counted in uint8 levels."""
    from toolkit.backend.torch.frames import frame_to_input
    from toolkit.core.shapes import pad_to_multiple
    from toolkit.data.synthetic import make_scene
    from toolkit.video.ops import FastPreprocess

    mean, std = (0.41, 0.42, 0.43), (0.31, 0.30, 0.29)
    image, _ = make_scene(3, size=src)
    host = FastPreprocess(mean, std, dst)(image).tensor
    device = frame_to_input(torch.from_numpy(image), torch.tensor(mean).view(1, 3, 1, 1),
                            torch.tensor(std).view(1, 3, 1, 1), dst, pad_to_multiple(*dst)).numpy()
    assert device.shape == host.shape
    levels = np.abs(device - host) * 255 * np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    assert float(levels.max()) <= max_levels + 1e-3
