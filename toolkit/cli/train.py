"""``toolkit train``: train an enhanced SegNet (or the plain baseline) on a CamVid-layout folder."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from enum import Enum
from pathlib import Path
from types import ModuleType

import typer

from toolkit.cli.common import examples, handle_errors, parse_shape
from toolkit.cli.options import TORCH_DEVICES, choice_parser, device_option, output_option
from toolkit.errors import DatasetError, InputShapeError

TRAINING_PACKAGE = "segnet_train"  # train/ installed under a name no other project's ``train`` takes


def training_package() -> ModuleType:
    """The training package (``train/``), imported as ``segnet_train``.

    In a source checkout (``pyproject.toml`` beside ``toolkit/``) the checkout's own ``train/`` is loaded
    under that name, so a worktree on PYTHONPATH trains with its own code even where another checkout is
    installed; otherwise the installed ``segnet_train``. Only this command imports it, and only here.
    """
    if TRAINING_PACKAGE in sys.modules:
        return sys.modules[TRAINING_PACKAGE]
    root = Path(__file__).resolve().parents[2]
    folder = root / "train"
    if (root / "pyproject.toml").is_file() and (folder / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(TRAINING_PACKAGE, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[TRAINING_PACKAGE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[TRAINING_PACKAGE]
            raise
        return module
    return importlib.import_module(TRAINING_PACKAGE)


class TrainUnpool(str, Enum):
    """Training's unpool forms (plugin is an inference-only custom op)."""

    auto = "auto"
    mask = "mask"
    maxunpool = "maxunpool"


TRAIN_UNPOOL = list(TrainUnpool)
ClassWeights = Enum("ClassWeights", {n: n for n in ("none", "enet", "medfreq")}, type=str)  # train/losses.py
LabelRes = Enum("LabelRes", {n: n for n in ("input", "full")}, type=str)


