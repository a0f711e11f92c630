"""``toolkit export-triton``: a native Triton model repository for production servers (NGC tritonserver).

One folder per model, each with ``config.pbtxt``, ``labels.txt`` and version folder ``1/``:
an ONNX file becomes an ``onnxruntime_onnx`` model, a TensorRT engine a ``tensorrt_plan`` model (our
unpool plugin library is copied to ``plugins/``; the server loads it with ``LD_PRELOAD`` or
``--backend-config=tensorrt,plugins=...``, see docs/SERVING.md). Inputs, outputs and batching come
from the model itself: tensor names, dtypes and dims from the ONNX graph (for an engine, from the ONNX
it was built from and the shape profile in its sidecar), classes and normalisation from its metadata,
which is also stored as the ``toolkit_meta`` parameter for ``triton://`` clients.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.core import defaults
from toolkit.core.meta import ModelMeta
from toolkit.errors import OutputIsInputError, ToolkitError
from toolkit.files import atomic_write, current_umask, folders_made_by, make_folder, remove_empty

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

META_PARAM = "toolkit_meta"
PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), ".engine": ("tensorrt_plan", "model.plan"),
             ".plan": ("tensorrt_plan", "model.plan")}
# onnx.TensorProto element type -> Triton config data type
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 16: "TYPE_BF16", 11: "TYPE_FP64", 2: "TYPE_UINT8", 3: "TYPE_INT8",
                  5: "TYPE_INT16", 6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL"}
LABELS_FILE = "labels.txt"


@dataclass
class IOSpec:
    """One tensor of a Triton model: name, Triton data type and full dims (-1 = dynamic)."""

    name: str
    data_type: str
    dims: list[int]


@dataclass
class RepoModel:
    """What goes into one model folder of the repository."""

    name: str
    platform: str
    source: Path
    filename: str
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    batch_dynamic: bool
    max_batch: int
    meta: ModelMeta | None = None
    kind: str = "KIND_CPU"
    extra_files: dict[str, Path] = field(default_factory=dict)


def onnx_signature(path: Path) -> tuple[list[IOSpec], list[IOSpec], ModelMeta | None]:
    """Inputs (initializers excluded), outputs and toolkit metadata of an ONNX file, without loading weights."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, OSError, ...
        raise ToolkitError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    inits = {i.name for i in model.graph.initializer}

    def spec(v: onnx.ValueInfoProto) -> IOSpec:
        t = v.type.tensor_type
        if t.elem_type not in ONNX_TO_TRITON:
            raise ToolkitError(f"{path}: tensor '{v.name}' has ONNX element type {t.elem_type}, which Triton's "
                               "config cannot name")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim]
        return IOSpec(v.name, ONNX_TO_TRITON[t.elem_type], dims)

    inputs = [spec(v) for v in model.graph.input if v.name not in inits]
    outputs = [spec(v) for v in model.graph.output]
    return inputs, outputs, _onnx_meta(model, path)


def _onnx_meta(model: onnx.ModelProto, path: Path) -> ModelMeta | None:
    try:
        from toolkit.core.metadata import read_model_meta
    except ImportError:  # the exporter ships with the toolkit; stay readable without it
        return None
    return read_model_meta(model, str(path))


def _engine_model(path: Path, onnx_sources: dict[str, Path], max_batch: int, name: str,
                  plugin_lib: Path | None) -> RepoModel:
    """Engine I/O from the ONNX it was built from (sidecar or same call) and its shape profile."""
    side_path = path.with_name(path.name + ".json")
    side = {}
    if side_path.is_file():
        try:
            side = json.loads(side_path.read_text())
        except (json.JSONDecodeError, OSError) as e:
            raise ToolkitError(f"{side_path}: unreadable engine sidecar ({e})") from None
    onnx_path = Path(side.get("onnx", {}).get("path", "")) if side.get("onnx") else None
    if onnx_path is None or not onnx_path.is_file():
        onnx_path = next(iter(onnx_sources.values()), None)
    if onnx_path is None:
        raise ToolkitError(f"{path}: cannot tell the engine's inputs and outputs: its sidecar {side_path.name} "
                           "names no ONNX file here; pass the ONNX it was built from in the same command")
    inputs, outputs, meta = onnx_signature(onnx_path)
    profile = next(iter(side.get("shapes", {}).values()), None)
    if profile and len(profile.get("max", [])) == len(inputs[0].dims):
        lo, hi = profile["min"], profile["max"]
        inputs[0].dims = [a if a == b else -1 for a, b in zip(lo, hi, strict=True)]
        if lo[0] != hi[0]:
            max_batch = min(max_batch, int(hi[0]))
    if plugin_lib is None and side.get("plugin_library"):
        candidate = Path(side["plugin_library"].get("path", ""))
        plugin_lib = candidate if candidate.is_file() else None
        if plugin_lib is None:
            log.warning("%s: its plugin library %s is not here; copy it into the repository's plugins/ yourself",
                        path, candidate)
    extra = {f"plugins/{plugin_lib.name}": plugin_lib} if plugin_lib else {}
    batch_dynamic = inputs[0].dims[0] == -1 if inputs[0].dims else False
    return RepoModel(name, "tensorrt_plan", path, "model.plan", inputs, outputs, batch_dynamic, max_batch, meta,
                     "KIND_GPU", extra)


