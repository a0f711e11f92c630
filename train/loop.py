"""The training loop behind ``toolkit train``: epochs of SGD, validation mIoU, atomic per-epoch checkpoints.

Files in ``out``: ``train_state.safetensors`` (everything ``--resume`` needs), ``last.safetensors`` and
``best.safetensors`` (plain model checkpoints that eval/export/infer take), ``train_log.csv`` (one row
per epoch). All are written atomically after each epoch, so a kill loses at most the epoch in flight.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from toolkit.backend.torch.device import torch_device
from toolkit.checkpoint import save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.errors import OutputIsInputError, ToolkitError
from toolkit.files import atomic_write, make_folder, same_file

from . import ddp
from .aux import AuxHeads
from .ema import WeightEMA
from .feed import EpochBatches, LossMeter, make_loader
from .losses import at_label_size
from .schedule import lr_at, make_sgd, set_lr
from .state import load_train_state, read_train_state_info, save_train_state

log = logging.getLogger(__name__)

STATE_FILE, LAST_FILE, BEST_FILE, LOG_FILE = "train_state.safetensors", "last.safetensors", "best.safetensors", \
    "train_log.csv"
EMA_FILE = "ema.safetensors"  # the weights' moving average (--ema), a model checkpoint like last
RUN_FILES = (STATE_FILE, LAST_FILE, BEST_FILE, LOG_FILE, EMA_FILE)
RESUME_MUST_MATCH = ("data", "arch", "width", "loss", "batch_size", "crop", "size", "seed", "lr", "teacher",
                     "lr_for_batch", "scale_range", "jitter", "class_weights", "hard_pixels", "train_splits",
                     "label_res", "ema", "aux_weight")
DISTILL_MUST_MATCH = ("distill_weight", "temperature")  # compared when a teacher is set


@dataclass
class TrainConfig:
    """Every knob of a run (saved in the checkpoints' provenance and the resume state)."""

    data: str
    out: str = "runs/train"
    arch: str = "enhanced"
    loss: str = "bce"
    width: int = 64
    epochs: int = 50
    batch_size: int = 8
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    crop: tuple[int, int] = (352, 480)
    size: tuple[int, int] | None = None
    seed: int = 0
    workers: int = 0
    device: str = "cpu"
    amp: str = "auto"  # auto | bf16 | fp16 | off
    channels_last: bool | None = None  # None: on CUDA only
    threads: int | None = None
    resume: bool = False
    overwrite: bool = False  # replace a run already in ``out`` (without it, such a folder is refused)
    limit: int | None = None
    val_split: str | None = "val"
    progress: bool = True
    init: str | None = None  # start from these weights (a toolkit checkpoint of the same arch/width/classes)
    stop_after: int | None = None  # end the process's work after this epoch (tests simulate a kill with it)
    teacher: str | None = None  # distil from this checkpoint's logits (train/distill.py)
    distill_weight: float = 0.5  # share of the KD term in the loss
    temperature: float = 2.0  # softmax temperature of the KD term
    teacher_cache: str | None = None  # folder of cached teacher logits (default OUT/teacher_logits)
    synthetic_count: tuple[int, int] = field(default=(64, 16))
    unpool: str = "auto"  # training's unpool form (same function, same weights): auto = mask on CUDA, else maxunpool
    compile: bool = False  # torch.compile the training network
    lr_for_batch: int | None = None  # --lr is for this global batch; the run scales it linearly to its own
    log_every: int = 50  # steps between reads of the loss on the host (progress, finiteness check)
    scale_range: tuple[float, float] = (0.75, 1.5)  # random scale of each training frame
    jitter: float = 0.2  # colour jitter strength (brightness, contrast, saturation factors in 1 +- jitter)
    class_weights: str = "none"  # none | enet | medfreq, on B-CE's positive term (train/losses.py)
    hard_pixels: float | None = None  # online hard-pixel mining: keep this share of the hardest pixels
    train_splits: str = "train"  # comma list of splits trained on (train,val: ship the last epoch)
    label_res: str = "input"  # input: labels resized with the frame; full: loss at the label's own resolution
    ema: float | None = None  # decay of a moving average of the weights (train/ema.py), e.g. 0.999
    aux_weight: float | None = None  # training-only auxiliary heads on the decoder (train/aux.py), e.g. 0.4


def effective_lr(cfg: TrainConfig, world_size: int = 1) -> float:
    """--lr, scaled by the linear rule (Goyal et al. 2017) when --lr-for-batch names the batch it was tuned for."""
    if cfg.lr_for_batch is None:
        return cfg.lr
    if cfg.lr_for_batch < 1:
        raise ToolkitError(f"--lr-for-batch {cfg.lr_for_batch}: expected a batch size >= 1")
    return cfg.lr * cfg.batch_size * world_size / cfg.lr_for_batch


def pick_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 on CPUs with AMX/AVX512-BF16 or CUDA with bf16, fp16 on older CUDA, else fp32."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp != "auto":
        raise ToolkitError(f"--amp '{amp}': expected auto, bf16, fp16 or off")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    from toolkit.sysinfo import cpu_flags

    flags = cpu_flags()
    return torch.bfloat16 if flags.get("amx_bf16") or flags.get("avx512_bf16") else None


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue()))


