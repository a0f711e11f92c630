"""Pipeline pieces the end-to-end video tests pass over without checking (from the mutation run over
toolkit/video/pipeline.py, docs/MUTATION.md): the timing summary, the HUD text, the cancelled count."""

from __future__ import annotations

import numpy as np
from video_helpers import FakeRunner

from toolkit.video.overlay import Overlay
from toolkit.video.pipeline import Item, Pipeline, percentiles
from toolkit.video.sources import FrameSource


class NoFrames(FrameSource):
    name, live = "none", False

    def read(self) -> np.ndarray | None:
        return None


def test_percentiles_of_nothing_and_of_known_values() -> None:
    assert percentiles([]) == {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0, "n": 0}
    values = [float(v) for v in range(1, 101)]  # 1..100 ms: numpy's linear percentiles are 50.5 and 95.05
    assert percentiles(values) == {"p50_ms": 50.5, "p95_ms": 95.05, "mean_ms": 50.5, "n": 100}
    got = percentiles([1.23456, 2.34567, 9.87654])  # rounded to the microsecond (3 decimals of a ms)
    assert got == {"p50_ms": 2.346, "p95_ms": 9.123, "mean_ms": 4.486, "n": 3}


def _pipeline() -> Pipeline:
    runner = FakeRunner()
    ds = runner.meta.dataset
    return Pipeline(NoFrames(), runner, Overlay(ds.class_names, ds.palette), [])


def test_hud_lines() -> None:
    p = _pipeline()
    assert p._hud_lines(29.97, 12.345, (1, 3, 64, 96)) == ["FPS  30.0  model   12.3 ms", "fake fp32  64x96"]
    assert p._hud_lines(None, 1.0, (1, 3, 64, 96))[0] == "FPS   -    model    1.0 ms"  # no rate yet
    assert p._hud_lines(0.0, 1.0, (1, 3, 64, 96))[0] == "FPS   -    model    1.0 ms"


def test_cancelled_frames_add_up() -> None:
    p = _pipeline()
    p._cancel()
    p._cancel(3)
    assert p.counts["cancelled"] == 4


def test_a_model_size_class_map_is_scaled_to_the_frame_by_nearest_neighbour() -> None:
    p = _pipeline()
    p.hud = False
    mask = np.zeros((4, 6), np.uint8)
    mask[:, ::2] = 2  # classes 0 and 2 side by side: a linear resize would make 1s between them
    item = Item(0, np.zeros((8, 12, 3), np.uint8), 0.0, mask=mask)
    p._draw(item)
    np.testing.assert_array_equal(item.mask, np.repeat(np.repeat(mask, 2, 0), 2, 1))
    assert item.out is not None and item.out.shape == (8, 12, 3)
