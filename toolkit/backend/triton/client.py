"""Talking to a Triton server through tritonclient (HTTP or gRPC), shared by the remote runner, ``toolkit
serve`` and tools.

A model on a server is named by a URL, accepted wherever a model file is:
``triton://host:port/model`` (HTTP, port 8000 by default) or ``triton://host:port/model?protocol=grpc``
(gRPC, port 8001 by default); ``/model/VERSION`` picks a version. tritonclient is imported lazily so
``import toolkit`` stays light; a missing install is one clear line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

TRITON_SCHEME = "triton://"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
INSTALL_HINT = "pip install 'segnet-toolkit[serve]' (installs nvidia-pytriton and tritonclient[http,grpc])"
# numpy dtype -> Triton's data type names
TRITON_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.uint8): "UINT8",
                 np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}


def is_triton_url(model: object) -> bool:
    """True for a ``triton://`` model reference; a Path collapses it to ``triton:/``, which is accepted too."""
    return model is not None and str(model).lower().startswith("triton:/")


@dataclass(frozen=True)
class TritonURL:
    """A parsed ``triton://host:port/model[/version][?protocol=http|grpc]``."""

    host: str
    port: int
    model: str
    protocol: str = "http"
    version: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        version = f"/{self.version}" if self.version else ""
        query = "?protocol=grpc" if self.protocol == "grpc" else ""
        return f"{TRITON_SCHEME}{self.address}/{self.model}{version}{query}"


def parse_triton_url(url: str) -> TritonURL:
    """Split a triton:// URL, with one clear error naming the expected form."""
    form = "expected triton://HOST:PORT/MODEL[/VERSION][?protocol=http|grpc], e.g. triton://127.0.0.1:8000/segnet_tensor"
    if not is_triton_url(url):
        raise ToolkitError(f"'{url}': not a Triton URL; {form}")
    url = str(url)
    if not url.lower().startswith(TRITON_SCHEME):  # triton:/host:port/m, as pathlib.Path writes it
        url = TRITON_SCHEME + url[len("triton:/"):]
    parts = urlsplit(url)
    protocol = parse_qs(parts.query).get("protocol", ["http"])[-1].lower()
    if protocol not in DEFAULT_PORTS:
        raise ToolkitError(f"'{url}': protocol '{protocol}' is not http or grpc; {form}")
    path = [p for p in parts.path.split("/") if p]
    if not parts.hostname or not path or len(path) > 2:
        raise ToolkitError(f"'{url}': missing host or model name; {form}")
    try:
        port = parts.port or DEFAULT_PORTS[protocol]
    except ValueError:
        raise ToolkitError(f"'{url}': the port is not a number; {form}") from None
    return TritonURL(parts.hostname, port, path[0], protocol, path[1] if len(path) == 2 else "")


def client_module(protocol: str) -> Any:
    """``tritonclient.http`` or ``tritonclient.grpc``; a clear error when tritonclient is missing."""
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as e:
        raise ToolkitError(f"Triton over {protocol} needs tritonclient ({e}); {INSTALL_HINT}") from None
    return module


def connect(url: TritonURL, timeout_s: float = 60.0) -> Any:
    """A tritonclient client for the URL's server (no request is sent yet)."""
    module = client_module(url.protocol)
    if url.protocol == "grpc":
        return module.InferenceServerClient(url.address)
    return module.InferenceServerClient(url.address, connection_timeout=timeout_s, network_timeout=timeout_s)


def error_line(exc: BaseException) -> str:
    """The useful line of a Triton error: PyTriton sends a whole server-side traceback as the message."""
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    for line in reversed(lines):  # a traceback's 'package.SomeError: message' line, if there is one
        m = _EXC_LINE.match(line)
        if m:
            return f"{m.group(2)} ({m.group(1).rsplit('.', 1)[-1]})"
    return lines[0] if len(lines) > 1 and lines[-1].startswith(("At:", "/")) else lines[-1]


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def make_input(protocol: str, name: str, array: np.ndarray) -> Any:
    """An InferInput of either protocol holding ``array`` (binary data over HTTP)."""
    module = client_module(protocol)
    dtype = TRITON_DTYPES.get(array.dtype)
    if dtype is None:
        raise ToolkitError(f"input '{name}': dtype {array.dtype} cannot be sent; use one of "
                           f"{', '.join(str(d) for d in TRITON_DTYPES)}")
    tensor = module.InferInput(name, list(array.shape), dtype)
    if protocol == "grpc":
        tensor.set_data_from_numpy(np.ascontiguousarray(array))
    else:
        tensor.set_data_from_numpy(np.ascontiguousarray(array), binary_data=True)
    return tensor


def make_output(protocol: str, name: str) -> Any:
    """A requested output of either protocol (binary data over HTTP)."""
    module = client_module(protocol)
    if protocol == "grpc":
        return module.InferRequestedOutput(name)
    return module.InferRequestedOutput(name, binary_data=True)


def infer(client: Any, url: TritonURL, inputs: dict[str, np.ndarray], outputs: list[str],
          timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """One request; a server-side failure becomes one ToolkitError line naming the server."""
    module = client_module(url.protocol)
    for name, arr in inputs.items():
        if arr.size == 0:
            raise ToolkitError(f"input '{name}' of shape {'x'.join(map(str, arr.shape))} is empty; send at least "
                               "one frame of at least 1x1 pixels")
    kwargs: dict[str, Any] = {"model_version": url.version}
    if timeout_s is not None and url.protocol == "grpc":
        kwargs["client_timeout"] = timeout_s
    try:
        result = client.infer(url.model, [make_input(url.protocol, k, v) for k, v in inputs.items()],
                              outputs=[make_output(url.protocol, o) for o in outputs], **kwargs)
    except module.InferenceServerException as e:
        raise ToolkitError(f"{url}: {error_line(e)}") from None
    except OSError as e:
        raise ToolkitError(f"{url}: cannot reach the server ({e}); is it running?") from None
    return {name: result.as_numpy(name) for name in outputs}
