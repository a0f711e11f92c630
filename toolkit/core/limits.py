"""Request-size limits of ``toolkit serve``, checked on a request's shape before anything large is allocated.

Why: a frame of any size is accepted and its class map comes back at the frame's size, so without a bound one
request decides how much memory the server takes (a 9000x12000 frame took the process tree to 11.7 GB).
Three limits, each with a ``toolkit serve`` option of the same name:
- ``max_frame_pixels``: H x W of one frame (default: a 4K UHD frame, 3840x2160);
- ``max_request_pixels``: N x H x W of one request (default: four 4K UHD frames);
- ``max_logits_mb``: the logits tensor one request may ask for, N x K x H x W float32 (default 256 MiB:
  a 1080p frame's 11-class logits are 87 MiB, a 4K frame's 348 MiB).
Each check depends only on the request's shape (and whether it asks for logits), and Triton's dynamic batcher
merges only requests of equal shape, so a refused request never fails a good one of another size.
The limits travel in the model config (parameter ``toolkit_limits``), so the ``triton://`` runner splits or
refuses a batch on the client, before sending it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from toolkit.errors import RequestTooLargeError, ToolkitError

LIMITS_PARAM = "toolkit_limits"
UHD_PIXELS = 3840 * 2160
MIB = 1024 * 1024


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


@dataclass(frozen=True)
class RequestLimits:
    """The largest frame, request and logits tensor one request may bring; see the module docstring."""

    max_frame_pixels: int = UHD_PIXELS
    max_request_pixels: int = 4 * UHD_PIXELS
    max_logits_mb: float = 256.0

    def __post_init__(self) -> None:
        for name in ("max_frame_pixels", "max_request_pixels", "max_logits_mb"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ToolkitError(f"--{name.replace('_', '-')} {value!r}: expected a number > 0")

    @property
    def max_logits_bytes(self) -> int:
        return int(self.max_logits_mb * MIB)

    def check_frames(self, shape: tuple[int, ...], num_classes: int, want_logits: bool) -> None:
        """``shape`` is a frame request's N x H x W x 3; raises RequestTooLargeError naming the limit and option."""
        n, h, w = (int(d) for d in shape[:3])
        self._check(n, h, w, num_classes, want_logits, "frame")

    def check_tensors(self, shape: tuple[int, ...], num_classes: int) -> None:
        """``shape`` is a tensor request's N x 3 x H x W (its answer is always logits)."""
        n, h, w = int(shape[0]), int(shape[2]), int(shape[3])
        self._check(n, h, w, num_classes, True, "tensor")

    def frames_per_request(self, h: int, w: int, num_classes: int) -> int:
        """How many H x W items of a tensor batch fit one request (0: not even one); the client splits by it."""
        per_item = h * w
        if per_item > self.max_frame_pixels:
            return 0
        by_pixels = self.max_request_pixels // per_item
        by_logits = self.max_logits_bytes // (per_item * num_classes * 4)
        return int(min(by_pixels, by_logits))

    def _check(self, n: int, h: int, w: int, k: int, want_logits: bool, what: str) -> None:
        size = f"{h}x{w}"
        if h * w > self.max_frame_pixels:
            raise RequestTooLargeError(
                f"{what} {size} ({_mp(h * w)}) is over this server's limit of {_mp(self.max_frame_pixels)} per frame "
                f"(--max-frame-pixels {self.max_frame_pixels}); send smaller frames or start the server with a "
                "larger --max-frame-pixels")
        if n * h * w > self.max_request_pixels:
            fit = max(1, self.max_request_pixels // (h * w))
            raise RequestTooLargeError(
                f"{n} {what}s of {size} ({_mp(n * h * w)}) are over this server's limit of "
                f"{_mp(self.max_request_pixels)} per request (--max-request-pixels {self.max_request_pixels}); "
                f"send at most {fit} such {what}s per request")
        logits = n * k * h * w * 4
        if want_logits and logits > self.max_logits_bytes:
            raise RequestTooLargeError(
                f"logits of {n} x {k} x {size} float32 ({logits / MIB:.0f} MiB) are over this server's limit of "
                f"{self.max_logits_mb:g} MiB per request (--max-logits-mb {self.max_logits_mb:g}); ask for "
                "'classes' only, send fewer or smaller frames, or raise --max-logits-mb")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RequestLimits:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ToolkitError(f"{LIMITS_PARAM}: expected a JSON object, got {type(raw).__name__}")
        return cls(**{k: raw[k] for k in ("max_frame_pixels", "max_request_pixels", "max_logits_mb") if k in raw})
