"""The PyTorch runner on a CUDA GPU: fp16/bf16, CUDA graphs (captured per shape, replayed), pinned copies on the
runner's stream, device-side pre/post-processing. Skips without a GPU; tools/gpu_checks.sh runs it where one is.

Frames are synthetic scenes (toolkit.data.make_scene), so the models see structured images, not noise.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)"),
]

from toolkit.backend import BaseRunner, make_runner  # noqa: E402
from toolkit.backend.base import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from toolkit.data.synthetic import make_scene  # noqa: E402
from toolkit.video.ops import FastPreprocess, argmax_classes  # noqa: E402
from toolkit.zoo import resolve_model_path  # noqa: E402

MODEL = "enhanced-w16-kd"  # 180x240, small: the logic, not the speed, is under test here


def frame(index: int, hw: tuple[int, int]) -> np.ndarray:
    image, _ = make_scene(index, size=hw)
    return image


def feed_for(runner: BaseRunner, image: np.ndarray) -> dict[str, np.ndarray]:
    meta = runner.meta
    return {INPUT_NAME: FastPreprocess(meta.dataset.mean, meta.dataset.std, meta.input_size)(image).tensor}


@pytest.fixture(scope="module")
def model_path() -> Path:
    return Path(resolve_model_path(MODEL))


def test_fp16_graph_matches_fp32_eager(model_path: Path) -> None:
    with make_runner(model_path, device="cuda", precision="fp32", cuda_graph=False) as ref, \
            make_runner(model_path, device="cuda", precision="auto") as fast:
        assert fast.info.precision == "fp16" and fast.cuda_graph and not fast.info.on_cpu
        x = feed_for(ref, frame(0, (180, 240)))
        want, got = ref.infer(x)[OUTPUT_NAME], fast.infer(x)[OUTPUT_NAME]
    assert got.dtype == np.float32 and got.shape == want.shape
    assert float(np.abs(got - want).max()) < 0.1 * float(np.abs(want).max())
    # 0.99: fp16 (11 significant bits) flips only near-tie pixels; not re-measured here (no GPU this session), see
    # docs/gpu/gpu_checks.log
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.99


def test_graph_replay_equals_eager_and_recaptures_per_shape(model_path: Path) -> None:
    with make_runner(model_path, device="cuda", precision="fp16", cuda_graph=False) as eager, \
            make_runner(model_path, device="cuda", precision="fp16") as graph:
        for hw in ((184, 240), (360, 480), (184, 240)):
            x = {INPUT_NAME: np.random.default_rng(hw[0]).standard_normal((1, 3, *hw)).astype(np.float32)}
            # 2e-2: both fp16; a graph may pick other cuDNN algorithms than eager: a few fp16 ulps (~1e-3 relative) of
            # logits up to ~10
            np.testing.assert_allclose(graph.infer(x)[OUTPUT_NAME], eager.infer(x)[OUTPUT_NAME], atol=2e-2)
        assert graph.graphs_captured == 2  # the third call replayed the first shape's graph
        assert set(graph.last_stage_ms) == {"h2d", "compute", "d2h"}
        assert all(v > 0 for v in graph.last_stage_ms.values())


def test_results_stay_valid_after_the_next_call(model_path: Path) -> None:
    """Each call's output is its own pinned buffer: a caller may hold it while the next frame runs."""
    with make_runner(model_path, device="cuda") as runner:
        a = runner.infer({INPUT_NAME: np.zeros((1, 3, 184, 240), np.float32)})[OUTPUT_NAME]
        kept = a.copy()
        runner.infer({INPUT_NAME: np.ones((1, 3, 184, 240), np.float32)})
    np.testing.assert_array_equal(a, kept)


def test_concurrent_calls_equal_sequential_ones(model_path: Path) -> None:
    with make_runner(model_path, device="cuda") as runner:
        feeds = [{INPUT_NAME: np.random.default_rng(i).standard_normal((1, 3, 184, 240)).astype(np.float32)}
                 for i in range(8)]
        sequential = [runner.infer(f)[OUTPUT_NAME] for f in feeds]
        results: dict[int, np.ndarray] = {}

        def work(i: int) -> None:
            results[i] = runner.infer(feeds[i])[OUTPUT_NAME]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # concurrent callers take their own slots (a graph each), sequential ones reuse a free set
        assert 1 <= runner.graphs_captured <= 1 + 8
    # not bit-equal: cuDNN's autotuning cache is per thread, and each thread may pick other convolution
    # algorithms (TF32 in fp32); a race would give garbage, not these small differences
    for i in range(8):
        assert np.abs(results[i] - sequential[i]).mean() < 1e-2
        assert (results[i].argmax(1) == sequential[i].argmax(1)).mean() > 0.999