def plan_models(sources: list[str | Path], name: str = defaults.SERVE_NAME, max_batch: int = defaults.SERVE_MAX_BATCH,
                device: str = "cpu", plugin_lib: str | Path | None = None) -> list[RepoModel]:
    """One RepoModel per file: ``NAME_onnx`` / ``NAME_trt`` (numbered when several of a kind)."""
    paths = [Path(s) for s in sources]
    for p in paths:
        if p.suffix.lower() not in PLATFORMS:
            hint = "; export it first: toolkit export " + str(p) if p.suffix == ".safetensors" else ""
            raise ToolkitError(f"{p}: expected an ONNX model (.onnx) or a TensorRT engine (.engine/.plan){hint}")
        if not p.is_file():
            raise ToolkitError(f"{p}: file not found")
    if device not in ("cpu", "gpu"):
        raise ToolkitError(f"--device {device}: expected cpu or gpu")
    lib = Path(plugin_lib) if plugin_lib else None
    if lib is not None and not lib.is_file():
        raise ToolkitError(f"--plugin {lib}: file not found")
    onnx_sources = {str(p): p for p in paths if p.suffix.lower() == ".onnx"}
    counts = {"onnx": 0, "trt": 0}
    models = []
    for p in paths:
        tag = "onnx" if p.suffix.lower() == ".onnx" else "trt"
        n_of_kind = sum(1 for q in paths if (q.suffix.lower() == ".onnx") == (tag == "onnx"))
        counts[tag] += 1
        mname = f"{name}_{tag}" + (f"_{counts[tag]}" if n_of_kind > 1 else "")
        if tag == "onnx":
            inputs, outputs, meta = onnx_signature(p)
            batch_dynamic = bool(inputs) and bool(inputs[0].dims) and inputs[0].dims[0] == -1
            models.append(RepoModel(mname, "onnxruntime_onnx", p, "model.onnx", inputs, outputs, batch_dynamic,
                                    max_batch, meta, "KIND_GPU" if device == "gpu" else "KIND_CPU"))
        else:
            models.append(_engine_model(p, onnx_sources, max_batch, mname, lib))
    return models


def _pb_string(text: str) -> str:
    """A protobuf text-format string literal (C escapes; non-ASCII as octal UTF-8 bytes)."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def config_text(m: RepoModel, instances: int = defaults.SERVE_INSTANCES, dynamic_batching: bool = True,
                max_queue_delay_us: int = defaults.SERVE_MAX_QUEUE_DELAY_US) -> str:
    """config.pbtxt of one model; batching only where the model's batch dimension is dynamic."""
    batching = m.batch_dynamic and m.max_batch > 0
    lines = [f"name: {_pb_string(m.name)}", f"platform: {_pb_string(m.platform)}",
             f"max_batch_size: {m.max_batch if batching else 0}"]

    def tensors(key: str, specs: list[IOSpec], labels: bool) -> None:
        lines.append(f"{key} [")
        for i, s in enumerate(specs):
            dims = s.dims[1:] if batching else s.dims
            label = f"\n    label_filename: {_pb_string(LABELS_FILE)}" if labels and m.meta else ""
            sep = "," if i < len(specs) - 1 else ""
            lines.append(f"  {{\n    name: {_pb_string(s.name)}\n    data_type: {s.data_type}\n"
                         f"    dims: [ {', '.join(map(str, dims))} ]{label}\n  }}{sep}")
        lines.append("]")

    tensors("input", m.inputs, False)
    tensors("output", m.outputs, True)
    if batching and dynamic_batching:
        lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {m.kind}\n  }}\n]")
    lines.append("version_policy: { latest: { num_versions: 1 } }")
    if m.meta is not None:
        lines.append(f"parameters {{\n  key: {_pb_string(META_PARAM)}\n  value: {{ string_value: "
                     f"{_pb_string(m.meta.to_json())} }}\n}}")
    return "\n".join(lines) + "\n"


