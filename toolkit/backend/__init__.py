"""Inference backends behind one Runner interface, and the one factory, ``make_runner``.

Each backend lives in its own sub-package (``base``, ``torch``, ``onnxrt``, ``trt``, ``triton``) with a
runner (and loaders); heavy libraries are imported only when a backend is used.
"""

from __future__ import annotations

from toolkit.backend.base import BaseRunner, RunnerInfo
from toolkit.backend.factory import MODEL_SUFFIXES, RunnerOptions, backend_for, make_runner
from toolkit.backend.triton.client import is_triton_url

__all__ = ["MODEL_SUFFIXES", "BaseRunner", "RunnerInfo", "RunnerOptions", "backend_for", "is_triton_url",
           "make_runner"]
