"""SegNet with residual decoder fusions (``enhanced``), its plain-SegNet baseline (``segnet``) and the CPU design
that reads the full frame through a stride-2 stem (``enhanced_s2``).

Encoder -> decoder -> head, as in segmentation_models.pytorch. The encoder returns the three pre-pool
features F1 (w, HxW), F2 (2w, H/2), F3 (4w, H/4), the bottleneck F4 (4w, H/8) and the pool indices.
The enhanced decoder unpools, adds the same-scale encoder feature, convolves 4w->2w->w and at full
size concatenates F1 (2w) before the classifier; the baseline does the same without the additions
and the concatenation. ``enhanced_s2`` puts a stride-2 conv stem (3 -> w) in front of the same encoder, so
F1 is at H/2 and the logits are upsampled 2x (bilinear) at the end: its output stride is 16, not 8, and
every consumer reads it from the model (``output_stride``) or its metadata. Every choice the paper leaves
open is written down in docs/MODEL.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import check_multiple
from toolkit.errors import InputShapeError
from toolkit.models.registry import register_model
from toolkit.models.unpool import MaxPool2x2, Unpool2x2, UnpoolMode


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """conv3x3 (no bias, BN follows) - BatchNorm - ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def check_input_hw(h: int, w: int, stride: int = OUTPUT_STRIDE) -> None:
    """Refuse H or W that are not multiples of the model's output stride (8 unless the model says otherwise),
    naming the padded shape."""
    check_multiple(h, w, stride, hint=" (toolkit infer pads automatically)")


@dataclass
class EncoderFeatures:
    """What the encoder hands the decoder: pre-pool features, bottleneck and pool indices."""

    f1: Tensor
    f2: Tensor
    f3: Tensor
    f4: Tensor
    indices: tuple[Tensor | None, Tensor | None, Tensor | None]


class SegNetEncoder(nn.Module):
    """Three conv stages with 2x2 max-pools that keep their indices, then a bottleneck at H/8."""

    def __init__(self, width: int = 64, in_channels: int = 3, unpool: UnpoolMode = "maxunpool") -> None:
        super().__init__()
        w = width
        self.stage1 = nn.Sequential(conv_block(in_channels, w), conv_block(w, w))
        self.stage2 = nn.Sequential(conv_block(w, 2 * w), conv_block(2 * w, 2 * w))
        self.stage3 = nn.Sequential(conv_block(2 * w, 4 * w), conv_block(4 * w, 4 * w))
        self.bottleneck = nn.Sequential(conv_block(4 * w, 4 * w), conv_block(4 * w, 4 * w))
        self.pool1, self.pool2, self.pool3 = (MaxPool2x2(unpool) for _ in range(3))
        self.out_channels = (w, 2 * w, 4 * w, 4 * w)
        self.output_stride = OUTPUT_STRIDE

    def forward(self, x: Tensor) -> EncoderFeatures:
        f1 = self.stage1(x)
        p1, i1 = self.pool1(f1)
        f2 = self.stage2(p1)
        p2, i2 = self.pool2(f2)
        f3 = self.stage3(p2)
        p3, i3 = self.pool3(f3)
        f4 = self.bottleneck(p3)
        return EncoderFeatures(f1, f2, f3, f4, (i1, i2, i3))


class SegNetDecoder(nn.Module):
    """Unpool with the encoder's indices; ``fuse`` adds same-scale features and concatenates F1."""

    def __init__(self, width: int = 64, fuse: bool = True, unpool: UnpoolMode = "maxunpool") -> None:
        super().__init__()
        w = width
        self.fuse = fuse
        self.unpool3, self.unpool2, self.unpool1 = (Unpool2x2(unpool) for _ in range(3))
        self.conv3 = conv_block(4 * w, 2 * w)
        self.conv2 = conv_block(2 * w, w)
        self.conv1 = conv_block(2 * w if fuse else w, w)
        self.out_channels = w

    def forward(self, f: EncoderFeatures) -> Tensor:
        i1, i2, i3 = f.indices
        d = self.unpool3(f.f4, f.f3, i3)
        d = self.conv3(d + f.f3 if self.fuse else d)
        d = self.unpool2(d, f.f2, i2)
        d = self.conv2(d + f.f2 if self.fuse else d)
        d = self.unpool1(d, f.f1, i1)
        if self.fuse:
            d = torch.cat([d + f.f1, f.f1], dim=1)
        return self.conv1(d)