def _log_tensorboard(out: Path, row: dict) -> None:
    """Mirror a CSV row into TensorBoard event files under OUT/tensorboard, when tensorboard is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV log is the record
        return
    with SummaryWriter(log_dir=str(out / "tensorboard")) as writer:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and not math.isnan(value):
                group = "iou" if key.startswith("iou_") else "train" if key.startswith("train") else "val"
                writer.add_scalar(f"{group}/{key}", value, row["epoch"])


def _validate(model: nn.Module, data, meta: ModelMeta, device: torch.device) -> dict:
    from toolkit.backend.torch.runner import TorchRunner
    from toolkit.evaluate import evaluate_split

    info = data.info
    runner = TorchRunner(model, meta, device=str(device), name="val", cuda_graph=False)  # fp32 eager, as trained
    with runner:  # frame by frame, as toolkit eval scores (docs/DESIGN.md: one split loop)
        (cm,) = evaluate_split([runner], data.val, [meta])
    scores = cm.scores()
    model.train()
    return scores.as_dict(info.class_names)


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training; returns a summary (best/last val mIoU, epochs, seconds)."""
    from tqdm import tqdm

    from toolkit.models import create_model, model_output_stride, set_unpool_mode

    from .data import build_data, training_label_counts
    from .losses import make_loss

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch_device(cfg.device)  # a CPU-only PyTorch or a typo: one line, before anything starts
    if cfg.teacher:
        from .distill import check_distill_options

        check_distill_options(cfg.distill_weight, cfg.temperature)
    env = ddp.init_distributed(cfg.device)
    if device.type == "cuda" and env.enabled:
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    refuse_init_in_out(out, cfg.init)
    check_out_folder(out, cfg.resume, cfg.overwrite, remove=False)  # refusals only: nothing made or removed yet
    if cfg.label_res not in ("input", "full"):
        raise ToolkitError(f"--label-res '{cfg.label_res}': expected input or full")
    if env.enabled and cfg.aux_weight is not None:
        raise ToolkitError("--aux-weight is not supported under torchrun yet: train on one process")
    if env.enabled and cfg.teacher:
        raise ToolkitError("--teacher is not supported under torchrun yet: distil on one process")
    data = build_data(cfg.data, cfg.crop, cfg.size, cfg.seed, train_split=cfg.train_splits,
                      val_split=cfg.val_split, limit=cfg.limit, synthetic_count=cfg.synthetic_count,
                      scale=cfg.scale_range, jitter=cfg.jitter, label_full_res=cfg.label_res == "full",
                      stride=model_output_stride(cfg.arch))
    info = data.info
    sampler = EpochBatches(len(data.train), cfg.batch_size, cfg.seed, env)
    steps_per_epoch = len(sampler)
    if steps_per_epoch == 0:
        raise ToolkitError(f"batch size {cfg.batch_size} x {env.world_size} process(es) is larger than the "
                           f"{len(data.train)} training images; lower --batch-size")
    counts, present = training_label_counts(data.train, info.num_classes, info.ignore_index)
    criterion = make_loss(cfg.loss, counts, present, info.ignore_index, cfg.class_weights,
                          cfg.hard_pixels).to(device)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, num_classes=info.num_classes, width=cfg.width).to(device)
    set_unpool_mode(model, training_unpool(cfg.unpool, device))
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    base_lr = effective_lr(cfg, env.world_size)
    aux = None
    if cfg.aux_weight is not None:
        aux = AuxHeads(model, info.num_classes, cfg.aux_weight).to(device)
    trained = model if aux is None else nn.ModuleList([model, aux])  # what the optimizer steps
    optimizer = make_sgd(trained, base_lr, cfg.momentum, cfg.weight_decay)
    amp_dtype = pick_amp(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 and device.type == "cuda" else None

    start_epoch, best, rows = 0, -math.inf, []
    extra_state: dict[str, torch.Tensor] = {}  # EMA and auxiliary-head tensors of a resumed run
    if cfg.resume and (out / STATE_FILE).is_file():
        old = read_train_state_info(out / STATE_FILE)["config"]
        now = json_config(cfg)
        keys = RESUME_MUST_MATCH + (DISTILL_MUST_MATCH if cfg.teacher else ())
        diff = [k for k in keys if old.get(k) != now.get(k)]
        if diff:
            raise ToolkitError(f"--resume: {out / STATE_FILE} was trained with different "
                               + ", ".join(f"{k}={old.get(k)!r} (now {now.get(k)!r})" for k in diff)
                               + "; use the same flags or a new --output")
        saved = load_train_state(out / STATE_FILE, model, optimizer, extra_state)
        if aux is not None:
            aux.load_state_dict(_prefixed(extra_state, "aux."))
        start_epoch, best, rows = int(saved["epoch"]), float(saved["best_miou"]), list(saved["log"])
        if old.get("epochs") != cfg.epochs:
            log.warning("resuming with --epochs %d (was %s): the poly schedule now ends at epoch %d",
                        cfg.epochs, old.get("epochs"), cfg.epochs)
        log.info("resumed %s at epoch %d (best val mIoU %.4f)", out / STATE_FILE, start_epoch, best)
    elif cfg.resume:
        log.info("--resume: no %s yet, starting from scratch", out / STATE_FILE)
    if cfg.init and start_epoch == 0:
        _load_init(model, cfg, info)
    ema = WeightEMA(model, cfg.ema, _prefixed(extra_state, "ema.")) if cfg.ema is not None else None
    # Inputs checked: now (and not before) the old run goes (--overwrite) and the folder is made (issue 25)
    check_out_folder(out, cfg.resume, cfg.overwrite, remove=env.is_main)
    if env.is_main:
        make_out_folder(out)
    teacher_sha = None
    if cfg.teacher:
        from .distill import distillation_loss, prepare_teacher

        data.train, teacher_sha = prepare_teacher(cfg.teacher, data, info.class_names,
                                                  Path(cfg.teacher_cache or out / "teacher_logits"), cfg.progress)
    net = ddp.wrap_model(model, env, device)
    if cfg.compile:
        net = torch.compile(net)  # the weights stay model's: checkpoints and validation use the eager module
    meta = ModelMeta(cfg.arch, cfg.width, info, input_size=data.frame_size, output_stride=model_output_stride(cfg.arch))

    loader = make_loader(data.train, sampler, cfg.workers, pin=device.type == "cuda")
    total_steps = steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    log_every = max(1, cfg.log_every)
    run_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        sampler.epoch = epoch
        net.train()
        t0, meter = time.perf_counter(), LossMeter(device)
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not (cfg.progress and env.is_main), leave=False, mininterval=2)
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = lr_at(step, total_steps, base_lr, warmup)
            set_lr(optimizer, lr)
            x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                logits = net(x)
                loss = criterion(at_label_size(logits, y), y)
                if aux is not None:
                    loss = loss + aux.loss(criterion, y)
            if teacher_sha is not None:
                r = y.shape[-1] // logits.shape[-1]  # the KD term at the logits' size: the label's every r-th pixel
                loss = distillation_loss(loss, logits, batch[2].to(device, non_blocking=True),
                                         y[:, ::r, ::r] != info.ignore_index, cfg.distill_weight, cfg.temperature)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if ema is not None:
                ema.update(model)
            meter.add(loss, len(x))  # no host sync here: the loss stays on the device until read
            if (i + 1) % log_every == 0 or i + 1 == steps_per_epoch:
                mean, value = meter.read(f"epoch {epoch + 1}, steps up to {i + 1}")
                speed = meter.images * env.world_size / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.4f}", img_s=f"{speed:.1f}", refresh=False)
                if not cfg.progress and env.is_main and (i + 1) % log_every == 0:
                    log.info("epoch %d step %d/%d  loss %.4f (mean %.4f)  lr %.4f  %.2f img/s", epoch + 1, i + 1,
                             steps_per_epoch, value, mean, lr, speed)
        bar.close()
        seen = meter.images
        train_seconds = time.perf_counter() - t0
        train_loss = ddp.mean_across(meter.read(f"epoch {epoch + 1}")[0], env)
        if env.is_main:
            row = _finish_epoch(cfg, model, meta, data, device, optimizer, epoch, train_loss, lr, train_seconds,
                                seen * env.world_size, best, rows, out, teacher_sha, ema, aux)
            best = max(best, row["val_miou"]) if not math.isnan(row["val_miou"]) else best
        ddp.barrier(env)
        if cfg.stop_after is not None and epoch + 1 >= cfg.stop_after and epoch + 1 < cfg.epochs:
            log.info("stopping after epoch %d as asked (--stop-after)", epoch + 1)
            break
    ddp.cleanup(env)
    return {"epochs_done": len(rows), "best_val_miou": best if rows else None,
            "last_val_miou": rows[-1]["val_miou"] if rows else None,
            "seconds": round(time.perf_counter() - run_start, 2), "out": str(out), "rank": env.rank,
            "weights_sha256": weights_digest(model), "params_sha256": weights_digest(model, buffers=False)}


