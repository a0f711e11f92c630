"""Input sizes: the one padding rule (H and W up to multiples of the model's output stride) and its check.

The stride is the model's (``ModelMeta.output_stride``, ``SegNet.output_stride``): 8 for the three 2x2 pools,
16 behind a stride-2 stem. Files written before it was recorded are stride 8.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import SupportsInt

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.errors import InputShapeError, InvalidValueError


def pad_to_multiple(h: int, w: int, multiple: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) with both sides multiples of ``multiple`` (180x240 -> 184x240): the
    size every frame is zero-padded to (bottom/right) before the model sees it."""
    if multiple < 1:
        raise InvalidValueError(f"multiple={multiple}: expected 1 or more")
    return int(h) + (-int(h)) % multiple, int(w) + (-int(w)) % multiple


def as_hw(values: Iterable[SupportsInt | str], what: str = "size") -> tuple[int, int]:
    """Two integers (H, W) from what a file holds (a JSON list, ``"360x480".split("x")``); ValueError otherwise."""
    dims = tuple(int(v) for v in values)
    if len(dims) != 2:
        raise InvalidValueError(f"{what} {'x'.join(map(str, dims))}: expected H x W (two numbers)")
    return dims[0], dims[1]


def check_multiple(h: int, w: int, stride: int = OUTPUT_STRIDE, what: str = "input", prefix: str = "",
                   hint: str = "") -> None:
    """Refuse H or W that are not multiples of ``stride`` (the model's output stride), naming the padded size;
    ``prefix`` (e.g. "1x3x") makes the suggestion a whole shape, ``hint`` is appended."""
    if h % stride or w % stride:
        ph, pw = pad_to_multiple(h, w, stride)
        raise InputShapeError(f"{what} {prefix}{h}x{w}: H and W must be multiples of {stride}; pad to "
                              f"{prefix}{ph}x{pw}{hint}")
