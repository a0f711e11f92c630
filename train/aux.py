"""Training-only auxiliary heads (``--aux-weight``): 1x1 classifiers on the decoder's H/4 and H/2 stages,
their losses (at the label's resolution) added to the main loss with a weight, as PSPNet/BiSeNet do, so
the inner stages get a direct gradient.

The heads live outside the model: forward hooks on ``decoder.conv3`` and ``decoder.conv2`` hand them the
stage outputs while the model trains. The model, its checkpoints and every export are therefore exactly
those of a run without them (tested); their weights travel only in ``train_state.safetensors`` for --resume.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.errors import ToolkitError

from .losses import at_label_size

STAGES = ("conv3", "conv2")  # decoder stages tapped: 2w channels at H/4, w at H/2


class AuxHeads(nn.Module):
    def __init__(self, model: nn.Module, num_classes: int, weight: float) -> None:
        super().__init__()
        if not 0 < weight <= 1:
            raise ToolkitError(f"--aux-weight {weight}: expected a weight in (0, 1], e.g. 0.4")
        decoder = getattr(model, "decoder", None)
        if decoder is None or not all(hasattr(decoder, s) for s in STAGES):
            raise ToolkitError("--aux-weight needs a SegNet decoder with conv3/conv2 stages (enhanced, segnet)")
        self.weight = weight
        self.heads = nn.ModuleDict()
        self._taps: list[Tensor] = []
        for name in STAGES:
            stage = getattr(decoder, name)
            channels = next(m for m in reversed(list(stage.modules())) if isinstance(m, nn.BatchNorm2d)).num_features
            self.heads[name] = nn.Conv2d(channels, num_classes, 1)
            stage.register_forward_hook(self._hook(name))
        self._names: list[str] = []

    def _hook(self, name: str):
        def keep(module: nn.Module, _inputs: object, output: Tensor) -> None:
            if module.training:  # validation and export never reach the heads
                self._taps.append(output)
                self._names.append(name)
        return keep

    def loss(self, criterion: nn.Module, labels: Tensor) -> Tensor:
        """weight x the mean of the heads' losses on this step's stage outputs (then forgotten)."""
        taps, names = self._taps, self._names
        self._taps, self._names = [], []
        if not taps:
            raise RuntimeError("auxiliary heads saw no stage output: was the model run in train mode?")
        losses = [criterion(at_label_size(self.heads[n](t), labels), labels) for n, t in zip(names, taps, strict=True)]
        return self.weight * torch.stack(losses).mean()
