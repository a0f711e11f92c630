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
MIN_OPSET = 18  # the unpooling translations are onnxscript opset-18 functions
DYNAMIC_AXES = ("batch", "hw")


def max_opset() -> int:
    """The newest default-domain opset the exporter can write: the installed onnx package's (its version
    converter takes the opset-18 graph there); beyond it torch's exporter silently writes opset 18."""
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> int:
    """Refuse an opset the exporter cannot write, naming the ones it can (issue 25: it used to write 18)."""
    top = max_opset()
    if not MIN_OPSET <= opset <= top:
        raise ToolkitError(f"--opset {opset}: this exporter writes opsets {MIN_OPSET} to {top} (the newest the "
                           f"installed onnx {onnx.__version__} knows); pass one of them, e.g. --opset {DEFAULT_OPSET}")
    return opset


def written_opset(model: onnx.ModelProto) -> int | None:
    """The default-domain (ai.onnx) opset a model imports."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


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

    # onnxscript traces these: their parameters stay unannotated (ONNX values, not Python types)
    def mask_unpool_plugin(x, y):
        return trt.SegNetMaskUnpool(x, y, plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE)

    def max_pool_with_indices(x, kernel_size, stride=(), padding=(0, 0), dilation=(1, 1),
                              ceil_mode=False):
        if list(kernel_size) != [2, 2] or list(stride or kernel_size) != [2, 2] or any(padding) or ceil_mode:
            raise ValueError("only the 2x2/2 pooling of SegNet is supported by the maxunpool lowering")
        y, indices = op.MaxPool(x, kernel_shape=[2, 2], strides=[2, 2])
        return y, indices

    def max_unpool(y, indices, output_size):
        # H and W are multiples of the output stride (8 or 16), so every pre-pool size is even and
        # MaxUnpool's default output size (2 * input) is the pre-pool size: no output_shape input needed.
        return op.MaxUnpool(y, indices, kernel_shape=[2, 2], strides=[2, 2])

    return {torch.ops.segnet.mask_unpool.default: mask_unpool_plugin,
            torch.ops.aten.max_pool2d_with_indices.default: max_pool_with_indices,
            torch.ops.aten.max_unpool2d.default: max_unpool}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter warns about internals meant for its developers (FutureWarnings of torch's own
    pytree API); its log lines are filtered where the CLI sets up logging (``toolkit/cli/logs.py``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sample_hw(meta: ModelMeta) -> tuple[int, int]:
    return pad_to_multiple(*meta.input_size, meta.output_stride)


def _model_stride(model: nn.Module, meta: ModelMeta) -> int:
    """The model's own output stride (8 for a module that does not say), which its metadata must repeat."""
    stride = int(getattr(model, "output_stride", OUTPUT_STRIDE))
    if stride != meta.output_stride:
        raise ToolkitError(f"{meta.arch}: the model's output stride is {stride}, its metadata says "
                           f"{meta.output_stride}; save the checkpoint again with toolkit.checkpoint.save_checkpoint")
    return stride


def _torch_export(model: nn.Module, sample: torch.Tensor, dynamic: tuple[str, ...], opset: int,
                  stride: int = OUTPUT_STRIDE) -> onnx.ModelProto:
    from torch.export import Dim

    dims: dict[int, object] = {}
    if "batch" in dynamic:
        dims[0] = Dim("batch", min=1, max=1024)
    if "hw" in dynamic:  # H and W stay multiples of the output stride: what the pools and the stem need
        dims[2] = stride * Dim(f"h{stride}", min=1, max=8192 // stride)
        dims[3] = stride * Dim(f"w{stride}", min=1, max=8192 // stride)
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
    check_opset(opset)
    net = set_unpool_mode(copy.deepcopy(model).float().cpu().eval(), "maxunpool" if unpool == "maxunpool"
                          else "plugin")
    stride = _model_stride(model, meta)
    h, w = _sample_hw(meta)
    sample = torch.randn(2 if "batch" in dynamic else 1, 3, h, w, generator=torch.Generator().manual_seed(0))
    onnx_model = _torch_export(net, sample, dynamic, opset, stride)
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
    if written_opset(onnx_model) != opset:  # never write one opset while reporting another
        raise ToolkitError(f"--opset {opset}: the exporter produced opset {written_opset(onnx_model)} instead "
                           f"(torch {torch.__version__}, onnx {onnx.__version__}); not writing it")
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
