"""SegNet with residual decoder fusions (``enhanced``) and its plain-SegNet baseline (``segnet``).

Encoder -> decoder -> head, as in segmentation_models.pytorch. The encoder returns the three pre-pool
features F1 (w, HxW), F2 (2w, H/2), F3 (4w, H/4), the bottleneck F4 (4w, H/8) and the pool indices.
The enhanced decoder unpools, adds the same-scale encoder feature, convolves 4w->2w->w and at full
size concatenates F1 (2w) before the classifier; the baseline does the same without the additions
and the concatenation. Every choice the paper leaves open is written down in docs/MODEL.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import pad_to_multiple
from toolkit.errors import InputShapeError
from toolkit.models.registry import register_model
from toolkit.models.unpool import MaxPool2x2, Unpool2x2, UnpoolMode


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """conv3x3 (no bias, BN follows) - BatchNorm - ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def check_input_hw(h: int, w: int) -> None:
    """Refuse H or W that are not multiples of the output stride, naming the padded shape."""
    if h % OUTPUT_STRIDE or w % OUTPUT_STRIDE:
        ph, pw = pad_to_multiple(h, w)
        raise InputShapeError(
            f"input {h}x{w}: H and W must be multiples of {OUTPUT_STRIDE}; pad to {ph}x{pw} "
            "(toolkit infer pads automatically)"
        )


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
    """Encoder -> decoder -> 1x1 classifier; input N x 3 x H x W with H, W multiples of 8."""

    def __init__(
        self, num_classes: int = 11, width: int = 64, fuse: bool = True, unpool: UnpoolMode = "maxunpool"
    ) -> None:
        super().__init__()
        self.num_classes, self.width, self.fuse = num_classes, width, fuse
        self.encoder = SegNetEncoder(width, unpool=unpool)
        self.decoder = SegNetDecoder(width, fuse=fuse, unpool=unpool)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)
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
            check_input_hw(int(x.shape[2]), int(x.shape[3]))
        return self.head(self.decoder(self.encoder(x)))


def _create_segnet(fuse: bool, num_classes: int, width: int = 64, unpool: UnpoolMode = "maxunpool",
                   exportable: bool = False) -> SegNet:
    return SegNet(num_classes, width=width, fuse=fuse, unpool="mask" if exportable else unpool)


@register_model
def enhanced(num_classes: int = 11, width: int = 64, unpool: UnpoolMode = "maxunpool",
             exportable: bool = False) -> SegNet:
    """The paper's SegNet with residual fusions (add F3, F2, F1) and the F1 concatenation."""
    return _create_segnet(True, num_classes, width, unpool, exportable)


@register_model
def segnet(num_classes: int = 11, width: int = 64, unpool: UnpoolMode = "maxunpool",
           exportable: bool = False) -> SegNet:
    """Plain SegNet decoding at the same widths: the baseline the paper compares against."""
    return _create_segnet(False, num_classes, width, unpool, exportable)
