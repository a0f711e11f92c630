"""The JSON sidecar ``<engine>.json`` that says what an engine was built from, with what, and for which GPU.

A TensorRT engine is not portable: it only runs on the TensorRT version that built it and is tuned for
one GPU model. The sidecar records TensorRT version, GPU name and compute capability, precision, the
ONNX's sha256 and metadata, the shape profile and the plugin library, so that a mismatch is refused
with one clear line instead of a deserialization failure (or a silently slow engine) on the wrong machine.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.backend.trt.compat import GpuInfo
from toolkit.core.meta import ModelMeta
from toolkit.errors import EngineMismatchError, ToolkitError
from toolkit.files import atomic_write, file_sha256

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "segnet-toolkit/trt-engine-sidecar"
SIDECAR_VERSION = 1
REBUILD_HINT = "engines are not portable: rebuild it here with `toolkit build-engine MODEL.onnx -o ENGINE`"


@dataclass
class Sidecar:
    """Everything recorded next to an engine."""

    tensorrt_version: str
    gpu: dict[str, str]
    precision: str
    shapes: dict[str, dict[str, list[int]]]
    engine_sha256: str = ""
    onnx: dict[str, str] = field(default_factory=dict)  # path, sha256
    plugin_library: dict[str, str] | None = None  # path, sha256
    onnx_metadata: dict[str, str] = field(default_factory=dict)
    build: dict[str, object] = field(default_factory=dict)  # strongly_typed, workspace_mb, opt_level, timing_cache
    toolkit_version: str = ""
    created: str = ""
    format: str = SIDECAR_FORMAT
    format_version: int = SIDECAR_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Sidecar:
        if d.get("format") != SIDECAR_FORMAT:
            raise ToolkitError(f"not a toolkit engine sidecar (format {d.get('format')!r})")
        try:
            return cls(tensorrt_version=str(d["tensorrt_version"]), gpu=dict(d["gpu"]), precision=str(d["precision"]),
                       shapes=dict(d["shapes"]), engine_sha256=str(d.get("engine_sha256", "")),
                       onnx=dict(d.get("onnx") or {}), plugin_library=d.get("plugin_library"),
                       onnx_metadata=dict(d.get("onnx_metadata") or {}), build=dict(d.get("build") or {}),
                       toolkit_version=str(d.get("toolkit_version", "")), created=str(d.get("created", "")),
                       format_version=int(d.get("format_version", SIDECAR_VERSION)))
        except (KeyError, TypeError, ValueError) as e:
            raise ToolkitError(f"incomplete engine sidecar (missing or invalid {e})") from None

    def model_meta(self) -> ModelMeta | None:
        """The model's label space and normalisation, copied from the ONNX metadata at build time."""
        return model_meta_from_onnx_metadata(self.onnx_metadata)


def model_meta_from_onnx_metadata(props: dict[str, str], source: str = "model") -> ModelMeta | None:
    """ModelMeta from ONNX metadata_props as ``toolkit export`` writes them; None when absent or invalid."""
    if not props:
        return None
    try:
        import onnx

        from toolkit.core.metadata import read_model_meta
    except ImportError:  # pragma: no cover - the export package ships with the toolkit
        return None
    model = onnx.ModelProto()
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    try:
        return read_model_meta(model, source)
    except ToolkitError as e:
        log.warning("%s; classes and normalisation unknown", e)
        return None


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def write_sidecar(engine_path: str | Path, sidecar: Sidecar) -> Path:
    """Hash the engine file into the sidecar and write it atomically beside the engine."""
    sidecar.engine_sha256 = file_sha256(engine_path)
    if not sidecar.created:
        sidecar.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = sidecar.to_json() + "\n"
    return atomic_write(sidecar_path(engine_path), lambda tmp: tmp.write_text(text))


def read_sidecar(engine_path: str | Path) -> Sidecar | None:
    """The sidecar of an engine, None when there is none; unreadable ones are one clear error."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        return None
    try:
        return Sidecar.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise EngineMismatchError(f"{path}: unreadable engine sidecar ({type(e).__name__}); {REBUILD_HINT}") from None
    except ToolkitError as e:
        raise EngineMismatchError(f"{path}: {e}; {REBUILD_HINT}") from None


def check_sidecar(engine_path: str | Path, sidecar: Sidecar | None, tensorrt_version: str, gpu: GpuInfo,
                  check_hash: bool = True) -> None:
    """Refuse an engine built elsewhere: another TensorRT, another GPU, or a sidecar of another engine file."""
    engine_path = Path(engine_path)
    if sidecar is None:
        raise EngineMismatchError(f"{engine_path}: no sidecar {sidecar_path(engine_path).name} beside it, so its "
                                  f"TensorRT version and GPU are unknown; {REBUILD_HINT} (or, for an engine you "
                                  "built yourself on this machine, pass --no-sidecar-check)")
    if sidecar.tensorrt_version != tensorrt_version:
        raise EngineMismatchError(f"{engine_path}: built with TensorRT {sidecar.tensorrt_version}, this machine runs "
                                  f"TensorRT {tensorrt_version}; {REBUILD_HINT}")
    built_gpu = f"{sidecar.gpu.get('name', '?')} (compute capability {sidecar.gpu.get('compute_capability', '?')})"
    here_gpu = f"{gpu.name} (compute capability {gpu.compute_capability})"
    if (sidecar.gpu.get("compute_capability") != gpu.compute_capability or sidecar.gpu.get("name") != gpu.name):
        raise EngineMismatchError(f"{engine_path}: built for {built_gpu}, this GPU is {here_gpu}; {REBUILD_HINT}")
    if check_hash and sidecar.engine_sha256 and file_sha256(engine_path) != sidecar.engine_sha256:
        raise EngineMismatchError(f"{engine_path}: the file changed since its sidecar was written (sha256 differs); "
                                  f"{REBUILD_HINT}")
