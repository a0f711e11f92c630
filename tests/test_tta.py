"""``toolkit eval --tta``: flips and scales softmax-averaged, a separate row; the plain score is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toolkit.backend import make_runner
from toolkit.checkpoint import ModelMeta, save_checkpoint
from toolkit.cli.app import app
from toolkit.data import CamVid, synthetic_info
from toolkit.errors import ToolkitError
from toolkit.evaluate import evaluate_model, predict_logits
from toolkit.models import create_model
from toolkit.tta import _softmax, evaluate_tta, tta_probabilities


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    info = synthetic_info()
    torch.manual_seed(0)
    model = create_model("enhanced", num_classes=info.num_classes, width=4).eval()
    return save_checkpoint(tmp_path_factory.mktemp("tta") / "m.safetensors", model,
                           ModelMeta("enhanced", 4, info, (64, 96)))


def test_tta_is_the_mean_softmax_over_flips_and_scales(checkpoint: Path, synthetic_dir: Path) -> None:
    image, _ = CamVid(synthetic_dir, "val").load(0)
    with make_runner(checkpoint) as runner:
        meta = runner.meta
        probs = tta_probabilities(runner, image, meta, scales=(1.0, 0.5), flip=True)
        m = meta.dataset
        want = []
        for hw in ((64, 96), (32, 48)):
            want.append(_softmax(predict_logits(runner, image, m.mean, m.std, hw)))
            mirrored = predict_logits(runner, np.ascontiguousarray(image[:, ::-1]), m.mean, m.std, hw)
            want.append(_softmax(mirrored[:, :, ::-1]))
        single = tta_probabilities(runner, image, meta, scales=(1.0,), flip=False)
        plain = predict_logits(runner, image, m.mean, m.std, meta.input_size)
    assert probs.shape == (meta.num_classes, 64, 96)
    # 1e-6 / 1e-5: float32 softmax of the same logits (probabilities <= 1, ulp 6e-8) and a sum over K of them
    assert np.allclose(probs, np.mean(want, axis=0), atol=1e-6) and np.allclose(probs.sum(0), 1, atol=1e-5)
    assert np.array_equal(single.argmax(0), plain.argmax(0))  # one plain pass: the plain class map
    with pytest.raises(ToolkitError, match="--tta-scales"):
        tta_probabilities(make_runner(checkpoint), image, meta, scales=(0.0,))


def test_single_scale_tta_scores_as_plain_eval(checkpoint: Path, synthetic_dir: Path) -> None:
    plain = evaluate_model(str(checkpoint), synthetic_dir, "val")[0]
    tta, _ = evaluate_tta(str(checkpoint), synthetic_dir, "val", scales=(1.0,), flip=False)
    assert tta.miou == pytest.approx(plain.miou, abs=1e-12)


def test_eval_tta_adds_a_row_and_keeps_the_plain_score(checkpoint: Path, synthetic_dir: Path,
                                                      tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["eval", "-m", str(checkpoint), "--data", str(synthetic_dir)]
    plain = runner.invoke(app, [*base, "--json", str(tmp_path / "p.json")])
    tta = runner.invoke(app, [*base, "--tta", "--tta-scales", "0.5,1.0", "--json", str(tmp_path / "t.json")])
    assert plain.exit_code == 0 and tta.exit_code == 0, tta.output
    assert "mIoU (TTA)" in tta.output and "mIoU (TTA)" not in plain.output
    p, t = (json.loads((tmp_path / n).read_text()) for n in ("p.json", "t.json"))
    assert t["miou"] == p["miou"] and "tta" not in p  # the default row is the plain, single-scale one
    assert t["tta"]["scales"] == [0.5, 1.0] and 0 <= t["tta"]["miou"] <= 1
    bad = runner.invoke(app, [*base, "--tta", "--tta-scales", "big"])
    assert bad.exit_code == 2 and "--tta-scales" in bad.output
