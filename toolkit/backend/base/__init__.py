"""Backend-independent pieces: the loader protocol (``toolkit.core.loader``) and the Runner interface."""

from toolkit.backend.base.runner import BaseRunner, RunnerInfo, TensorSpec
from toolkit.core.loader import BaseLoader, resolve
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "BaseLoader", "BaseRunner", "RunnerInfo", "TensorSpec", "resolve"]
