"""Time one SGD train step (forward, loss, backward, step) for a model/size/dtype on this machine.

Used for docs/RESULTS.md's bf16-vs-fp32 and budget measurements:
    python tools/bench_train_step.py --arch enhanced --width 16 --batch 8 --hw 176x240 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def bench(arch: str, width: int, batch: int, hw: tuple[int, int], dtype: str, channels_last: bool,
          iters: int, warmup: int) -> dict:
    from toolkit.cli.train import training_package
    from toolkit.models import create_model

    training_package()  # train/, imported under its installed name
    from segnet_train.losses import BalancedCrossEntropy

    torch.manual_seed(0)
    model = create_model(arch, num_classes=11, width=width).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = BalancedCrossEntropy([0.9] * 11, ignore_index=11)
    x = torch.randn(batch, 3, *hw)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 12, (batch, *hw))
    amp = {"bf16": torch.bfloat16, "fp32": None}[dtype]
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            loss = crit(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return {"arch": arch, "width": width, "batch": batch, "hw": list(hw), "dtype": dtype,
            "channels_last": channels_last, "threads": torch.get_num_threads(), "median_step_s": round(med, 4),
            "img_per_s": round(batch / med, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="enhanced")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hw", default="176x240")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--channels-last", default="0", help="comma list of 0/1 to try")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.hw.lower().split("x"))
    for cl in a.channels_last.split(","):
        for dt in a.dtypes.split(","):
            print(json.dumps(bench(a.arch, a.width, a.batch, (h, w), dt, cl == "1", a.iters, a.warmup)), flush=True)


if __name__ == "__main__":
    main()
