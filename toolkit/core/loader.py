"""Loaders (Polygraphy style): small callables that store arguments now and do the work when called.

A loader's input may be a value or another loader, so steps chain lazily:
``OnnxrtRunner(SessionFromOnnx(ExportOnnx(LoadCheckpoint("m.safetensors"))))``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseLoader(Generic[T]):
    """Subclasses implement ``_call_impl``; ``__call__`` is the only public entry."""

    def _call_impl(self) -> T:
        raise NotImplementedError

    def __call__(self) -> T:
        return self._call_impl()


def resolve(value_or_loader: Any) -> Any:
    """Call a loader (or any zero-argument callable that is a BaseLoader); pass plain values through."""
    return value_or_loader() if isinstance(value_or_loader, BaseLoader) else value_or_loader
