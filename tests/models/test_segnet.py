"""Every architecture: shapes, the three unpool forms agreeing, input checks against the model's own output
stride, registry, complexity."""

from __future__ import annotations

import pytest
import torch

from toolkit.errors import InputShapeError, UnknownNameError
from toolkit.models import create_model, list_models, model_output_stride, set_unpool_mode
from toolkit.models.complexity import conv_macs_at, count_conv_macs, count_parameters


class ModelTestBase:
    arch = "enhanced"
    stride = 8  # the input multiple the architecture is built for

    def make(self, **kw: object) -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model(self.arch, num_classes=5, width=8, **kw).eval()

    def test_output_shape(self) -> None:
        out = self.make()(torch.randn(2, 3, 32, 48))
        assert out.shape == (2, 5, 32, 48)

    def test_output_stride_matches_registry(self) -> None:
        assert self.make().output_stride == model_output_stride(self.arch) == self.stride

    def test_unpool_forms_bit_identical(self) -> None:
        model = self.make()
        x = torch.randn(1, 3, 5 * self.stride, 8 * self.stride)  # odd multiples: every pre-pool size even
        outs = []
        for mode in ("maxunpool", "mask", "plugin"):
            set_unpool_mode(model, mode)
            with torch.no_grad():
                outs.append(model(x))
        assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])

    def test_training_gradients_identical_across_forms(self) -> None:
        grads = []
        for mode in ("maxunpool", "mask", "plugin"):
            model = self.make(unpool=mode).train()
            x = torch.randn(2, 3, 2 * self.stride, 2 * self.stride, generator=torch.Generator().manual_seed(5))
            model(x).square().mean().backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])

    def test_exportable_uses_mask(self) -> None:
        model = self.make(exportable=True)
        assert model.decoder.unpool1.mode == "mask"

    @pytest.mark.parametrize("hw", [(30, 48), (32, 50)])
    def test_rejects_non_multiple_of_8(self, hw: tuple[int, int]) -> None:
        with pytest.raises(InputShapeError, match=f"multiples of {self.stride}; pad to"):
            self.make()(torch.randn(1, 3, *hw))


class TestEnhanced(ModelTestBase):
    arch = "enhanced"

    def test_decoder_fuses(self) -> None:
        assert self.make().decoder.conv1[0].in_channels == 16  # concat F1: 2w


class TestSegNet(ModelTestBase):
    arch = "segnet"

    def test_decoder_plain(self) -> None:
        assert self.make().decoder.conv1[0].in_channels == 8


class TestEnhancedS2(ModelTestBase):
    """The stride-2 stem design: reads the full frame, encoder at H/2, output stride 16."""

    arch = "enhanced_s2"
    stride = 16

    def test_full_frame_in_full_frame_out(self) -> None:
        out = self.make()(torch.randn(1, 3, 368, 480))  # 360x480 padded to x16
        assert out.shape == (1, 5, 368, 480)

    def test_refuses_360x480_naming_the_padding(self) -> None:
        # 360 is a multiple of 8 (fine for enhanced) but not of 16: the stem would hand the pools 180 rows
        with pytest.raises(InputShapeError, match="input 360x480: H and W must be multiples of 16; pad to 368x480"):
            self.make()(torch.randn(1, 3, 360, 480))
        assert create_model("enhanced", num_classes=5, width=8).eval()(torch.randn(1, 3, 360, 480)).shape[2] == 360

    def test_encoder_runs_at_half_resolution(self) -> None:
        model, seen = self.make(), []
        model.encoder.stage1.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[2:])))
        model(torch.randn(1, 3, 64, 96))
        assert seen == [(32, 48)]

    def test_costs_the_half_size_enhanced_plus_the_stem(self) -> None:
        """Convolution work at 360x480 = enhanced's at 184x240 (the padded 180x240 resize), plus the stem's
        3->w conv at 184x240 and stage1's first conv taking w channels instead of 3."""
        s2, base = self.make(), create_model("enhanced", num_classes=5, width=8).eval()
        w, px = 8, 184 * 240
        extra = px * w * 3 * 9 + px * w * (w - 3) * 9
        assert conv_macs_at(s2, 360, 480) == conv_macs_at(base, 180, 240) + extra


def test_registry() -> None:
    assert list_models() == ["enhanced", "enhanced_s2", "segnet"]
    assert list_models("enh*") == ["enhanced", "enhanced_s2"]
    with pytest.raises(UnknownNameError, match="Did you mean 'segnet'"):
        create_model("segnat")


def test_complexity_counts_by_hand() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 1, bias=False))
    assert count_parameters(net) == 3 * 4 * 9 + 4 + 4 * 2
    assert count_conv_macs(net, (1, 3, 8, 8)) == 64 * 4 * 27 + 64 * 2 * 4


def test_enhanced_costs_more_than_baseline() -> None:
    e, s = create_model("enhanced", width=8), create_model("segnet", width=8)
    assert count_parameters(e) > count_parameters(s)
    assert count_conv_macs(e.eval(), (1, 3, 32, 32)) > count_conv_macs(s.eval(), (1, 3, 32, 32))
