"""The model zoo: named, trained checkpoints shipped inside the package, verified by sha256 on load.

``toolkit/assets/zoo.json`` lists them (file, sha256, where each is the default, how it was trained,
its measured val mIoU and the command that measured it); nothing is ever downloaded. Every command
that takes a model resolves it here first (``resolve_model``): a zoo name, a file path, a
``triton://`` URL, or nothing, which picks the default for the device (the w=64 model on CUDA, the
real-time model on a CPU) and says why.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import CheckpointError, UnknownNameError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
ZOO_FILE = ASSETS_DIR / "zoo.json"
MODEL_SUFFIXES = (".safetensors", ".onnx", ".engine", ".plan", ".pt2")


@dataclass(frozen=True)
class ZooModel:
    """One shipped checkpoint and what is known about it."""

    name: str
    file: str
    sha256: str
    default_on: str | None  # "cuda" or "cpu": the device on which it is the default
    summary: str
    trained: str
    val_miou: float | None
    val_miou_source: str

    @property
    def path(self) -> Path:
        return ASSETS_DIR / self.file

    def verified_path(self) -> Path:
        """The checkpoint's path, after checking that the file is there and its sha256 is the listed one."""
        if not self.path.is_file():
            raise CheckpointError(f"zoo model '{self.name}': {self.path} is missing from this install; "
                                  "reinstall the package")
        if _sha256_of(str(self.path), self.path.stat().st_mtime_ns, self.path.stat().st_size) != self.sha256:
            raise CheckpointError(f"zoo model '{self.name}': {self.path} does not match its sha256 "
                                  f"{self.sha256[:12]}... (corrupt or modified install); reinstall the package")
        return self.path


@dataclass(frozen=True)
class ResolvedModel:
    """What a model argument turned into: the thing to load, its zoo name (if any) and why it was chosen."""

    model: str | Path
    name: str | None
    reason: str

    def describe(self) -> str:
        label = self.name or str(self.model)
        return f"{label} ({self.reason})"


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, _mtime_ns: int, _size: int) -> str:
    from toolkit.files import file_sha256

    return file_sha256(path)


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, ZooModel]:
    raw = json.loads(ZOO_FILE.read_text())
    return {name: ZooModel(name=name, file=d["file"], sha256=d["sha256"], default_on=d.get("default_on"),
                           summary=d["summary"], trained=d["trained"], val_miou=d.get("val_miou"),
                           val_miou_source=d.get("val_miou_source", ""))
            for name, d in raw.items()}


def list_zoo() -> list[ZooModel]:
    """Every shipped model, in the order zoo.json lists them."""
    return list(_registry().values())


def zoo_names() -> list[str]:
    return list(_registry())


def get_zoo_model(name: str) -> ZooModel:
    """The zoo entry called ``name``; a did-you-mean error otherwise."""
    from toolkit.errors import suggest

    try:
        return _registry()[name]
    except KeyError:
        raise UnknownNameError(f"no model '{name}' in the zoo (`toolkit models` lists them): "
                               f"{suggest(name, zoo_names())}") from None


def is_cuda_device(device: str | None) -> bool:
    return device is not None and str(device).lower().split(":")[0] in ("cuda", "gpu", "tensorrt")


def default_zoo_model(device: str | None = "cpu") -> ZooModel:
    """The shipped model for ``device``: the one whose ``default_on`` is cuda on a GPU, cpu elsewhere."""
    want = "cuda" if is_cuda_device(device) else "cpu"
    for entry in list_zoo():
        if entry.default_on == want:
            return entry
    raise CheckpointError(f"the zoo has no default model for {want}; pass --model")


def resolve_model(spec: str | Path | None, device: str | None = "cpu") -> ResolvedModel:
    """Turn a model argument into something loadable.

    None: the zoo default for ``device``. A ``triton://`` URL or an existing file: itself. A zoo name:
    its verified shipped file. Anything else that looks like a file path (a folder or a model suffix)
    is passed on, so the loader reports it missing; a bare name that is neither gets a did-you-mean.
    """
    if spec is None:
        entry = default_zoo_model(device)
        why = "default on a CUDA GPU" if entry.default_on == "cuda" else "default on a CPU"
        return ResolvedModel(entry.verified_path(), entry.name, f"zoo, {why}")
    text = str(spec)
    if text.lower().startswith("triton:/"):
        return ResolvedModel(text, None, "Triton server")
    if text in _registry():
        return ResolvedModel(_registry()[text].verified_path(), text, "zoo")
    path = Path(text)
    if path.exists() or "/" in text or "\\" in text or path.suffix.lower() in MODEL_SUFFIXES:
        return ResolvedModel(spec if isinstance(spec, Path) else path, None, "file")
    from toolkit.errors import suggest

    raise UnknownNameError(f"'{text}' is neither a model file nor a zoo model (`toolkit models` lists them): "
                           f"{suggest(text, zoo_names())}")


def resolve_model_path(spec: str | Path | None, device: str | None = "cpu") -> Path | str:
    """``resolve_model(...).model``: for callers that need only what to load."""
    return resolve_model(spec, device).model


def describe(entry: ZooModel) -> dict:
    """Everything ``toolkit models`` shows of an entry: what its checkpoint header says, its size on disk,
    parameters and GFLOPs at its input size."""
    from safetensors import safe_open

    from toolkit.checkpoint import METADATA_KEY, build_model
    from toolkit.core.meta import ModelMeta
    from toolkit.models.complexity import conv_macs_at, count_parameters

    with safe_open(str(entry.path), framework="pt") as f:
        meta = ModelMeta.from_json((f.metadata() or {})[METADATA_KEY])
        names = list(f.keys())
        dtypes = sorted({str(f.get_slice(k).get_dtype()).lower() for k in names} - {"i64", "int64"})
    h, w = meta.input_size
    net = build_model(meta, unpool="mask").eval()
    macs = conv_macs_at(net, h, w)
    return {"name": entry.name, "arch": meta.arch, "width": meta.width, "input_size": [h, w],
            "classes": list(meta.dataset.class_names), "params": count_parameters(net),
            "gflops": round(2 * macs / 1e9, 2), "val_miou": entry.val_miou, "val_miou_source": entry.val_miou_source,
            "size_mb": round(entry.path.stat().st_size / 1e6, 2), "weights_dtype": ",".join(dtypes),
            "sha256": entry.sha256, "default_on": entry.default_on, "summary": entry.summary,
            "trained": entry.trained, "path": str(entry.path)}
