"""Model registry (timm style): architecture files register factories, ``create_model`` builds them."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from toolkit.errors import UnknownNameError, suggest

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` reachable as ``create_model(fn.__name__)``."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, num_classes: int = 11, **kwargs: object) -> nn.Module:
    """Build a registered architecture; unknown names list the valid ones."""
    if name not in _MODELS:
        raise UnknownNameError(f"unknown model '{name}': {suggest(name, list_models())}")
    return _MODELS[name](num_classes=num_classes, **kwargs)
