"""Two-process DDP on the CPU (gloo), as torchrun would start it: replicas stay identical, rank 0 writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch.multiprocessing as mp

from tests.helpers.ports import free_ports


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from segnet_train.loop import TrainConfig, train

    summary = train(TrainConfig(data="synthetic", out=out, width=4, crop=(32, 32), size=(32, 48), batch_size=2,
                                epochs=1, synthetic_count=(8, 2), threads=1, progress=False))
    Path(out, f"rank{rank}.json").write_text(json.dumps(summary))


def test_two_gloo_processes_train_in_lockstep(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, free_ports(1)[0], str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["params_sha256"] == r1["params_sha256"]  # gradients were averaged: replicas identical
    assert r0["epochs_done"] == 1 and r1["epochs_done"] == 0  # only rank 0 validates and logs
    assert (tmp_path / "best.safetensors").is_file() and (tmp_path / "train_state.safetensors").is_file()
    assert (tmp_path / "train_log.csv").read_text().count("\n") == 2
