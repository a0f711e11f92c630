"""Export in each lowering: graph shape, metadata, and ONNX Runtime vs PyTorch parity.

Tolerances (fp32, same weights): argmax agreement 100 %, max |logit difference| < 1e-4, on random
inputs and on real-looking images, at several batch sizes and H/W (all axes dynamic).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from tests.helpers.models import INPUT_SIZE, bn_folded, tiny_checkpoint, tiny_model, tiny_onnx
from toolkit.backend import make_runner
from toolkit.core.metadata import read_model_meta, read_props
from toolkit.core.names import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from toolkit.core.onnx_file import detect_lowering, load_onnx, op_counts
from toolkit.data import CamVid, SyntheticScenes, synthetic_info
from toolkit.evaluate import preprocess
from toolkit.files import file_sha256
from toolkit.models import set_unpool_mode

MAX_LOGIT_DIFF = 1e-4
SHAPES = [(1, 3, 64, 96), (3, 3, 40, 56), (2, 3, 96, 64)]
# Ops TensorRT's ONNX parser imports natively (the mask form must use nothing else).
TRT_NATIVE = {"Conv", "Relu", "MaxPool", "Add", "Concat", "Slice", "Equal", "Shape", "Mul", "Resize", "Tile",
              "Reshape", "CastLike", "Cast"}


def assert_argmax_equal(out: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """100 % argmax agreement wherever the reference's top-2 logit margin exceeds 2 * tol (a closer
    pair may swap within the allowed logit difference, so it is not a disagreement)."""
    top2 = np.sort(ref, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * tol
    assert decided.mean() > 0.5  # the check must cover most pixels
    assert np.array_equal(out.argmax(1)[decided], ref.argmax(1)[decided])


class ExportCase:
    """Shared checks; subclasses set the lowering (and the architecture, with its output stride and convs)."""

    unpool = ""
    arch = "enhanced"
    stride = 8
    convs = 12

    @pytest.fixture(scope="class")
    @classmethod
    def path(cls, tmp_path_factory: pytest.TempPathFactory):
        return tiny_onnx(tmp_path_factory, cls.unpool, cls.arch)

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls):
        return set_unpool_mode(tiny_model(arch=cls.arch), "maxunpool")

    def test_lowering_detected_and_checked(self, path) -> None:
        model = load_onnx(path)
        assert detect_lowering(model) == self.unpool
        onnx.checker.check_model(model)

    def test_convs_named_after_modules(self, path) -> None:
        names = {n.name for n in load_onnx(path).graph.node if n.op_type == "Conv"}
        assert {"encoder.stage1.0.0", "decoder.conv1.0", "head"} <= names and len(names) == self.convs

    def test_axes_dynamic(self, path) -> None:
        model = load_onnx(path)
        for v in [*model.graph.input, *model.graph.output]:
            dims = v.type.tensor_type.shape.dim
            assert [d.HasField("dim_param") for d in dims] == [True, False, True, True], v

    def test_metadata_roundtrip(self, path, tmp_path_factory) -> None:
        model = load_onnx(path)
        meta = read_model_meta(model)
        props = read_props(model)
        assert meta is not None and meta.dataset.class_names == synthetic_info().class_names
        assert meta.input_size == INPUT_SIZE and meta.width == 4 and meta.arch == self.arch
        assert meta.output_stride == self.stride and props["output_stride"] == str(self.stride)
        assert props["lowering"] == self.unpool and props["precision"] == "fp32"
        assert props["source_sha256"] == file_sha256(tiny_checkpoint(tmp_path_factory, self.arch))
        with make_runner(path) as runner:
            assert runner.meta == meta and runner.info.precision == "fp32" and runner.info.lowering == self.unpool

    @pytest.mark.parametrize("shape", SHAPES)
    def test_parity_random(self, path, reference, shape) -> None:
        n, c, h, w = shape
        shape = (n, c, h * self.stride // 8, w * self.stride // 8)  # the same multiples of the model's stride
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            ref = reference(x).numpy()
        with make_runner(path) as runner:
            out = runner.infer({"input": x.numpy()})["logits"]
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() < MAX_LOGIT_DIFF
        assert_argmax_equal(out, ref, MAX_LOGIT_DIFF)

    def _compare(self, path, model, frames, min_agreement: float = 1.0, max_diff: float = MAX_LOGIT_DIFF,
                 ) -> None:
        info = synthetic_info()
        with make_runner(path) as runner:
            for frame in frames:
                x = preprocess(frame, info.mean, info.std, stride=self.stride).tensor
                with torch.no_grad():
                    ref = model(torch.from_numpy(x)).numpy()
                out = runner.infer({"input": x})["logits"]
                if max_diff:
                    assert np.abs(out - ref).max() < max_diff
                    assert_argmax_equal(out, ref, max_diff)
                else:
                    assert (out.argmax(1) == ref.argmax(1)).mean() >= min_agreement

    def test_parity_scenes(self, path, reference) -> None:
        scenes = SyntheticScenes(4, size=INPUT_SIZE, seed=3)
        self._compare(path, reference, [scenes.load(i)[0] for i in range(2)])

    def test_parity_camvid(self, path, reference, camvid_dir) -> None:
        """Exact against the BN-folded model; near-tie argmax flips only against the unfolded one."""
        val = CamVid(camvid_dir, "val")
        rows = 184 // self.stride * self.stride  # 184x240 crops (176x240 at stride 16) keep the test fast
        frames = [val.load(i)[0][88:88 + rows, 120:360] for i in (0, 50)]
        self._compare(path, bn_folded(reference), frames)
        self._compare(path, reference, frames, min_agreement=0.9999, max_diff=0)


class TestMaxUnpool(ExportCase):
    unpool = "maxunpool"

    def test_graph(self, path) -> None:
        model = load_onnx(path)
        ops = op_counts(model)
        assert ops["MaxUnpool"] == 3 and not ops["ScatterND"] and not ops["ScatterElements"]
        with_indices = [n for n in model.graph.node if n.op_type == "MaxPool" and len(n.output) == 2]
        assert len(with_indices) == 3
        # no per-plane index conversion (the exporters' 1x1 MaxPool/Sub): indices go straight to MaxUnpool
        unpool_inputs = {n.input[1] for n in model.graph.node if n.op_type == "MaxUnpool"}
        assert unpool_inputs == {n.output[1] for n in with_indices}


class TestMask(ExportCase):
    unpool = "mask"

    def test_graph(self, path) -> None:
        model = load_onnx(path)
        ops = set(op_counts(model))
        assert ops <= TRT_NATIVE, ops - TRT_NATIVE
        assert all(len(n.output) == 1 for n in model.graph.node if n.op_type == "MaxPool")


class TestPlugin(ExportCase):
    unpool = "plugin"

    def test_graph(self, path) -> None:
        model = load_onnx(path)
        nodes = [n for n in model.graph.node if n.op_type == PLUGIN_OP_TYPE]
        assert len(nodes) == 3 and len({n.name for n in nodes}) == 3
        for n in nodes:
            attrs = {a.name: onnx.helper.get_attribute_value(a).decode() for a in n.attribute}
            assert n.domain == PLUGIN_DOMAIN and len(n.input) == 2
            assert attrs == {"plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE}
        assert any(o.domain == PLUGIN_DOMAIN for o in model.opset_import)
        assert set(op_counts(model)) - {f"{PLUGIN_DOMAIN}::{PLUGIN_OP_TYPE}"} <= TRT_NATIVE

    def test_expand_implementation_agrees(self, path) -> None:
        """The PyOp (one node) and the in-memory mask expansion give bit-identical logits."""
        x = np.random.default_rng(1).normal(size=(2, 3, 48, 64)).astype(np.float32)
        outs = []
        for impl in ("pyop", "expand"):
            with make_runner(path, plugin_impl=impl) as runner:
                assert runner.plugin_impl == impl
                outs.append(runner.infer({"input": x})["logits"])
        assert np.array_equal(outs[0], outs[1])


class S2Case:
    """The stride-2 stem design (``enhanced_s2``): the same checks in every lowering, at multiples of 16, plus
    the one thing it adds to the graph (the logits' 2x Resize) and the per-model stride in the exported model."""

    arch = "enhanced_s2"
    stride = 16
    convs = 13  # the stem

    def test_reads_full_frame(self, path) -> None:
        model = load_onnx(path)
        assert "stem.0" in {n.name for n in model.graph.node if n.op_type == "Conv"}
        assert op_counts(model)["Resize"] >= 1
        with make_runner(path) as runner:
            out = runner.infer({"input": np.zeros((1, 3, 368, 480), np.float32)})["logits"]
        assert out.shape == (1, synthetic_info().num_classes, 368, 480)

    def test_preprocess_pads_to_the_models_stride(self, path) -> None:
        """ONNX Runtime itself would run 360x480 through the dynamic graph and fail somewhere inside; the
        toolkit's preprocessing pads to the model's multiple instead (360x480 -> 368x480)."""
        frame = np.zeros((360, 480, 3), np.uint8)
        with make_runner(path) as runner:
            assert runner.meta is not None and runner.meta.output_stride == 16
            x = preprocess(frame, runner.meta.dataset.mean, runner.meta.dataset.std, stride=runner.meta.output_stride)
        assert x.tensor.shape == (1, 3, 368, 480) and x.valid_hw == (360, 480)


class TestMaxUnpoolS2(S2Case, TestMaxUnpool):
    pass


class TestMaskS2(S2Case, TestMask):
    pass


class TestPluginS2(S2Case, TestPlugin):
    pass
