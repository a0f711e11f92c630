"""How many inferences run at once, and with how many threads each: ``toolkit infer``'s defaults.

Why in the library: the rule is measured (docs/BENCHMARKS.md), not a matter of option parsing, and any
caller of ``infer_video`` that wants the same throughput needs the same choice.
"""

from __future__ import annotations

import os

from toolkit.backend import backend_for
from toolkit.errors import ToolkitError


def workers_threads(workers: int, threads: int | None, live: bool, model: str | None,
                    device: str) -> tuple[int, int | None]:
    """Defaults for ``workers`` 0 (auto) and an unset ``threads``.

    Files: two single-threaded inferences at once keep both cores busy without the intra-op barriers of
    one two-threaded inference (faster end to end on our 2-core CPU, docs/BENCHMARKS.md). Live sources:
    one inference with every core, for the lowest latency per frame. PyTorch on CUDA, files: two, so one
    call's host work (copies, the wait) overlaps the other's GPU work. TensorRT and remote runners: one.
    """
    if workers < 0:
        raise ToolkitError(f"--workers {workers}: expected 0 (auto) or more")
    cores = os.cpu_count() or 1
    if workers == 0:
        cpu = device.split(":")[0] == "cpu"
        backend = backend_for(model)
        overlap = (cpu and cores >= 2 and backend in ("torch", "onnxrt")) or (not cpu and backend == "torch")
        workers = 2 if (not live and overlap) else 1
    if workers > 1 and threads is None and device.split(":")[0] == "cpu":  # N runs with all cores each: too many
        threads = max(1, cores // workers)
    return workers, threads
