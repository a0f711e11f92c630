"""Comparator (Polygraphy style): run a reference runner and candidate runners on the same frames of a
whole split, and compare every candidate with the reference.

The split loop is ``toolkit.evaluate.evaluate_split`` (the loop ``toolkit eval`` uses): each runner gets
each frame with its own normalisation and input size, so a candidate is judged as it would be deployed, and
mIoU comes from ``toolkit.metrics.ConfusionMatrix``; pixel agreement and |logit difference| are measured at
the labels' resolution over every pixel of every frame.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.backend.base import BaseRunner
from toolkit.compare.drift import DriftAccumulator, DriftOptions
from toolkit.compare.results import DEFAULT_TOLERANCES, CandidateResult, ParityReport, Tolerance
from toolkit.compare.temporal import TemporalAccumulator
from toolkit.core.dataset import SegDataset
from toolkit.core.meta import ModelMeta
from toolkit.errors import ToolkitError
from toolkit.evaluate import evaluate_split
from toolkit.metrics import SegScores

log = logging.getLogger(__name__)


def tolerance_for(precision: str, max_miou_drop: float | None = None,
                  min_pixel_agreement: float | None = None) -> Tolerance:
    """The default tolerance of a precision, with explicit overrides."""
    base = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["int8"])
    return Tolerance(base.max_miou_drop if max_miou_drop is None else max_miou_drop,
                     base.min_pixel_agreement if min_pixel_agreement is None else min_pixel_agreement)


def check_label_space(reference: ModelMeta, candidate: BaseRunner) -> None:
    """A candidate with other classes than the reference cannot be compared: one clear error."""
    meta = candidate.meta
    if meta is None:
        return  # checked on the logits' channel count instead
    ref, cand = list(reference.dataset.class_names), list(meta.dataset.class_names)
    if ref != cand:
        raise ToolkitError(f"candidate '{candidate.name}' has {len(cand)} classes ({', '.join(cand[:4])}...), the "
                           f"reference {len(ref)} ({', '.join(ref[:4])}...): compare models of the same label space")


class _Stats:
    """Running comparison of one candidate with the reference (its mIoU comes from evaluate_split)."""

    def __init__(self) -> None:
        self.agree = self.pixels = 0
        self.max_diff = self.sum_diff = 0.0
        self.values = 0

    def update(self, logits: np.ndarray, pred: np.ndarray, ref: np.ndarray, ref_pred: np.ndarray) -> None:
        self.agree += int((pred == ref_pred).sum())
        self.pixels += pred.size
        diff = np.abs(logits - ref)
        self.max_diff = max(self.max_diff, float(diff.max()))
        self.sum_diff += float(diff.sum(dtype=np.float64))
        self.values += diff.size


class Comparator:
    """Reference vs candidates over a SegDataset (CamVid, synthetic scenes, a clip's frames).

    ``drift`` sets up where-it-changed accounting (``toolkit.compare.drift``): boundary band width and
    how many worst frames to keep; it costs a few ms per frame and candidate next to the inference."""

    def __init__(self, reference: BaseRunner, candidates: Sequence[BaseRunner],
                 max_miou_drop: float | None = None, min_pixel_agreement: float | None = None,
                 drift: DriftOptions | None = None, temporal: bool = False) -> None:
        self.reference, self.candidates = reference, list(candidates)
        self.temporal = temporal  # frames are a clip in order: also measure flicker (toolkit.compare.temporal)
        self.max_miou_drop, self.min_pixel_agreement = max_miou_drop, min_pixel_agreement
        self.drift_options = drift or DriftOptions()

    def run(self, dataset: SegDataset, progress: bool = False, dataset_info: dict | None = None) -> ParityReport:
        """Activate every runner, compare on every frame, deactivate; returns the judged report."""

        runners = [self.reference, *self.candidates]
        try:
            for r in runners:
                r.activate()
            ref_meta = self.reference.meta
            if ref_meta is None:
                raise ToolkitError(f"reference '{self.reference.name}' has no label space (use a checkpoint)")
            names = list(ref_meta.dataset.class_names)
            info = dataset.info  # None: a clip without a label space of its own (parity --video) takes the reference's
            data_names = list(info.class_names) if info is not None else names
            if data_names != names:
                raise ToolkitError(f"dataset has {len(data_names)} classes, the reference {len(names)}: "
                                   "evaluate on the label space the model was trained for")
            for c in self.candidates:
                check_label_space(ref_meta, c)
            k, ignore = ref_meta.num_classes, ref_meta.dataset.ignore_index
            stats = [_Stats() for _ in self.candidates]
            drift = DriftAccumulator(k, ignore, len(self.candidates), self.drift_options)
            flicker = TemporalAccumulator(k, ignore, len(self.candidates), self.drift_options.band_px) \
                if self.temporal else None
            n = len(dataset)

            def compare(index: int, image: np.ndarray, label: np.ndarray, logits: list[np.ndarray],
                        maps: list[np.ndarray]) -> None:
                drift.frame(index, dataset.name(index), image, label, maps[0])
                for i, st in enumerate(stats):
                    st.update(logits[i + 1], maps[i + 1], logits[0], maps[0])
                    drift.add(i, maps[i + 1])
                if flicker is not None:
                    flicker.frame(index, dataset.name(index), image, label, maps)

            metas = [ref_meta, *(c.meta or ref_meta for c in self.candidates)]
            ref_cm, *cand_cms = evaluate_split(runners, dataset, metas, progress, desc="parity", on_frame=compare)
        finally:
            for r in runners:
                r.deactivate()
        ref_scores = ref_cm.scores()
        results = [self._result(c, st, cm.scores(), ref_scores, names)
                   for c, st, cm in zip(self.candidates, stats, cand_cms, strict=True)]
        for res, summary in zip(results, drift.summaries(cand_cms, ref_cm, names), strict=True):
            res.drift = summary
        if flicker is not None:
            for res, summary in zip(results, flicker.summaries(), strict=True):
                res.temporal = summary
        reference = {"name": self.reference.name, "backend": self.reference.backend, "precision": "fp32",
                     "miou": 100 * ref_scores.miou, "global_acc": 100 * ref_scores.global_acc,
                     "miou_band": _pct(drift.ref_band_cm.scores().miou), "band_px": self.drift_options.band_px,
                     "label_pixels": ref_cm.matrix.sum(1).tolist(),
                     "per_class_iou": {nm: _pct(v) for nm, v in zip(names, ref_scores.per_class_iou, strict=True)}}
        palette = [list(c) for c in ref_meta.dataset.palette]
        return ParityReport(reference, {**(dataset_info or {}), "images": n}, results, names, palette,
                            worst_frames=drift.worst_frames(),
                            flicker_pairs=flicker.flicker_pairs() if flicker is not None else [])

    def _result(self, runner: BaseRunner, st: _Stats, scores: SegScores, ref_scores: SegScores,
                names: list[str]) -> CandidateResult:
        per_class = {nm: _pct(v) for nm, v in zip(names, scores.per_class_iou, strict=True)}
        ref_iou = ref_scores.per_class_iou
        delta = {nm: (_pct(c - r) if not (np.isnan(c) or np.isnan(r)) else None)
                 for nm, c, r in zip(names, scores.per_class_iou, ref_iou, strict=True)}
        info = runner.info
        precision = info.precision
        return CandidateResult(
            name=info.name, path=info.source, backend=info.backend, precision=precision, lowering=info.lowering,
            miou=100 * scores.miou, delta_miou=100 * (scores.miou - ref_scores.miou),
            pixel_agreement=100 * st.agree / max(st.pixels, 1), max_abs_logit_diff=st.max_diff,
            mean_abs_logit_diff=st.sum_diff / max(st.values, 1), per_class_iou=per_class, per_class_delta_iou=delta,
            tolerance=tolerance_for(precision, self.max_miou_drop, self.min_pixel_agreement),
        ).judge()


def _pct(v: float) -> float | None:
    return None if np.isnan(v) else float(100 * v)


def candidate_runner(spec: str | Path, device: str, threads: int | None = None) -> BaseRunner:
    """A candidate from its command-line spec: a zoo name or model file, optionally ``@fp16``/``@bf16`` for a
    checkpoint run in PyTorch at that precision (its name says so: ``torch:w64.safetensors@fp16``)."""
    from toolkit.backend import make_runner
    from toolkit.backend.factory import split_precision
    from toolkit.zoo import resolve_model_path

    text, precision = split_precision(spec)
    if precision is None:
        refuse_unknown_precision(text)
    model = resolve_model_path(text)
    name = None if precision is None else f"torch:{Path(str(model)).name}@{precision}"
    return make_runner(model, device=device, threads=threads, precision=precision, name=name)


def preflight_candidate(spec: str | Path) -> None:
    """What a candidate spec can be refused for without loading anything heavy: an '@' that is no precision,
    a missing model, an ONNX graph whose tensors are not the toolkit's. ``toolkit parity`` runs it on every
    candidate before the reference loads; these used to fail after it, in the runner's words (issue 25)."""
    from toolkit.backend.factory import split_precision
    from toolkit.core.onnx_file import check_toolkit_io, load_onnx
    from toolkit.zoo import resolve_model_path

    text, precision = split_precision(spec)
    if precision is None:
        refuse_unknown_precision(text)
    model = resolve_model_path(text)
    if isinstance(model, Path) and model.suffix.lower() == ".onnx" and model.is_file():
        check_toolkit_io(load_onnx(model, external_data=False), model)


def refuse_unknown_precision(text: str) -> None:
    """``enhanced-w16@fp8``: a model name, then an '@' suffix that is no PyTorch precision. Without this the
    whole text was looked up as a model and refused as an unknown zoo name (issue 25)."""
    import difflib

    from toolkit.backend.torch.precision import PRECISION_CHOICES
    from toolkit.errors import UnknownNameError
    from toolkit.zoo import zoo_names

    model, sep, tail = text.rpartition("@")
    if not sep or not model or Path(text).exists() or not (Path(model).is_file() or model in zoo_names()):
        return
    close = difflib.get_close_matches(tail.lower(), list(PRECISION_CHOICES), n=1)
    hint = f" Did you mean '{model}@{close[0]}'?" if close else ""
    raise UnknownNameError(f"{text}: '@{tail}' is not a precision a checkpoint runs at in PyTorch; after '@' use "
                           f"{', '.join(PRECISION_CHOICES)}. An int8 candidate is a file: toolkit quantize writes an "
                           f"ONNX one, toolkit build-engine a TensorRT engine.{hint}")


def compare_files(reference: str | Path | None, candidates: Sequence[str | Path], dataset: SegDataset,
                  device: str = "cpu", max_miou_drop: float | None = None, min_pixel_agreement: float | None = None,
                  progress: bool = False, dataset_info: dict | None = None,
                  drift: DriftOptions | None = None, temporal: bool = False) -> ParityReport:
    """Parity of model files (ONNX, engines) against a checkpoint (None: the embedded default)."""
    from toolkit.backend import make_runner

    ref = make_runner(reference, device="cpu")
    cands = [candidate_runner(spec, device) for spec in candidates]
    comparator = Comparator(ref, cands, max_miou_drop, min_pixel_agreement, drift, temporal)
    return compare_with_provenance(comparator, reference, candidates, dataset, progress, dataset_info)


def compare_with_provenance(comparator: Comparator, reference_file: str | Path | None,
                            candidate_files: Sequence[str | Path], dataset: SegDataset, progress: bool = False,
                            dataset_info: dict | None = None) -> ParityReport:
    """The comparison with its provenance, shared by ``toolkit parity`` (``compare_files``) and the demo: the
    Comparator's report, plus each file's sha256 and whether each candidate was exported from the reference
    checkpoint (its ``source_sha256``; a mismatch is logged). ``reference_file`` None: the embedded default;
    ``candidate_files`` name the comparator's candidates in order (a runner's own source wins)."""
    from toolkit.assets import default_checkpoint_path
    from toolkit.files import file_sha256

    ref_sha = file_sha256(reference_file if reference_file is not None else default_checkpoint_path())
    report = comparator.run(dataset, progress, dataset_info)
    for runner, result, path in zip(comparator.candidates, report.candidates, candidate_files, strict=True):
        path = runner.source or path
        result.sha256 = file_sha256(path) if Path(path).is_file() else None
        if plan := runner.info.props.get("mixed_precision_plan"):
            result.plan = json.loads(plan)
        source = runner.info.props.get("source_sha256")
        result.source_matches = None if not source else source == ref_sha
        if source and result.source_matches is False:
            log.warning("%s was exported from another checkpoint (sha256 %s...) than the reference (%s...)",
                        runner.name, source[:12], ref_sha[:12])
    report.reference["sha256"] = ref_sha
    return report


def measure_speed(reference: str | Path | None, candidates: Sequence[str | Path], device: str = "cpu",
                  iterations: int = 20, threads: int | None = None) -> list[dict]:
    """``toolkit bench``'s interleaved measurement of the reference and every candidate at the reference's
    input size (padded to a multiple of 8, as parity runs frames), so one report holds what a precision
    costs next to what it changes. Ratios are against the reference."""
    from toolkit.assets import default_checkpoint_path
    from toolkit.backend import make_runner
    from toolkit.bench import bench_runners
    from toolkit.checkpoint import read_checkpoint

    _, meta = read_checkpoint(reference if reference is not None else default_checkpoint_path())
    shape = (1, 3, *meta.padded_input_size)
    runners = [make_runner(reference, device="cpu", threads=threads),
               *(candidate_runner(c, device, threads) for c in candidates)]
    active: list[BaseRunner] = []
    try:
        for r in runners:
            active.append(r.activate())
        results = bench_runners(active, shape, iterations=iterations, threads=threads)
    finally:
        for r in active:
            r.deactivate()
    for res, model in zip(results, [reference, *candidates], strict=True):
        res.model = str(model) if model is not None else "embedded default"
    return [r.as_dict() for r in results]
