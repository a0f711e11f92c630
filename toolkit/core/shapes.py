"""Input sizes: the one padding rule (H and W up to multiples of the output stride)."""

from __future__ import annotations

from toolkit.core.names import OUTPUT_STRIDE


def pad_to_multiple(h: int, w: int, multiple: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) with both sides multiples of ``multiple`` (180x240 -> 184x240): the
    size every frame is zero-padded to (bottom/right) before the model sees it."""
    if multiple < 1:
        raise ValueError(f"multiple={multiple}: expected 1 or more")
    return int(h) + (-int(h)) % multiple, int(w) + (-int(w)) % multiple
