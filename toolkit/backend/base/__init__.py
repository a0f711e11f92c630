"""Backend-independent pieces: the loader protocol (``toolkit.core.loader``), the Runner interface and the
optional frames-on-device interface (``FrameRunner``)."""

from toolkit.backend.base.frames import FrameRunner, frame_runner
from toolkit.backend.base.runner import BaseRunner, RunnerInfo, TensorSpec
from toolkit.core.loader import BaseLoader, resolve
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "BaseLoader", "BaseRunner", "FrameRunner", "RunnerInfo", "TensorSpec",
           "frame_runner", "resolve"]
