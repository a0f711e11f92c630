"""Frame -> class map through any runner, and whole-split evaluation with the one metrics module.

Used by ``eval``, ``parity``, training's validation and ``infer`` alike, so every number is computed the
same way: the frame is resized to the model's input size (if it has one and differs), padded to a multiple of 8, run,
cropped, and the logits are resized back to the label's resolution before the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.backend.base import BaseRunner
from toolkit.core.dataset import SegDataset
from toolkit.core.meta import ModelMeta
from toolkit.core.names import INPUT_NAME, OUTPUT_STRIDE
from toolkit.core.shapes import pad_to_multiple
from toolkit.data.transforms import normalize
from toolkit.errors import ToolkitError
from toolkit.metrics import ConfusionMatrix, SegScores


@dataclass
class Preprocessed:
    """A normalised, padded batch of one frame and how to undo the geometry."""

    tensor: np.ndarray  # 1 x 3 x Hp x Wp float32
    valid_hw: tuple[int, int]  # region of the padded tensor holding the (resized) frame
    source_hw: tuple[int, int]  # the frame's original size


def preprocess(image_rgb: np.ndarray, mean: Sequence[float], std: Sequence[float],
               input_size: tuple[int, int] | None = None, stride: int = OUTPUT_STRIDE) -> Preprocessed:
    """RGB uint8 frame -> model input: optional resize, normalise, zero-pad bottom/right to a multiple of the
    model's output ``stride`` (``ModelMeta.output_stride``: 8, or 16 for a stride-2 stem)."""
    src_hw = image_rgb.shape[:2]
    if input_size is not None and tuple(input_size) != tuple(src_hw):
        h, w = input_size
        interp = cv2.INTER_AREA if h < src_hw[0] else cv2.INTER_LINEAR
        image_rgb = cv2.resize(image_rgb, (w, h), interpolation=interp)
    x = normalize(image_rgb, mean, std)
    h, w = x.shape[1:]
    hp, wp = pad_to_multiple(h, w, stride)
    ph, pw = hp - h, wp - w
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
    return Preprocessed(x[None], (h, w), src_hw)