class SegNet(nn.Module):
    """[stride-2 stem ->] encoder -> decoder -> 1x1 classifier [-> 2x bilinear upsample]; input N x 3 x H x W
    with H, W multiples of ``output_stride`` (8, or 16 with the stem)."""

    def __init__(
        self, num_classes: int = 11, width: int = 64, fuse: bool = True, unpool: UnpoolMode = "maxunpool",
        stem: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.width, self.fuse = num_classes, width, fuse
        # conv3x3/2 - BN - ReLU on the full frame: a learned 2x downsampling in place of resizing the frame
        self.stem = conv_block(3, width, stride=2) if stem else None
        self.encoder = SegNetEncoder(width, in_channels=width if stem else 3, unpool=unpool)
        self.decoder = SegNetDecoder(width, fuse=fuse, unpool=unpool)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)
        self.output_stride = self.encoder.output_stride * (2 if stem else 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.compiler.is_exporting()):
            if x.dim() != 4 or x.shape[1] != 3:
                raise InputShapeError(f"input {tuple(x.shape)}: expected N x 3 x H x W")
            check_input_hw(int(x.shape[2]), int(x.shape[3]), self.output_stride)
        if self.stem is None:
            return self.head(self.decoder(self.encoder(x)))
        # the 1x1 head and bilinear resampling are both linear (weights sum to 1): upsampling the K logits
        # equals upsampling the w features first, at K/w of the cost
        logits = self.head(self.decoder(self.encoder(self.stem(x))))
        return F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)


# per-variant configs (timm style): the factories below differ only in these
_CONFIGS: dict[str, dict[str, bool]] = {
    "enhanced": {"fuse": True, "stem": False},
    "segnet": {"fuse": False, "stem": False},
    "enhanced_s2": {"fuse": True, "stem": True},
}


def _create_segnet(variant: str, num_classes: int, width: int = 64, unpool: UnpoolMode = "maxunpool",
                   exportable: bool = False) -> SegNet:
    return SegNet(num_classes, width=width, unpool="mask" if exportable else unpool, **_CONFIGS[variant])


@register_model
def enhanced(num_classes: int = 11, width: int = 64, unpool: UnpoolMode = "maxunpool",
             exportable: bool = False) -> SegNet:
    """The paper's SegNet with residual fusions (add F3, F2, F1) and the F1 concatenation."""
    return _create_segnet("enhanced", num_classes, width, unpool, exportable)


@register_model
def segnet(num_classes: int = 11, width: int = 64, unpool: UnpoolMode = "maxunpool",
           exportable: bool = False) -> SegNet:
    """Plain SegNet decoding at the same widths: the baseline the paper compares against."""
    return _create_segnet("segnet", num_classes, width, unpool, exportable)


@register_model(output_stride=2 * OUTPUT_STRIDE)
def enhanced_s2(num_classes: int = 11, width: int = 64, unpool: UnpoolMode = "maxunpool",
                exportable: bool = False) -> SegNet:
    """``enhanced`` behind a stride-2 conv stem that reads the full frame (the CPU design of issue 22): the
    encoder runs at H/2 (the cost of ``enhanced`` on a 2x-resized frame), the logits are upsampled 2x.
    Output stride 16: a 360x480 frame is padded to 368x480."""
    return _create_segnet("enhanced_s2", num_classes, width, unpool, exportable)