@pytest.mark.parametrize("frame_hw", [(180, 240), (360, 480), (120, 160)])
def test_frames_on_the_device_agree_with_the_host_path(model_path: Path, frame_hw: tuple[int, int]) -> None:
    """uint8 frame in, class map out, resize/normalise/argmax on the GPU: the same map as the host's
    preprocessing + the same fp16 model (the inputs are equal when shrinking, within a uint8 level when
    enlarging: tests/backend/test_torch_fast_path.py)."""
    with make_runner(model_path, device="cuda", precision="fp16") as runner:
        assert runner.info.frames_on_device
        agreements = []
        for i in range(3):
            image = frame(i, frame_hw)
            got = runner.infer_frame(image)
            logits = runner.infer(feed_for(runner, image))[OUTPUT_NAME]
            h, w = runner.meta.input_size
            want = argmax_classes(logits[0, :, :h, :w])
            assert got.dtype == np.uint8 and got.shape == want.shape == (h, w)
            agreements.append((got == want).mean())
    enlarged = frame_hw[0] < runner.meta.input_size[0]
    # enlarged: inputs a uint8 level apart on ~12 % of the pixels flip 1.3-2.1 % of this out-of-domain model's
    # near-tie pixels (H100, docs/gpu/gpu_checks.log)
    assert min(agreements) > (0.97 if enlarged else 0.999), agreements


def test_bf16_runs_where_the_card_has_it(model_path: Path) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this card has no bf16")
    with make_runner(model_path, device="cuda", precision="fp32", cuda_graph=False) as ref, \
            make_runner(model_path, device="cuda", precision="bf16") as fast:
        x = feed_for(ref, frame(1, (180, 240)))
        agree = (fast.infer(x)[OUTPUT_NAME].argmax(1) == ref.infer(x)[OUTPUT_NAME].argmax(1)).mean()
    # a smoke check on one synthetic frame (97.8 % on an H100); bf16's cost on CamVid is parity's to measure
    assert fast.info.precision == "bf16" and agree > 0.95


def test_bench_frames_mode_and_stage_columns(model_path: Path) -> None:
    from toolkit.bench import bench_models, format_table

    res = bench_models([model_path, model_path], (1, 3, 184, 240), device="cuda", precision="auto",
                       warmup=3, iterations=10, rounds=1, io="frames")
    assert all(r.io == "frames" and r.stages_ms and r.stages_ms["compute"] > 0 for r in res)
    assert "h2d / compute / d2h ms" in format_table(res)


def test_class_maps_at_the_frame_size_through_the_serve_handler(model_path: Path) -> None:
    """``toolkit serve``'s frame model on CUDA: without logits the class maps come from the runner's graph at the
    frame's own size; with logits the host path runs. Both on the same fp16 model, so they must agree."""
    from toolkit.serve.handler import SegmentationHandler

    with make_runner(model_path, device="cuda", precision="fp16") as runner:
        handler = SegmentationHandler(runner, runner.meta, "rgb", max_batch=1)  # batch 1 on both paths
        imgs = np.stack([frame(i, (240, 320)) for i in range(2)])
        (device,) = handler.infer_frames([imgs], [False])
        (host,) = handler.infer_frames([imgs], [True])
    assert set(device) == {"classes"} and device["classes"].shape == host["classes"].shape == (2, 240, 320)
    # Measured cause of the 98.85 % an H100 gave before: the device preprocessing was a uint8 level off the
    # host's on 5 % of the values for this 4/3 shrink; the same comparison in fp32 on the CPU gave 98.97 % and
    # 98.74 % on these two frames (mean 98.86 %), 100 % once frames.py rounded as OpenCV does
    # (tests/backend/test_frames_logic_cpu.py). What remains on the GPU is the two graphs' fp16 kernels on equal
    # inputs; an align_corners=True resize scores 98.9-99.2 % on these frames and must fail. Not rerun on a GPU
    # since the fix (tools/gpu_checks.sh).
    assert (device["classes"] == host["classes"]).mean() > 0.995
