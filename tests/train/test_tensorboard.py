"""TensorBoard mirrors the CSV log when tensorboard is installed (it is optional)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_tensorboard_events_written(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (optional)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from segnet_train.loop import _log_tensorboard

    _log_tensorboard(tmp_path, {"epoch": 1, "train_loss": 0.5, "val_miou": 0.25, "iou_sky": 0.9, "out": "x"})
    _log_tensorboard(tmp_path, {"epoch": 2, "train_loss": 0.4, "val_miou": 0.30, "iou_sky": 0.92, "out": "x"})
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("val/val_miou")] == pytest.approx([0.25, 0.30])
    assert [e.step for e in acc.Scalars("train/train_loss")] == [1, 2]
    assert "iou/iou_sky" in acc.Tags()["scalars"]


def test_without_tensorboard_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from segnet_train.loop import _log_tensorboard

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    _log_tensorboard(tmp_path, {"epoch": 1, "train_loss": 0.5})
    assert not (tmp_path / "tensorboard").exists()
