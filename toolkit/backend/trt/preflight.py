"""Preflight of an ONNX graph before a TensorRT build: ops the parser supports, plugin nodes, Q/DQ form.

TensorRT takes minutes to fail on a graph it cannot parse and then names one node; this check runs on
any machine (only ``onnx``), names every problem at once and says how to fix each. The op list is the
support matrix of TensorRT's ONNX parser (onnx-tensorrt ``docs/operators.md``, the TensorRT 10.15
edition, opsets 9 to 24). The parser matches nodes by op_type; an op it has no importer for is looked
up in the plugin registry, which is how our ``SegNetMaskUnpool`` nodes (domain ``trt.plugins``) become
plugin layers once ``libsegnet_plugins.so`` is loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.core.names import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from toolkit.core.onnx_file import detect_precision, load_onnx, onnx_metadata
from toolkit.errors import PreflightError

if TYPE_CHECKING:
    import numpy as np
    import onnx

OPERATORS_DOC = "onnx-tensorrt docs/operators.md (TensorRT 10.15, opsets 9-24)"
MIN_OPSET, MAX_OPSET = 9, 24
UNPOOL_FIX = "re-export with `toolkit export --unpool mask` (or `--unpool plugin` with the TensorRT plugin)"

# Every op with "Y" in the support matrix named above.
TRT_SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageScaler
InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu
Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())  # noqa: SIM905 - kept as pasted from the table

# Every op with "N" in the same matrix (named so the message can say "not supported" rather than "unknown").
TRT_UNSUPPORTED_OPS = frozenset("""
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im CenterCropPad Compress
ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool MaxUnpool
MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv
QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength
SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
""".split())  # noqa: SIM905 - kept as pasted from the table


@dataclass
class Issue:
    node: str
    op_type: str
    message: str

    def __str__(self) -> str:
        return f"{self.node} [{self.op_type}]: {self.message}"


@dataclass
class PreflightReport:
    """What the check found; ``ok`` when nothing blocks a build."""

    issues: list[Issue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    op_counts: Counter = field(default_factory=Counter)
    plugin_nodes: list[str] = field(default_factory=list)
    precision: str = "fp32"
    opset: int | None = None
    inputs: dict[str, list[int | str | None]] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues

    def raise_if_failed(self, source: str = "model") -> None:
        if self.issues:
            lines = "; ".join(str(i) for i in self.issues[:8])
            more = f"; and {len(self.issues) - 8} more" if len(self.issues) > 8 else ""
            raise PreflightError(f"{source}: TensorRT cannot build this graph ({len(self.issues)} problem"
                                 f"{'s' if len(self.issues) != 1 else ''}): {lines}{more}")


def _iter_nodes(graph: onnx.GraphProto, functions: dict[str, onnx.FunctionProto],
                seen: set[str]) -> Iterator[onnx.NodeProto]:
    """Every node of a graph, its subgraphs (If/Loop/Scan) and the model-local functions it calls."""
    import onnx

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g, functions, seen)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _iter_nodes(g, functions, seen)
        fn = functions.get(node.op_type)
        if fn is not None and node.op_type not in seen:
            seen.add(node.op_type)
            yield from _iter_nodes(fn, functions, seen)


def _input_dims(model: onnx.ModelProto) -> dict[str, list[int | str | None]]:
    init = {t.name for t in model.graph.initializer}
    out: dict[str, list[int | str | None]] = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        dims: list[int | str | None] = []
        for d in vi.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        out[vi.name] = dims
    return out


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant outputs as numpy arrays (for the Q/DQ zero-point check)."""
    from onnx import numpy_helper

    values: dict[str, onnx.TensorProto] = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = a.t
    return {k: numpy_helper.to_array(v) for k, v in values.items()}


def _check_qdq(model: onnx.ModelProto, issues: list[Issue]) -> None:
    """TensorRT takes symmetric int8 Q/DQ only: zero points of 0, int8 (not uint8) types."""
    consts: dict[str, np.ndarray] | None = None
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(n.input) < 3 or not n.input[2]:
            continue
        if consts is None:
            consts = _constant_values(model)
        zp = consts.get(n.input[2])
        if zp is None:
            continue
        name = n.name or n.output[0]
        if str(zp.dtype) == "uint8":
            issues.append(Issue(name, n.op_type, "uint8 quantization (the ONNX Runtime CPU form); TensorRT "
                                "needs symmetric int8: re-quantize with `toolkit quantize --precision int8 "
                                "--target tensorrt`"))
        elif bool((zp != 0).any()):
            issues.append(Issue(name, n.op_type, "non-zero zero point; TensorRT needs symmetric int8 "
                                "(zero point 0): re-quantize with `toolkit quantize --target tensorrt`"))


