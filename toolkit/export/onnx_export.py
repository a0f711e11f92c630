"""PyTorch -> ONNX for the three unpooling lowerings, through torch's dynamo exporter.

- ``maxunpool``: MaxPool with its Indices output feeding ONNX MaxUnpool. Both ends are written by our
  own translations (``aten.max_pool2d_with_indices`` -> MaxPool, ``aten.max_unpool2d`` -> MaxUnpool), so
  the indices stay in ONNX's layout (flattened over N*C*H*W) from producer to consumer and no conversion
  to PyTorch's per-plane layout is needed; the exporter's own path writes ScatterND plus that conversion.
  TensorRT rejects MaxPool's second output, so this form is for ONNX Runtime.
- ``plugin``: ``segnet::mask_unpool`` -> one ``trt.plugins::SegNetMaskUnpool`` node per unpooling.
- ``mask``: the plugin export with every plugin node expanded into its marked indices-free subgraph
  (``toolkit.export.lowering``), so quantization can run on it and the nodes can be swapped back.

Batch and H/W are dynamic by default and checked after export (an exporter that silently pins the
batch to the sample's size is caught here, not in TensorRT).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from toolkit.checkpoint import load_checkpoint
from toolkit.core import defaults
from toolkit.core.loader import BaseLoader, resolve
from toolkit.core.meta import ModelMeta
from toolkit.core.metadata import meta_props, write_props
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME, OUTPUT_STRIDE, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION
from toolkit.core.onnx_file import detect_lowering
from toolkit.core.shapes import pad_to_multiple
from toolkit.errors import ToolkitError, UnknownNameError, suggest
from toolkit.export.lowering import expand_plugin_nodes, plugin_nodes, register_plugin_schema
from toolkit.export.onnx_io import check_model, simplify
from toolkit.files import file_sha256
from toolkit.models.unpool import check_unpool_mode, set_unpool_mode

log = logging.getLogger(__name__)

DEFAULT_OPSET = defaults.ONNX_OPSET
DYNAMIC_AXES = ("batch", "hw")


def parse_dynamic(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """'batch,hw' -> ('batch', 'hw'); '' or 'none' -> () (fully static)."""
    if text is None:
        return DYNAMIC_AXES
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if items in (["none"], []):
        return ()
    for item in items:
        if item not in DYNAMIC_AXES:
            raise UnknownNameError(f"unknown dynamic axis '{item}': {suggest(item, [*DYNAMIC_AXES, 'none'])}")
    return tuple(dict.fromkeys(items))


def _translations() -> dict:
    """Custom ONNX translations for the unpooling ops (onnxscript functions)."""
    import onnxscript
    from onnxscript import opset18 as op

    register_plugin_schema()
    trt = onnxscript.values.Opset(PLUGIN_DOMAIN, int(PLUGIN_VERSION))

    def mask_unpool_plugin(x, y):  # type: ignore[no-untyped-def]
        return trt.SegNetMaskUnpool(x, y, plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE)

    def max_pool_with_indices(x, kernel_size, stride=(), padding=(0, 0), dilation=(1, 1),  # type: ignore[no-untyped-def]
                              ceil_mode=False):
        if list(kernel_size) != [2, 2] or list(stride or kernel_size) != [2, 2] or any(padding) or ceil_mode:
            raise ValueError("only the 2x2/2 pooling of SegNet is supported by the maxunpool lowering")
        y, indices = op.MaxPool(x, kernel_shape=[2, 2], strides=[2, 2])
        return y, indices

    def max_unpool(y, indices, output_size):  # type: ignore[no-untyped-def]
        # H and W are multiples of 8, so every pre-pool size is even and MaxUnpool's default output
        # size (2 * input) is the pre-pool size: no output_shape input needed.
        return op.MaxUnpool(y, indices, kernel_shape=[2, 2], strides=[2, 2])

    return {torch.ops.segnet.mask_unpool.default: mask_unpool_plugin,
            torch.ops.aten.max_pool2d_with_indices.default: max_pool_with_indices,
            torch.ops.aten.max_unpool2d.default: max_unpool}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs progress and warnings meant for its developers; keep them in debug."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript", "onnx_ir",
                                              "onnxslim")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _sample_hw(meta: ModelMeta) -> tuple[int, int]:
    return pad_to_multiple(*meta.input_size)


def _torch_export(model: nn.Module, sample: torch.Tensor, dynamic: tuple[str, ...], opset: int) -> onnx.ModelProto:
    from torch.export import Dim

    dims: dict[int, object] = {}
    if "batch" in dynamic:
        dims[0] = Dim("batch", min=1, max=1024)
    if "hw" in dynamic:
        dims[2] = OUTPUT_STRIDE * Dim("h8", min=1, max=1024)
        dims[3] = OUTPUT_STRIDE * Dim("w8", min=1, max=1024)
    with _quiet_exporter():
        try:
            program = torch.onnx.export(
                model, (sample,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes={"x": dims} if dims else None,
                custom_translation_table=_translations(), optimize=True, verbose=False)
        except Exception as e:  # the exporter wraps everything in its own error types
            if _caused_by_interrupt(e):  # Ctrl-C, wrapped: the CLI reports an interruption (exit 130)
                raise KeyboardInterrupt from None
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ToolkitError(f"ONNX export failed: {first}") from e
    return program.model_proto


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in the chain of causes (the exporter re-raises its own type)."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _check_dynamic(model: onnx.ModelProto, dynamic: tuple[str, ...]) -> None:
    """Refuse a graph whose I/O pins an axis that was asked to be dynamic."""
    for v in [*model.graph.input, *model.graph.output]:
        dims = v.type.tensor_type.shape.dim
        want = ([0] if "batch" in dynamic else []) + ([2, 3] if "hw" in dynamic else [])
        pinned = [i for i in want if i < len(dims) and dims[i].HasField("dim_value")]
        if pinned:
            raise ToolkitError(f"exported '{v.name}' has static axes {pinned} although dynamic "
                               f"{', '.join(dynamic)} was requested (exporter bug); not writing it")


def _name_convs(model: onnx.ModelProto) -> None:
    """Name each Conv after its PyTorch module (``encoder.stage1.0.0``, ``head``) rather than the exporter's
    ``node_Conv_158``, so ``quantize --exclude`` and sensitivity reports speak the model's language."""
    taken = {n.name for n in model.graph.node}
    for n in model.graph.node:
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1].endswith(".weight"):
            name = n.input[1][: -len(".weight")]
            if name not in taken:
                taken.discard(n.name)
                n.name = name
                taken.add(name)


