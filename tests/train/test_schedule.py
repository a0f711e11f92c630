"""Learning-rate schedule and per-epoch batch sharding."""

from __future__ import annotations

import pytest

from segnet_train.ddp import DistEnv, epoch_batches
from segnet_train.schedule import lr_at


def test_warmup_then_poly() -> None:
    assert lr_at(0, 100, 0.1, warmup_steps=10) == pytest.approx(0.01)
    assert lr_at(5, 100, 0.1, warmup_steps=10) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert lr_at(10, 100, 0.1, warmup_steps=10) == pytest.approx(0.1)
    assert lr_at(55, 100, 0.1, warmup_steps=10) == pytest.approx(0.1 * 0.5 ** 0.9)
    assert lr_at(100, 100, 0.1, warmup_steps=10) == 0.0


def test_epoch_batches_are_seeded_and_shard_disjointly() -> None:
    one = epoch_batches(10, 2, seed=3, epoch=1, env=DistEnv())
    assert one == epoch_batches(10, 2, seed=3, epoch=1, env=DistEnv())
    assert one != epoch_batches(10, 2, seed=3, epoch=2, env=DistEnv())
    ranks = [epoch_batches(11, 2, seed=3, epoch=1, env=DistEnv(r, 2, r)) for r in range(2)]
    flat = [sorted(i for b in r for i in b) for r in ranks]
    assert len(flat[0]) == len(flat[1]) == 4 and not set(flat[0]) & set(flat[1])
