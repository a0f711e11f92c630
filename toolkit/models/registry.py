"""Model registry (timm style): architecture files register factories, ``create_model`` builds them."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.errors import UnknownNameError, suggest

Factory = Callable[..., nn.Module]
_MODELS: dict[str, Factory] = {}
_OUTPUT_STRIDES: dict[str, int] = {}


def register_model(fn: Factory | None = None, *,
                   output_stride: int = OUTPUT_STRIDE) -> Factory | Callable[[Factory], Factory]:
    """Decorator (``@register_model`` or ``@register_model(output_stride=16)``): make ``fn`` reachable as
    ``create_model(fn.__name__)``. ``output_stride`` is the multiple H and W of its input must have; the
    built model's ``output_stride`` attribute says the same (a test holds every registered model to it)."""

    def add(f: Factory) -> Factory:
        _MODELS[f.__name__] = f
        _OUTPUT_STRIDES[f.__name__] = output_stride
        return f

    return add(fn) if fn is not None else add


def model_output_stride(name: str) -> int:
    """The input multiple of a registered architecture, without building it (the trainer checks its crop)."""
    if name not in _MODELS:
        raise UnknownNameError(f"unknown model '{name}': {suggest(name, list_models())}")
    return _OUTPUT_STRIDES[name]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, num_classes: int = 11, **kwargs: object) -> nn.Module:
    """Build a registered architecture; unknown names list the valid ones."""
    if name not in _MODELS:
        raise UnknownNameError(f"unknown model '{name}': {suggest(name, list_models())}")
    return _MODELS[name](num_classes=num_classes, **kwargs)
