"""The trainer's feeding: one persistent loader (same batches and pixels as a loader per epoch, so --resume
stays exact), the indices-free unpool in training (bit-identical weights), the device-side loss meter,
linear lr scaling and the --compile wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segnet_train.ddp import DistEnv, epoch_batches
from segnet_train.feed import EpochBatches, EpochIndexed, LossMeter, make_loader
from segnet_train.loop import TrainConfig, effective_lr, train
from toolkit.errors import ToolkitError

TINY = dict(data="synthetic", width=4, crop=(32, 32), size=(32, 48), batch_size=2, synthetic_count=(6, 2),
            threads=1, progress=False, warmup_epochs=0.5)


def _cfg(out: Path, **kw: object) -> TrainConfig:
    return TrainConfig(out=str(out), **{**TINY, **kw})  # type: ignore[arg-type]


def test_epoch_batches_are_the_seeded_permutation_of_each_epoch() -> None:
    sampler = EpochBatches(10, 3, seed=5, env=DistEnv())
    for epoch in (0, 3):
        sampler.epoch = epoch
        assert list(sampler) == [[(epoch, i) for i in b] for b in epoch_batches(10, 3, 5, epoch, DistEnv())]
        assert len(sampler) == 3


def test_persistent_workers_see_each_epochs_augmentation() -> None:
    """Workers kept across epochs still draw epoch 1's augmentation in epoch 1 (not epoch 0's)."""
    from toolkit.data import SyntheticScenes, TrainTransform

    data = SyntheticScenes(4, size=(32, 48), seed=0)
    data.transform = TrainTransform((32, 32), data.info.mean, data.info.std, data.info.ignore_index)
    sampler = EpochBatches(4, 2, seed=0, env=DistEnv())
    loader = make_loader(data, sampler, workers=1, pin=False)
    for epoch in (0, 1):
        sampler.epoch = epoch
        got = [b[0] for b in loader]
        data.set_epoch(epoch)
        want = [torch.stack([data[i][0] for i in b]) for b in epoch_batches(4, 2, 0, epoch, DistEnv())]
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert EpochIndexed(data)[(1, 2)][0].shape == (3, 32, 32)


def test_worker_processes_train_the_same_weights_and_resume_exactly(tmp_path: Path) -> None:
    inline = train(_cfg(tmp_path / "a", epochs=3))
    stopped = train(_cfg(tmp_path / "b", epochs=3, workers=2, stop_after=1))
    assert stopped["epochs_done"] == 1
    resumed = train(_cfg(tmp_path / "b", epochs=3, workers=2, resume=True))
    assert resumed["weights_sha256"] == inline["weights_sha256"]


def test_mask_unpool_trains_bit_identical_weights(tmp_path: Path) -> None:
    """Training's default indices-free unpool computes the same function and gradients as max_unpool2d."""
    mask = train(_cfg(tmp_path / "m", epochs=2, unpool="mask"))
    scatter = train(_cfg(tmp_path / "s", epochs=2, unpool="maxunpool"))
    assert mask["weights_sha256"] == scatter["weights_sha256"]
    from segnet_train.loop import training_unpool

    assert training_unpool("auto", torch.device("cpu")) == "maxunpool"
    assert training_unpool("auto", torch.device("cuda")) == "mask"


def test_loss_meter_reads_the_image_weighted_mean_and_refuses_nan() -> None:
    meter = LossMeter(torch.device("cpu"))
    meter.add(torch.tensor(1.0), 2)
    meter.add(torch.tensor(4.0), 1)
    assert meter.read("here") == (2.0, 4.0)
    meter.add(torch.tensor(float("nan")), 1)
    with pytest.raises(ToolkitError, match="epoch 3, steps up to 7: the training loss is nan"):
        meter.read("epoch 3, steps up to 7")


def test_lr_scales_linearly_with_the_global_batch(tmp_path: Path) -> None:
    assert effective_lr(_cfg(tmp_path, lr=0.1)) == 0.1
    assert effective_lr(_cfg(tmp_path, lr=0.1, batch_size=32, lr_for_batch=8)) == pytest.approx(0.4)
    assert effective_lr(_cfg(tmp_path, lr=0.1, batch_size=32, lr_for_batch=8), world_size=2) == pytest.approx(0.8)
    with pytest.raises(ToolkitError, match="--lr-for-batch 0"):
        effective_lr(_cfg(tmp_path, lr_for_batch=0))
    summary = train(_cfg(tmp_path / "r", epochs=1, batch_size=2, lr_for_batch=4, warmup_epochs=0))
    import csv

    row = next(csv.DictReader((tmp_path / "r" / "train_log.csv").open()))
    assert float(row["lr"]) < 0.05 + 1e-9 and summary["epochs_done"] == 1  # peak 0.1 x 2 / 4 = 0.05, decayed


def test_compile_wraps_the_training_network_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--compile hands the (DDP-wrapped) network to torch.compile; checkpoints keep the eager module's weights.
    torch.compile itself is stood in for (inductor needs a C++ toolchain and minutes on 2 cores)."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda net: compiled.append(net) or net)
    summary = train(_cfg(tmp_path / "c", epochs=1, compile=True))
    assert len(compiled) == 1 and summary["epochs_done"] == 1
    assert (tmp_path / "c" / "last.safetensors").is_file()
