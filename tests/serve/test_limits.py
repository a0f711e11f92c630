"""Request-size limits of `toolkit serve` and the bounded-memory class map, without Triton.

What must hold: an oversized request is refused on its shape, before the runner or any resize runs and
before any large allocation; the refusal names the limit and the option; a class map made one class
plane at a time agrees with what `infer` computes (full-size logits, then argmax) everywhere but at
float-rounding ties; and the `triton://` runner splits or refuses a batch on the client by the
server's published limits.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from toolkit.backend import make_runner
from toolkit.backend.triton import client as tc
from toolkit.backend.triton.runner import TritonRunner
from toolkit.core.description import ModelDescription
from toolkit.core.limits import UHD_PIXELS, RequestLimits
from toolkit.errors import RequestTooLargeError, ToolkitError
from toolkit.evaluate import Preprocessed, class_map_at_size, postprocess_logits, predict_logits
from toolkit.serve.handler import SegmentationHandler


class CountingRunner:
    """Wraps a runner and counts its calls (a refusal must come before any)."""

    def __init__(self, inner: object) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        return self.inner.infer(feed)  # type: ignore[attr-defined]


def test_defaults_are_a_4k_frame_four_per_request_and_256_mib_of_logits() -> None:
    limits = RequestLimits()
    assert limits.max_frame_pixels == UHD_PIXELS == 3840 * 2160
    assert limits.max_request_pixels == 4 * UHD_PIXELS and limits.max_logits_bytes == 256 * 1024 * 1024
    limits.check_frames((1, 2160, 3840, 3), 11, want_logits=False)  # a 4K frame's class map: accepted
    limits.check_frames((4, 2160, 3840, 3), 11, want_logits=False)
    limits.check_frames((1, 1080, 1920, 3), 11, want_logits=True)  # 1080p logits: 87 MiB


@pytest.mark.parametrize(("shape", "want", "option"), [
    ((1, 2161, 3840, 3), False, "--max-frame-pixels 8294400"),  # one row over 4K UHD
    ((1, 9000, 12000, 3), False, "--max-frame-pixels"),  # the frame that took the server to 11.7 GB
    ((5, 2160, 3840, 3), False, "--max-request-pixels 33177600"),  # five 4K frames in one request
    ((1, 2160, 3840, 3), True, "--max-logits-mb 256"),  # a 4K frame's 348 MiB of logits
])
def test_each_limit_names_itself_and_its_option(shape: tuple, want: bool, option: str) -> None:
    with pytest.raises(RequestTooLargeError, match=option.replace(".", r"\.")) as e:
        RequestLimits().check_frames(shape, 11, want)
    assert "\n" not in str(e.value) and "this server's limit" in str(e.value)


def test_request_limit_says_how_many_frames_fit() -> None:
    with pytest.raises(RequestTooLargeError, match="send at most 4 such frames per request"):
        RequestLimits().check_frames((5, 2160, 3840, 3), 11, False)


@pytest.mark.parametrize("bad", [0, -1, True, "8"])
def test_limits_must_be_positive_numbers(bad: object) -> None:
    with pytest.raises(ToolkitError, match="--max-frame-pixels .*expected a number > 0"):
        RequestLimits(max_frame_pixels=bad)  # type: ignore[arg-type]


def test_limits_round_trip_through_the_model_config_parameter() -> None:
    limits = RequestLimits(1000, 4000, 0.5)
    assert RequestLimits.from_json(limits.to_json()) == limits
    with pytest.raises(ToolkitError, match="expected a JSON object"):
        RequestLimits.from_json("[1, 2]")


def test_frames_per_request_takes_the_tightest_limit() -> None:
    limits = RequestLimits(max_frame_pixels=100 * 100, max_request_pixels=10 * 64 * 96, max_logits_mb=1.0)
    assert limits.frames_per_request(64, 96, 11) == 3  # 1 MiB / (64*96*11*4 B) = 3.9: logits bind first
    assert RequestLimits(max_frame_pixels=100 * 100, max_request_pixels=2 * 64 * 96).frames_per_request(64, 96, 11) == 2
    assert limits.frames_per_request(101, 100, 11) == 0  # one item is already over the frame limit


def test_oversized_frame_is_refused_before_any_work(tiny_checkpoint: Path) -> None:
    """The runner is never called and almost nothing is allocated: the check reads the shape alone."""
    big = np.zeros((1, 3000, 4000, 3), np.uint8)  # 12 MP against a 1 MP limit
    with make_runner(str(tiny_checkpoint)) as inner:
        runner = CountingRunner(inner)
        handler = SegmentationHandler(runner, inner.meta, max_batch=4,  # type: ignore[arg-type]
                                      limits=RequestLimits(max_frame_pixels=1_000_000))
        good = np.zeros((1, 64, 96, 3), np.uint8)
        tracemalloc.start()
        try:
            with pytest.raises(RequestTooLargeError, match=r"frame 3000x4000 .*\(--max-frame-pixels 1000000\)"):
                handler.infer_frames([good, big], [False, False])  # checked together: the good one not run either
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert runner.calls == 0
        assert peak < 1_000_000, f"refusing took {peak / 1e6:.1f} MB"  # the frame itself is 36 MB
        with pytest.raises(RequestTooLargeError, match="tensor 3000x4000"):
            handler.infer_tensors([np.zeros((1, 3, 3000, 4000), np.float32)])
        assert runner.calls == 0
        (out,) = handler.infer_frames([good], [False])  # still serving
        assert out["classes"].shape == (1, 64, 96) and runner.calls == 1


def test_logits_limit_refuses_only_requests_that_ask_for_logits(tiny_checkpoint: Path) -> None:
    with make_runner(str(tiny_checkpoint)) as runner:
        k = runner.meta.num_classes
        mib = 500 * 600 * k * 4 / 2**20
        handler = SegmentationHandler(runner, runner.meta, limits=RequestLimits(max_logits_mb=mib * 0.99))
        img = np.random.default_rng(1).integers(0, 256, (1, 500, 600, 3), dtype=np.uint8)
        (out,) = handler.infer_frames([img], [False])
        assert out["classes"].shape == (1, 500, 600)
        with pytest.raises(RequestTooLargeError, match="ask for 'classes' only"):
            handler.infer_frames([img], [True])


def near_tie(logits: np.ndarray, tol: float) -> np.ndarray:
    """Pixels whose two best classes are within ``tol`` of each other."""
    top2 = np.sort(logits, axis=0)[-2:]
    return (top2[1] - top2[0]) <= tol


def test_class_map_agrees_with_full_logits_argmax_but_at_rounding_ties() -> None:
    """Random logits, shrinking and enlarging, odd sizes and a padded input: every differing pixel is a tie
    within 1e-5 (the two resizes differ by a few float32 ulps of values of order 1, ~1e-7 each; 1e-5 leaves
    a hundredfold margin); and the ties are rare (measured 5e-6 of the pixels on random logits)."""
    rng = np.random.default_rng(0)
    differ = total = 0
    for (h, w), pad, out_hw in [((45, 60), (48, 64), (333, 517)), ((64, 96), (64, 96), (31, 47)),
                                ((90, 120), (96, 120), (1080, 1440)), ((64, 96), (64, 96), (64, 96))]:
        logits = rng.standard_normal((1, 11, *pad)).astype(np.float32)
        pre = Preprocessed(np.zeros((1, 3, *pad), np.float32), (h, w), out_hw)
        full = postprocess_logits(logits, pre)
        ref = full.argmax(0)
        got = class_map_at_size(logits, pre)
        assert got.shape == out_hw and got.dtype == np.uint8
        diff = got != ref
        assert not (diff & ~near_tie(full, 1e-5)).any()
        differ, total = differ + int(diff.sum()), total + diff.size
    # 1e-4: every differing pixel is a near-tie (asserted above); they must stay rare, not a band of the image
    assert differ / total < 1e-4


def test_class_map_memory_is_a_fraction_of_full_logits() -> None:
    """Allocation, not time: a 6 MP class map from 11 classes peaks near 10 bytes a pixel (running max, one
    plane, a mask, the map), where full-size logits and their argmax take more than 44."""
    logits = np.random.default_rng(0).standard_normal((1, 11, 360, 480)).astype(np.float32)
    pre = Preprocessed(np.zeros((1, 3, 360, 480), np.float32), (360, 480), (2000, 3000))
    pixels = 2000 * 3000

    def peak_bytes(fn: object) -> int:
        tracemalloc.start()
        try:
            fn()  # type: ignore[operator]
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    bounded = peak_bytes(lambda: class_map_at_size(logits, pre))
    full = peak_bytes(lambda: postprocess_logits(logits, pre).argmax(0).astype(np.uint8))
    assert bounded / pixels < 12, bounded / pixels
    assert full / pixels > 44 and bounded < full / 4


def test_served_class_maps_agree_with_the_infer_path(tiny_checkpoint: Path) -> None:
    """A real (tiny) model's class maps through the handler, classes only, against `infer`'s argmax of
    full-size logits, at a large and an odd frame size."""
    with make_runner(str(tiny_checkpoint)) as runner:
        meta = runner.meta
        handler = SegmentationHandler(runner, meta, max_batch=2)
        for seed, (h, w) in enumerate([(720, 1280), (333, 517)]):
            img = np.random.default_rng(seed).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
            (out,) = handler.infer_frames([img], [False])
            ref = predict_logits(runner, img[0], meta.dataset.mean, meta.dataset.std, meta.input_size)
            diff = out["classes"][0] != ref.argmax(0)
            assert not (diff & ~near_tie(ref, 1e-5)).any()


def test_triton_runner_splits_and_refuses_by_the_servers_limits(monkeypatch: pytest.MonkeyPatch,
                                                                  tiny_checkpoint: Path) -> None:
    """No server: the runner's request loop with a recording stand-in for the one tritonclient call."""
    from toolkit.checkpoint import load_checkpoint

    _, meta = load_checkpoint(tiny_checkpoint)
    sent: list[tuple[int, ...]] = []

    def fake_infer(_client: object, _url: object, inputs: dict[str, np.ndarray], outputs: list[str],
                   _timeout: float | None = None) -> dict[str, np.ndarray]:
        (x,) = inputs.values()
        sent.append(x.shape)
        return {outputs[0]: np.zeros((len(x), meta.num_classes, *x.shape[2:]), np.float32)}

    monkeypatch.setattr(tc, "infer", fake_infer)
    runner = TritonRunner("triton://127.0.0.1:1/segnet_tensor")
    runner._description = ModelDescription(meta)  # what activation would have read from the server
    runner.max_batch, runner.is_active = 8, True
    runner._local.client = object()
    runner.limits = RequestLimits(max_frame_pixels=64 * 96, max_request_pixels=3 * 64 * 96)
    out = runner._infer_impl({"input": np.zeros((7, 3, 64, 96), np.float32)})
    assert sent == [(3, 3, 64, 96), (3, 3, 64, 96), (1, 3, 64, 96)] and out["logits"].shape[0] == 7
    sent.clear()
    with pytest.raises(RequestTooLargeError, match=r"tensor 72x96 .*\(--max-frame-pixels 6144\)"):
        runner._infer_impl({"input": np.zeros((1, 3, 72, 96), np.float32)})
    assert sent == []  # refused on the client: nothing was sent


@pytest.mark.parametrize(("option", "value"), [("--max-frame-pixels", "0"), ("--max-logits-mb", "-1")])
def test_serve_refuses_a_non_positive_limit_in_one_line(option: str, value: str) -> None:
    """Checked before PyTriton is looked for or a model loaded, so it says the same with or without the extra."""
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, ["serve", option, value])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error:") and option in lines[0] and "expected a number > 0" in lines[0]
