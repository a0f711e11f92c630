"""Print a dataset's class pixel shares, the B-CE betas and SegNet's median-frequency weights (docs/MODEL.md).

    python tools/class_weights.py ../shared/camvid --split train
"""

from __future__ import annotations

import argparse

from toolkit.cli.train import training_package
from toolkit.data import CamVid

training_package()  # train/, imported under its installed name
from segnet_train.losses import balanced_betas, class_pixel_counts, median_frequency_weights  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--split", default="train")
    a = p.parse_args()
    ds = CamVid(a.data, a.split)
    counts, present = class_pixel_counts((ds.load(i)[1] for i in range(len(ds))), ds.info.num_classes,
                                         ds.info.ignore_index)
    betas, mf = balanced_betas(counts), median_frequency_weights(counts, present)
    print("| class | pixel share f_k | B-CE beta_k = 1 - f_k | B-CE negative weight f_k | median-freq weight |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, c, b, w in zip(ds.info.class_names, counts, betas, mf, strict=True):
        print(f"| {name} | {c / counts.sum():.4f} | {b:.4f} | {1 - b:.4f} | {w:.3f} |")


if __name__ == "__main__":
    main()
