"""``ModelMeta``: what a model says about itself (architecture, width, label space, normalisation, input
size, provenance). Checkpoints carry it in their header, ONNX files in ``metadata_props``, engines in
their sidecar, Triton models in a config parameter; no torch needed to read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from toolkit.core import defaults
from toolkit.core.dataset_info import DatasetInfo

FORMAT_VERSION = 1


@dataclass
class ModelMeta:
    """What a checkpoint says about its model."""

    arch: str
    width: int
    dataset: DatasetInfo
    input_size: tuple[int, int] = defaults.INPUT_SIZE
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def to_json(self) -> str:
        d = asdict(self)
        d["dataset"] = self.dataset.to_dict()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        d = json.loads(text)
        return cls(arch=str(d["arch"]), width=int(d["width"]), dataset=DatasetInfo.from_dict(d["dataset"]),
                   input_size=tuple(int(v) for v in d.get("input_size", (360, 480))),  # type: ignore[arg-type]
                   provenance=dict(d.get("provenance", {})),
                   format_version=int(d.get("format_version", FORMAT_VERSION)))