def _pair(text: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise DatasetError(f"{name} '{text}': expected MIN,MAX, e.g. 0.5,2.0") from None
    return lo, hi


def _hw(text: str | None, name: str) -> tuple[int, int] | None:
    if text is None:
        return None
    dims = parse_shape(text)
    if len(dims) != 2:
        raise InputShapeError(f"{name} '{text}': expected HxW, e.g. 360x480")
    return dims[0], dims[1]


@handle_errors
def train_command(
    data: str = typer.Option(..., "--data", "-d", help="CamVid-layout folder, or 'synthetic' for generated scenes."),
    out: str = output_option("Folder for last/best checkpoints, state and CSV log.", default="runs/train"),
    arch: str = typer.Option("enhanced", "--arch", "-a",
                             help="Architecture: enhanced, segnet or enhanced_s2 (a stride-2 stem that reads the "
                                  "full frame; crops multiples of 16)."),
    loss: str = typer.Option("bce", "--loss", help="ce, bce (balanced CE, docs/MODEL.md) or wce (median frequency)."),
    width: int = typer.Option(64, "--width", "-w", min=1, help="Base width w of the network."),
    epochs: int = typer.Option(50, "--epochs", "-e", min=1, help="Total epochs (also the poly schedule's length)."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1,
                                   help="Images per step (per process under torchrun)."),
    lr: float = typer.Option(0.1, "--lr", help="Peak SGD learning rate (after warm-up)."),
    momentum: float = typer.Option(0.9, "--momentum", min=0.0, max=1.0),
    weight_decay: float = typer.Option(5e-4, "--weight-decay", min=0.0),
    warmup_epochs: float = typer.Option(1.0, "--warmup-epochs", min=0.0,
                                         help="Linear warm-up length before poly decay."),
    crop: str = typer.Option("352x480", "--crop", help="Training crop HxW (multiples of the model's output stride: 8, "
                                               "16 for enhanced_s2)."),
    size: str | None = typer.Option(None, "--size", help="Rescale frames to HxW first (and infer at it later)."),
    seed: int = typer.Option(0, "--seed", min=0),
    workers: int = typer.Option(0, "--workers", min=0, help="DataLoader worker processes."),
    device: str = device_option(choices=TORCH_DEVICES, help="Where training runs."),
    amp: str = typer.Option("auto", "--amp", help="auto (bf16 on AMX/AVX512-BF16 CPUs and CUDA), bf16, fp16, off."),
    channels_last: bool | None = typer.Option(None, "--channels-last/--no-channels-last",
                                              help="NHWC memory format (default: on CUDA only)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: all cores)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/train_state.safetensors if it exists."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --output (its checkpoints, "
                                   "state and log); without it such a folder is refused."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N training images."),
    val_split: str = typer.Option("val", "--val-split", help="Split evaluated after each epoch ('' for none)."),
    init: str | None = typer.Option(None, "--init", help="Start from this checkpoint's (or zoo model's) weights "
                                    "(fine-tuning)."),
    teacher: str | None = typer.Option(None, "--teacher", help="Distil from this checkpoint (or zoo name): its "
                                       "logits, cached once per frame, join the labels as soft targets."),
    distill_weight: float = typer.Option(0.5, "--distill-weight", min=0.0, max=1.0,
                                         help="Share of the distillation term in the loss, in [0, 1] "
                                              "(with --teacher)."),
    temperature: float = typer.Option(2.0, "--temperature", help="Softmax temperature of the distillation term."),
    teacher_cache: str | None = typer.Option(None, "--teacher-cache", help="Folder of cached teacher logits "
                                             "(default OUTPUT/teacher_logits; share it between students)."),
    stop_after: int | None = typer.Option(None, "--stop-after", hidden=True,
                                          help="Stop after this epoch, as if killed (tests of --resume)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (logs one line per epoch)."),
    compile_net: bool = typer.Option(False, "--compile", help="torch.compile the training network (start-up "
                                     "cost; worth it on a GPU for long runs)."),
    lr_for_batch: int | None = typer.Option(None, "--lr-for-batch", help="--lr was tuned for this global batch: "
                                            "scale it linearly to this run's batch (e.g. --batch-size 32 "
                                            "--lr-for-batch 8: 4x --lr)."),
    unpool: str = typer.Option("auto", "--unpool", help="Unpool form while training (the same function and "
                               "weights): mask (indices-free, fusable), maxunpool (scatter), auto (mask on CUDA).",
                               parser=choice_parser("--unpool", TRAIN_UNPOOL), metavar="auto|mask|maxunpool"),
    scale_range: str = typer.Option("0.75,1.5", "--scale-range", help="Random scale range MIN,MAX of the "
                                    "training frames (the long recipe: 0.5,2.0)."),
    jitter: float = typer.Option(0.2, "--jitter", help="Colour jitter strength: brightness, contrast and "
                                 "saturation factors drawn in 1 +- JITTER (stronger: 0.4)."),
    class_weights: str = typer.Option("none", "--class-weights", help="With --loss bce: weight its positive term "
                                      "by class, enet (1/ln(1.10+p)) or medfreq; none is the paper's loss.",
                                      parser=choice_parser("--class-weights", list(ClassWeights)),
                                      metavar="none|enet|medfreq"),
    hard_pixels: float | None = typer.Option(None, "--hard-pixels", help="Online hard-pixel mining: average the "
                                             "loss over this share of the hardest labelled pixels (e.g. 0.25)."),
    train_splits: str = typer.Option("train", "--train-splits", help="Splits to train on, comma-separated; "
                                     "train,val needs --val-split '' and ships the last epoch."),
    label_res: str = typer.Option("input", "--label-res", help="input: labels resized with the frames (--size); "
                                  "full: the loss at the label's own resolution (logits upsampled).",
                                  parser=choice_parser("--label-res", list(LabelRes)), metavar="input|full"),
    ema: float | None = typer.Option(None, "--ema", help="Keep a moving average of the weights with this decay "
                                     "(e.g. 0.999): validated each epoch, saved as OUTPUT/ema.safetensors."),
    aux_weight: float | None = typer.Option(None, "--aux-weight", help="Training-only auxiliary heads on the "
                                            "decoder's H/4 and H/2 stages, their loss at this weight (e.g. 0.4); "
                                            "never in a checkpoint or export."),
    log_every: int = typer.Option(50, "--log-every", help="Steps between host reads of "
                                  "the loss (progress, NaN check); the step itself never waits for the host."),
) -> None:
    """Train with SGD (warm-up + poly decay), validate each epoch, keep last/best checkpoints; resumable."""
    from toolkit.cli.checks import positive
    from toolkit.zoo import resolve_model_path
    positive("--lr", lr)
    positive("--temperature", temperature)
    training = training_package()
    TrainConfig, run_training = training.TrainConfig, training.train

    init = None if init is None else checkpoint_for("--init", str(resolve_model_path(init)))
    teacher = None if teacher is None else checkpoint_for("--teacher", str(resolve_model_path(teacher)))

    cfg = TrainConfig(data=data, out=out, arch=arch, loss=loss, width=width, epochs=epochs, batch_size=batch_size,
                      lr=lr, momentum=momentum, weight_decay=weight_decay, warmup_epochs=warmup_epochs,
                      crop=_hw(crop, "--crop"), size=_hw(size, "--size"), seed=seed,
                      workers=workers, device=device, amp=amp, channels_last=channels_last, threads=threads,
                      resume=resume, overwrite=overwrite, limit=limit, val_split=val_split or None,
                      progress=not no_progress, init=init, stop_after=stop_after, teacher=teacher,
                      distill_weight=distill_weight, temperature=temperature, teacher_cache=teacher_cache,
                      compile=compile_net, lr_for_batch=lr_for_batch, unpool=unpool, log_every=log_every,
                      scale_range=_pair(scale_range, "--scale-range"), jitter=jitter, class_weights=class_weights,
                      hard_pixels=hard_pixels, train_splits=train_splits, label_res=label_res, ema=ema,
                      aux_weight=aux_weight)
    from toolkit.models import list_models

    if arch not in list_models():
        from toolkit.errors import UnknownNameError, suggest

        raise UnknownNameError(f"unknown model '{arch}': {suggest(arch, list_models())}")
    from toolkit.files import no_empty_folder_on_failure

    with no_empty_folder_on_failure(out):  # a refused or failed run leaves no empty --output behind
        summary = run_training(cfg)
    if summary["rank"] == 0:  # under torchrun, one summary
        typer.echo(json.dumps(summary))


NOT_CHECKPOINTS = {".onnx": "an ONNX model", ".engine": "a TensorRT engine", ".plan": "a TensorRT engine",
                   ".pt2": "an AOTInductor package", ".pt": "a pickled PyTorch file", ".pth": "a pickled PyTorch file"}


def checkpoint_for(option: str, path: str) -> str:
    """``--teacher``/``--init`` take weights PyTorch trains or distils from; an ONNX file (or engine) used to be
    called a corrupt safetensors checkpoint (issue 25)."""
    from pathlib import Path

    from toolkit.errors import CheckpointError

    kind = NOT_CHECKPOINTS.get(Path(path).suffix.lower())
    if kind is None:
        return path
    role = "distils from" if option == "--teacher" else "starts from"
    raise CheckpointError(f"{option} {path}: {kind}; training {role} a PyTorch checkpoint, so {option} takes a "
                          ".safetensors file (toolkit train's best.safetensors, the one this file was made from) "
                          "or a zoo name (toolkit models lists them)")


def register(app: typer.Typer) -> None:
    app.command("train", epilog=examples(
        "toolkit train --data synthetic --width 8 --epochs 2 --crop 64x96 --output runs/smoke",
        "toolkit train --data ../shared/camvid --size 180x240 --crop 176x240 --width 16 --epochs 30 --output runs/e16",
        "toolkit train --data ../shared/camvid --device cuda --workers 8 --batch-size 32 --lr-for-batch 8 --compile",
        "toolkit train --data ../shared/camvid --device cuda --scale-range 0.5,2.0 --jitter 0.4 --class-weights enet "
        "--train-splits train,val --val-split '' --epochs 800 -o runs/w64_trainval",
        "torchrun --nproc_per_node=2 \"$(which toolkit)\" train --data ../shared/camvid --device cuda -o runs/ddp",
    ))(train_command)