def training_unpool(unpool: str, device: torch.device) -> str:
    """auto: the indices-free mask form on CUDA (elementwise, fusable by --compile, no scatter), the scatter form
    elsewhere (the CPU's form so far; the mask form was not shown faster there: docs/RESULTS.md). Both train the
    same weights (tests/train/test_feed.py)."""
    if unpool not in ("auto", "mask", "maxunpool"):
        raise ToolkitError(f"--unpool '{unpool}': expected auto, mask or maxunpool")
    if unpool != "auto":
        return unpool
    return "mask" if device.type == "cuda" else "maxunpool"


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _extra_state(ema: WeightEMA | None, aux: nn.Module | None) -> dict[str, torch.Tensor]:
    """What --resume needs beyond the model and optimizer: the EMA weights and the auxiliary heads."""
    extra = {f"ema.{k}": v for k, v in ema.state().items()} if ema is not None else {}
    extra.update({f"aux.{k}": v.detach() for k, v in aux.state_dict().items()} if aux is not None else {})
    return extra


def check_out_folder(out: Path, resume: bool, overwrite: bool, remove: bool = True) -> None:
    """A folder that already holds a run is continued (--resume) or replaced (--overwrite), never silently
    overwritten: its best checkpoint and log are often the only record of hours of training."""
    existing = [f for f in RUN_FILES if (out / f).exists()]
    if resume and overwrite:
        raise ToolkitError("--resume continues the run in --output and --overwrite replaces it; pass one of them")
    if not existing or (overwrite and not remove):
        return
    if overwrite:
        for f in existing:  # a fresh run: no stale best/state of the old one left to be resumed or mixed in
            (out / f).unlink()
        log.info("--overwrite: removed %s from %s", ", ".join(existing), out)
        return
    if resume and STATE_FILE not in existing:
        raise ToolkitError(f"--resume: {out} has {', '.join(existing)} but no {STATE_FILE} to resume from; "
                           "starting over would replace them: pass --overwrite (without --resume) or another --output")
    if not resume:
        raise ToolkitError(f"--output {out} already holds a run; training would replace {', '.join(existing)}. "
                           "Pass --resume to continue it, --overwrite to replace it, or choose another --output")


