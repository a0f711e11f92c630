"""Mixed-precision planning for INT8: the fewest layers kept in higher precision that meet an accuracy budget.

The budget is parity's vocabulary (mIoU drop, the largest per-class IoU loss, the boundary-band mIoU drop),
measured on tune frames against the fp32 ONNX graph itself, so it is the quantization's drift alone.

Sensitivity is measured by keeping one layer in higher precision at a time in the otherwise fully quantized
graph (not by quantizing one layer at a time). Both cost one evaluation per layer; keep-one-out is chosen
because it measures each layer *in the state the plan is in* (all its neighbours quantized, their errors
compounding), which is what the greedy step below needs: how much drift keeping that layer recovers.
The plan then keeps layers in order of that recovery, best first, and stops at the first prefix that
meets the budget; the prefixes are evaluated a few at a time in one pass over the frames (the fp32 reference
runs once per frame for all of them). Kept Convs are fp32 for ``--target cpu`` (ONNX Runtime), fp16 for
``--target tensorrt`` (Casts around an fp16 Conv, as TensorRT 11's strongly typed networks take it); a kept
Add/Concat/MaxPool stays as exported (fp32): it only moves or sums values, and fp16 there buys nothing.

Calibration runs once (its ranges are cached by ``toolkit.quant.int8``; excluding a layer does not change
the cache key); the sensitivity table is cached as JSON keyed by everything it depends on, so a second run
of the same model and data (another budget, say) skips straight to the search.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper

from toolkit.core.dataset import SegDataset
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.compare.results import CandidateResult

log = logging.getLogger(__name__)

KEEP_PRECISION = {"cpu": "fp32", "tensorrt": "fp16"}
BATCH = 4  # candidate graphs evaluated together in one pass over the tune frames
SENSITIVITY_VERSION = 1  # bump when the measurement changes, so old cache entries are not reused


@dataclass
class Budget:
    """The accuracy a plan may spend, in IoU points (None: not constrained)."""

    max_miou_drop: float | None = None
    max_class_drop: float | None = None
    max_band_drop: float | None = None

    def __post_init__(self) -> None:
        for name, v in dataclasses.asdict(self).items():
            if v is not None and v < 0:
                raise ToolkitError(f"--{name.replace('_', '-')} {v}: expected a non-negative number of IoU points")

    @property
    def empty(self) -> bool:
        return all(v is None for v in dataclasses.asdict(self).values())

    def violation(self, d: Drift) -> float:
        """How far ``d`` is outside the budget, in points over the tightest limit (<= 0: inside)."""
        gaps = [value - limit for value, limit in ((d.miou_drop, self.max_miou_drop),
                                                   (d.worst_class_drop, self.max_class_drop),
                                                   (d.band_drop, self.max_band_drop))
                if limit is not None and value is not None]
        return max(gaps, default=0.0)

    def failures(self, d: Drift) -> list[str]:
        out = []
        for what, value, limit in (("mIoU drop", d.miou_drop, self.max_miou_drop),
                                   (f"class drop ({d.worst_class})", d.worst_class_drop, self.max_class_drop),
                                   ("band mIoU drop", d.band_drop, self.max_band_drop)):
            if limit is not None and value is not None and value > limit:
                out.append(f"{what} {value:.3f} > {limit}")
        return out


@dataclass
class Drift:
    """A candidate's loss against the fp32 graph on the tune frames, in IoU points (positive: worse)."""

    miou_drop: float
    worst_class_drop: float
    worst_class: str
    band_drop: float | None
    pixel_agreement: float

    @classmethod
    def from_result(cls, c: CandidateResult) -> Drift:
        deltas = {k: v for k, v in c.per_class_delta_iou.items() if v is not None}
        worst = min(deltas, key=deltas.__getitem__) if deltas else ""
        band = (c.drift or {}).get("delta_miou_band")
        return cls(round(-c.delta_miou, 4), round(-deltas[worst], 4) if worst else 0.0, worst,
                   None if band is None else round(-band, 4), round(c.pixel_agreement, 4))


