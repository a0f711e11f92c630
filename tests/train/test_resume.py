"""--resume continues bit-exactly, and an interrupted checkpoint write leaves the previous file intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segnet_train.loop import STATE_FILE, TrainConfig, train
from segnet_train.state import load_train_state, save_train_state

TINY = dict(data="synthetic", width=4, crop=(32, 32), size=(32, 48), batch_size=2, synthetic_count=(6, 2),
            threads=1, progress=False, warmup_epochs=0.5)


def _cfg(out: Path, **kw: object) -> TrainConfig:
    return TrainConfig(out=str(out), **{**TINY, **kw})  # type: ignore[arg-type]


def test_stop_and_resume_is_bit_identical_to_a_straight_run(tmp_path: Path) -> None:
    straight = train(_cfg(tmp_path / "a", epochs=4))
    stopped = train(_cfg(tmp_path / "b", epochs=4, stop_after=2))
    assert stopped["epochs_done"] == 2
    resumed = train(_cfg(tmp_path / "b", epochs=4, resume=True))
    assert resumed["epochs_done"] == 4
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "last.safetensors")), load_file(str(tmp_path / "b" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "train_log.csv").read_text().count("\n") == 5
    rows = lambda p: [r.split(",")[:2] for r in p.read_text().splitlines()]  # noqa: E731  epoch, loss
    assert rows(tmp_path / "a" / "train_log.csv") == rows(tmp_path / "b" / "train_log.csv")


def test_resume_refuses_a_different_architecture(tmp_path: Path) -> None:
    from toolkit.errors import ToolkitError

    train(_cfg(tmp_path, epochs=1))
    with pytest.raises(ToolkitError, match="width=4"):
        train(_cfg(tmp_path, epochs=2, width=8, resume=True))


def test_interrupted_state_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.models import create_model

    torch.manual_seed(0)
    model = create_model("segnet", num_classes=3, width=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(1, 3, 16, 16)).sum().backward()
    opt.step()
    path = tmp_path / STATE_FILE
    save_train_state(path, model, opt, {"epoch": 1})
    before = path.read_bytes()

    real_write = Path.write_bytes

    def killed_midway(self: Path, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])  # half a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", killed_midway)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_train_state(path, model, opt, {"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind
    fresh = create_model("segnet", num_classes=3, width=4)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    assert load_train_state(path, fresh, fresh_opt)["epoch"] == 1
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"].abs().sum() > 0


def test_init_starts_from_a_checkpoint_and_checks_it_fits(tmp_path: Path) -> None:
    from segnet_train.loop import weights_digest
    from toolkit.checkpoint import load_checkpoint
    from toolkit.errors import ToolkitError

    train(_cfg(tmp_path / "a", epochs=1))
    init = str(tmp_path / "a" / "last.safetensors")
    tuned = train(_cfg(tmp_path / "b", epochs=1, lr=0.0, init=init))  # lr 0: parameters stay the init's
    assert tuned["params_sha256"] == weights_digest(load_checkpoint(init)[0], buffers=False)
    with pytest.raises(ToolkitError, match="w=4"):
        train(_cfg(tmp_path / "c", epochs=1, width=8, init=init))


def test_resume_refuses_a_state_whose_tensors_were_overwritten(tmp_path: Path) -> None:
    """Issue 16 item 10: garbage written over the RNG tensor kept a valid safetensors layout and resumed."""
    import json
    import struct

    from toolkit.errors import CheckpointError
    from toolkit.models import create_model

    model = create_model("segnet", num_classes=3, width=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = save_train_state(tmp_path / STATE_FILE, model, opt, {"epoch": 1})
    assert load_train_state(path, model, opt)["epoch"] == 1
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    start, _ = json.loads(raw[8:8 + n])["rng.torch"]["data_offsets"]
    raw[8 + n + start:8 + n + start + 64] = b"\xab" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_train_state(path, model, opt)
