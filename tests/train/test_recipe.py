"""The recipe's options on tiny data: scale range and colour jitter, void padding, class weights on B-CE's
positive term, hard-pixel mining, several training splits, and the loss at the label's resolution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from segnet_train.data import build_data
from segnet_train.loop import TrainConfig, at_label_size, train
from segnet_train.losses import (
    BalancedCrossEntropy,
    HardPixelMining,
    balanced_betas,
    enet_weights,
    make_loss,
    positive_weights,
)
from toolkit.data import TrainTransform
from toolkit.errors import DatasetError, ToolkitError

IGNORE = 9
COUNTS = np.array([600, 300, 90, 10])
PRESENT = np.array([1000, 1000, 500, 100])


def test_enet_weights_are_one_over_log_of_c_plus_share() -> None:
    share = COUNTS / COUNTS.sum()
    assert np.allclose(enet_weights(COUNTS), 1 / np.log(1.10 + share))
    for name in ("enet", "medfreq"):
        w = positive_weights(name, COUNTS, PRESENT)
        assert w is not None and math.isclose(float((share * w).sum()), 1.0)  # the paper's loss scale kept
        assert w[3] > w[0]  # the rare class weighs more
    assert positive_weights("none", COUNTS, PRESENT) is None


def test_class_weights_scale_only_the_positive_term() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 5, 6), torch.randint(0, 4, (2, 5, 6))
    betas = balanced_betas(COUNTS)
    plain = BalancedCrossEntropy(betas, IGNORE)
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    weighted = BalancedCrossEntropy(betas, IGNORE, positive_weights=weights)
    logp = torch.log_softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float()
    extra = -(onehot * torch.tensor(betas * (weights - 1), dtype=torch.float32).view(1, 4, 1, 1) * logp).sum(1)
    # 1e-6: float32 rounding of a loss of order 1 computed in two orders (a few ulps of 1.2e-7)
    assert torch.allclose(weighted(logits, target), plain(logits, target) + extra.mean(), atol=1e-6)
    assert make_loss("bce", COUNTS, PRESENT, IGNORE).positive_weights is None  # --loss bce alone: the paper's
    with pytest.raises(ToolkitError, match="needs --loss bce"):
        make_loss("wce", COUNTS, PRESENT, IGNORE, class_weights="enet")


def test_hard_pixel_mining_averages_the_hardest_share() -> None:
    torch.manual_seed(1)
    logits, target = torch.randn(1, 4, 4, 4), torch.randint(0, 4, (1, 4, 4))
    target[0, 0] = IGNORE
    base = make_loss("bce", COUNTS, PRESENT, IGNORE)
    per_pixel, valid = base.per_pixel(logits, target)
    want = per_pixel[valid].sort(descending=True).values[:3].mean()  # 12 labelled pixels, keep 0.25 -> 3
    assert torch.allclose(HardPixelMining(base, 0.25)(logits, target), want)
    assert torch.allclose(HardPixelMining(base, 1.0)(logits, target), base(logits, target))
    with pytest.raises(ValueError, match="hard-pixel share"):
        HardPixelMining(base, 0.0)


def test_scale_range_jitter_and_void_padding() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    label = rng.integers(0, 4, (16, 24), dtype=np.uint8)
    t = TrainTransform((32, 32), (0.5,) * 3, (0.25,) * 3, IGNORE, scale=(0.5, 0.5), jitter=0.4, flip=False)
    x, y = t(image, label, np.random.default_rng(3))
    assert x.shape == (3, 32, 32) and y.shape == (32, 32)
    assert (y[8:] == IGNORE).all() and (y[:, 12:] == IGNORE).all()  # 8x12 frame in a 32x32 crop: void around it
    assert (y[:8, :12] != IGNORE).all()
    mild = TrainTransform((8, 8), (0.5,) * 3, (0.25,) * 3, IGNORE, scale=(1, 1), jitter=0.0, flip=False)
    strong = TrainTransform((8, 8), (0.5,) * 3, (0.25,) * 3, IGNORE, scale=(1, 1), jitter=0.9, flip=False)
    a = mild(image, label, np.random.default_rng(5))[0]
    b = strong(image, label, np.random.default_rng(5))[0]
    assert not torch.equal(a, b)


def test_label_resolution_crop_matches_the_frames_crop() -> None:
    """label_ratio 2: the label crop covers the same scene as the image crop, at twice its resolution."""
    label = np.repeat(np.repeat(np.arange(48, dtype=np.uint8).reshape(6, 8) % 7, 8, 0), 8, 1)  # 48x64
    image = np.zeros((48, 64, 3), np.uint8)
    t = TrainTransform((16, 16), (0.5,) * 3, (0.25,) * 3, IGNORE, base_size=(24, 32), scale=(1, 1), jitter=0,
                       flip=False, label_ratio=2)
    rng = np.random.default_rng(2)
    x, y = t(image, label, rng)
    assert x.shape == (3, 16, 16) and y.shape == (32, 32)
    same = TrainTransform((16, 16), (0.5,) * 3, (0.25,) * 3, IGNORE, base_size=(24, 32), scale=(1, 1), jitter=0,
                          flip=False)
    _, y_small = same(image, label, np.random.default_rng(2))
    assert torch.equal(y[::2, ::2], y_small)  # same window; nearest-down of the full-resolution crop


def test_logits_are_upsampled_to_the_label() -> None:
    logits = torch.randn(1, 3, 4, 6)
    assert at_label_size(logits, torch.zeros(1, 8, 12, dtype=torch.long)).shape == (1, 3, 8, 12)
    assert at_label_size(logits, torch.zeros(1, 4, 6, dtype=torch.long)) is logits


def test_train_splits_and_the_validation_split(synthetic_dir: Path) -> None:
    data = build_data(str(synthetic_dir), (32, 32), (32, 48), 0, train_split="train,val", val_split=None)
    assert len(data.train) == 12 and data.val is None  # 8 + 4
    assert data.train.name(8).startswith("val/")
    assert len(data.train.samples) == 12 and data.train.samples[8] == data.train.parts[1].samples[0]
    assert not torch.equal(data.train[0][0], data.train[8][0])
    with pytest.raises(DatasetError, match="its score would be a training score"):
        build_data(str(synthetic_dir), (32, 32), (32, 48), 0, train_split="train,val", val_split="val")
    with pytest.raises(DatasetError, match="scale-range"):
        build_data(str(synthetic_dir), (32, 32), None, 0, scale=(2.0, 0.5))


def test_a_recipe_run_trains_and_resumes_exactly(synthetic_dir: Path, tmp_path: Path) -> None:
    """train+val, ENet weights, hard pixels, scale 0.5-2, strong jitter, loss at label resolution: it trains,
    ships the last epoch as best (no validation), and a stop/resume is bit-exact."""
    kw = dict(data=str(synthetic_dir), width=4, crop=(32, 32), size=(32, 48), batch_size=2, threads=1,
              progress=False, epochs=2, warmup_epochs=0.5, train_splits="train,val", val_split=None,
              class_weights="enet", hard_pixels=0.5, scale_range=(0.5, 2.0), jitter=0.4, label_res="full")
    straight = train(TrainConfig(out=str(tmp_path / "a"), **kw))  # type: ignore[arg-type]
    train(TrainConfig(out=str(tmp_path / "b"), stop_after=1, **kw))  # type: ignore[arg-type]
    resumed = train(TrainConfig(out=str(tmp_path / "b"), resume=True, **kw))  # type: ignore[arg-type]
    assert straight["epochs_done"] == 2 and resumed["weights_sha256"] == straight["weights_sha256"]
    a, b = (tmp_path / "a" / n for n in ("best.safetensors", "last.safetensors"))
    assert a.read_bytes() == b.read_bytes()  # the last epoch is what ships


def test_a_student_distils_with_its_loss_at_label_resolution(synthetic_dir: Path, tmp_path: Path) -> None:
    """--label-res full with --teacher: the task loss at the labels' 64x96, the KD term at the logits' 32x48."""
    kw = dict(data=str(synthetic_dir), width=4, crop=(32, 32), size=(32, 48), batch_size=2, threads=1,
              progress=False, epochs=1, warmup_epochs=0.5)
    train(TrainConfig(out=str(tmp_path / "t"), **kw))  # type: ignore[arg-type]
    summary = train(TrainConfig(out=str(tmp_path / "s"), teacher=str(tmp_path / "t" / "last.safetensors"),
                                label_res="full", **kw))  # type: ignore[arg-type]
    assert summary["epochs_done"] == 1 and math.isfinite(summary["last_val_miou"])


def test_ema_follows_the_weights_and_resumes_exactly(tmp_path: Path) -> None:
    from segnet_train.ema import WeightEMA
    from toolkit.checkpoint import read_checkpoint

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1))
    ema = WeightEMA(net, 0.75)
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(4.0)
        net[1].running_mean.fill_(3.0)
    ema.update(net)
    assert torch.allclose(ema.model[0].weight, before + 1.0)  # 0.75 x old + 0.25 x (old + 4)
    assert float(ema.model[1].running_mean) == 3.0
    with pytest.raises(ToolkitError, match="--ema 1.0"):
        WeightEMA(net, 1.0)

    kw = dict(data="synthetic", width=4, crop=(32, 32), size=(32, 48), batch_size=2, synthetic_count=(6, 2),
              threads=1, progress=False, warmup_epochs=0.5, epochs=3, ema=0.9)
    train(TrainConfig(out=str(tmp_path / "a"), **kw))  # type: ignore[arg-type]
    train(TrainConfig(out=str(tmp_path / "b"), stop_after=1, **kw))  # type: ignore[arg-type]
    train(TrainConfig(out=str(tmp_path / "b"), resume=True, **kw))  # type: ignore[arg-type]
    a, b = (read_checkpoint(str(tmp_path / r / "ema.safetensors")) for r in ("a", "b"))
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])  # the average continued exactly
    last = read_checkpoint(str(tmp_path / "a" / "last.safetensors"))[0]
    assert not all(torch.equal(a[0][k], last[k]) for k in last)  # its own weights, not a copy of last
    assert a[1].provenance["ema_decay"] == 0.9 and "val_miou_ema" in (tmp_path / "a" / "train_log.csv").read_text()


def test_aux_heads_train_but_never_reach_the_checkpoint_or_the_export(tmp_path: Path) -> None:
    from toolkit.checkpoint import read_checkpoint
    from toolkit.export import export_checkpoint

    kw = dict(data="synthetic", width=4, crop=(32, 32), size=(32, 48), batch_size=2, synthetic_count=(6, 2),
              threads=1, progress=False, warmup_epochs=0.5, epochs=2)
    plain = train(TrainConfig(out=str(tmp_path / "p"), **kw))  # type: ignore[arg-type]
    aux = train(TrainConfig(out=str(tmp_path / "a"), aux_weight=0.4, **kw))  # type: ignore[arg-type]
    assert aux["weights_sha256"] != plain["weights_sha256"]  # the heads' gradient changed the training
    train(TrainConfig(out=str(tmp_path / "b"), aux_weight=0.4, stop_after=1, **kw))  # type: ignore[arg-type]
    resumed = train(TrainConfig(out=str(tmp_path / "b"), aux_weight=0.4, resume=True, **kw))  # type: ignore[arg-type]
    assert resumed["weights_sha256"] == aux["weights_sha256"]  # the heads' weights resumed too
    (tp, _), (ta, _) = (read_checkpoint(str(tmp_path / r / "last.safetensors")) for r in ("p", "a"))
    assert tp.keys() == ta.keys() and all(tp[k].shape == ta[k].shape for k in tp)
    gp, ga = (export_checkpoint(tmp_path / r / "last.safetensors", unpool="mask", do_simplify=False).graph
              for r in ("p", "a"))
    assert [(n.op_type, list(n.input), list(n.output)) for n in gp.node] == \
           [(n.op_type, list(n.input), list(n.output)) for n in ga.node]
    assert [(i.name, tuple(i.dims)) for i in gp.initializer] == [(i.name, tuple(i.dims)) for i in ga.initializer]
    assert [o.name for o in ga.output] == [o.name for o in gp.output]
