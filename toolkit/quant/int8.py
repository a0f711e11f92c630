"""INT8 by explicit quantization: Q/DQ nodes, per-channel weights, ranges calibrated on real images.

Two targets, because what each runs fast differs:

- ``tensorrt``: int8 activations and weights, both symmetric (every zero point 0), TensorRT's rule for
  Q/DQ networks; biases stay float (TensorRT has no int32 DequantizeLinear for them); one Q/DQ per
  activation, at the Conv inputs (after the ReLU, which TensorRT fuses into the Conv): rounding the
  signed pre-ReLU outputs as well cost 1.6 points of pixel agreement (docs/PARITY.md).
- ``cpu``: uint8 activations (asymmetric) with int8 weights, the form ONNX Runtime's CPU kernels fuse
  into QLinearConv. ``reduce_range`` (7-bit weights) avoids int16 saturation in the u8*s8 path of
  CPUs without VNNI (AVX2 only); it is on by default for this target.

Calibration is done here (not inside quantize_static) so it can run in chunks of a few images, which
bounds memory on full-size frames, and so its ranges are cached (``calibration.cache_key``).
Unpooling subgraphs (marked ``.../mask/...``) are never quantized: they only move values. For the
``cpu`` target they then find the window maxima on the uint8 codes (``toolkit.quant.mask_codes``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from toolkit.core import defaults
from toolkit.errors import ToolkitError, UnknownNameError, suggest
from toolkit.export.lowering import collapse_mask_groups, expand_plugin_nodes, mask_group_node_names
from toolkit.quant.calibration import CALIB_METHODS, ImageFeeds, cache_key, default_cache_dir, fingerprint
from toolkit.quant.mask_codes import mask_groups_on_codes

log = logging.getLogger(__name__)

TARGETS = ("tensorrt", "cpu")


@dataclass
class QuantReport:
    """What a quantization did, for the CLI and the model's metadata."""

    target: str
    method: str
    images: int
    cache_file: str
    cache_hit: bool
    excluded_nodes: list[str] = field(default_factory=list)
    quantized_nodes: int = 0


