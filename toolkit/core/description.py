"""What a model says about itself once loaded (``ModelDescription``), read from an ONNX file with onnx alone.

Every runner's ``_activate_impl`` returns one and the runner keeps it read-only (``runner.description``,
``runner.meta``, ``runner.info``); ``quant.quantize_file`` and the ONNX Runtime loader read the same
description instead of parsing ``metadata_props`` each their own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from toolkit.core.meta import ModelMeta


@dataclass(frozen=True)
class ModelDescription:
    """Label space and normalisation (``meta``, None for a model without toolkit metadata), precision, unpool
    lowering ("" where it does not apply) and the toolkit metadata_props (source_sha256, quantization ...)."""

    meta: ModelMeta | None = None
    precision: str = "fp32"
    lowering: str = ""
    props: dict[str, str] = field(default_factory=dict)


def describe_model(model: onnx.ModelProto, source: str = "model") -> ModelDescription:
    """The model's description: its metadata_props where written, else detected from the graph."""
    from toolkit.core.metadata import read_model_meta, read_props
    from toolkit.core.onnx_file import detect_lowering, detect_precision

    props = read_props(model)
    meta = read_model_meta(model, source)
    precision = props.get("precision") or detect_precision(model)
    lowering = props.get("lowering") or detect_lowering(model)
    return ModelDescription(meta, precision, lowering, props)
