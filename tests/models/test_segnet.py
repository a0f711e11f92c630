"""Both architectures: shapes, the three unpool forms agreeing, input checks, registry, complexity."""

from __future__ import annotations

import pytest
import torch

from toolkit.errors import InputShapeError, UnknownNameError
from toolkit.models import create_model, list_models, set_unpool_mode
from toolkit.models.complexity import count_conv_macs, count_parameters


class ModelTestBase:
    arch = "enhanced"

    def make(self, **kw: object) -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model(self.arch, num_classes=5, width=8, **kw).eval()

    def test_output_shape(self) -> None:
        out = self.make()(torch.randn(2, 3, 32, 48))
        assert out.shape == (2, 5, 32, 48)

    def test_unpool_forms_bit_identical(self) -> None:
        model = self.make()
        x = torch.randn(1, 3, 40, 64)
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
            model(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))).square().mean().backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])

    def test_exportable_uses_mask(self) -> None:
        model = self.make(exportable=True)
        assert model.decoder.unpool1.mode == "mask"

    @pytest.mark.parametrize("hw", [(30, 48), (32, 50)])
    def test_rejects_non_multiple_of_8(self, hw: tuple[int, int]) -> None:
        with pytest.raises(InputShapeError, match="multiples of 8; pad to"):
            self.make()(torch.randn(1, 3, *hw))


class TestEnhanced(ModelTestBase):
    arch = "enhanced"

    def test_decoder_fuses(self) -> None:
        assert self.make().decoder.conv1[0].in_channels == 16  # concat F1: 2w


class TestSegNet(ModelTestBase):
    arch = "segnet"

    def test_decoder_plain(self) -> None:
        assert self.make().decoder.conv1[0].in_channels == 8


def test_registry() -> None:
    assert list_models() == ["enhanced", "segnet"]
    assert list_models("enh*") == ["enhanced"]
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