@dataclass
class Plan:
    """What the planner found; ``to_dict`` is ``OUT.plan.json``."""

    model: str
    target: str
    budget: Budget
    keep_precision: str
    tune: dict
    layers: list[dict]  # per quantizable layer: node, op, sensitivity (its Drift when kept alone), recovery
    kept: list[dict] = field(default_factory=list)  # node, precision, why
    drift_before: Drift | None = None
    drift_after: Drift | None = None
    int8_share: float = 1.0  # quantizable layers left in int8
    met: bool = False
    reason: str = ""
    sensitivity_cache: str = ""
    sensitivity_cached: bool = False
    evaluations: int = 0  # candidate graphs evaluated on the tune frames in this run
    speed: list[dict] = field(default_factory=list)  # fp32, full int8, planned: one interleaved bench

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["strategy"] = ("sensitivity: one layer kept in higher precision at a time in the fully quantized graph; "
                         "plan: keep layers in order of recovered drift until the budget is met")
        return d

    def summary(self) -> dict:
        """The compact form stored in the ONNX metadata (the parity report shows it)."""
        return {"target": self.target, "budget": dataclasses.asdict(self.budget), "met": self.met,
                "kept": [k["node"] for k in self.kept], "keep_precision": self.keep_precision,
                "int8_share": self.int8_share,
                "drift_before": dataclasses.asdict(self.drift_before) if self.drift_before else None,
                "drift_after": dataclasses.asdict(self.drift_after) if self.drift_after else None,
                "reason": self.reason}


# Op types the Q/DQ quantizer rounds in these graphs: Convs, and the ops between them whose inputs and
# outputs it also quantizes (a graph with every Conv kept float still rounds at Add, Concat and MaxPool).
QUANTIZED_OPS = ("Conv", "ConvTranspose", "Add", "Mul", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "Resize", "MatMul", "Gemm")


def quantizable_layers(model: onnx.ModelProto, exclude: Sequence[str] = ()) -> list[str]:
    """The nodes a plan may keep in higher precision, in graph order (unpool mask groups are never quantized)."""
    return [n.name for n in model.graph.node
            if n.op_type in QUANTIZED_OPS and "/mask/" not in n.name and n.name not in exclude]