def _check_plugin_node(node: onnx.NodeProto, issues: list[Issue], name: str) -> None:
    attrs = {a.name: a for a in node.attribute}
    for key, want in (("plugin_version", PLUGIN_VERSION), ("plugin_namespace", PLUGIN_NAMESPACE)):
        if key in attrs:
            got = attrs[key].s.decode(errors="replace")
            if got != want:
                issues.append(Issue(name, node.op_type, f"{key} '{got}', the plugin library provides '{want}'"))
    if len(node.input) != 2 or len(node.output) != 1:
        issues.append(Issue(name, node.op_type, f"{len(node.input)} inputs / {len(node.output)} outputs; the "
                            "plugin takes (x, y) and gives one output"))


def preflight(model_or_path: onnx.ModelProto | str | Path, plugin_library: str | Path | None = None) -> PreflightReport:
    """Check a graph (ModelProto or path) for TensorRT; never raises for graph problems, see ``report.issues``."""
    model = load_onnx(model_or_path, external_data=False) if isinstance(model_or_path, str | Path) else model_or_path
    report = PreflightReport(metadata=onnx_metadata(model), inputs=_input_dims(model))
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            report.opset = imp.version
    if report.opset is not None and not MIN_OPSET <= report.opset <= MAX_OPSET:
        report.warnings.append(f"opset {report.opset} is outside {MIN_OPSET}-{MAX_OPSET}, the range of "
                               f"{OPERATORS_DOC}; an older TensorRT may refuse it")
    functions = {f.name: f for f in model.functions}
    for node in _iter_nodes(model.graph, functions, set()):
        op, name = node.op_type, node.name or (node.output[0] if node.output else "?")
        report.op_counts[op] += 1
        if op in functions:
            continue  # imported as a local function; its body is checked node by node
        if op == PLUGIN_OP_TYPE:
            report.plugin_nodes.append(name)
            _check_plugin_node(node, report.issues, name)
            continue
        if node.domain == PLUGIN_DOMAIN:
            report.issues.append(Issue(name, op, f"unknown plugin op in domain '{PLUGIN_DOMAIN}'; our plugin "
                                       f"library provides only {PLUGIN_OP_TYPE}"))
        elif op == "MaxUnpool":
            report.issues.append(Issue(name, op, f"TensorRT has no MaxUnpool: {UNPOOL_FIX}"))
        elif op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            report.issues.append(Issue(name, op, f"MaxPool with an Indices output is not supported by TensorRT: "
                                       f"{UNPOOL_FIX}"))
        elif node.domain not in ("", "ai.onnx"):
            report.issues.append(Issue(name, op, f"custom-domain op ('{node.domain}') that TensorRT has no "
                                       "importer or plugin for"))
        elif op in TRT_UNSUPPORTED_OPS:
            report.issues.append(Issue(name, op, f"not supported by TensorRT's ONNX parser ({OPERATORS_DOC})"))
        elif op not in TRT_SUPPORTED_OPS:
            report.issues.append(Issue(name, op, f"not in the TensorRT ONNX parser's support list ({OPERATORS_DOC})"))
    if report.plugin_nodes:
        if plugin_library is None:
            report.issues.append(Issue(report.plugin_nodes[0], PLUGIN_OP_TYPE, f"{len(report.plugin_nodes)} plugin "
                                       "node(s) but no plugin library: run `toolkit build-plugin`, then pass "
                                       "--plugin build/engines/libsegnet_plugins.so (or set SEGNET_PLUGIN_LIB)"))
        elif not Path(plugin_library).is_file():
            report.issues.append(Issue(report.plugin_nodes[0], PLUGIN_OP_TYPE, f"plugin library {plugin_library} "
                                       "not found: run `toolkit build-plugin` or fix --plugin"))
    _check_qdq(model, report.issues)
    report.precision = detect_precision(model)
    claimed = report.metadata.get("toolkit.precision")
    if claimed and claimed != report.precision:
        report.warnings.append(f"metadata says precision {claimed}, the graph is {report.precision} (the graph wins)")
    return report


def summary(report: PreflightReport) -> str:
    """One line for logs and the CLI."""
    ops = ", ".join(f"{k} x{v}" for k, v in report.op_counts.most_common(6))
    if len(report.op_counts) > 6:
        ops += ", ..."
    plugin = f", {len(report.plugin_nodes)} plugin node(s)" if report.plugin_nodes else ""
    verdict = "ok" if report.ok else f"{len(report.issues)} problem(s)"
    return (f"opset {report.opset}, {sum(report.op_counts.values())} nodes ({ops}){plugin}, "
            f"precision {report.precision}: {verdict}")
