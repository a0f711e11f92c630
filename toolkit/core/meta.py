"""``ModelMeta``: what a model says about itself (architecture, width, label space, normalisation, input
size, output stride, provenance). Checkpoints carry it in their header, ONNX files in ``metadata_props``, engines in
their sidecar, Triton models in a config parameter; no torch needed to read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from toolkit.core import defaults
from toolkit.core.dataset_info import DatasetInfo
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import as_hw
from toolkit.errors import InvalidValueError

FORMAT_VERSION = 1


@dataclass
class ModelMeta:
    """What a checkpoint says about its model."""

    arch: str
    width: int
    dataset: DatasetInfo
    input_size: tuple[int, int] = defaults.INPUT_SIZE
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # the multiple H and W of the input must have (``save_checkpoint`` writes the model's own); files written
    # before it was recorded are stride-8 SegNets, so a missing entry reads as 8
    output_stride: int = OUTPUT_STRIDE

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def padded_input_size(self) -> tuple[int, int]:
        """``input_size`` padded (bottom/right) to multiples of ``output_stride``: what the model is fed."""
        from toolkit.core.shapes import pad_to_multiple

        return pad_to_multiple(*self.input_size, self.output_stride)

    def to_json(self) -> str:
        d = asdict(self)
        d["dataset"] = self.dataset.to_dict()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        d = json.loads(text)
        return cls(arch=str(d["arch"]), width=int(d["width"]), dataset=DatasetInfo.from_dict(d["dataset"]),
                   input_size=as_hw(d.get("input_size", (360, 480)), "input_size"),
                   provenance=dict(d.get("provenance", {})),
                   format_version=int(d.get("format_version", FORMAT_VERSION)),
                   output_stride=_stride(d.get("output_stride", OUTPUT_STRIDE)))


def _stride(value: Any) -> int:
    """A recorded output stride: a positive integer."""
    stride = int(value)
    if stride < 1:
        raise InvalidValueError(f"output_stride {value}: expected a positive integer")
    return stride
