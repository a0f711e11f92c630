"""Fixtures for the serving tests: a tiny random checkpoint and its ONNX export (helpers: tests/helpers/serve.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A width-4 random enhanced SegNet on the synthetic label space, input size 64x96."""
    import torch

    from toolkit.checkpoint import save_checkpoint
    from toolkit.core.meta import ModelMeta
    from toolkit.data import synthetic_info
    from toolkit.models import create_model

    torch.manual_seed(0)
    info = synthetic_info()
    model = create_model("enhanced", num_classes=info.num_classes, width=4).eval()
    return save_checkpoint(tmp_path_factory.mktemp("serve") / "tiny.safetensors", model,
                           ModelMeta("enhanced", 4, info, input_size=(64, 96)))


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint as ONNX: through toolkit.export where it is installed, else a plain torch export."""
    from toolkit.checkpoint import load_checkpoint

    model, meta = load_checkpoint(tiny_checkpoint)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    try:
        from toolkit.core.onnx_file import save_onnx
        from toolkit.export import export_onnx
    except ImportError:
        export_onnx = None
    if export_onnx is not None:
        save_onnx(export_onnx(model, meta, unpool="mask", do_simplify=False), path)
    else:  # pragma: no cover - the exporter ships with the toolkit
        import torch

        from toolkit.models import set_unpool_mode

        set_unpool_mode(model, "mask")
        torch.onnx.export(model, torch.zeros(1, 3, 64, 96), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                          dynamo=False)
    return path
