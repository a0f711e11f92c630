"""Shared fixtures: small synthetic data made by the tests, and the CamVid folder when CI has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CAMVID_DIR = Path(os.environ.get("TOOLKIT_CAMVID", Path(__file__).resolve().parents[1].parent / "shared" / "camvid"))


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    if not (CAMVID_DIR / "classes.json").is_file():
        pytest.skip(f"CamVid not found at {CAMVID_DIR} (set TOOLKIT_CAMVID)")
    return CAMVID_DIR


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CamVid-layout folder of synthetic scenes (train 8, val 4, 64x96)."""
    from toolkit.data import write_synthetic_camvid

    return write_synthetic_camvid(tmp_path_factory.mktemp("synthetic"), {"train": 8, "val": 4}, size=(64, 96))
