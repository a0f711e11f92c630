"""The host's frame preprocessing (``toolkit.video.ops.FastPreprocess``), written in torch ops so a GPU runner
can run it inside its CUDA graph: uint8 H x W x 3 frame -> resize -> normalise -> zero-pad to a multiple of the
output stride.

The resize follows the host's choice: OpenCV's area filter when the rows shrink (as two small matrix
products with the same overlap weights), bilinear with half-pixel centres otherwise. Rows shrinking while
columns grow, where OpenCV's area filter does something of its own, is resized on the host by the runner.
Values are rounded back to uint8 levels as OpenCV's uint8 resize does: half up, except an area shrink other
than 2x2, which OpenCV rounds half to even. Shrinking then gives the host's input exactly for the factors
tested (a 10/9 shrink, where OpenCV's float sums round differently, is within a level); enlarging is within
a level, where OpenCV's fixed-point weights round differently (tests/backend/test_torch_fast_path.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def area_weights(out: int, inp: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """out x inp matrix of OpenCV's INTER_AREA weights: output cell i averages the source interval
    [i * inp / out, (i + 1) * inp / out), each source pixel weighted by its overlap."""
    scale = inp / out
    lo = torch.arange(out, dtype=torch.float64)[:, None] * scale
    src = torch.arange(inp, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(src + 1, lo + scale) - torch.maximum(src, lo)).clamp_(min=0)
    return (overlap / scale).float().to(device)


def frame_to_input(frame: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, size: tuple[int, int],
                   padded: tuple[int, int], area: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``frame``: H x W x 3 uint8 (RGB); ``mean``/``std``: 1 x 3 x 1 x 1 float32; ``size``: the model's input
    (h, w); ``padded``: (h, w) rounded up to the output stride; ``area``: the (rows, columns) ``area_weights``
    when shrinking (made once per frame size by the caller; computed here if None). Returns 1 x 3 x hp x wp
    float32."""
    h, w = size
    x = frame.permute(2, 0, 1).unsqueeze(0).float()
    if (h, w) != tuple(frame.shape[:2]):
        if h < frame.shape[0] and w <= frame.shape[1]:  # the host's area filter (rows shrink, columns do not grow)
            rows, cols = area or (area_weights(h, frame.shape[0], x.device), area_weights(w, frame.shape[1], x.device))
            x = rows @ x @ cols.T
            # OpenCV rounds its 2x2 fast path half up ((a+b+c+d+2)>>2), every other area shrink half to even
            # (float sums, then cvRound): rounding all half up put 240x320 -> 180x240 a level off on 5 % of values
            half_up = frame.shape[0] == 2 * h and frame.shape[1] == 2 * w
            x = (torch.floor(x + 0.5) if half_up else torch.round(x)).clamp_(0, 255)
        else:
            x = torch.floor(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False) + 0.5).clamp_(0, 255)
    x = (x * (1.0 / 255.0) - mean) / std
    return F.pad(x, (0, padded[1] - w, 0, padded[0] - h))
