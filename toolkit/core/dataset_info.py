"""What a model needs to know about its label space and input normalisation, in one object.

Travels with every checkpoint and ONNX file (as metadata), so later commands need no extra flags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat, SupportsInt

from toolkit.errors import DatasetError, InvalidValueError

# Per-channel RGB mean/std of CamVid train (367 frames, pixel values scaled to [0, 1]),
# measured once with tools/camvid_stats.py.
CAMVID_MEAN = (0.4119, 0.4251, 0.4327)
CAMVID_STD = (0.3071, 0.3116, 0.3072)


def as_rgb(values: Iterable[SupportsInt | str]) -> tuple[int, int, int]:
    """One palette colour (R, G, B) from what a file holds; ValueError unless it is three integers."""
    c = tuple(int(v) for v in values)
    if len(c) != 3:
        raise InvalidValueError(f"colour {list(c)}: expected three values (R, G, B)")
    return c[0], c[1], c[2]


def as_palette(colours: Iterable[Iterable[SupportsInt | str]]) -> tuple[tuple[int, int, int], ...]:
    return tuple(as_rgb(c) for c in colours)


def as_channels(values: Iterable[SupportsFloat | str], what: str) -> tuple[float, float, float]:
    """Per-channel (R, G, B) floats (a normalisation mean or std); ValueError unless there are three."""
    v = tuple(float(x) for x in values)
    if len(v) != 3:
        raise InvalidValueError(f"{what} {list(v)}: expected three values (R, G, B)")
    return v[0], v[1], v[2]


@dataclass(frozen=True)
class DatasetInfo:
    """Class names, palette (RGB), ignore label and normalisation of one label space."""

    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    mean: tuple[float, float, float] = CAMVID_MEAN
    std: tuple[float, float, float] = CAMVID_STD
    name: str = ""
    void_name: str = "void"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["palette"] = [list(c) for c in self.palette]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetInfo:
        try:
            return cls(
                class_names=tuple(d["class_names"]),
                palette=as_palette(d["palette"]),
                ignore_index=int(d.get("ignore_index", 255)),
                mean=as_channels(d.get("mean", CAMVID_MEAN), "mean"),
                std=as_channels(d.get("std", CAMVID_STD), "std"),
                name=str(d.get("name", "")),
                void_name=str(d.get("void_name", "void")),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"invalid dataset info ({e!r}): needs class_names and palette") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def load_classes_json(path: str | Path) -> DatasetInfo:
    """Read a CamVid-style classes.json: {"classes": [{"id", "name", "color"}], "ignore_index", "void"}."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: classes.json not found (expected beside the split list files)")
    try:
        raw = json.loads(path.read_text())
        classes = sorted(raw["classes"], key=lambda c: int(c["id"]))
        ids = [int(c["id"]) for c in classes]
        if ids != list(range(len(ids))):
            raise InvalidValueError(f"class ids must be 0..K-1, got {ids}")
        void = raw.get("void", {})
        return DatasetInfo(
            class_names=tuple(str(c["name"]) for c in classes),
            palette=as_palette(c["color"] for c in classes),
            ignore_index=int(raw.get("ignore_index", void.get("id", 255))),
            name=str(raw.get("name", path.parent.name)),
            void_name=str(void.get("name", "void")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: not a valid classes.json ({e})") from None
