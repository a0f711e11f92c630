"""Backend-independent pieces: the loader protocol and the Runner interface."""

from toolkit.backend.base.loader import BaseLoader, resolve
from toolkit.backend.base.runner import INPUT_NAME, OUTPUT_NAME, BaseRunner, RunnerInfo, TensorSpec

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "BaseLoader", "BaseRunner", "RunnerInfo", "TensorSpec", "resolve"]
