"""Knowledge distillation for ``toolkit train --teacher``: cached teacher logits and the KD loss.

The teacher (e.g. the GPU-trained w=64 model) is far too slow to run on every augmented batch of a
2-core CPU, so its logits are computed once per training frame, at the frame's own resolution, and
kept on disk as fp16 ``.npy`` files (``TeacherLogitCache``). The training transform then applies the
same geometry to them as to the label (rescale, pad, crop, flip: ``TrainTransform(extra=...)``), so
the student learns from labels and from the teacher's softened predictions on the same pixels.

The loss (``distillation_loss``): ``(1 - a) * task + a * T^2 * KL(softmax(t/T) || softmax(s/T))``,
KL summed over classes and averaged over the labelled pixels (the pixels the task loss sees; padding
and void are left out), ``a`` = ``--distill-weight``, ``T`` = ``--temperature``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import pad_to_multiple
from toolkit.errors import ToolkitError
from toolkit.files import atomic_write, file_sha256

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CACHE_VERSION = 1


def kd_kl(student_logits: Tensor, teacher_logits: Tensor, valid: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(p_teacher^T || p_student^T) per pixel, summed over classes, averaged over ``valid`` pixels."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ")
    t = float(temperature)
    log_ps = F.log_softmax(student_logits.float() / t, dim=1)
    log_pt = F.log_softmax(teacher_logits.float() / t, dim=1)
    per_pixel = (log_pt.exp() * (log_pt - log_ps)).sum(1)  # N H W
    mask = valid.to(per_pixel.dtype)
    return (t * t) * (per_pixel * mask).sum() / mask.sum().clamp(min=1)


def distillation_loss(task_loss: Tensor, student_logits: Tensor, teacher_logits: Tensor, valid: Tensor,
                      weight: float, temperature: float) -> Tensor:
    """``(1 - weight) * task_loss + weight * kd_kl(...)``: weight 0 is plain training, 1 the teacher alone."""
    check_distill_options(weight, temperature)
    return (1.0 - weight) * task_loss + weight * kd_kl(student_logits, teacher_logits, valid, temperature)


def check_distill_options(weight: float, temperature: float) -> None:
    """One clear line for out-of-range --distill-weight / --temperature, before any work starts."""
    if not 0.0 <= weight <= 1.0:
        raise ToolkitError(f"--distill-weight {weight}: expected a value in [0, 1] (share of the KD term)")
    if not temperature > 0:
        raise ToolkitError(f"--temperature {temperature}: expected a positive number (e.g. 1 or 2)")


class TeacherLogitCache:
    """One fp16 HxWxK ``.npy`` per training frame, computed once, memory-mapped when read.

    The manifest ties the folder to the teacher's sha256 and to the list of frames, so a cache built
    for another teacher or another split is refused instead of silently mixed in. Building is
    resumable: frames whose file exists are skipped (each file is written atomically).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _frame_path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npy"

    def build(self, teacher: nn.Module, teacher_meta: ModelMeta, teacher_sha256: str, dataset,
              frame_ids: list[str], progress: bool = True) -> None:
        """Run ``teacher`` on every ``dataset.load(i)`` frame not cached yet."""
        from tqdm import tqdm

        from toolkit.data.transforms import normalize

        manifest = {"version": CACHE_VERSION, "teacher_sha256": teacher_sha256, "frames": frame_ids,
                    "classes": list(teacher_meta.dataset.class_names), "dtype": "float16", "layout": "HWK"}
        existing = self.folder / MANIFEST
        if existing.is_file():
            old = json.loads(existing.read_text())
            if {k: old.get(k) for k in manifest} != manifest:
                raise ToolkitError(f"--teacher-cache {self.folder}: holds logits of another teacher or other "
                                   "frames (its manifest.json differs); use an empty folder or delete it")
        else:
            text = json.dumps(manifest) + "\n"
            atomic_write(existing, lambda tmp: tmp.write_text(text))
        todo = [i for i in range(len(frame_ids)) if not self._frame_path(i).is_file()]
        if not todo:
            return
        log.info("teacher logits: %d of %d frames to compute into %s", len(todo), len(frame_ids), self.folder)
        info = teacher_meta.dataset
        teacher.eval()
        with torch.inference_mode():
            for i in tqdm(todo, desc="teacher logits", unit="frame", disable=not progress, mininterval=2):
                image = dataset.load(i)[0]
                x = torch.from_numpy(normalize(image, info.mean, info.std))[None]
                logits = _forward_padded(teacher, x)[0]  # K H W
                hwk = logits.permute(1, 2, 0).contiguous().to(torch.float16).numpy()
                atomic_write(self._frame_path(i), lambda tmp, a=hwk: _save_npy(tmp, a))

    def __getitem__(self, index: int) -> np.ndarray:
        """HxWxK float32 logits of frame ``index``."""
        return np.asarray(np.load(self._frame_path(index), mmap_mode="r"), dtype=np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def _forward_padded(model: nn.Module, x: Tensor) -> Tensor:
    """Forward a frame of any size: pad H and W up to multiples of the model's output stride, crop back."""
    h, w = x.shape[-2:]
    hp, wp = pad_to_multiple(h, w, int(getattr(model, "output_stride", OUTPUT_STRIDE)))
    ph, pw = hp - h, wp - w
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return model(x)[..., :h, :w]


class DistillDataset(torch.utils.data.Dataset):
    """A training dataset whose items also carry the teacher's logits, augmented like the label."""

    def __init__(self, base, cache: TeacherLogitCache) -> None:
        self.base, self.cache = base, cache

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.base.load(index)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        image, label = self.base.load(index)
        transform: Callable = self.base.transform
        return transform(image, label, self.base.augment_rng(index), extra=self.cache[index])


def prepare_teacher(teacher: str, data, student_classes: tuple[str, ...], cache_dir: Path,
                    progress: bool) -> tuple[DistillDataset, str]:
    """Load the teacher checkpoint, fill the logit cache for ``data.train``; returns the wrapped dataset
    and the teacher's sha256 (for provenance)."""
    from toolkit.checkpoint import load_checkpoint

    model, meta = load_checkpoint(teacher)
    if tuple(meta.dataset.class_names) != tuple(student_classes):
        raise ToolkitError(f"--teacher {teacher}: its classes {list(meta.dataset.class_names)} differ from the "
                           f"training data's {list(student_classes)}")
    model = model.to(memory_format=torch.channels_last)
    sha = file_sha256(teacher)
    train = data.train
    frame_ids = [f"{i}:{_frame_name(train, i)}:{'x'.join(map(str, train.load(i)[0].shape[:2]))}"
                 for i in range(len(train))]
    cache = TeacherLogitCache(cache_dir)
    cache.build(model, meta, sha, train, frame_ids, progress=progress)
    return DistillDataset(train, cache), sha


def _frame_name(dataset, index: int) -> str:
    samples = getattr(dataset, "samples", None)
    return str(samples[index][0].name) if samples else f"synthetic-seed{getattr(dataset, 'seed', '')}"
