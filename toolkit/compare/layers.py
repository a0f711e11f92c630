"""Where drift starts: a candidate ONNX graph's intermediate tensors against the fp32 ONNX reference's.

Both graphs get every compared tensor added as an output and run in ONNX Runtime on the same frames. A
tensor is compared when the reference produces it and the candidate has a float tensor of the same name
and shape (the Q/DQ quantizer and the fp16 converter keep the names of the original nodes' outputs); where
the candidate quantizes a tensor, its DequantizeLinear output is compared (the value the graph goes on with).

Per layer: the relative error ``||c - r|| / ||r||`` and the SNR ``10 log10(sum r^2 / sum (c - r)^2)`` over
all frames, and the relative error split into the boundary band and the interior of the reference's class
map, that map's band resized (nearest) to the layer's H x W.

Module names: the export names every Conv after its PyTorch module (``encoder.stage1.0.0``, from its
weight's name); every other node takes the module of the Conv whose output reaches its first input (a ReLU,
pool or Add reads ``after encoder.stage1.0.0``). The graph keeps no exporter scope metadata, so this
dataflow mapping is what is available; it is exact for Convs.

``first_divergence`` is the first layer in graph order whose error *jumps*: its relative error is at
least ``FLOOR`` and at least ``JUMP`` times the largest relative error reaching it through its inputs
(0 for the graph input and weights; through an uncompared node, the largest error of that node's inputs).
An error that is only carried forward or shrinks is not a jump; fp32 noise (~1e-6) is below the floor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger(__name__)

FLOOR = 1e-3  # relative error below this is float noise, never a divergence
JUMP = 4.0  # a node's error at least this many times its inputs' is a jump
RULE = (f"first layer in graph order with rel_error >= {FLOOR:g} and >= {JUMP:g}x the largest rel_error "
        "reaching it through its inputs")
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)


def _with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    have = {o.name for o in out.graph.output}
    for n in names:
        if n not in have:
            out.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    return out


def _session(model: onnx.ModelProto) -> InferenceSession:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor as named
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def module_names(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> PyTorch module (Convs by their weight's module path, others via their first input)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out: dict[str, str] = {}
    for n in model.graph.node:
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1].endswith(".weight"):
            out[n.name] = n.input[1][: -len(".weight")]
            continue
        src, seen = producer.get(n.input[0]) if n.input else None, 0
        while src is not None and src.name not in out and seen < 64:
            src, seen = (producer.get(src.input[0]) if src.input else None), seen + 1
        out[n.name] = f"after {out[src.name].removeprefix('after ')}" if src is not None and src.name in out else ""
    return out


def _compared(reference: onnx.ModelProto, candidate: onnx.ModelProto) -> list[onnx.NodeProto]:
    cand_outputs = {o for n in candidate.graph.node for o in n.output}
    return [n for n in reference.graph.node
            if n.output and n.output[0] in cand_outputs and "/mask/" not in n.name and n.op_type not in
            ("Shape", "Constant", "Reshape", "Equal", "Tile", "Slice", "CastLike", "Cast", "Gather", "Unsqueeze")]


def dequantized_names(model: onnx.ModelProto) -> dict[str, str]:
    """Tensor -> the name of its QuantizeLinear -> DequantizeLinear output: the value its readers see.

    For ``--target cpu`` the quantizer drops a Conv's ReLU (the uint8 range clips it), so the float tensor
    before the Q holds the pre-activation; the DQ output is what the graph computes with."""
    dq_of = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.input[0]: dq_of[n.output[0]] for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.output[0] in dq_of}


def _band_at(band: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = np.linspace(0, band.shape[0] - 1, h).round().astype(int)
    xs = np.linspace(0, band.shape[1] - 1, w).round().astype(int)
    return band[np.ix_(ys, xs)]


def compare_layers(reference: onnx.ModelProto, candidate: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]],
                   band_px: int = 3) -> dict:
    """Per-layer error of ``candidate`` vs ``reference`` on ``feeds``: ``{"layers": [...], "first_divergence",
    "largest_jump", "rule", "frames"}`` (layers in the reference's graph order)."""
    from toolkit.compare.drift import boundary_band

    nodes = _compared(reference, candidate)
    names = [n.output[0] for n in nodes]
    final = reference.graph.output[0].name
    alias = dequantized_names(candidate)
    ref_s = _session(_with_outputs(reference, names))
    cand_s = _session(_with_outputs(candidate, [alias.get(t, t) for t in names]))
    sums = {t: np.zeros(6) for t in names}  # r2, e2, band r2, band e2, interior r2, interior e2
    shapes: dict[str, tuple] = {}
    for feed in feeds:
        ref_out = dict(zip([o.name for o in ref_s.get_outputs()], ref_s.run(None, feed), strict=True))
        cand_out = dict(zip([o.name for o in cand_s.get_outputs()], cand_s.run(None, feed), strict=True))
        band = boundary_band(ref_out[final][0].argmax(0), band_px)
        for t in names:
            r, c = ref_out[t], cand_out.get(alias.get(t, t))
            if c is None or c.shape != r.shape or r.dtype.kind != "f" or c.dtype.kind != "f":
                sums.pop(t, None)
                continue
            r64, e = r.astype(np.float64), c.astype(np.float64) - r.astype(np.float64)
            shapes[t] = r.shape
            s = sums.get(t)
            if s is None:
                continue
            s[0] += float((r64 ** 2).sum())
            s[1] += float((e ** 2).sum())
            if r.ndim == 4:
                b = _band_at(band, r.shape[2], r.shape[3])[None, None]
                s[2] += float((r64 ** 2 * b).sum())
                s[3] += float((e ** 2 * b).sum())
                s[4] += float((r64 ** 2 * ~b).sum())
                s[5] += float((e ** 2 * ~b).sum())
    modules = module_names(reference)
    rows, err = [], {}
    for n in nodes:
        t = n.output[0]
        if t not in sums:
            continue
        s = sums[t]
        rel = _rel(s[1], s[0])
        err[t] = rel
        rows.append({"node": n.name, "module": modules.get(n.name, ""), "op": n.op_type, "tensor": t,
                     "shape": list(shapes.get(t, ())), "rel_error": rel,
                     "snr_db": None if s[1] == 0 else float(10 * np.log10(max(s[0], 1e-30) / s[1])),
                     "rel_error_boundary": _rel(s[3], s[2]) if s[2] else None,
                     "rel_error_interior": _rel(s[5], s[4]) if s[4] else None})
    _mark_jumps(reference, rows, err)
    first = next((r for r in rows if r["jump"]), None)
    ratios = [r for r in rows if r["jump"] and r["amplification"] is not None]
    largest = max(ratios, key=lambda r: r["amplification"]) if ratios else first
    return {"frames": len(feeds), "rule": RULE, "layers": rows,
            "first_divergence": None if first is None else _brief(first),
            "largest_jump": None if largest is None else _brief(largest)}


def _rel(e2: float, r2: float) -> float:
    return float(np.sqrt(e2 / r2)) if r2 > 0 else (0.0 if e2 == 0 else float("inf"))


def _brief(row: dict) -> dict:
    return {k: row[k] for k in ("node", "module", "op", "rel_error", "snr_db", "input_rel_error", "amplification")}


def _mark_jumps(model: onnx.ModelProto, rows: list[dict], err: dict[str, float]) -> None:
    """Set each row's input error (largest reaching it), amplification and whether it is a jump (RULE)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    memo: dict[str, float] = {}

    def reaching(tensor: str, depth: int = 0) -> float:
        if tensor in err:
            return err[tensor]
        if tensor in memo:
            return memo[tensor]
        node = producer.get(tensor)
        memo[tensor] = 0.0 if node is None or depth > 200 else max(
            (reaching(i, depth + 1) for i in node.input if i), default=0.0)
        return memo[tensor]

    by_tensor = {r["tensor"]: r for r in rows}
    for n in model.graph.node:
        row = by_tensor.get(n.output[0]) if n.output else None
        if row is None:
            continue
        inp = max((reaching(i) for i in n.input if i), default=0.0)
        row["input_rel_error"] = inp
        # None where unbounded or empty (no error in, or none out): JSON has no infinity
        row["amplification"] = None if row["rel_error"] == 0 or inp == 0 else row["rel_error"] / inp
        row["jump"] = row["rel_error"] >= FLOOR and row["rel_error"] >= JUMP * inp


def layer_feeds(reference: onnx.ModelProto, data: Path, split: str, frames: int) -> list[dict[str, np.ndarray]]:
    """The first ``frames`` frames of the split, preprocessed as the reference's metadata says."""
    from toolkit.core.metadata import read_model_meta
    from toolkit.core.names import INPUT_NAME
    from toolkit.data.camvid import CamVid
    from toolkit.errors import ToolkitError
    from toolkit.evaluate import preprocess

    meta = read_model_meta(reference, "reference ONNX")
    if meta is None:
        raise ToolkitError("the reference ONNX has no toolkit metadata (mean/std/input size): use toolkit export")
    ds = CamVid(data, split)  # the split's frames in list order, as calibration and parity read them
    ds_meta = meta.dataset
    return [{INPUT_NAME: preprocess(ds.load(i)[0], ds_meta.mean, ds_meta.std, meta.input_size,
                                             meta.output_stride).tensor}
            for i in range(min(frames, len(ds)))]


def layers_for_candidates(reference_onnx: Path, candidates: Sequence[Path], data: Path, split: str,
                          frames: int, band_px: int) -> list[dict | None]:
    """``compare_layers`` for each ONNX candidate (None for an engine or checkpoint: no named tensors)."""
    from toolkit.core.onnx_file import load_onnx

    ref = load_onnx(reference_onnx)
    feeds = layer_feeds(ref, data, split, frames)
    out: list[dict | None] = []
    for c in candidates:
        if Path(str(c)).suffix != ".onnx" or not Path(str(c)).is_file():
            out.append(None)
            continue
        result = compare_layers(ref, load_onnx(c), feeds, band_px)
        result["reference_onnx"] = str(reference_onnx)
        out.append(result)
    return out
