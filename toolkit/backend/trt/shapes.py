"""The optimisation profile of an engine: ``--shapes min:opt:max`` or the model's metadata input size.

An engine built for dynamic shapes runs any input between ``min`` and ``max`` (per dimension) and is
tuned for ``opt``. ``1x3x360x480:1x3x360x480:4x3x720x960`` gives all three; a single shape fixes the
engine to it. Every shape is N x 3 x H x W with H and W multiples of the network's output stride (8; 16 with a
stride-2 stem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import pad_to_multiple
from toolkit.errors import InputShapeError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeProfile:
    """min <= opt <= max, per dimension."""

    min: Shape
    opt: Shape
    max: Shape

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.min) and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def to_text(self) -> str:
        return ":".join(format_shape(s) for s in (self.min, self.opt, self.max))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, d: dict) -> ShapeProfile:
        try:
            return cls(*(tuple(int(v) for v in d[k]) for k in ("min", "opt", "max")))
        except (KeyError, TypeError, ValueError):
            raise InputShapeError(f"invalid shape profile {d!r}: expected min/opt/max lists of integers") from None


def format_shape(shape: Sequence[int | None]) -> str:
    return "x".join("?" if d is None or d < 0 else str(d) for d in shape)


def _parse_one(text: str, which: str, whole: str, stride: int = OUTPUT_STRIDE) -> Shape:
    try:
        dims = tuple(int(v) for v in text.strip().lower().split("x"))
    except ValueError:
        raise InputShapeError(f"--shapes '{whole}': {which} shape '{text}' is not integers joined by 'x' "
                              "(e.g. 1x3x360x480)") from None
    if len(dims) != 4:
        raise InputShapeError(f"--shapes '{whole}': {which} shape '{text}' has {len(dims)} dimensions; "
                              "expected 4 (N x 3 x H x W)")
    if any(d <= 0 for d in dims):
        raise InputShapeError(f"--shapes '{whole}': {which} shape '{text}': every dimension must be positive")
    n, c, h, w = dims
    if c != 3:
        raise InputShapeError(f"--shapes '{whole}': {which} shape '{text}' has {c} channels; the model takes "
                              "3 (RGB)")
    if h % stride or w % stride:
        ph, pw = pad_to_multiple(h, w, stride)
        raise InputShapeError(f"--shapes '{whole}': {which} shape '{text}': H and W must be multiples of "
                              f"{stride} (the model's output stride); use {n}x{c}x{ph}x{pw}")
    return dims


def parse_shapes(text: str, stride: int = OUTPUT_STRIDE) -> ShapeProfile:
    """'MIN:OPT:MAX' (or one shape for a static engine) -> ShapeProfile, with one clear error per mistake;
    H and W must be multiples of ``stride`` (the model's output stride, ``ModelMeta.output_stride``)."""
    parts = text.split(":")
    if len(parts) == 1:
        s = _parse_one(parts[0], "the", text, stride)
        return ShapeProfile(s, s, s)
    if len(parts) != 3:
        raise InputShapeError(f"--shapes '{text}': expected MIN:OPT:MAX (three shapes joined by ':', e.g. "
                              f"1x3x360x480:1x3x360x480:4x3x720x960) or one shape, got {len(parts)} parts")
    lo, opt, hi = (_parse_one(p, which, text, stride) for p, which in zip(parts, ("min", "opt", "max"), strict=True))
    for i, name in enumerate("NCHW"):
        if not lo[i] <= opt[i] <= hi[i]:
            raise InputShapeError(f"--shapes '{text}': dimension {name} must satisfy min <= opt <= max, got "
                                  f"{lo[i]} / {opt[i]} / {hi[i]}")
    return ShapeProfile(lo, opt, hi)


def profile_from_input_size(input_size: Sequence[int], batch: int = 1, stride: int = OUTPUT_STRIDE) -> ShapeProfile:
    """A static profile batch x 3 x H x W from the model's metadata input size, padded to a multiple of the
    output stride as ``toolkit.evaluate.preprocess`` pads every frame (180x240 -> 184x240)."""
    h, w = pad_to_multiple(*input_size, stride)
    return parse_shapes(f"{batch}x3x{h}x{w}", stride)


def fit_profile_to_onnx(profile: ShapeProfile, onnx_dims: Sequence[int | str | None], input_name: str) -> None:
    """Refuse a profile that contradicts a static dimension of the ONNX input (TensorRT would fail later)."""
    if len(onnx_dims) != len(profile.min):
        raise InputShapeError(f"ONNX input '{input_name}' has rank {len(onnx_dims)}; the profile "
                              f"{profile.to_text()} has rank {len(profile.min)}")
    for i, d in enumerate(onnx_dims):
        if isinstance(d, int) and d > 0 and not profile.min[i] == profile.opt[i] == profile.max[i] == d:
            fixed = format_shape([v if isinstance(v, int) and v > 0 else None for v in onnx_dims])
            raise InputShapeError(
                f"--shapes {profile.to_text()}: ONNX input '{input_name}' is fixed to {fixed} (dimension {'NCHW'[i]}"
                f" = {d}); use that size, or re-export with --dynamic batch,hw")


def resolve_profile(shapes: str | None, onnx_dims: Sequence[int | str | None], input_name: str,
                    input_size: Sequence[int] | None, stride: int = OUTPUT_STRIDE) -> ShapeProfile:
    """The profile to build: --shapes, else the ONNX's static shape, else the metadata input size at batch 1."""
    if shapes:
        profile = parse_shapes(shapes, stride)
    elif all(isinstance(d, int) and d > 0 for d in onnx_dims):
        profile = parse_shapes("x".join(str(d) for d in onnx_dims), stride)
    elif input_size is not None:
        batch = onnx_dims[0] if onnx_dims and isinstance(onnx_dims[0], int) and onnx_dims[0] > 0 else 1
        profile = profile_from_input_size(input_size, batch, stride)
    else:
        raise InputShapeError(f"ONNX input '{input_name}' has dynamic dimensions "
                              f"{format_shape([d if isinstance(d, int) else None for d in onnx_dims])} and the "
                              "model carries no input size: give --shapes MIN:OPT:MAX, e.g. "
                              "1x3x360x480:1x3x360x480:4x3x720x960")
    fit_profile_to_onnx(profile, onnx_dims, input_name)
    return profile