def export_onnx(model: nn.Module, meta: ModelMeta, unpool: str = "mask", opset: int = DEFAULT_OPSET,
                dynamic: Sequence[str] = DYNAMIC_AXES, do_simplify: bool = True,
                source_sha256: str = "") -> onnx.ModelProto:
    """The model as a checked ONNX graph in the chosen lowering, with its metadata."""
    check_unpool_mode(unpool)
    dynamic = parse_dynamic(dynamic)
    if opset < 18:
        raise ToolkitError(f"--opset {opset}: the exporter needs opset 18 or newer")
    net = set_unpool_mode(copy.deepcopy(model).float().cpu().eval(), "maxunpool" if unpool == "maxunpool"
                          else "plugin")
    h, w = _sample_hw(meta)
    sample = torch.randn(2 if "batch" in dynamic else 1, 3, h, w, generator=torch.Generator().manual_seed(0))
    onnx_model = _torch_export(net, sample, dynamic, opset)
    if unpool == "mask":
        n = expand_plugin_nodes(onnx_model)
        log.debug("expanded %d plugin nodes into mask subgraphs", n)
    if do_simplify:
        onnx_model = simplify(onnx_model)
    onnx_model = check_model(onnx_model, what=f"exported {unpool} graph")
    found = detect_lowering(onnx_model)
    if found != unpool:
        raise ToolkitError(f"export produced a '{found}' graph where '{unpool}' was requested (exporter change?)")
    if unpool == "plugin" and not plugin_nodes(onnx_model):
        raise ToolkitError("plugin export wrote no SegNetMaskUnpool node")
    _check_dynamic(onnx_model, dynamic)
    _name_convs(onnx_model)
    onnx_model.producer_name, onnx_model.doc_string = "segnet-toolkit", f"{meta.arch} w={meta.width} ({unpool})"
    return write_props(onnx_model, meta_props(meta, unpool, "fp32", source_sha256,
                                              {"dynamic_axes": ",".join(dynamic) or "none"}))


class ExportOnnx(BaseLoader[onnx.ModelProto]):
    """Loader: ONNX model from a (model, meta) pair or a loader of one (e.g. LoadCheckpoint)."""

    def __init__(self, source: object, unpool: str = "mask", opset: int = DEFAULT_OPSET,
                 dynamic: Sequence[str] = DYNAMIC_AXES, do_simplify: bool = True, source_sha256: str = "") -> None:
        self.source, self.unpool, self.opset, self.dynamic = source, unpool, opset, dynamic
        self.do_simplify, self.source_sha256 = do_simplify, source_sha256

    def _call_impl(self) -> onnx.ModelProto:
        model, meta = resolve(self.source)
        return export_onnx(model, meta, self.unpool, self.opset, self.dynamic, self.do_simplify, self.source_sha256)


def export_checkpoint(checkpoint: str | Path | None, unpool: str = "mask", opset: int = DEFAULT_OPSET,
                      dynamic: Sequence[str] = DYNAMIC_AXES, do_simplify: bool = True) -> onnx.ModelProto:
    """Export a checkpoint file (None: the embedded default), recording its sha256 in the metadata."""
    from toolkit.assets import default_checkpoint_path

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint_path()
    sha = file_sha256(path) if path.is_file() else ""
    return ExportOnnx(load_checkpoint(path, unpool="maxunpool"), unpool, opset, dynamic, do_simplify, sha)()


def export_file(checkpoint: str | Path | None, output: str | Path, unpool: str = "mask", opset: int = DEFAULT_OPSET,
                dynamic: Sequence[str] = DYNAMIC_AXES, do_simplify: bool = True) -> onnx.ModelProto:
    """The export step on files (``toolkit export`` and ``toolkit demo``): the checked ONNX model with its
    metadata, written atomically to ``output``; returns the model."""
    from toolkit.core.onnx_file import save_onnx

    model = export_checkpoint(checkpoint, unpool, opset, dynamic, do_simplify)
    save_onnx(model, output)
    return model
