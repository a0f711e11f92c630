"""The strict type check of the bottom layers (toolkit.core, toolkit.data) runs with the suite, so CI holds it.

mypy's flags come from pyproject.toml ([tool.mypy]: --strict's flags for toolkit.core, toolkit.data and the
toolkit modules they import). tests/core/test_dataset_contract.py is checked with them: it states statically that
CamVid, SyntheticScenes and FrameSet are SegDatasets. The cache lives in the user cache folder (as the TensorRT
bindings of .ci/run do): the first run reads torch's and numpy's stubs (about 40 s of CPU), a rerun takes seconds.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["toolkit/core", "toolkit/data", "tests/core/test_dataset_contract.py"]


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "segnet-toolkit" / "mypy"


def test_core_and_data_pass_mypy_strict() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(_cache_dir()), "--no-error-summary", *CHECKED]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mypy (strict for toolkit.core, toolkit.data) found:\n{done.stdout}{done.stderr}"