def write_repository(models: list[RepoModel], out: str | Path, instances: int = defaults.SERVE_INSTANCES,
                     dynamic_batching: bool = True, max_queue_delay_us: int = defaults.SERVE_MAX_QUEUE_DELAY_US,
                     version: int = 1, overwrite: bool = False,
                     check: Callable[[Path], object] | None = None) -> list[Path]:
    """Write each model's folder (config.pbtxt, labels.txt, VERSION/model file); returns the config paths.

    Every refusal comes before anything is written. Each folder is built beside its place under a hidden
    name (``check`` runs on its config.pbtxt there) and renamed into place only once all of them are built,
    so a failed run leaves no half-built repository: it removes what it made (staged folders, plugin files
    and folders it created) and nothing that was there before (issue 25)."""
    out = Path(out)
    if instances < 1 or version < 1:
        raise ToolkitError(f"--instances {instances} and version {version}: both must be >= 1")
    for m in models:  # refusals first: a refused run writes nothing
        folder = out / m.name
        if folder.exists() and not overwrite:
            raise ToolkitError(f"{folder} exists; pass --overwrite to replace it or choose another -o/--name")
        inside = [str(s) for s in (m.source, *m.extra_files.values()) if folder.exists()
                  and Path(os.path.realpath(s)).is_relative_to(os.path.realpath(folder))]
        if inside:
            raise OutputIsInputError(f"--overwrite would delete {folder}, which holds the input {inside[0]}; "
                                     "copy the model out of the repository first or choose another -o/--name")
    extras = {out / rel: src for m in models for rel, src in m.extra_files.items()}
    made = {f for folder in (out, *(p.parent for p in extras)) for f in folders_made_by(folder)}
    new_extras = [p for p in extras if not p.exists()]
    staged: dict[Path, Path] = {}
    try:
        make_folder(out)
        folder_mode = 0o777 & ~current_umask()
        for m in models:
            stage = Path(tempfile.mkdtemp(prefix=f".{m.name}.", suffix=".partial", dir=out))
            staged[out / m.name] = stage
            os.chmod(stage, folder_mode)  # mkdtemp's 0700 would hide the model from a Triton container
            (stage / str(version)).mkdir()
            atomic_write(stage / str(version) / m.filename, lambda tmp, src=m.source: shutil.copyfile(src, tmp))
            if m.meta is not None:
                names = "\n".join(m.meta.dataset.class_names) + "\n"
                atomic_write(stage / LABELS_FILE, lambda tmp, t=names: tmp.write_text(t))
            text = config_text(m, instances, dynamic_batching, max_queue_delay_us)
            config = atomic_write(stage / "config.pbtxt", lambda tmp, t=text: tmp.write_text(t))
            if check is not None:
                check(config)
        for dest, src in extras.items():
            make_folder(dest.parent)
            atomic_write(dest, lambda tmp, s=src: shutil.copyfile(s, tmp))
        for folder, stage in list(staged.items()):
            if folder.exists():
                shutil.rmtree(folder)  # --overwrite (checked above): the old folder goes only now
            os.replace(stage, folder)
            del staged[folder]
    except BaseException:
        for stage in staged.values():
            shutil.rmtree(stage, ignore_errors=True)
        for p in new_extras:
            p.unlink(missing_ok=True)
        remove_empty(sorted(made, key=lambda f: len(f.parts), reverse=True))  # deepest first
        raise
    written = []
    for m in models:
        written.append(out / m.name / "config.pbtxt")
        log.debug("%s: %s, max_batch_size %s, %d x %s", out / m.name, m.platform,
                  m.max_batch if m.batch_dynamic else 0, instances, m.kind)
    return written


def parse_config(path: str | Path) -> object:
    """Parse a config.pbtxt with Triton's own protobuf definitions (needs tritonclient[grpc])."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as e:
        raise ToolkitError(f"checking config.pbtxt needs tritonclient[grpc] ({e}); "
                           "pip install 'segnet-toolkit[serve]'") from None
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(Path(path).read_text(), config)
    except text_format.ParseError as e:
        raise ToolkitError(f"{path}: not a valid Triton model config ({e})") from None
    return config
