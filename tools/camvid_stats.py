"""Per-channel RGB mean and std of a dataset split, pixel values scaled to [0, 1]: the normalisation constants
``toolkit.core.dataset_info.CAMVID_MEAN``/``CAMVID_STD`` that docs/MODEL.md quotes.

    python tools/camvid_stats.py ../shared/camvid --split train
"""

from __future__ import annotations

import argparse

import numpy as np

from toolkit.data import CamVid


def channel_stats(data: CamVid) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per RGB channel over every pixel of every frame (float64 sums: no drift over 367 frames)."""
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for i in range(len(data)):
        image = data.load(i)[0].reshape(-1, 3).astype(np.float64) / 255.0
        total += image.sum(0)
        squares += (image * image).sum(0)
        count += image.shape[0]
    mean = total / count
    return mean, np.sqrt(squares / count - mean * mean)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--split", default="train")
    a = p.parse_args()
    data = CamVid(a.data, a.split)
    mean, std = channel_stats(data)
    print(f"{a.split}: {len(data)} frames")
    print("mean = (" + ", ".join(f"{v:.4f}" for v in mean) + ")")
    print("std = (" + ", ".join(f"{v:.4f}" for v in std) + ")")


if __name__ == "__main__":
    main()
