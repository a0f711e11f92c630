"""Fast per-frame kernels equal their references; overlays have the right size and colours."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.data import synthetic_info
from toolkit.errors import ToolkitError
from toolkit.evaluate import preprocess
from toolkit.video.ops import FastPreprocess, argmax_classes
from toolkit.video.overlay import Overlay, OverlayStyle, colorize, palette_table


@pytest.mark.parametrize(("hw", "input_size"), [((64, 96), (64, 96)), ((60, 90), None), ((100, 150), (64, 96)),
                                                ((40, 60), (64, 96))])
def test_fast_preprocess_is_bit_identical(hw: tuple[int, int], input_size: tuple[int, int] | None) -> None:
    info = synthetic_info(3)
    img = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    ref = preprocess(img, info.mean, info.std, input_size)
    got = FastPreprocess(info.mean, info.std, input_size)(img)
    assert got.tensor.dtype == np.float32 and got.tensor.shape == ref.tensor.shape
    assert np.array_equal(got.tensor, ref.tensor)
    assert (got.valid_hw, got.source_hw) == (ref.valid_hw, ref.source_hw)


def test_argmax_matches_numpy_including_ties() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(11, 37, 53)).astype(np.float32)
    assert np.array_equal(argmax_classes(logits), logits.argmax(0))
    ties = rng.integers(0, 3, (5, 20, 30)).astype(np.float32)  # many equal maxima: first one wins
    assert np.array_equal(argmax_classes(ties), ties.argmax(0))
    assert argmax_classes(ties).dtype == np.uint8
    padded = rng.normal(size=(1, 11, 40, 56)).astype(np.float32)  # a crop of padded logits: read in place
    crop = padded[0, :, :37, :53]
    assert np.array_equal(argmax_classes(crop), np.ascontiguousarray(crop).argmax(0))
    assert np.array_equal(argmax_classes(padded[0].astype(np.float64)), padded[0].argmax(0))  # other dtypes


def test_overlay_blend_legend_hud_side_by_side() -> None:
    info = synthetic_info(3)
    frame = np.full((64, 96, 3), 100, np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[:, 48:] = 1
    assert np.array_equal(colorize(mask, palette_table(info.palette))[0, 60], info.palette[1])
    plain = Overlay(info.class_names, info.palette, OverlayStyle(alpha=1.0, legend=False, hud=False))
    assert np.array_equal(plain(frame, mask)[10, 10], info.palette[0])
    styled = Overlay(info.class_names, info.palette, OverlayStyle(alpha=0.5, side_by_side=True))
    out = styled(frame, mask, ["FPS 10.0", "torch fp32"])
    assert out.shape == (64, 192, 3) and styled.output_size((64, 96)) == (64, 192)
    assert np.array_equal(out[-1, 0], frame[-1, 0])  # left half is the untouched frame (below the HUD)
    assert not np.array_equal(out[:20, -20:], plain(frame, mask)[:20, -20:])  # legend drawn top-right
    small = np.full((40, 60, 3), 100, np.uint8)  # 11 classes would not fit: the legend is scaled down
    eleven = Overlay([f"class{i}" for i in range(11)], [(10 * i, 0, 0) for i in range(11)])
    assert eleven(small, np.zeros((40, 60), np.uint8)).shape == (40, 60, 3)
    assert eleven._legend_for((40, 60)).shape[0] <= 36 and eleven._legend_for((40, 60)).shape[1] <= 24
    with pytest.raises(ToolkitError, match="alpha 1.5"):
        Overlay(info.class_names, info.palette, OverlayStyle(alpha=1.5))


@pytest.mark.parametrize("hw", [(180, 240), (120, 160), (360, 480)])
def test_legend_covers_at_most_15_percent_of_the_frame(hw: tuple[int, int]) -> None:
    """Issue 16 item 10: the 11 CamVid classes' legend covered ~35 % of a 240-pixel-wide frame."""
    names = ["sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car", "pedestrian",
             "bicyclist"]
    overlay = Overlay(names, [(20 * i, 0, 0) for i in range(11)])
    legend = overlay._legend_for(hw)
    assert legend is not None
    assert legend.shape[0] * legend.shape[1] <= 0.15 * hw[0] * hw[1]
