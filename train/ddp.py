"""Multi-process data parallel through torchrun (NCCL on CUDA, gloo on CPU); a no-op in one process.

``torchrun --nproc_per_node=N -m toolkit.cli.app train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; each
process takes every N-th index of the epoch's seeded permutation, gradients are averaged by DDP,
and rank 0 alone evaluates and writes checkpoints while the others wait at a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> DistEnv:
    """Join the process group torchrun describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    env = DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return env


def wrap_model(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    if not env.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else env.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, env: DistEnv) -> list[list[int]]:
    """This rank's batches of a seeded per-epoch permutation (drop_last, equal count on every rank)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    per_rank = n // env.world_size
    mine = perm[env.rank::env.world_size][:per_rank]
    steps = len(mine) // batch_size
    return [mine[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def mean_across(value: float, env: DistEnv) -> float:
    if not env.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / env.world_size


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def cleanup(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
