"""Frames on the device: the optional second interface of a runner that preprocesses and takes the argmax itself.

Only some runners have it (PyTorch on CUDA with a model's metadata), so it is a protocol of its own rather
than a method every runner carries and most refuse. ``video`` and ``serve`` ask ``frame_runner(runner)`` and
fall back to host preprocessing and ``infer`` when it gives None.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrameRunner(Protocol):
    """``infer_frame``: H x W x 3 uint8 RGB frame -> class map (uint8) at the model's input size, or with
    ``at_frame_size`` at the frame's own (logits resized bilinearly before the argmax, as
    ``postprocess_logits``), resize, normalisation, model and argmax all on the runner's device, so only the
    uint8 frame goes up and a uint8 class map comes back. ``frames_on_device``: whether this runner, as
    configured and activated, can do that now."""

    @property
    def frames_on_device(self) -> bool: ...

    def infer_frame(self, frame_rgb: np.ndarray, at_frame_size: bool = False) -> np.ndarray: ...


def frame_runner(runner: object) -> FrameRunner | None:
    """``runner`` as a FrameRunner when it takes frames on its device now; None when the caller preprocesses."""
    if isinstance(runner, FrameRunner) and runner.frames_on_device:
        return runner
    return None
