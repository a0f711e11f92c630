"""The hostile-client load test (tools/hostile_clients.py), bounded to a few seconds on a tiny model.

8 good clients (HTTP and gRPC) while others send oversized frames, too many pixels, logits over the limit,
wrong shapes, truncated bodies, slow uploads and abandoned requests: every good answer right, every bad one
refused with its message, ready throughout, memory bounded, a clean exit 0 on SIGTERM. Loopback only.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.serve import needs_serve
from tests.helpers.tools import load_tool

pytestmark = needs_serve

# Under these limits each refused kind is cheap to send; a good 64x96 frame fits them all.
LIMITS = {"max_frame_pixels": 256 * 256, "max_request_pixels": 3 * 256 * 256, "max_logits_mb": 1.0}
# Measured: the server tree grew 124 MB over its idle RSS in this test's traffic (8 s, 2 shared cores);
# the bound is about 3x that. Without the limits one 9000x12000 frame alone took 11.7 GB (issue 30).
RSS_BOUND_MB = 400.0


def test_good_clients_are_served_while_others_misbehave(tiny_checkpoint: Path) -> None:
    tool = load_tool("hostile_clients.py")
    report = tool.run(str(tiny_checkpoint), duration=8.0, limits=LIMITS, rss_bound_mb=RSS_BOUND_MB, max_batch=4,
                      frame_hw=(64, 96))
    assert report["passed"], report["failures"]
    counts = report["counts"]
    for kind in ("oversized:refused", "request_pixels:refused", "logits:refused", "four_channels:refused",
                 "fp32:refused", "truncated:sent", "abandoned:sent", "slow:answered"):
        assert counts.get(kind, 0) >= 1, (kind, counts)
    assert counts["good:answered"] >= 8 and report["readiness_probes"] >= 5 and report["exit_code"] == 0
