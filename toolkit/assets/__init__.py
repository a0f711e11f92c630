"""Files shipped inside the package: the zoo's checkpoints and their list (``zoo.json``, see toolkit.zoo)."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent


def default_checkpoint_path(device: str | None = "cpu") -> Path:
    """The zoo's default model for ``device`` (sha256-verified); a clear error if this install lacks it."""
    from toolkit.zoo import default_zoo_model

    return default_zoo_model(device).verified_path()
