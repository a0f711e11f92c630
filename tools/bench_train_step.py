"""Time SGD train steps (forward, loss, backward, step) for a model/size/dtype on this machine, old and new
trainer habits side by side in one run: the scatter (``maxunpool``) or indices-free (``mask``) unpool, and the
loss read back to the host every step (``--sync step``, the old loop) or once at the end (``--sync end``).

Used for docs/RESULTS.md's bf16-vs-fp32, budget and trainer-speed measurements:
    python tools/bench_train_step.py --arch enhanced --width 16 --batch 8 --hw 176x240 --threads 2
    python tools/bench_train_step.py --width 16 --batch 4 --hw 96x128 --dtypes fp32 --unpool maxunpool,mask \
        --sync step,end
    python tools/bench_train_step.py --device cuda --width 64 --batch 32 --hw 352x480 --dtypes bf16 \
        --channels-last 1 --unpool maxunpool,mask --sync step,end --compile 0,1 --iters 30
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(arch: str, width: int, batch: int, hw: tuple[int, int], dtype: str, channels_last: bool,
          iters: int, warmup: int, device: str = "cpu", unpool: str = "maxunpool", sync: str = "step",
          compile_net: bool = False) -> dict:
    """img/s over ``iters`` steps timed as one block (a GPU runs ahead of the host unless a step syncs)."""
    from toolkit.cli.train import training_package
    from toolkit.models import create_model, set_unpool_mode

    training_package()  # train/, imported under its installed name
    from segnet_train.losses import BalancedCrossEntropy

    dev = torch.device(device)
    torch.manual_seed(0)
    model = set_unpool_mode(create_model(arch, num_classes=11, width=width), unpool).to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_net else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = BalancedCrossEntropy([0.9] * 11, ignore_index=11).to(dev)
    x = torch.randn(batch, 3, *hw, device=dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 12, (batch, *hw), device=dev)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[dtype]
    total = torch.zeros((), device=dev)

    def step() -> None:
        nonlocal total
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = crit(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sync == "step":
            float(loss.detach())  # the old loop's per-step host read
        else:
            total = total + loss.detach()

    for _ in range(warmup):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    float(total)
    _sync(dev)
    per_step = (time.perf_counter() - t0) / max(iters, 1)
    return {"arch": arch, "width": width, "batch": batch, "hw": list(hw), "dtype": dtype, "device": device,
            "channels_last": channels_last, "unpool": unpool, "sync": sync, "compile": compile_net,
            "threads": torch.get_num_threads(), "median_step_s": round(per_step, 4),
            "img_per_s": round(batch / per_step, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="enhanced")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hw", default="176x240")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (timed with a device sync around the block)")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--channels-last", default="0", help="comma list of 0/1 to try")
    p.add_argument("--unpool", default="maxunpool", help="comma list of maxunpool/mask to try")
    p.add_argument("--sync", default="step", help="comma list of step (host read per step) / end to try")
    p.add_argument("--compile", default="0", help="comma list of 0/1 (torch.compile) to try")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.hw.lower().split("x"))
    for comp in a.compile.split(","):
        for cl in a.channels_last.split(","):
            for dt in a.dtypes.split(","):
                for unpool in a.unpool.split(","):
                    for sync in a.sync.split(","):
                        print(json.dumps(bench(a.arch, a.width, a.batch, (h, w), dt, cl == "1", a.iters, a.warmup,
                                               a.device, unpool, sync, comp == "1")), flush=True)


if __name__ == "__main__":
    main()