def postprocess_logits(logits: np.ndarray, pre: Preprocessed, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """1 x K x Hp x Wp logits -> K x H x W float32 at ``out_hw`` (default: the source frame size)."""
    h, w = pre.valid_hw
    lg = logits[0, :, :h, :w]
    oh, ow = out_hw or pre.source_hw
    if (oh, ow) != (h, w):
        lg = cv2.resize(np.ascontiguousarray(lg.transpose(1, 2, 0)), (ow, oh), interpolation=cv2.INTER_LINEAR)
        lg = lg.transpose(2, 0, 1) if lg.ndim == 3 else lg[None]
    return np.ascontiguousarray(lg, dtype=np.float32)


def class_map_at_size(logits: np.ndarray, pre: Preprocessed, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """1 x K x Hp x Wp logits -> uint8 H x W class map at ``out_hw`` (default: the frame size), in bounded memory.

    ``postprocess_logits(...).argmax(0)`` holds K float32 planes at the frame's size (44 bytes a pixel for 11
    classes, plus the argmax's copy); this resizes one class plane at a time and keeps a running maximum
    (about 10 bytes a pixel), the server's way for large frames. Same interpolation, same first-index tie rule;
    OpenCV's one-channel resize rounds differently from its K-channel one in the last bit, so a pixel whose two
    best classes tie within float rounding can differ (measured: 5 in a million on random logits,
    tests/serve/test_limits.py)."""
    h, w = pre.valid_hw
    oh, ow = out_hw or pre.source_hw
    planes = logits[0, :, :h, :w]
    if (oh, ow) == (h, w):
        return planes.argmax(0).astype(np.uint8)
    best = np.empty((oh, ow), np.float32)
    plane = np.empty((oh, ow), np.float32)  # resized into, so one plane is alive at a time
    out = np.zeros((oh, ow), np.uint8)
    more = np.empty((oh, ow), bool)
    for k in range(planes.shape[0]):
        src = np.ascontiguousarray(planes[k], dtype=np.float32)
        cv2.resize(src, (ow, oh), dst=best if k == 0 else plane, interpolation=cv2.INTER_LINEAR)
        if k == 0:
            continue
        np.greater(plane, best, out=more)
        out[more] = k
        np.maximum(best, plane, out=best)
    return out


def predict_logits(runner: BaseRunner, image_rgb: np.ndarray, mean: Sequence[float], std: Sequence[float],
                   input_size: tuple[int, int] | None = None, stride: int = OUTPUT_STRIDE) -> np.ndarray:
    """K x H x W logits for one RGB frame at its own resolution."""
    pre = preprocess(image_rgb, mean, std, input_size, stride)
    (logits,) = runner.infer({INPUT_NAME: pre.tensor}).values()
    return postprocess_logits(logits, pre)


def iter_frames(dataset: SegDataset, indices: Iterable[int] | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8, label) pairs of a SegDataset (CamVid, SyntheticScenes, a FrameSet)."""
    for i in indices if indices is not None else range(len(dataset)):
        yield dataset.load(i)


FrameHook = Callable[[int, np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]], None]


def evaluate_split(runners: Sequence[BaseRunner], dataset: SegDataset, metas: Sequence[ModelMeta] | None = None,
                   progress: bool = False, desc: str = "eval", on_frame: FrameHook | None = None
                   ) -> list[ConfusionMatrix]:
    """Every frame of a split through every (active) runner, one confusion matrix per runner.

    The one split loop of ``toolkit eval``, the parity Comparator and training's validation, so their numbers
    agree. Each runner gets the frame with its own normalisation and input size (``metas``, default each
    runner's ``meta``) and is scored at the labels' full resolution in the label space of ``metas[0]``.
    ``on_frame(index, image, label, logits, class_maps)`` sees every frame's outputs (the Comparator measures
    agreement and drift there)."""
    from tqdm import tqdm

    metas = list(metas) if metas is not None else [_meta(r) for r in runners]
    k, ignore = metas[0].num_classes, metas[0].dataset.ignore_index
    cms = [ConfusionMatrix(k, ignore) for _ in runners]
    frames = tqdm(iter_frames(dataset), total=len(dataset), disable=not progress, desc=desc, unit="img",
                  leave=False)
    for index, (image, label) in enumerate(frames):
        logits = [predict_logits(r, image, m.dataset.mean, m.dataset.std, m.input_size, m.output_stride)
                  for r, m in zip(runners, metas, strict=True)]
        for r, lg in zip(runners, logits, strict=True):
            if lg.shape[0] != k:
                raise ToolkitError(f"'{r.name}' outputs {lg.shape[0]} classes, {runners[0].name} {k}: compare "
                                   "models of the same label space")
        maps = [lg.argmax(0) for lg in logits]
        for cm, m in zip(cms, maps, strict=True):
            cm.update(m, label)
        if on_frame is not None:
            on_frame(index, image, label, logits, maps)
    return cms


def _meta(runner: BaseRunner) -> ModelMeta:
    if runner.meta is None:
        raise ToolkitError(f"{runner.name}: carries no toolkit metadata (classes, normalisation, input size); "
                           "evaluate its source checkpoint, or compare backends with `toolkit parity`")
    return runner.meta


def open_split(data: str | Path, split: str = "val", limit: int | None = None) -> SegDataset:
    """A CamVid-layout folder's split, or ``synthetic``: the validation scenes ``toolkit train --data
    synthetic`` uses (seed 0)."""
    from toolkit.data import CamVid, SyntheticScenes
    from toolkit.data.synthetic import SYNTHETIC_SIZE, SYNTHETIC_VAL, SYNTHETIC_VAL_SEED_OFFSET

    if str(data) == "synthetic":
        return SyntheticScenes(limit or SYNTHETIC_VAL, size=SYNTHETIC_SIZE, seed=SYNTHETIC_VAL_SEED_OFFSET)
    return CamVid(data, split, limit=limit)


def evaluate_model(model: str | Path | None, data: str | Path, split: str = "val", device: str = "cpu",
                   limit: int | None = None, progress: bool = False
                   ) -> tuple[SegScores, np.ndarray, ModelMeta, SegDataset]:
    """(scores, confusion matrix, ModelMeta, dataset) of one model file on one split (``toolkit eval``, tools)."""
    from toolkit.backend import make_runner
    from toolkit.errors import DatasetError

    ds = open_split(data, split, limit)
    with make_runner(model, device=device) as runner:
        meta = runner.meta
        if meta is None:
            raise ToolkitError(f"{model}: carries no toolkit metadata (classes, normalisation, input size); "
                               "evaluate its source checkpoint, or compare backends with `toolkit parity`")
        info = ds.info
        if meta.dataset.class_names != info.class_names:
            raise DatasetError(f"model classes {list(meta.dataset.class_names)} differ from the dataset's "
                               f"{list(info.class_names)}: evaluate on the data it was trained for")
        (cm,) = evaluate_split([runner], ds, [meta], progress=progress)
    return cm.scores(), cm.matrix, meta, ds
