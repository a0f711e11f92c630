"""``spot_check``, the one-input check ``toolkit export`` runs on the file it wrote, against a hand computation:
the seeded input at the reference's size through both models, then max |logit difference| and argmax agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.models import INPUT_SIZE, WIDTH, tiny_checkpoint, tiny_model
from toolkit.checkpoint import save_checkpoint
from toolkit.compare.spot_check import spot_check
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info


def _expected(seed: int, a: torch.nn.Module, b: torch.nn.Module) -> tuple[float, float]:
    x = np.random.default_rng(seed).normal(size=(1, 3, *INPUT_SIZE)).astype(np.float32)
    with torch.no_grad():
        la, lb = a(torch.from_numpy(x)).numpy(), b(torch.from_numpy(x)).numpy()
    return float(np.abs(la - lb).max()), float((la.argmax(1) == lb.argmax(1)).mean())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    other = tmp_path_factory.mktemp("spot") / "other.safetensors"
    save_checkpoint(other, tiny_model(seed=1), ModelMeta("enhanced", WIDTH, synthetic_info(), input_size=INPUT_SIZE))
    return tiny_checkpoint(tmp_path_factory), other


def test_a_model_against_itself_is_exact(pair: tuple[Path, Path]) -> None:
    ref, _ = pair
    s = spot_check(ref, ref)
    assert s.max_abs_logit_diff == 0.0 and s.argmax_agreement == 1.0


@pytest.mark.parametrize("seed", [0, 3])
def test_two_models_match_the_hand_computation(pair: tuple[Path, Path], seed: int) -> None:
    ref, other = pair
    diff, agree = _expected(seed, tiny_model(seed=0), tiny_model(seed=1))
    s = spot_check(ref, other, seed=seed) if seed else spot_check(ref, other)  # seed 0 is the default
    # the runner and the module compute the same float32 graph; only op scheduling may differ (rounding)
    assert s.max_abs_logit_diff == pytest.approx(diff, rel=1e-5)
    assert s.argmax_agreement == pytest.approx(agree, abs=1 / (INPUT_SIZE[0] * INPUT_SIZE[1]))
    assert 0 < agree < 1  # two different random models: neither all nor no pixels agree
