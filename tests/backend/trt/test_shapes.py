"""--shapes MIN:OPT:MAX parsing and the profile chosen from the ONNX or its metadata."""

from __future__ import annotations

import pytest

from toolkit.backend.trt.shapes import ShapeProfile, parse_shapes, profile_from_input_size, resolve_profile
from toolkit.errors import InputShapeError


def test_parse_min_opt_max() -> None:
    p = parse_shapes("1x3x360x480:1x3x360x480:4x3x720x960")
    assert p == ShapeProfile((1, 3, 360, 480), (1, 3, 360, 480), (4, 3, 720, 960))
    assert not p.is_static and p.to_text() == "1x3x360x480:1x3x360x480:4x3x720x960"
    assert p.contains((2, 3, 480, 640)) and not p.contains((8, 3, 360, 480)) and not p.contains((1, 3, 360))
    assert ShapeProfile.from_dict(p.to_dict()) == p


def test_single_shape_is_static() -> None:
    p = parse_shapes("2X3x368x480")
    assert p.is_static and p.min == (2, 3, 368, 480)


@pytest.mark.parametrize("text,fragment", [
    ("1x3x360x480:4x3x720x960", "expected MIN:OPT:MAX"),
    ("1x3x360:1x3x360x480:1x3x360x480", "has 3 dimensions"),
    ("1x3xfoox480", "not integers"),
    ("1x3x0x480", "must be positive"),
    ("1x1x360x480", "3 (RGB)"),
    ("1x3x361x480", "use 1x3x368x480"),
    ("2x3x360x480:1x3x360x480:4x3x720x960", "dimension N must satisfy min <= opt <= max, got 2 / 1 / 4"),
    ("1x3x720x960:1x3x360x480:1x3x720x960", "dimension H"),
])
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(InputShapeError) as e:
        parse_shapes(text)
    assert fragment in str(e.value) and text in str(e.value)


def test_resolve_profile_sources() -> None:
    dyn = ["N", 3, "H", "W"]
    assert resolve_profile("1x3x64x96:2x3x64x96:4x3x128x192", dyn, "input", None).max == (4, 3, 128, 192)
    assert resolve_profile(None, dyn, "input", (360, 480)) == profile_from_input_size((360, 480))
    assert resolve_profile(None, [1, 3, 64, 96], "input", (360, 480)).min == (1, 3, 64, 96)  # static ONNX wins
    assert resolve_profile(None, [2, 3, "H", "W"], "input", (64, 96)).opt == (2, 3, 64, 96)  # fixed batch kept
    with pytest.raises(InputShapeError, match="give --shapes"):
        resolve_profile(None, dyn, "input", None)


def test_profile_must_fit_static_onnx_dims() -> None:
    with pytest.raises(InputShapeError, match="re-export with --dynamic"):
        resolve_profile("1x3x64x96:1x3x64x96:4x3x64x96", [1, 3, "H", "W"], "input", None)
    with pytest.raises(InputShapeError, match="rank 3"):
        resolve_profile("1x3x64x96", ["N", "H", "W"], "input", None)


def test_metadata_input_size_is_padded_like_preprocess() -> None:
    """A model trained at 180x240 runs on 184x240 tensors (preprocess pads); the profile must match."""
    import numpy as np

    from toolkit.evaluate import preprocess

    padded = preprocess(np.zeros((180, 240, 3), np.uint8), (0, 0, 0), (1, 1, 1)).tensor.shape
    profile = resolve_profile(None, ["N", 3, "H", "W"], "input", (180, 240))
    assert profile.min == profile.opt == profile.max == padded


def test_engine_profiles_use_the_models_stride() -> None:
    """A stride-16 model (enhanced_s2): the static profile pads 360x480 to 368x480 and --shapes refuses 360."""
    assert profile_from_input_size((360, 480), stride=16).opt == (1, 3, 368, 480)
    assert profile_from_input_size((360, 480)).opt == (1, 3, 360, 480)
    with pytest.raises(InputShapeError, match="multiples of 16"):
        parse_shapes("1x3x360x480", 16)
