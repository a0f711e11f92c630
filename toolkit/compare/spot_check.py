"""One seeded input through a reference and a candidate: the quick check ``toolkit export`` runs on its file.

Why not the Comparator: an export is checked right after it is written, without a dataset; one random
input shows a broken graph (wrong lowering, lost weights) in a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.core.names import INPUT_NAME, OUTPUT_NAME


@dataclass
class SpotCheck:
    max_abs_logit_diff: float
    argmax_agreement: float  # share of pixels, 0..1


def spot_check(reference: str | Path | None, candidate: str | Path, seed: int = 0) -> SpotCheck:
    """Max |logit diff| and argmax agreement of ``candidate`` vs ``reference`` (a checkpoint, which always
    carries its input size) on one normal random input at that size."""
    from toolkit.backend import make_runner

    with make_runner(reference) as ref, make_runner(candidate) as cand:
        assert ref.meta is not None  # a checkpoint always carries its metadata
        h, w = ref.meta.padded_input_size
        x = np.random.default_rng(seed).normal(size=(1, 3, h, w)).astype(np.float32)
        a, b = ref.infer({INPUT_NAME: x})[OUTPUT_NAME], cand.infer({INPUT_NAME: x})[OUTPUT_NAME]
    return SpotCheck(float(np.abs(a - b).max()), float((a.argmax(1) == b.argmax(1)).mean()))