def convs_to_fp16(model: onnx.ModelProto, names: Sequence[str]) -> int:
    """Run the float Convs ``names`` in fp16 in place: Cast(fp16) -> Conv with fp16 weights -> Cast(fp32).

    Strongly typed TensorRT builds exactly these types; ONNX Runtime's CPU fp16 Conv runs them for the tune
    measurement. A Conv whose weight is not a plain initializer (a quantized one) is an internal error."""
    inits = {t.name: t for t in model.graph.initializer}
    wanted = set(names)
    nodes = list(model.graph.node)
    out_nodes: list[onnx.NodeProto] = []
    done = 0
    for n in nodes:
        if n.name not in wanted:
            out_nodes.append(n)
            continue
        if n.op_type != "Conv" or any(i not in inits for i in n.input[1:]):
            raise ToolkitError(f"node '{n.name}' is not a float Conv with initializer weights (internal error)")
        for i in n.input[1:]:
            t = inits[i]
            half = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), i + "_fp16")
            model.graph.initializer.append(half)
        x, y = n.input[0], n.output[0]
        cast_in = helper.make_node("Cast", [x], [x + f"_{n.name}_fp16"], to=onnx.TensorProto.FLOAT16,
                                   name=f"{n.name}/cast_fp16")
        conv = onnx.NodeProto()
        conv.CopyFrom(n)
        conv.input[0] = cast_in.output[0]
        for k in range(1, len(conv.input)):
            conv.input[k] = conv.input[k] + "_fp16"
        conv.output[0] = y + "_fp16"
        cast_out = helper.make_node("Cast", [conv.output[0]], [y], to=onnx.TensorProto.FLOAT,
                                    name=f"{n.name}/cast_fp32")
        out_nodes += [cast_in, conv, cast_out]
        done += 1
    del model.graph.node[:]
    model.graph.node.extend(out_nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return done


def sensitivity_key(model_sha: str, settings: dict) -> str:
    blob = json.dumps({"model": model_sha, "v": SENSITIVITY_VERSION, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Planner:
    """Search for a plan of ``model`` (an fp32 ONNX file) on ``dataset`` (tune frames, CamVid-like).

    ``quantize(path, exclude)`` writes the int8 graph with ``exclude`` left float (``toolkit.quant.quantize_file``
    with the calibration); the planner adds the fp16 Casts for tensorrt itself."""

    def __init__(self, model: Path, target: str, budget: Budget, dataset: SegDataset,
                 quantize: Callable[[Path, list[str]], None], exclude: Sequence[str] = (),
                 cache_dir: Path | None = None,
                 use_cache: bool = True, settings: dict | None = None, band_px: int = 3,
                 progress: Callable[[str], None] | None = None) -> None:
        self.model, self.target, self.budget, self.dataset = Path(model), target, budget, dataset
        self.quantize, self.exclude = quantize, list(exclude)
        self.cache_dir, self.use_cache, self.settings = cache_dir, use_cache, dict(settings or {})
        self.band_px, self.progress = band_px, progress or (lambda _msg: None)
        self.evaluations = 0

    def _candidate(self, tmp: Path, kept: Sequence[str], tag: str) -> Path:
        path = tmp / f"{tag}.onnx"
        if self.target == "tensorrt":
            self.quantize(path, self.exclude + list(kept))
            m = onnx.load(str(path))
            convs_to_fp16(m, [n.name for n in m.graph.node if n.name in set(kept) and n.op_type == "Conv"])
            onnx.save(m, str(path))
        else:
            self.quantize(path, self.exclude + list(kept))
        return path

    def _evaluate(self, paths: Sequence[Path]) -> list[Drift]:
        from toolkit.backend import make_runner
        from toolkit.compare.comparator import Comparator
        from toolkit.compare.drift import DriftOptions

        out: list[Drift] = []
        for start in range(0, len(paths), BATCH):
            chunk = paths[start:start + BATCH]
            ref = make_runner(self.model, device="cpu")
            cands = [make_runner(p, device="cpu") for p in chunk]
            report = Comparator(ref, cands, drift=DriftOptions(band_px=self.band_px, worst_frames=0)).run(self.dataset)
            out += [Drift.from_result(c) for c in report.candidates]
            self.evaluations += len(chunk)
        return out

    def _sensitivity(self, tmp: Path, layers: list[str]) -> tuple[Drift, dict[str, Drift], Path, bool]:
        from toolkit.core.onnx_file import load_onnx, model_sha256
        from toolkit.quant.calibration import default_cache_dir

        key = sensitivity_key(model_sha256(load_onnx(self.model)),
                              {**self.settings, "target": self.target, "exclude": self.exclude, "band": self.band_px})
        cache = Path(self.cache_dir or default_cache_dir().parent / "sensitivity") / f"sens-{key}.json"
        if self.use_cache and cache.is_file():
            data = json.loads(cache.read_text())
            if sorted(data["layers"]) == sorted(layers):
                log.info("sensitivity cache hit: %s", cache)
                return Drift(**data["full"]), {k: Drift(**v) for k, v in data["layers"].items()}, cache, True
        full = self._evaluate([self._candidate(tmp, [], "full")])[0]
        if self.budget.violation(full) <= 0:
            return full, {}, cache, False  # nothing to plan: no per-layer runs (and nothing worth caching)
        self.progress(f"sensitivity: {len(layers)} layers kept one at a time ({self.budget.failures(full)[0]} "
                      "fully quantized)")
        drifts = self._evaluate([self._candidate(tmp, [name], f"keep{i}") for i, name in enumerate(layers)])
        per = dict(zip(layers, drifts, strict=True))
        from toolkit.files import atomic_write

        cache.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"full": dataclasses.asdict(full), "settings": self.settings,
                           "layers": {k: dataclasses.asdict(v) for k, v in per.items()}}, indent=1)
        atomic_write(cache, lambda t: t.write_text(text))
        return full, per, cache, False

    def plan(self, max_kept: int | None = None) -> Plan:
        """Measure, search, and return the plan (``met`` False with the best found when none meets the budget)."""
        src = onnx.load(str(self.model), load_external_data=False)
        layers = quantizable_layers(src, self.exclude)
        if not layers:
            raise ToolkitError(f"{self.model}: no quantizable Conv left (check --exclude)")
        limit = len(layers) if max_kept is None else min(max_kept, len(layers))
        keep_precision = KEEP_PRECISION[self.target]
        with tempfile.TemporaryDirectory(prefix="toolkit-plan-") as t:
            tmp = Path(t)
            full, per, cache, hit = self._sensitivity(tmp, layers)
            base = self.budget.violation(full)
            ops = {n.name: n.op_type for n in src.graph.node}
            rows = [{"node": name, "op": ops[name], "sensitivity": dataclasses.asdict(per[name]),
                     "recovery": round(base - self.budget.violation(per[name]), 4)} for name in layers if name in per]
            # no per-layer drifts when the fully quantized graph meets the budget (nothing was measured)
            order = sorted(layers, key=lambda n: (self.budget.violation(per[n]), per[n].miou_drop)) if per else []
            plan = Plan(str(self.model), self.target, self.budget, keep_precision, {}, rows, drift_before=full,
                        sensitivity_cache=str(cache), sensitivity_cached=hit)
            best: tuple[float, int, Drift] = (base, 0, full)
            if base <= 0:
                plan.met, plan.reason = True, "the fully quantized graph meets the budget"
            else:
                k = 1
                while k <= limit and not plan.met:
                    ks = list(range(k, min(k + BATCH, limit + 1)))
                    self.progress(f"plan: trying {ks[0]}..{ks[-1]} layers kept")
                    drifts = self._evaluate([self._candidate(tmp, order[:n], f"plan{n}") for n in ks])
                    for n, d in zip(ks, drifts, strict=True):
                        v = self.budget.violation(d)
                        if v < best[0]:
                            best = (v, n, d)
                        if v <= 0:
                            best, plan.met = (v, n, d), True
                            break
                    k = ks[-1] + 1
                n = best[1]
                if plan.met:
                    plan.reason = f"{n} of {len(layers)} layers kept in {keep_precision} meet the budget"
                else:
                    fails = "; ".join(self.budget.failures(best[2])) or "no improvement"
                    plan.reason = (f"no plan with up to {limit} of {len(layers)} layers kept meets the budget; best "
                                   f"found keeps {n} ({fails})")
            n_kept = best[1]
            plan.drift_after = best[2]
            plan.kept = [{"node": name, "op": ops[name],
                          "precision": keep_precision if ops[name] == "Conv" else "fp32",
                          "why": f"rank {i + 1} by recovered drift: alone it leaves mIoU drop "
                                 f"{per[name].miou_drop:.3f}, class drop {per[name].worst_class_drop:.3f} "
                                 f"({per[name].worst_class}) vs {full.miou_drop:.3f} / {full.worst_class_drop:.3f} "
                                 "fully quantized"} for i, name in enumerate(order[:n_kept])]
            plan.int8_share = round(1 - n_kept / len(layers), 4)
        plan.evaluations = self.evaluations
        return plan


def write_planned(plan: Plan, output: Path) -> None:
    """Apply the fp16 Casts of a tensorrt plan to the written graph and record the plan in its metadata."""
    from toolkit.core.metadata import write_props
    from toolkit.core.onnx_file import load_onnx, save_onnx

    m = load_onnx(output)
    kept = [k["node"] for k in plan.kept]
    if plan.target == "tensorrt" and kept:
        convs_to_fp16(m, [n.name for n in m.graph.node if n.name in set(kept) and n.op_type == "Conv"])
    write_props(m, {"mixed_precision_plan": json.dumps(plan.summary(), separators=(",", ":"))})
    save_onnx(m, output)


def bench_plan(fp32: Path, candidates: Sequence[Path], iterations: int) -> list[dict]:
    """fp32, full int8 and the planned graph in one interleaved ``toolkit bench`` run (ratios vs fp32)."""
    from toolkit.backend import make_runner
    from toolkit.bench import bench_runners
    from toolkit.core.metadata import read_model_meta
    from toolkit.core.onnx_file import load_onnx

    meta = read_model_meta(load_onnx(fp32, external_data=False), str(fp32))
    if meta is None or meta.input_size is None:
        raise ToolkitError(f"{fp32}: no input size in its metadata to bench at")
    shape = (1, 3, *meta.padded_input_size)
    active = []
    try:
        for p in [fp32, *candidates]:
            active.append(make_runner(p, device="cpu").activate())
        results = bench_runners(active, shape, iterations=iterations)
    finally:
        for r in active:
            r.deactivate()
    out = []
    for res, p in zip(results, [fp32, *candidates], strict=True):
        res.model = str(p)
        out.append(res.as_dict())
    return out
