"""Defaults that both a library function and a CLI option take, written once.

The library's dataclasses and keyword defaults read these, and so do the Typer options of the commands that
pass them on (``typer.Option(defaults.CALIB_PERCENTILE, ...)``), so ``toolkit quantize`` and
``quantize_file()`` cannot drift apart; tests/cli/test_option_defaults.py compares every pair. The training
options are the exception: ``TrainConfig`` (train/loop.py) holds those, and the train command may import the
training package only when it runs, so the same test compares them instead. No imports here: everything may
import this module.
"""

from __future__ import annotations

# the model's input: CamVid's frame size (H, W); checkpoints and ONNX files without one are this size
INPUT_SIZE: tuple[int, int] = (360, 480)
INPUT_SHAPE = f"1x3x{INPUT_SIZE[0]}x{INPUT_SIZE[1]}"  # --input-shape NxCxHxW (bench, info)

ONNX_OPSET = 18  # toolkit export --opset

# INT8 calibration (toolkit quantize, quantize_file's Calibration, quant.int8)
CALIB_METHOD = "percentile"
CALIB_PERCENTILE = 99.99  # |activation| percentile kept by the percentile method
CALIB_SPLIT = "train"
PLAN_BENCH_ITERATIONS = 10  # quantize with a budget: timed calls per model in the interleaved bench

# toolkit bench, bench_runners
BENCH_WARMUP = 2
BENCH_ITERATIONS = 20
BENCH_ROUNDS = 2
BENCH_STREAMS = 1

# toolkit parity --band/--worst, compare.drift.DriftOptions
DRIFT_BAND_PX = 3
DRIFT_WORST_FRAMES = 3

# toolkit infer, video
OVERLAY_ALPHA = 0.5
SOURCE_RETRIES = 5

# toolkit serve (ServeConfig) and toolkit export-triton (serve.triton_repo): Triton's usual ports, loopback
SERVE_NAME = "segnet"
SERVE_MAX_BATCH = 8
SERVE_INSTANCES = 1
SERVE_MAX_QUEUE_DELAY_US = 0
SERVE_HOST = "127.0.0.1"
SERVE_HTTP_PORT = 8000
SERVE_GRPC_PORT = 8001
SERVE_METRICS_PORT = 8002
SERVE_DRAIN_TIMEOUT_S = 30
