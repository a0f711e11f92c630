"""Preflight on graphs that `toolkit export` really writes (tiny model): the TensorRT lowerings pass, the
indices lowering is refused. Checks the op list against the exporter rather than against hand-made graphs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from toolkit.backend.trt.preflight import preflight
from toolkit.export import onnx_export as export


@pytest.fixture(scope="module")
def tiny() -> tuple:
    from toolkit.core.meta import ModelMeta
    from toolkit.data import synthetic_info
    from toolkit.models import create_model

    info = synthetic_info()
    model = create_model("enhanced", num_classes=info.num_classes, width=4)
    return model, ModelMeta("enhanced", 4, info, input_size=(32, 48))


def test_plugin_and_mask_lowerings_pass(tiny: tuple, tmp_path: Path) -> None:
    from toolkit.export.lowering import expand_plugin_nodes

    plugin_graph = export.export_onnx(*tiny, unpool="plugin")
    no_lib = preflight(plugin_graph)
    assert len(no_lib.plugin_nodes) == 3 and not no_lib.ok and "toolkit build-plugin" in str(no_lib.issues[0])
    lib = tmp_path / "libsegnet_plugins.so"
    lib.write_bytes(b"\x7fELF")
    with_lib = preflight(plugin_graph, plugin_library=lib)
    assert with_lib.ok, with_lib.issues
    assert with_lib.inputs["input"][1] == 3 and with_lib.precision == "fp32"
    mask_graph = copy.deepcopy(plugin_graph)
    assert expand_plugin_nodes(mask_graph) == 3
    mask = preflight(mask_graph)
    assert mask.ok, mask.issues
    assert not mask.plugin_nodes and mask.op_counts["Resize"] == 9 and mask.op_counts["Equal"] == 6


@pytest.mark.slow
def test_exported_lowerings(tiny: tuple) -> None:
    assert preflight(export.export_onnx(*tiny, unpool="mask")).ok
    refused = preflight(export.export_onnx(*tiny, unpool="maxunpool"))
    assert {i.op_type for i in refused.issues} == {"MaxPool", "MaxUnpool"} and len(refused.issues) == 6
