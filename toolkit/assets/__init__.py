"""Files shipped inside the package: the embedded default model (and its sample data, if any)."""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import CheckpointError

ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = ASSETS_DIR / "default.safetensors"


def default_checkpoint_path() -> Path:
    """The embedded default CamVid model; a clear error if this install does not carry it."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise CheckpointError(f"no embedded default model in this install ({DEFAULT_CHECKPOINT} missing); "
                              "pass a checkpoint explicitly")
    return DEFAULT_CHECKPOINT
