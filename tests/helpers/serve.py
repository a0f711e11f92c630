"""Whether the serve extra (PyTriton, tritonclient) works here, and the skip mark of the tests that need it."""

from __future__ import annotations

import importlib.util

import pytest


def missing_serve_stack() -> str | None:
    """Why the Triton tests cannot run here (None when they can); printed as the skip reason."""
    for module, what in (("pytriton", "nvidia-pytriton"), ("tritonclient", "tritonclient[http,grpc]")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (f"{what} is not installed (the optional 'serve' extra: pip install -e '.[serve]'; "
                    "PyTriton 0.7 wheels exist for Linux with glibc >= 2.35 and need numpy < 2)")
    try:
        import pytriton.triton  # noqa: F401
        import tritonclient.grpc
        import tritonclient.http  # noqa: F401
    except Exception as e:
        return f"the serve extra is installed but does not import here: {type(e).__name__}: {e}"
    return None


needs_serve = pytest.mark.skipif(missing_serve_stack() is not None, reason=str(missing_serve_stack()))
