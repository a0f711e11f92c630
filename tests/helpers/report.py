"""A ParityReport built without running any model: synthetic scenes and two made-up candidates whose
changes are known (one only on class boundaries, one a blob inside objects), for the HTML tests."""

from __future__ import annotations

import numpy as np

from toolkit.compare import DEFAULT_TOLERANCES, CandidateResult, DriftAccumulator, DriftOptions, ParityReport
from toolkit.compare.drift import boundary_band
from toolkit.data import synthetic_info
from toolkit.data.synthetic import make_scene
from toolkit.metrics import ConfusionMatrix

SIZE = (120, 160)


def _pct(v: float) -> float | None:
    return None if np.isnan(v) else float(100 * v)


def synthetic_report(frames: int = 3, keep: int = 2) -> ParityReport:
    info = synthetic_info()
    k, names = info.num_classes, list(info.class_names)
    acc = DriftAccumulator(k, info.ignore_index, 2, DriftOptions(band_px=2, worst_frames=keep))
    ref_cm, cms = ConfusionMatrix(k, info.ignore_index), [ConfusionMatrix(k, info.ignore_index) for _ in range(2)]
    rng = np.random.default_rng(0)
    for i in range(frames):
        image, label = make_scene(i, SIZE, k)
        ref = np.where(label == info.ignore_index, 0, label).astype(np.int64)
        edge = boundary_band(ref, 1) & (rng.random(ref.shape) < 0.5)
        edgy = np.where(edge, np.roll(ref, 1, axis=1), ref)  # flips on boundaries only
        blob = ref.copy()
        blob[20 + 10 * i: 40 + 10 * i, 30:60] = 3  # a 'car' inside whatever is there
        acc.frame(i, f"scene_{i:03d}.png", image, label, ref)
        ref_cm.update(ref, label)
        for j, pred in enumerate((edgy, blob)):
            acc.add(j, pred)
            cms[j].update(pred, label)
    ref_s = ref_cm.scores()
    cands = []
    for j, (name, precision) in enumerate((("edges_fp16.onnx", "fp16"), ("blob_int8.onnx", "int8"))):
        s = cms[j].scores()
        cands.append(CandidateResult(
            name=name, path=f"/tmp/{name}", backend="onnxrt", precision=precision, lowering="mask",
            miou=100 * s.miou, delta_miou=100 * (s.miou - ref_s.miou), pixel_agreement=0.0,
            max_abs_logit_diff=1.5, mean_abs_logit_diff=0.01,
            per_class_iou={n: _pct(v) for n, v in zip(names, s.per_class_iou, strict=True)},
            per_class_delta_iou={n: _pct(c - r) if not (np.isnan(c) or np.isnan(r)) else None
                                 for n, c, r in zip(names, s.per_class_iou, ref_s.per_class_iou, strict=True)},
            tolerance=DEFAULT_TOLERANCES[precision], sha256="ab" * 32))
    for c, d in zip(cands, acc.summaries(cms, ref_cm, names), strict=True):
        c.drift = d
        c.pixel_agreement = 100 - 100 * d["changed_pixels"] / d["pixels"]
        c.judge()
    reference = {"name": "torch:tiny.safetensors", "backend": "torch", "precision": "fp32", "miou": 100 * ref_s.miou,
                 "global_acc": 100 * ref_s.global_acc, "miou_band": _pct(acc.ref_band_cm.scores().miou),
                 "band_px": 2, "label_pixels": ref_cm.matrix.sum(1).tolist(), "sha256": "cd" * 32,
                 "per_class_iou": {n: _pct(v) for n, v in zip(names, ref_s.per_class_iou, strict=True)}}
    return ParityReport(reference, {"split": "val", "images": frames}, cands, names,
                        [list(c) for c in info.palette], command="toolkit parity -c a.onnx --data synthetic",
                        speed=[{"name": "torch", "precision": "fp32", "shape": [1, 3, 120, 160], "iterations": 4,
                                "threads": None, "latency_ms": {"p50": 10.0, "p90": 11.0, "p99": 12.0},
                                "throughput_fps": 99.0, "ratio": None}],
                        worst_frames=acc.worst_frames())