def split_exclude(model: onnx.ModelProto, exclude: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``exclude`` into op types present in the graph and node names; unknown items are an error."""
    op_types = {n.op_type for n in model.graph.node}
    names = {n.name for n in model.graph.node}
    ops, nodes = [], []
    for item in exclude:
        if item in op_types:
            ops.append(item)
        elif item in names:
            nodes.append(item)
        else:
            choices = sorted(op_types) + sorted(n for n in names if "/mask/" not in n)[:40]
            raise UnknownNameError(f"--exclude '{item}' is neither an op type nor a node name of this model: "
                                   f"{suggest(item, choices)}")
    return ops, nodes


def _method(name: str) -> object:
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIB_METHODS:
        raise UnknownNameError(f"unknown calibration method '{name}': {suggest(name, CALIB_METHODS)}")
    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def calibrate(model_path: Path, feeds: ImageFeeds, method: str, symmetric: bool, chunk: int = 4,
              percentile: float = defaults.CALIB_PERCENTILE, on_image: Callable[[], None] | None = None) -> object:
    """Tensor ranges (onnxruntime TensorsData) from running the float model on ``feeds``."""
    from onnxruntime.quantization.calibrate import create_calibrator

    options = {"symmetric": symmetric}
    if method == "percentile":
        options["percentile"] = percentile
    out = io.StringIO()  # the histogram calibrators print progress to stdout; keep it in the debug log
    with tempfile.TemporaryDirectory(prefix="toolkit-calib-") as tmp, contextlib.redirect_stdout(out):
        calibrator = create_calibrator(model_path, None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_method(method), extra_options=options)
        for reader in feeds.chunks(chunk, on_image):
            calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
        del calibrator
    log.debug("calibrator: %s", out.getvalue().strip())
    return ranges


def _float_outputs(model: onnx.ModelProto) -> int:
    """Drop the Q/DQ pair the quantizer puts on graph outputs: the logits stay float.

    Rounding the logits to 256 levels turns near-equal class scores into ties and moves the argmax
    of many pixels (measured: pixel agreement 91.6 % with, see docs/PARITY.md); the head conv still
    takes int8 inputs and weights.
    """
    outputs = {o.name for o in model.graph.output}
    producers = {o: n for n in model.graph.node for o in n.output}
    removed = 0
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in outputs]:
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        src = producers.get(q.input[0])
        readers = [n for n in model.graph.node if q.input[0] in n.input and n is not q]
        if src is None or readers:
            continue
        src.output[list(src.output).index(q.input[0])] = dq.output[0]
        model.graph.node.remove(q)
        model.graph.node.remove(dq)
        removed += 1
    return removed


def _check_symmetric(model: onnx.ModelProto) -> None:
    """TensorRT's rule: every Q/DQ zero point is 0 and int8."""
    inits = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits:
            zp = numpy_helper.to_array(inits[n.input[2]])
            if zp.dtype != np.int8 or np.any(zp != 0):
                raise ToolkitError(f"node '{n.name}': zero point {zp.ravel()[:4]} ({zp.dtype}); TensorRT needs "
                                   "symmetric int8 (internal error: please report)")


def quantize_int8(model: onnx.ModelProto, feeds: ImageFeeds, target: str = "tensorrt",
                  method: str = defaults.CALIB_METHOD,
                  exclude: Sequence[str] = (), cache_dir: str | Path | None = None, per_channel: bool = True,
                  reduce_range: bool | None = None, chunk: int = 4, use_cache: bool = True,
                  percentile: float = defaults.CALIB_PERCENTILE, on_image: Callable[[], None] | None = None,
                  ) -> tuple[onnx.ModelProto, QuantReport]:
    """A Q/DQ copy of a float ONNX model for ``target``; plugin nodes are handled around the quantizer.
    ``on_image`` is called per calibration image (not at all on a cache hit), for a progress bar."""
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    from toolkit.core.onnx_file import model_sha256

    if target not in TARGETS:
        raise UnknownNameError(f"unknown target '{target}': {suggest(target, TARGETS)}")
    _method(method)
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise ToolkitError("model is already quantized (it has Q/DQ nodes); quantize its float version")
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        raise ToolkitError("model is fp16; int8 quantization needs the fp32 model")
    symmetric = target == "tensorrt"
    reduce_range = (target == "cpu") if reduce_range is None else reduce_range
    work = onnx.ModelProto()
    work.CopyFrom(model)
    del work.metadata_props[:]
    had_plugin = expand_plugin_nodes(work)
    ops, names = split_exclude(work, exclude)
    excluded = mask_group_node_names(work) + names + [n.name for n in work.graph.node if n.op_type in ops]
    settings = {"method": method, "symmetric": symmetric, "images": len(feeds), "ort": ort_version,
                "input_size": list(feeds.input_size or ()),
                "percentile": percentile if method == "percentile" else None}
    key = cache_key(model_sha256(work), fingerprint(feeds.paths), settings)
    cache_file = Path(cache_dir or default_cache_dir()) / f"calib-{key}.json"
    hit = use_cache and cache_file.is_file()
    with tempfile.TemporaryDirectory(prefix="toolkit-quant-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(work, str(src))
        if not hit:
            log.info("calibrating on %d images (%s)", len(feeds), method)
            save_tensors_data(calibrate(src, feeds, method, symmetric, chunk, percentile, on_image), cache_file)
        else:
            log.info("calibration cache hit: %s", cache_file)
        extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True, "CalibTensorRangeSymmetric": symmetric,
                 # TensorRT takes float biases (it folds them itself); ONNX Runtime fuses int32 ones.
                 "QuantizeBias": not symmetric}
        act = QuantType.QInt8 if symmetric else QuantType.QUInt8
        op_types = None
        if symmetric:
            # One Q/DQ per activation, after the ReLU (TensorRT fuses Conv+ReLU): with symmetric int8 the
            # quantizer would otherwise also round each Conv's signed pre-ReLU output.
            from onnxruntime.quantization.registry import QDQRegistry

            op_types = [t for t in QDQRegistry if t not in ("Relu", "Clip")]
            extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
        try:
            # its advice goes through the root logger: filtered where the CLI sets up logging (cli/logs.py)
            quantize_static(str(src), str(dst), None, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            reduce_range=reduce_range, activation_type=act, weight_type=QuantType.QInt8,
                            nodes_to_exclude=excluded, calibrate_method=_method(method), extra_options=extra,
                            op_types_to_quantize=op_types,
                            calibration_cache_path=cache_file)
        except (ValueError, KeyError) as e:
            raise ToolkitError(f"quantization failed: {str(e).splitlines()[0]}; delete {cache_file} and retry") from e
        out = onnx.load(str(dst))
    _float_outputs(out)
    if had_plugin:
        collapse_mask_groups(out)
    elif target == "cpu":
        log.debug("unpooling on uint8 codes in %d mask groups", mask_groups_on_codes(out))
    if symmetric:
        _check_symmetric(out)
    n_q = sum(n.op_type == "QuantizeLinear" for n in out.graph.node)
    out.metadata_props.extend(model.metadata_props)
    return out, QuantReport(target, method, len(feeds), str(cache_file), hit, excluded, n_q)
