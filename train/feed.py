"""Feeding the training step without stalling it: one persistent, pinned DataLoader for the whole run,
and the loss summed on the device (read back to the host once per log interval, not every step).

The loader is built once: its batch sampler hands out the current epoch's batches (``ddp.epoch_batches``,
the same seeded permutation as before) as ``(epoch, index)`` pairs, so persistent worker processes, which
never see the main process's ``set_epoch``, still draw each frame's augmentation from (seed, epoch, index):
the batches and their pixels are the same as a loader rebuilt every epoch, and ``--resume`` stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from toolkit.errors import ToolkitError

from . import ddp


class EpochBatches(torch.utils.data.Sampler):
    """This rank's batches of epoch ``self.epoch`` (set before each epoch), as lists of (epoch, index)."""

    def __init__(self, n: int, batch_size: int, seed: int, env: ddp.DistEnv) -> None:
        self.n, self.batch_size, self.seed, self.env, self.epoch = n, batch_size, seed, env, 0

    def batches(self) -> list[list[int]]:
        return ddp.epoch_batches(self.n, self.batch_size, self.seed, self.epoch, self.env)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.epoch
        return iter([[(epoch, i) for i in batch] for batch in self.batches()])

    def __len__(self) -> int:
        return len(self.batches())


class EpochIndexed(torch.utils.data.Dataset):
    """``dataset[(epoch, index)]``: the frame of ``index`` with epoch ``epoch``'s augmentation."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


def make_loader(dataset, sampler: EpochBatches, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    """The run's one DataLoader: workers kept between epochs, batches pinned for asynchronous copies."""
    return torch.utils.data.DataLoader(EpochIndexed(dataset), batch_sampler=sampler, num_workers=workers,
                                       persistent_workers=workers > 0, pin_memory=pin,
                                       prefetch_factor=4 if workers > 0 else None)


class LossMeter:
    """Image-weighted loss sum kept on the device; ``read()`` is the only host sync (once per interval)."""

    def __init__(self, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.total = torch.zeros((), dtype=dtype, device=device)
        self.last = torch.zeros((), dtype=dtype, device=device)
        self.images = 0

    def add(self, loss: Tensor, images: int) -> None:
        value = loss.detach().to(self.total.dtype)
        self.last = value
        self.total += value * images
        self.images += images

    def read(self, where: str) -> tuple[float, float]:
        """(mean loss so far, last step's loss) on the host; a non-finite loss fails here, naming ``where``."""
        total, last = (float(v) for v in torch.stack([self.total, self.last]).cpu())
        if not math.isfinite(total):
            raise ToolkitError(f"{where}: the training loss is {total}; lower --lr or use --amp off")
        return total / max(self.images, 1), last
