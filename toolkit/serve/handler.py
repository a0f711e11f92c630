"""What the server does with one batch of requests, free of Triton so it is testable on its own.

Two models are served from one runner:
- the frame model: ``image`` uint8 N x H x W x 3 (RGB or BGR, as the model config's ``color_order`` says)
  -> ``classes`` uint8 N x H x W and, when the client asks for it, ``logits`` float32 N x K x H x W.
  Each frame goes through exactly what ``infer`` does (``toolkit.evaluate.preprocess`` -> runner ->
  ``postprocess_logits`` -> argmax), so a frame of any size is resized to the model's input size and the
  class map comes back at the frame's own size. On a runner with ``frames_on_device`` (PyTorch on CUDA)
  a request without logits runs those steps in the runner's CUDA graph instead (``infer_frame``).
- the tensor model: ``input`` float32 N x 3 x H x W (normalised, H and W multiples of the model's output
  stride, 8 or 16) -> ``logits``, the same I/O as the exported ONNX model, so a remote runner sees what a
  local one sees.

Triton's dynamic batcher hands several requests over at once; frames of one call are stacked into
batches of at most ``max_batch`` and run together.

Every request is held to the server's ``RequestLimits`` (``toolkit.core.limits``) on its shape alone,
before any of it is processed; a class map without logits is made one class plane at a time
(``class_map_at_size``), so a large frame costs about 10 bytes a pixel instead of the 44+ of full-size
float logits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from toolkit.backend.base import BaseRunner, FrameRunner, frame_runner
from toolkit.core.limits import RequestLimits
from toolkit.core.meta import ModelMeta
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
from toolkit.core.shapes import check_multiple
from toolkit.errors import InputShapeError, ToolkitError
from toolkit.evaluate import Preprocessed, class_map_at_size, postprocess_logits, preprocess

log = logging.getLogger(__name__)

IMAGE_NAME = "image"
CLASSES_NAME = "classes"
COLOR_ORDERS = ("rgb", "bgr")


class SegmentationHandler:
    """Turns the inputs of a list of requests into their outputs through one active runner."""

    def __init__(self, runner: BaseRunner, meta: ModelMeta, color: str = "rgb", max_batch: int = 8,
                 limits: RequestLimits | None = None) -> None:
        if color not in COLOR_ORDERS:
            raise ToolkitError(f"color order '{color}': expected one of {', '.join(COLOR_ORDERS)}")
        if meta.num_classes > 255:
            raise ToolkitError(f"{meta.num_classes} classes do not fit the uint8 class map (at most 255)")
        self.runner, self.meta, self.color, self.max_batch = runner, meta, color, max(1, max_batch)
        self.limits = limits or RequestLimits()

    # -- frames -----------------------------------------------------------------------------------
    def infer_frames(self, images: Sequence[np.ndarray], want_logits: Sequence[bool]) -> list[dict[str, np.ndarray]]:
        """One output dict per request; request i holds images[i], an N x H x W x 3 uint8 array."""
        frames: list[np.ndarray] = []
        for arr, want in zip(images, want_logits, strict=True):  # every request checked before any is processed
            self._check_frames(arr)
            self.limits.check_frames(arr.shape, self.meta.num_classes, want)
        for arr in images:
            frames.extend(arr[:, :, :, ::-1] if self.color == "bgr" else arr)
        on_device = frame_runner(self.runner)
        if on_device is not None and not any(want_logits):
            return self._class_maps_on_device(on_device, images, frames)
        ds = self.meta.dataset
        pres = [preprocess(np.ascontiguousarray(f), ds.mean, ds.std, self.meta.input_size, self.meta.output_stride)
                for f in frames]
        logits = self._run([p.tensor for p in pres])
        outs, i = [], 0
        for arr, want in zip(images, want_logits, strict=True):
            if want:  # logits at the frame's size were asked for (bounded by --max-logits-mb)
                per_frame = [self._post(logits[i + j], pres[i + j]) for j in range(len(arr))]
                out = {CLASSES_NAME: np.stack([lg.argmax(0).astype(np.uint8) for lg in per_frame]),
                       OUTPUT_NAME: np.stack(per_frame)}
            else:
                out = {CLASSES_NAME: np.stack([class_map_at_size(logits[i + j][None], pres[i + j])
                                               for j in range(len(arr))])}
            i += len(arr)
            outs.append(out)
        return outs

    @staticmethod
    def _class_maps_on_device(runner: FrameRunner, images: Sequence[np.ndarray],
                              frames: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """A GPU runner that takes frames (PyTorch on CUDA): each frame up as uint8, its class map at the frame's
        size back, resize/normalise/argmax in the runner's CUDA graph; no logits leave the GPU. Frame by frame:
        one captured graph per frame size does what the host batches for."""
        maps = [runner.infer_frame(np.ascontiguousarray(f), at_frame_size=True) for f in frames]
        outs, i = [], 0
        for arr in images:
            outs.append({CLASSES_NAME: np.stack(maps[i:i + len(arr)])})
            i += len(arr)
        return outs

    @staticmethod
    def _post(logits: np.ndarray, pre: Preprocessed) -> np.ndarray:
        return postprocess_logits(logits[None], pre)

    @staticmethod
    def _check_frames(arr: np.ndarray) -> None:
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            raise InputShapeError(f"'{IMAGE_NAME}': got {arr.dtype} {'x'.join(map(str, arr.shape))}; expected "
                                  "uint8 N x H x W x 3 frames")
        if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
            raise InputShapeError(f"'{IMAGE_NAME}': empty frame batch {'x'.join(map(str, arr.shape))}; "
                                  "send at least one frame of at least 1x1 pixels")

    # -- tensors ----------------------------------------------------------------------------------
    def infer_tensors(self, tensors: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """One output dict per request; request i holds an N x 3 x H x W float32 normalised batch."""
        for arr in tensors:
            if arr.dtype != np.float32 or arr.ndim != 4 or arr.shape[1] != 3 or arr.shape[0] == 0:
                raise InputShapeError(f"'{INPUT_NAME}': got {arr.dtype} {'x'.join(map(str, arr.shape))}; "
                                      "expected float32 N x 3 x H x W with N >= 1")
            check_multiple(arr.shape[2], arr.shape[3], self.meta.output_stride, what=f"'{INPUT_NAME}'")
            self.limits.check_tensors(arr.shape, self.meta.num_classes)
        logits = self._run([t[i:i + 1] for t in tensors for i in range(len(t))])
        outs, i = [], 0
        for arr in tensors:
            outs.append({OUTPUT_NAME: np.stack(logits[i:i + len(arr)])})
            i += len(arr)
        return outs

    # -- shared -----------------------------------------------------------------------------------
    def _run(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """Run 1 x 3 x H x W items in batches of equal shape, at most max_batch each; logits per item."""
        out: list[np.ndarray | None] = [None] * len(items)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for idx, item in enumerate(items):
            by_shape.setdefault(item.shape, []).append(idx)
        for idxs in by_shape.values():
            for start in range(0, len(idxs), self.max_batch):
                chunk = idxs[start:start + self.max_batch]
                batch = items[chunk[0]] if len(chunk) == 1 else np.concatenate([items[k] for k in chunk])
                (logits,) = self.runner.infer({INPUT_NAME: batch}).values()
                for j, k in enumerate(chunk):
                    out[k] = logits[j]
        done = [o for o in out if o is not None]
        assert len(done) == len(items)  # every item belongs to one shape group
        return done
