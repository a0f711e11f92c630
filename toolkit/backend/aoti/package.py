"""``toolkit build-engine --backend aoti``: a checkpoint -> ``torch.export`` -> AOTInductor -> ``MODEL.pt2`` + sidecar.

Why: ``--compile`` (torch.compile) makes the PyTorch path fast but pays its compilation in every process.
AOTInductor does that work once and writes a package that a process loads in about a second, the same
build/run split as a TensorRT engine. Like an engine, a package is not portable: it holds machine code for
one device kind (and, on the CPU, one instruction set) and runs only under the torch that built it, so the
sidecar ``MODEL.pt2.json`` records those, the model's metadata, the source checkpoint's sha256, the precision
and the shapes, and ``check_sidecar`` refuses a package built elsewhere in one line.

The package takes the runner interface's tensor (N x 3 x H x W float32, normalised, contiguous) and returns
float32 logits: the cast to fp16/bf16 and back is compiled into it (and fused into the first and last kernels).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

import torch
from torch import nn

from toolkit.backend.torch.device import torch_device
from toolkit.backend.torch.precision import DTYPES, TORCH_PRECISIONS
from toolkit.backend.trt.shapes import ShapeProfile, parse_shapes, profile_from_input_size
from toolkit.backend.trt.sidecar import sidecar_path
from toolkit.core.loader import BaseLoader
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.errors import InvalidValueError, PackageMismatchError, ToolkitError
from toolkit.files import atomic_write, file_sha256

SIDECAR_FORMAT = "segnet-toolkit/aoti-package-sidecar"
SIDECAR_VERSION = 1
PACKAGE_SUFFIX = ".pt2"
DEFAULT_MAX_BATCH = 8  # the default profile: batch 1..8 at the model's input size (bench batch 1 and 8)
REBUILD_HINT = "packages are not portable: rebuild it here with `toolkit build-engine -m MODEL --backend aoti`"


@dataclass
class PackageSidecar:
    """Everything recorded next to a package."""

    torch_version: str
    device: str  # 'cpu' or 'cuda'
    precision: str
    shapes: dict[str, list[int]]  # min / opt / max
    model_meta: str  # ModelMeta JSON, as a checkpoint carries it
    gpu: dict[str, str] = field(default_factory=dict)  # name, compute_capability (cuda)
    cpu_isa: str = ""  # the vector instruction set the CPU kernels were compiled for (cpu)
    source: dict[str, str] = field(default_factory=dict)  # path, sha256 of the checkpoint
    package_sha256: str = ""
    toolkit_version: str = ""
    created: str = ""
    format: str = SIDECAR_FORMAT
    format_version: int = SIDECAR_VERSION

    def meta(self) -> ModelMeta:
        return ModelMeta.from_json(self.model_meta)

    def profile(self) -> ShapeProfile:
        return ShapeProfile.from_dict(self.shapes)


def read_package_sidecar(package: str | Path) -> PackageSidecar | None:
    """The sidecar of a package, None when there is none; an unreadable one is one clear error."""
    path = sidecar_path(package)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("format") != SIDECAR_FORMAT:
            raise InvalidValueError(f"format {d.get('format')!r}, expected {SIDECAR_FORMAT!r}")
        known = PackageSidecar.__dataclass_fields__
        sidecar = PackageSidecar(**{k: v for k, v in d.items() if k in known})
        sidecar.meta()
        return sidecar
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise PackageMismatchError(f"{path}: unreadable package sidecar ({type(e).__name__}: {e}); "
                                   f"{REBUILD_HINT}") from None


def write_package_sidecar(package: str | Path, sidecar: PackageSidecar) -> Path:
    sidecar.package_sha256 = file_sha256(package)
    sidecar.created = sidecar.created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = json.dumps(asdict(sidecar), indent=2, sort_keys=True) + "\n"
    return atomic_write(sidecar_path(package), lambda tmp: tmp.write_text(text))


def cpu_isa() -> str:
    """The vector instruction set Inductor compiles CPU kernels for on this machine ('avx2', 'avx512', '')."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    return str(pick_vec_isa())


