"""A PyTorch runner whose frame path runs on the CPU: the real ``infer_frame`` and the real graph function
(``TorchRunner._frame_fn``: device preprocessing, the model, the bilinear resize to the frame, the argmax),
with only the CUDA transport (pinned copies, stream, graph replay) left out. Tests of the device logic use it
in place of a stand-in that would run the host path under another name."""

from __future__ import annotations

import numpy as np
import torch

from toolkit.backend.torch.runner import TorchRunner


class CpuFramesRunner(TorchRunner):
    """``frames_on_device`` on a CPU: ``infer_frame`` goes through ``_frame_fn`` exactly as on CUDA."""

    frame_calls: list[tuple[tuple[int, ...], tuple[int, int] | None]]

    @property
    def frames_on_device(self) -> bool:
        return True

    @property
    def on_cpu(self) -> bool:  # as the CUDA runner it stands for: the pipeline's overlay thread scales the maps
        return False

    def _on_device(self, kind: str, key: tuple, host: np.ndarray) -> np.ndarray:
        if kind != "frames":
            return super()._on_device(kind, key, host)
        *frame_shape, out_hw = key
        self.frame_calls = [*getattr(self, "frame_calls", []), (tuple(frame_shape), out_hw)]
        with torch.inference_mode():
            return self._frame_fn(tuple(frame_shape[:2]), out_hw)(torch.from_numpy(np.ascontiguousarray(host))).numpy()
