"""Distillation (``toolkit train --teacher``): the KD loss on hand-made tensors, teacher logits that follow
the label's augmentation, the logit cache, and a bit-exact ``--resume`` with a teacher."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from segnet_train.distill import distillation_loss, kd_kl
from segnet_train.loop import TrainConfig, train
from toolkit.data import TrainTransform
from toolkit.errors import ToolkitError

TINY = dict(data="synthetic", width=4, crop=(32, 32), size=(32, 48), batch_size=2, synthetic_count=(6, 2),
            threads=1, progress=False, warmup_epochs=0.5)


def test_kd_of_identical_logits_is_zero_and_of_known_pair_matches_hand_computation() -> None:
    s = torch.tensor([[[[2.0]], [[0.0]]]])  # N=1, K=2, 1x1
    assert kd_kl(s, s.clone(), torch.ones(1, 1, 1, dtype=torch.bool), 1.0).item() == pytest.approx(0.0, abs=1e-7)
    t = torch.tensor([[[[0.0]], [[0.0]]]])  # teacher: uniform
    # KL(u || softmax([2, 0])) = sum_k 0.5 * (log 0.5 - log p_k), p = (e^2, 1) / (e^2 + 1)
    z = math.exp(2) + 1
    expected = 0.5 * (math.log(0.5) - math.log(math.exp(2) / z)) + 0.5 * (math.log(0.5) - math.log(1 / z))
    assert kd_kl(s, t, torch.ones(1, 1, 1, dtype=torch.bool), 1.0).item() == pytest.approx(expected, rel=1e-6)
    # temperature T: T^2 * KL of the logits divided by T
    t2 = 2.0
    z2 = math.exp(2 / t2) + 1
    expected_t = t2 * t2 * (0.5 * (math.log(0.5) - math.log(math.exp(1) / z2))
                            + 0.5 * (math.log(0.5) - math.log(1 / z2)))
    assert kd_kl(s, t, torch.ones(1, 1, 1, dtype=torch.bool), t2).item() == pytest.approx(expected_t, rel=1e-6)


def test_kd_averages_over_valid_pixels_only() -> None:
    s = torch.zeros(1, 3, 1, 2)
    t = torch.zeros(1, 3, 1, 2)
    t[0, 0, 0, 1] = 5.0  # only the second pixel disagrees
    both = kd_kl(s, t, torch.tensor([[[True, True]]]), 1.0).item()
    second = kd_kl(s, t, torch.tensor([[[False, True]]]), 1.0).item()
    first = kd_kl(s, t, torch.tensor([[[True, False]]]), 1.0).item()
    assert first == pytest.approx(0.0, abs=1e-7)
    assert second > 0 and both == pytest.approx(second / 2, rel=1e-6)


def test_distillation_loss_blends_task_and_kd() -> None:
    s, t = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    valid = torch.ones(2, 3, 3, dtype=torch.bool)
    task = torch.tensor(1.7)
    kd = kd_kl(s, t, valid, 2.0)
    assert distillation_loss(task, s, t, valid, 0.0, 2.0).item() == pytest.approx(1.7)
    assert distillation_loss(task, s, t, valid, 1.0, 2.0).item() == pytest.approx(kd.item())
    assert distillation_loss(task, s, t, valid, 0.25, 2.0).item() == pytest.approx(0.75 * 1.7 + 0.25 * kd.item())
    with pytest.raises(ToolkitError, match="distill-weight"):
        distillation_loss(task, s, t, valid, 1.5, 2.0)


def test_teacher_logits_follow_the_labels_geometry() -> None:
    """A teacher map equal to the one-hot label stays aligned with the label through scale, crop, flip."""
    rng0 = np.random.default_rng(3)
    label = np.zeros((40, 56), np.uint8)
    label[:, 30:] = 1
    label[10:20, 5:12] = 2
    image = rng0.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    onehot = np.eye(3, dtype=np.float32)[label] * 10.0
    tf = TrainTransform((32, 48), (0.5,) * 3, (0.25,) * 3, ignore_index=255, scale=(1.0, 1.4))
    for seed in range(6):
        x, y = tf(image, label, np.random.default_rng(seed))
        x2, y2, t = tf(image, label, np.random.default_rng(seed), extra=onehot)
        assert torch.equal(x, x2) and torch.equal(y, y2)  # same random draws with or without extra
        assert t.shape == (3, 32, 48)
        agree = (t.argmax(0) == y)[y != 255].float().mean().item()
        assert agree > 0.95  # bilinear edges may differ by a pixel from the nearest-resized label


def test_training_with_a_teacher_resumes_bit_exactly_and_records_the_teacher(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    train(TrainConfig(out=str(teacher), epochs=1, **TINY))  # type: ignore[arg-type]
    kw = dict(teacher=str(teacher / "last.safetensors"), teacher_cache=str(tmp_path / "cache"),
              distill_weight=0.5, temperature=2.0, **TINY)
    straight = train(TrainConfig(out=str(tmp_path / "a"), epochs=3, **kw))  # type: ignore[arg-type]
    stopped = train(TrainConfig(out=str(tmp_path / "b"), epochs=3, stop_after=1, **kw))  # type: ignore[arg-type]
    assert stopped["epochs_done"] == 1
    resumed = train(TrainConfig(out=str(tmp_path / "b"), epochs=3, resume=True, **kw))  # type: ignore[arg-type]
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    plain = train(TrainConfig(out=str(tmp_path / "c"), epochs=3, **TINY))  # type: ignore[arg-type]
    assert plain["weights_sha256"] != straight["weights_sha256"]  # the teacher changed what was learned
    from toolkit.checkpoint import read_checkpoint
    from toolkit.files import file_sha256

    meta = read_checkpoint(tmp_path / "a" / "last.safetensors")[1]
    assert meta.provenance["teacher_sha256"] == file_sha256(teacher / "last.safetensors")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6  # one file per training frame, shared by a and b
    with pytest.raises(ToolkitError, match="temperature"):
        train(TrainConfig(out=str(tmp_path / "b"), epochs=3, resume=True,  # type: ignore[arg-type]
                          **{**kw, "temperature": 1.0}))


def test_a_cache_of_another_teacher_is_refused(tmp_path: Path) -> None:
    t1, t2 = tmp_path / "t1", tmp_path / "t2"
    train(TrainConfig(out=str(t1), epochs=1, **TINY))  # type: ignore[arg-type]
    train(TrainConfig(out=str(t2), epochs=1, seed=5, **{k: v for k, v in TINY.items()}))  # type: ignore[arg-type]
    cache = str(tmp_path / "cache")
    train(TrainConfig(out=str(tmp_path / "a"), epochs=1, teacher=str(t1 / "last.safetensors"),  # type: ignore[arg-type]
                      teacher_cache=cache, **TINY))
    with pytest.raises(ToolkitError, match="another teacher"):
        train(TrainConfig(out=str(tmp_path / "b"), epochs=1, teacher=str(t2 / "last.safetensors"),  # type: ignore[arg-type]
                          teacher_cache=cache, **TINY))
