"""The quantize step on files: fp32 ONNX in, FP16 or INT8 ONNX out, with its provenance, checked to run.

Why one function: ``toolkit quantize`` and ``toolkit demo`` both make quantized files, and each file must
say where it came from (``parent_onnx_sha256``, what was excluded, how it was calibrated) whoever made it.
The demo used to write only the precision; both now go through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from toolkit.core import defaults
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "int8")


@dataclass
class Calibration:
    """INT8 calibration: the images, how ranges are taken, and preprocessing for a model without metadata
    (``mean``/``std``/``input_size`` override the model's own)."""

    images: Sequence[Path]
    method: str = defaults.CALIB_METHOD
    percentile: float = defaults.CALIB_PERCENTILE
    split: str = defaults.CALIB_SPLIT  # recorded in the metadata (where ``images`` came from)
    cache_dir: str | Path | None = None
    use_cache: bool = True
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_size: tuple[int, int] | None = None
    on_image: Callable[[], None] | None = None  # per calibrated image (progress)

    @property
    def shown(self) -> str:
        return self.method + (f" {self.percentile}" if self.method == "percentile" else "")


@dataclass
class QuantizeResult:
    path: Path
    precision: str
    props: dict[str, str]  # what this step added to the metadata
    summary: str  # one line for the user


def quantize_file(model: str | Path, output: str | Path, precision: str, target: str | None = None,
                  calibration: Calibration | None = None, exclude: Sequence[str] = (), per_channel: bool = True,
                  reduce_range: bool | None = None, smoke_run: bool = True) -> QuantizeResult:
    """Write ``output``: ``model`` (an fp32 ONNX file) in ``precision``, its toolkit metadata kept and this
    step's provenance added, then run once in ONNX Runtime so a broken file fails here, not in deployment."""
    from toolkit.core.description import describe_model
    from toolkit.core.metadata import write_props
    from toolkit.core.onnx_file import load_onnx, model_sha256, save_onnx

    model, output = Path(model), Path(output)
    if precision not in PRECISIONS:
        from toolkit.errors import UnknownNameError, suggest

        raise UnknownNameError(f"unknown precision '{precision}': {suggest(precision, PRECISIONS)}")
    src = load_onnx(model)
    described = describe_model(src, str(model))  # the metadata, read once for the whole step
    props = described.props
    if described.precision != "fp32":
        raise ToolkitError(f"{model} is already {described.precision}; quantize the fp32 export")
    extra = {"precision": precision, "parent_onnx_sha256": model_sha256(src), "excluded": ",".join(exclude)}
    if precision == "fp16":
        used = [n for n, v in (("target", target), ("calibration", calibration), ("reduce_range", reduce_range))
                if v is not None]
        if used:
            raise ToolkitError(f"{', '.join(used)} only apply to int8")
        from toolkit.quant.fp16 import convert_fp16

        out = convert_fp16(src, keep_io_types=True, exclude=exclude)
        summary = "fp16 weights and activations, fp32 input/output"
    else:
        out, summary = _int8(src, model, described.meta, target or "tensorrt", calibration, exclude, per_channel,
                             reduce_range, extra)
    write_props(out, {**props, **extra} if described.meta else extra)
    save_onnx(out, output)
    if smoke_run:
        run_once(output)
    return QuantizeResult(output, precision, extra, summary)


def _int8(src: onnx.ModelProto, model: Path, meta: ModelMeta | None, target: str, calib: Calibration | None,
          exclude: Sequence[str], per_channel: bool, reduce_range: bool | None, extra: dict[str, str]
          ) -> tuple[onnx.ModelProto, str]:
    from toolkit.quant.calibration import ImageFeeds
    from toolkit.quant.int8 import quantize_int8

    if calib is None:
        raise ToolkitError(f"{model}: int8 needs calibration images (real frames, e.g. CamVid train)")
    if calib.mean is not None and calib.std is not None:
        mean, std = calib.mean, calib.std
    elif meta is not None:
        mean, std = calib.mean or meta.dataset.mean, calib.std or meta.dataset.std
    else:
        raise ToolkitError(f"{model} has no toolkit metadata; pass --mean R,G,B and --std R,G,B (and --input-size "
                           "HxW) so calibration images are preprocessed as in deployment")
    feeds = ImageFeeds(list(calib.images), mean, std, calib.input_size or (meta.input_size if meta else None),
                       stride=meta.output_stride if meta else OUTPUT_STRIDE)
    out, rep = quantize_int8(src, feeds, target=target, method=calib.method, exclude=exclude,
                             cache_dir=calib.cache_dir, per_channel=per_channel, reduce_range=reduce_range,
                             use_cache=calib.use_cache, percentile=calib.percentile, on_image=calib.on_image)
    extra.update({"quant_target": target, "calib_method": calib.shown, "calib_images": str(rep.images),
                  "calib_data_split": calib.split})
    cache = "cache hit" if rep.cache_hit else "calibrated"
    return out, (f"int8 Q/DQ for {target} ({rep.quantized_nodes} Q nodes), {calib.shown} on {rep.images} images "
                 f"({cache}: {rep.cache_file})")


def run_once(path: str | Path) -> None:
    """The file must load and run in ONNX Runtime on the CPU (one small zero input)."""
    import numpy as np

    from toolkit.backend import make_runner

    with make_runner(path) as runner:
        runner.infer({s.name: np.zeros([d if d is not None else (1 if i == 0 else 32) for i, d in enumerate(s.shape)],
                                       s.dtype) for s in runner.input_specs()})
