"""Run a script of tools/ in this process, as ``python tools/NAME.py ARGS`` would, on tiny inputs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.tools import TOOLS, load_tool


@pytest.fixture
def run_tool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``run_tool("bench_table.py", "--out", tmp)`` calls its main() with that command line. Torch's and
    OpenCV's process-wide thread counts, which some tools set, are restored afterwards."""
    import cv2
    import torch

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()

    def run(rel: str, *args: object) -> None:
        monkeypatch.setattr(sys, "argv", [str(TOOLS / rel), *map(str, args)])
        load_tool(rel).main()

    yield run
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv_threads)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The width-4 enhanced SegNet of the export tests (6 synthetic classes, 64x96), shared per session."""
    from tests.helpers.models import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_mask_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That checkpoint exported in the mask lowering (the export tests make the same file once per session)."""
    from tests.helpers.models import tiny_onnx

    return tiny_onnx(tmp_path_factory, "mask")


@pytest.fixture(scope="session")
def tiny_maxunpool_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same checkpoint in the maxunpool lowering (also made once per session by the export tests)."""
    from tests.helpers.models import tiny_onnx

    return tiny_onnx(tmp_path_factory, "maxunpool")