def refuse_init_in_out(out: Path, init: str | None) -> None:
    """--init must not be one of the files this run writes (or --overwrite deletes) in --output."""
    if init is None:
        return
    for f in RUN_FILES:
        if same_file(out / f, init):
            raise OutputIsInputError(f"--init {init} is {out / f}, which this run replaces; copy it out of "
                                     "--output first or choose another --output")


def make_out_folder(out: Path) -> None:
    """Create --output before the first epoch: an unwritable folder fails now, not after an epoch of training."""
    make_folder(out)


def weights_digest(model: nn.Module, buffers: bool = True) -> str:
    """sha256 over the state dict's bytes (equal across an exact resume); ``buffers=False``: the learned
    parameters only, equal on every DDP rank (BatchNorm running statistics stay per-replica)."""
    import hashlib

    h = hashlib.sha256()
    items = model.state_dict().items() if buffers else ((k, p.data) for k, p in model.named_parameters())
    for k, v in items:
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _load_init(model: nn.Module, cfg: TrainConfig, info) -> None:
    """Initial weights from a checkpoint (fine-tuning); it must describe the same network and classes."""
    from toolkit.checkpoint import read_checkpoint

    tensors, meta = read_checkpoint(cfg.init)  # type: ignore[arg-type]
    if (meta.arch, meta.width, meta.dataset.class_names) != (cfg.arch, cfg.width, info.class_names):
        raise ToolkitError(f"--init {cfg.init}: it is {meta.arch} w={meta.width} with {meta.num_classes} classes, "
                           f"this run is {cfg.arch} w={cfg.width} with {info.num_classes}; pass matching "
                           "--arch/--width/--data")
    model.load_state_dict(tensors)
    log.info("initialised from %s (epoch %s, val mIoU %s)", cfg.init, meta.provenance.get("epoch"),
             meta.provenance.get("val_miou"))