def gpu_info(device: torch.device) -> dict[str, str]:
    major, minor = torch.cuda.get_device_capability(device)
    return {"name": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


class BuildHost(TypedDict):
    """The PackageSidecar fields that describe where a package was built (``here_for``)."""

    torch_version: str
    device: str
    gpu: dict[str, str]
    cpu_isa: str


def here_for(device: torch.device) -> BuildHost:
    """What a package built on this machine for ``device`` records (and what a loader compares)."""
    if device.type == "cuda":
        return {"torch_version": torch.__version__, "device": "cuda", "gpu": gpu_info(device), "cpu_isa": ""}
    return {"torch_version": torch.__version__, "device": "cpu", "gpu": {}, "cpu_isa": cpu_isa()}


def check_sidecar(package: str | Path, sidecar: PackageSidecar | None, device: torch.device) -> None:
    """Refuse a package built elsewhere: another torch, device kind, GPU or CPU instruction set, or another file."""
    if sidecar is None:
        raise PackageMismatchError(f"{package}: no sidecar {sidecar_path(package).name} beside it, so the torch "
                                   f"version and device it was built for are unknown; {REBUILD_HINT}")
    here = here_for(device)
    if sidecar.torch_version != here["torch_version"]:
        raise PackageMismatchError(f"{package}: built with torch {sidecar.torch_version}, this process runs torch "
                                   f"{here['torch_version']}; {REBUILD_HINT}")
    if sidecar.device != here["device"]:
        raise PackageMismatchError(f"{package}: built for --device {sidecar.device}, asked to run on --device "
                                   f"{device}; pass --device {sidecar.device}, or rebuild it with --device "
                                   f"{here['device']}")
    if sidecar.device == "cuda" and sidecar.gpu != here["gpu"]:
        g, h = sidecar.gpu, here["gpu"]
        raise PackageMismatchError(
            f"{package}: built for {g.get('name', '?')} (compute capability {g.get('compute_capability', '?')}), "
            f"this GPU is {h['name']} (compute capability {h['compute_capability']}); {REBUILD_HINT}")
    if sidecar.device == "cpu" and sidecar.cpu_isa != here["cpu_isa"]:
        raise PackageMismatchError(f"{package}: its CPU kernels were compiled for {sidecar.cpu_isa or 'no vector ISA'}"
                                   f", this CPU runs {here['cpu_isa'] or 'no vector ISA'}; {REBUILD_HINT}")
    if sidecar.package_sha256 and file_sha256(package) != sidecar.package_sha256:
        raise PackageMismatchError(f"{package}: the file changed since its sidecar was written (sha256 differs); "
                                   f"{REBUILD_HINT}")


def resolve_package_profile(shapes: str | None, input_shape: str | None, meta: ModelMeta) -> ShapeProfile:
    """``--shapes MIN:OPT:MAX`` or ``--input-shape`` (static), else batch 1..DEFAULT_MAX_BATCH at the model's
    (padded) input size."""
    if shapes and input_shape:
        raise ToolkitError("--shapes and --input-shape both given: pass one (--input-shape builds a static package)")
    if spec := shapes or input_shape:
        return parse_shapes(spec, meta.output_stride)
    one = profile_from_input_size(meta.input_size, stride=meta.output_stride)
    return ShapeProfile(one.min, one.opt, (DEFAULT_MAX_BATCH, *one.max[1:]))


class _Exported(nn.Module):
    """The model as the package runs it: fp32 in, the model in ``dtype``, fp32 logits out."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype)).float()


def _dynamic_shapes(profile: ShapeProfile, stride: int = OUTPUT_STRIDE) -> tuple[tuple[int, ...], dict[int, object]]:
    """(example shape, torch.export dims): a dimension whose min and max differ is dynamic (H and W as
    multiples of the output stride). The example avoids size 1 on a dynamic dimension (torch.export would
    specialise it)."""
    from torch.export import Dim

    example, dims = list(profile.opt), {}
    for i, name in ((0, "batch"), (2, "height"), (3, "width")):
        lo, hi = profile.min[i], profile.max[i]
        if lo == hi:
            continue
        step = 1 if i == 0 else stride
        d = Dim(f"{name}{'' if step == 1 else f'_{stride}'}", min=lo // step, max=hi // step)
        dims[i] = d if step == 1 else step * d
        if example[i] // step < 2:
            example[i] = min(2 * step, hi)
    return tuple(example), dims


def export_and_compile(model: nn.Module, profile: ShapeProfile, precision: str, device: torch.device,
                       package: Path) -> None:
    """torch.export (dynamic where the profile allows) then AOTInductor, written to ``package`` (a temp path)."""
    from toolkit.models.fold import fold_batchnorm

    wrapped = _Exported(fold_batchnorm(model.eval()).to(device, dtype=DTYPES[precision]), DTYPES[precision]).eval()
    shape, dims = _dynamic_shapes(profile, int(getattr(model, "output_stride", OUTPUT_STRIDE)))
    example = torch.randn(shape, device=device)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch's own deprecations, not the user's concern
        try:
            exported = torch.export.export(wrapped, (example,), dynamic_shapes=({**dims},) if dims else None)
        except Exception as e:  # torch's export errors are long; the first line says which constraint failed
            raise ToolkitError(f"torch.export failed for --shapes {profile.to_text()}: "
                               f"{str(e).strip().splitlines()[0]}") from None
        torch._inductor.aoti_compile_and_package(exported, package_path=str(package))


class BuildPackage(BaseLoader[Path]):
    """Build ``output`` (``.pt2``) and its sidecar from a checkpoint; returns the package path."""

    def __init__(self, checkpoint: str | Path, output: str | Path, precision: str = "fp32", device: str = "cpu",
                 shapes: str | None = None, input_shape: str | None = None) -> None:
        self.checkpoint, self.output = Path(checkpoint), Path(output)
        self.precision, self.device, self.shapes, self.input_shape = precision, device, shapes, input_shape

    def _call_impl(self) -> Path:
        from toolkit import __version__
        from toolkit.backend.torch.precision import resolve_precision
        from toolkit.checkpoint import load_checkpoint

        device = torch_device(self.device)
        if self.precision not in TORCH_PRECISIONS:
            raise ToolkitError(f"--precision {self.precision}: a package is built in one of "
                               f"{', '.join(TORCH_PRECISIONS)}")
        precision = resolve_precision(self.precision, device)
        if self.output.suffix.lower() != PACKAGE_SUFFIX:
            raise ToolkitError(f"-o {self.output}: AOTInductor packages end in {PACKAGE_SUFFIX} (so that parity, "
                               "infer and bench recognise them)")
        model, meta = load_checkpoint(self.checkpoint, unpool="mask")  # indices-free: plain tensor ops to compile
        profile = resolve_package_profile(self.shapes, self.input_shape, meta)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{self.output.name}.", dir=self.output.parent) as work:
            built = Path(work) / f"model{PACKAGE_SUFFIX}"  # AOTInductor insists on the suffix (atomic_write's temp
            # has another)
            export_and_compile(model, profile, precision, device, built)
            atomic_write(self.output, lambda tmp: os.replace(built, tmp))
        sidecar = PackageSidecar(**here_for(device), precision=precision, shapes=profile.to_dict(),
                                 model_meta=meta.to_json(), toolkit_version=__version__,
                                 source={"path": str(self.checkpoint), "sha256": file_sha256(self.checkpoint)})
        write_package_sidecar(self.output, sidecar)
        return self.output


def build_package(checkpoint: str | Path, output: str | Path, precision: str = "fp32", device: str = "cpu",
                  shapes: str | None = None, input_shape: str | None = None) -> Path:
    """Function twin of BuildPackage."""
    return BuildPackage(checkpoint, output, precision, device, shapes, input_shape)()
