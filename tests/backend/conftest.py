"""Fixtures of the backend tests (helpers: tests/helpers/)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests.helpers import trt_fakes as fk
from tests.helpers.trt_engine import GPU
from toolkit.backend.trt import loader as ld
from toolkit.backend.trt import plugin_lib as pl
from toolkit.backend.trt import runner as rn


@pytest.fixture
def use_trt(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SimpleNamespace]:
    """Install a fake ``tensorrt`` (version chosen by the test) and cudart into the backend modules."""
    monkeypatch.setattr(pl, "_LOADED", {})

    def install(version: str = "10.3.0.30", **kw: object) -> SimpleNamespace:
        trt = fk.make_fake_trt(version, **kw)
        for mod in (ld, rn):
            monkeypatch.setattr(mod, "import_tensorrt", lambda t=trt: t)
        monkeypatch.setattr(rn, "import_cudart", lambda c=trt.cudart: c)
        monkeypatch.setattr(ld, "current_gpu", lambda device=0: GPU)
        return trt

    return install
