"""Gradients through ``segnet_train.ddp.wrap_model`` are averaged over the ranks, not summed: two gloo processes, a
linear model without batch norm, a different input on each rank; the gradient every rank sees must be the mean
of the two ranks' own gradients (a sum would be twice that; identical replicas, which test_ddp.py checks,
hold for both)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.multiprocessing as mp

from tests.helpers.ports import free_ports


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    import torch.distributed as dist

    from segnet_train.ddp import init_distributed, wrap_model

    env = init_distributed("cpu")
    torch.manual_seed(0)
    model = wrap_model(torch.nn.Linear(3, 1, bias=False), env, torch.device("cpu"))
    x = torch.tensor([[1.0, 2.0, 3.0]]) * (rank + 1)  # rank 0: x, rank 1: 2x
    model(x).sum().backward()  # d/dw of w.x is x
    grad = next(model.parameters()).grad.tolist()
    Path(out, f"grad{rank}.json").write_text(json.dumps(grad))
    dist.destroy_process_group()


def test_gradients_are_averaged_across_ranks(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, free_ports(1)[0], str(tmp_path)), nprocs=2, join=True)
    g0, g1 = (json.loads((tmp_path / f"grad{r}.json").read_text()) for r in range(2))
    expected = [[1.5, 3.0, 4.5]]  # mean of x and 2x; summed would be [[3, 6, 9]]
    assert g0 == g1 == expected