def json_config(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    for k in ("crop", "size", "synthetic_count", "scale_range"):
        d[k] = list(d[k]) if d[k] is not None else None
    return d


def _finish_epoch(cfg: TrainConfig, model: nn.Module, meta: ModelMeta, data, device: torch.device,
                  optimizer: torch.optim.Optimizer, epoch: int, train_loss: float, lr: float, train_seconds: float,
                  images: int, best: float, rows: list[dict], out: Path, teacher_sha: str | None = None,
                  ema: WeightEMA | None = None, aux: nn.Module | None = None) -> dict:
    """Validate, log, and write state -> last -> best -> CSV (each atomically); returns the log row."""
    t0 = time.perf_counter()
    scores = _validate(model, data, meta, device) if data.val is not None else None
    miou = float(scores["miou"]) if scores else float("nan")
    row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6), "lr": lr, "val_miou": miou,
           "val_global_acc": scores["global_acc"] if scores else float("nan"),
           "val_class_avg_acc": scores["class_avg_acc"] if scores else float("nan"),
           "train_seconds": round(train_seconds, 2), "val_seconds": round(time.perf_counter() - t0, 2),
           "train_img_per_s": round(images / max(train_seconds, 1e-9), 3)}
    if ema is not None:
        ema_scores = _validate(ema.model, data, meta, device) if data.val is not None else None
        row["val_miou_ema"] = float(ema_scores["miou"]) if ema_scores else float("nan")
        ema.model.eval()
    if scores:
        row.update({f"iou_{k}": (np.nan if v is None else v) for k, v in scores["per_class_iou"].items()})
    rows.append(row)
    is_best = not math.isnan(miou) and miou > best
    new_best = miou if is_best else best
    cfg_json = json_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_train_state(out / STATE_FILE, model, optimizer,
                     {"epoch": epoch + 1, "best_miou": new_best, "log": rows, "config": cfg_json},
                     extra=_extra_state(ema, aux))
    meta.provenance = {"trained_by": "toolkit train", "epoch": epoch + 1, "val_miou": miou,
                       "val_split": cfg.val_split, "config": cfg_json}
    if teacher_sha:
        meta.provenance["teacher_sha256"] = teacher_sha
    save_checkpoint(out / LAST_FILE, model, meta)
    if ema is not None:
        ema_meta = copy.copy(meta)
        ema_meta.provenance = {**meta.provenance, "ema_decay": cfg.ema,
                               "val_miou": row.get("val_miou_ema", float("nan"))}
        save_checkpoint(out / EMA_FILE, ema.model, ema_meta)
    if is_best or (data.val is None):
        save_checkpoint(out / BEST_FILE, model, meta)
    _write_csv(out / LOG_FILE, rows)
    _log_tensorboard(out, row)
    log.info("epoch %d/%d  loss %.4f  val mIoU %.4f  (best %.4f)  %.1f img/s  %.0f s + val %.0f s",
             epoch + 1, cfg.epochs, train_loss, miou, new_best, row["train_img_per_s"], train_seconds,
             row["val_seconds"])
    return row
