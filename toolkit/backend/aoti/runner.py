"""The AOTInductor runner: a ``.pt2`` package behind the runner interface, on the PyTorch runner's device path.

It is the PyTorch runner with the compiled package in place of the module: on the CPU a plain call, on CUDA
the same pinned buffers, stream, CUDA graphs per shape and frames-on-device path (``infer_frame``) as
``TorchRunner``. Its precision comes from the package (its sidecar), like an ONNX file's or an engine's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from toolkit.backend.aoti.package import PackageSidecar, check_sidecar, read_package_sidecar
from toolkit.backend.torch.runner import TorchRunner
from toolkit.backend.trt.shapes import ShapeProfile
from toolkit.core.description import ModelDescription
from toolkit.core.loader import BaseLoader
from toolkit.errors import InputShapeError, ToolkitError

Compiled = Callable[[torch.Tensor], torch.Tensor]  # what aoti_load_package gives: the module's forward


class LoadPackage(BaseLoader[tuple[Compiled, PackageSidecar]]):
    """(compiled model, sidecar) from a ``.pt2`` path, after its sidecar was checked against ``device``."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path, self.device = Path(path), device

    def _call_impl(self) -> tuple[Compiled, PackageSidecar]:
        from toolkit.backend.torch.device import torch_device

        device = torch_device(self.device)
        sidecar = read_package_sidecar(self.path)
        check_sidecar(self.path, sidecar, device)
        assert sidecar is not None
        try:
            compiled = torch._inductor.aoti_load_package(str(self.path), device_index=device.index or 0
                                                         if device.type == "cuda" else -1)
        except Exception as e:  # a truncated or foreign file: torch's message, first line
            raise ToolkitError(f"{self.path}: not a loadable AOTInductor package ({type(e).__name__}: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
        return compiled, sidecar


class AotiRunner(TorchRunner):
    """Runs a package built by ``toolkit build-engine --backend aoti``; ``cuda_graph`` as TorchRunner's."""

    backend = "aoti"

    def __init__(self, loader: LoadPackage, device: str = "cpu", name: str | None = None, source: str = "",
                 cuda_graph: bool | None = None) -> None:
        super().__init__(loader, device=device, name=name, source=source, cuda_graph=cuda_graph)
        self._package = loader
        self.profile: ShapeProfile | None = None

    def _activate_impl(self) -> ModelDescription:
        compiled, sidecar = self._package()
        self.profile = sidecar.profile()
        self._fn = compiled
        if self.device.type == "cuda":
            self._stream = torch.cuda.Stream(self.device)
        # the package takes fp32 and casts inside, so the runner's own input dtype stays fp32 (self._precision);
        # the description says the precision it was built in
        return ModelDescription(sidecar.meta(), sidecar.precision, props={
            "source_sha256": sidecar.source.get("sha256", ""), "torch_version": sidecar.torch_version})

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 NCHW in, fp32 logits out: the package casts inside. Shapes outside its profile are refused here,
        in one line, rather than by the package's own check."""
        assert self._fn is not None and self.profile is not None
        if not self.profile.contains(tuple(x.shape)):
            raise InputShapeError(f"input {'x'.join(map(str, x.shape))}: outside the package's shapes "
                               f"{self.profile.to_text()}; rebuild it with --shapes MIN:OPT:MAX covering it")
        return self._fn(x.contiguous())
