"""The planned quantize step on files: fp32 ONNX in, INT8 with the planned layers kept, and ``OUT.plan.json``.

Kept apart from ``quantize_file`` so the plain step stays one call; this one wraps it (same calibration,
same provenance in the metadata) and adds the search, the plan file and the speed measurement.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from toolkit.core import defaults
from toolkit.core.dataset import SegDataset
from toolkit.quant.planner import Budget, Plan, Planner, bench_plan, write_planned
from toolkit.quant.quantize_file import Calibration, quantize_file

log = logging.getLogger(__name__)


def plan_path(output: str | Path) -> Path:
    """``OUT.plan.json`` beside ``OUT.onnx``."""
    output = Path(output)
    return output.with_name(output.stem + ".plan.json")


def quantize_planned(model: str | Path, output: str | Path, target: str, calibration: Calibration, budget: Budget,
                     dataset: SegDataset, tune: dict, exclude: Sequence[str] = (), per_channel: bool = True,
                     reduce_range: bool | None = None, max_kept: int | None = None,
                     bench_iterations: int = defaults.PLAN_BENCH_ITERATIONS,
                     sensitivity_cache: Path | None = None, progress: Callable[[str], None] | None = None) -> Plan:
    """Plan, write ``output`` (the planned graph, or the best found when no plan meets the budget) and its
    plan file; the caller turns ``plan.met`` False into exit 1."""
    model, output = Path(model), Path(output)
    calls = {"n": 0}

    def quantize(path: Path, keep: list[str]) -> None:
        # The first call calibrates (or hits the range cache); later ones must reuse those ranges even
        # under --no-cache, so calibration runs once per planning run.
        calib = calibration if calls["n"] == 0 else dataclasses.replace(calibration, use_cache=True, on_image=None)
        calls["n"] += 1
        quantize_file(model, path, "int8", target=target, calibration=calib, exclude=keep, per_channel=per_channel,
                      reduce_range=reduce_range, smoke_run=False)

    settings = {"calib": [str(p) for p in calibration.images], "method": calibration.shown,
                "per_channel": per_channel, "reduce_range": reduce_range, "tune": tune}
    planner = Planner(model, target, budget, dataset, quantize, exclude, cache_dir=sensitivity_cache,
                      settings=settings, progress=progress)
    plan = planner.plan(max_kept)
    plan.tune = tune
    kept = [k["node"] for k in plan.kept]
    result = quantize_file(model, output, "int8", target=target, calibration=dataclasses.replace(
        calibration, use_cache=True, on_image=None), exclude=[*exclude, *kept], per_channel=per_channel,
        reduce_range=reduce_range, smoke_run=False)
    write_planned(plan, output)
    from toolkit.quant.quantize_file import run_once

    run_once(output)
    if bench_iterations > 0:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="toolkit-plan-bench-") as tmp:
            full = Path(tmp) / "full_int8.onnx"
            quantize(full, list(exclude))
            plan.speed = bench_plan(model, [full, output], bench_iterations)
            plan.speed[1]["model"] = "full int8 (same calibration)"
    from toolkit.files import atomic_write

    text = json.dumps({**plan.to_dict(), "output": str(output), "quantize": result.summary}, indent=2)
    atomic_write(plan_path(output), lambda t: t.write_text(text))
    return plan
