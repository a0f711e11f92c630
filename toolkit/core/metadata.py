"""The model's metadata in ONNX ``metadata_props``: what later commands need, so they take no flags.

One key per fact, as plain strings (JSON for lists), readable by any ONNX tool (Netron shows them):
classes, palette, ignore_index, mean, std, input_size, output_stride, input_layout, arch, width, lowering,
precision, source_sha256, provenance. ``read_model_meta`` rebuilds a ``ModelMeta`` from them.
"""

from __future__ import annotations

import json

import onnx

from toolkit import __version__
from toolkit.core import defaults
from toolkit.core.dataset_info import DatasetInfo, as_channels, as_palette
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import as_hw
from toolkit.errors import ToolkitError

PREFIX = "toolkit."
INPUT_LAYOUT = "NCHW float32 RGB, x = (pixel / 255 - mean) / std, H and W multiples of {stride}"
REQUIRED = ("classes", "palette", "mean", "std", "arch", "width")


def meta_props(meta: ModelMeta, lowering: str, precision: str = "fp32", source_sha256: str = "",
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The key/value strings for one model (keys without the ``toolkit.`` prefix)."""
    ds = meta.dataset
    props = {
        "arch": meta.arch, "width": str(meta.width), "num_classes": str(meta.num_classes),
        "classes": json.dumps(list(ds.class_names)), "palette": json.dumps([list(c) for c in ds.palette]),
        "ignore_index": str(ds.ignore_index), "void_name": ds.void_name, "dataset": ds.name,
        "mean": json.dumps(list(ds.mean)), "std": json.dumps(list(ds.std)),
        "input_size": "x".join(map(str, meta.input_size)), "output_stride": str(meta.output_stride),
        "input_layout": INPUT_LAYOUT.format(stride=meta.output_stride),
        "lowering": lowering, "precision": precision, "source_sha256": source_sha256,
        "provenance": json.dumps(meta.provenance), "toolkit_version": __version__,
    }
    props.update(extra or {})
    return props


def write_props(model: onnx.ModelProto, props: dict[str, str]) -> onnx.ModelProto:
    """Set (add or replace) ``toolkit.<key>`` entries in place; other tools' entries are kept."""
    current = {p.key: p.value for p in model.metadata_props}
    current.update({PREFIX + k: str(v) for k, v in props.items()})
    del model.metadata_props[:]
    for k, v in current.items():
        model.metadata_props.add(key=k, value=v)
    return model


def read_props(model: onnx.ModelProto) -> dict[str, str]:
    """Our entries, without the prefix (empty when the model was not written by this toolkit)."""
    return {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}


def read_model_meta(model: onnx.ModelProto, source: str = "model") -> ModelMeta | None:
    """ModelMeta from the metadata, None when the model has none; malformed entries are an error."""
    props = read_props(model)
    if not all(k in props for k in REQUIRED):
        return None
    try:
        info = DatasetInfo(
            class_names=tuple(json.loads(props["classes"])),
            palette=as_palette(json.loads(props["palette"])),
            ignore_index=int(props.get("ignore_index", 255)),
            mean=as_channels(json.loads(props["mean"]), "mean"),
            std=as_channels(json.loads(props["std"]), "std"),
            name=props.get("dataset", ""), void_name=props.get("void_name", "void"),
        )
        size = as_hw(props.get("input_size", "x".join(map(str, defaults.INPUT_SIZE))).split("x"), "input_size")
        return ModelMeta(arch=props["arch"], width=int(props["width"]), dataset=info,
                         input_size=size,
                         provenance=json.loads(props.get("provenance", "{}")),
                         output_stride=int(props.get("output_stride", OUTPUT_STRIDE)))  # older files: 8
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise ToolkitError(f"{source}: malformed toolkit metadata ({e}); re-export it with toolkit export") from None
