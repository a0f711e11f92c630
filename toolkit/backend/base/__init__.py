"""Backend-independent pieces: the loader protocol (``toolkit.core.loader``), the Runner interface and the
optional frames-on-device interface (``FrameRunner``)."""

from toolkit.backend.base.frames import FrameRunner, frame_runner
from toolkit.backend.base.runner import BaseRunner, RunnerInfo, TensorSpec

__all__ = ["BaseRunner", "FrameRunner", "RunnerInfo", "TensorSpec", "frame_runner"]
