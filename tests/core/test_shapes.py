"""pad_to_multiple: the one padding rule every frame, profile and benchmark shape goes through."""

from __future__ import annotations

import pytest

from toolkit.core.shapes import pad_to_multiple


@pytest.mark.parametrize(("hw", "padded"), [((360, 480), (360, 480)), ((180, 240), (184, 240)),
                                            ((361, 479), (368, 480)), ((1, 1), (8, 8)), ((0, 8), (0, 8))])
def test_pads_up_to_multiples_of_the_stride(hw: tuple[int, int], padded: tuple[int, int]) -> None:
    assert pad_to_multiple(*hw) == padded
    assert pad_to_multiple(*hw, 8) == padded


def test_other_multiples() -> None:
    assert pad_to_multiple(5, 7, 1) == (5, 7) and pad_to_multiple(5, 7, 4) == (8, 8)
    with pytest.raises(ValueError, match="multiple=0"):
        pad_to_multiple(5, 7, 0)
