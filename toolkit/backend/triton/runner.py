"""A model on a Triton server behind the Runner interface, through tritonclient (HTTP or gRPC).

The served model must take the runner's tensor (``input``: N x 3 x H x W float32, normalised) and
give ``logits``: that is the ``NAME_tensor`` model of ``toolkit serve`` and every model of an
``export-triton`` repository. Pre- and post-processing stay on the client, in the same code as for a
local runner, so ``parity --candidate triton://...`` measures the server alone. The model's metadata
(classes, normalisation, input size) comes from the ``toolkit_meta`` parameter of its config, and the
server's request limits from ``toolkit_limits`` (``toolkit.core.limits``): a batch is split into requests
that fit them, and an item larger than the server takes is refused here, before anything is sent.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import numpy as np

from toolkit.backend.base import BaseRunner, TensorSpec
from toolkit.backend.triton import client as tc
from toolkit.core.description import ModelDescription
from toolkit.core.limits import LIMITS_PARAM, RequestLimits
from toolkit.core.meta import ModelMeta
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

META_PARAM = "toolkit_meta"


class TritonRunner(BaseRunner):
    """Sends each batch to ``url`` (split into requests of at most the model's max_batch_size)."""

    backend = "triton"
    thread_safe = True  # one client per calling thread (_client)

    def __init__(self, url: str, timeout_s: float = 60.0, name: str | None = None) -> None:
        self.url = tc.parse_triton_url(url)
        proto = "triton" if self.url.protocol == "http" else "triton-grpc"
        super().__init__(name or f"{proto}:{self.url.model}", source=url)
        self.timeout_s = timeout_s
        self.client: Any = None  # the activating thread's client
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self.max_batch = 0
        self.limits: RequestLimits | None = None  # the server's, when it publishes them (toolkit serve does)
        self._specs: list[TensorSpec] = []

    def _activate_impl(self) -> ModelDescription:
        module = tc.client_module(self.url.protocol)
        client = tc.connect(self.url, self.timeout_s)
        where = f"{self.url} ({self.url.protocol})"
        try:
            if not client.is_server_live():
                raise ToolkitError(f"{where}: server is not live")
            if not client.is_model_ready(self.url.model, self.url.version):
                names = [m.get("name") if isinstance(m, dict) else m.name for m in _index(client, self.url.protocol)]
                raise ToolkitError(f"{where}: model '{self.url.model}' is not ready on this server; models there: "
                                   f"{', '.join(sorted(set(names))) or 'none'}")
            config = _model_config(client, self.url)
        except module.InferenceServerException as e:
            raise ToolkitError(f"{where}: {tc.error_line(e)}") from None
        except (OSError, ConnectionError) as e:
            raise ToolkitError(f"{where}: cannot reach the server ({e}); is `toolkit serve` or tritonserver "
                               "running there?") from None
        inputs = {i["name"]: i for i in config.get("input", [])}
        outputs = {o["name"] for o in config.get("output", [])}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            hint = (f"; for `toolkit serve`, use the tensor model: triton://{self.url.address}/{self.url.model}_tensor"
                    if "image" in inputs else "")
            raise ToolkitError(f"{where}: model takes {sorted(inputs)} and gives {sorted(outputs)}; the runner needs "
                               f"'{INPUT_NAME}' (float32 N x 3 x H x W) -> '{OUTPUT_NAME}'{hint}")
        self.max_batch = int(config.get("max_batch_size", 0) or 0)
        dims = [int(d) for d in inputs[INPUT_NAME].get("dims", [])]
        shape = ([None] if self.max_batch > 0 else []) + [None if d < 0 else d for d in dims]
        self._specs = [TensorSpec(INPUT_NAME, np.dtype(np.float32), tuple(shape))]
        raw_limits = config.get("parameters", {}).get(LIMITS_PARAM, {}).get("string_value")
        if raw_limits:
            try:
                self.limits = RequestLimits.from_json(raw_limits)
            except (json.JSONDecodeError, TypeError, ToolkitError) as e:
                log.warning("%s: ignoring unreadable %s parameter (%s)", where, LIMITS_PARAM, e)
        raw_meta = config.get("parameters", {}).get(META_PARAM, {}).get("string_value")
        meta = None
        if raw_meta:
            try:
                meta = ModelMeta.from_json(raw_meta)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, ToolkitError) as e:
                log.warning("%s: ignoring unreadable %s parameter (%s)", where, META_PARAM, e)
        self.client = client
        self._local.client = client
        self._clients = [client]
        return ModelDescription(meta)

    def _client(self) -> Any:
        """This thread's client: tritonclient's HTTP client (gevent) must not cross threads (infer's workers)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = tc.connect(self.url, self.timeout_s)
            with self._lock:
                self._clients.append(client)
        return client

    def _deactivate_impl(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception as e:  # a gevent client closed from another thread may refuse; it dies with it
                log.debug("closing a Triton client: %s", e)
        self._clients, self.client = [], None
        self._local = threading.local()

    def _input_specs_impl(self) -> list[TensorSpec]:
        return self._specs or super()._input_specs_impl()

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feed.values()
        step = self.max_batch if self.max_batch > 0 else len(x)
        if self.limits is not None and x.ndim == 4:
            k = self.meta.num_classes if self.meta is not None else 1
            fit = self.limits.frames_per_request(int(x.shape[2]), int(x.shape[3]), k)
            if fit < 1:  # the server would refuse even one item: say so without sending it
                self.limits.check_tensors((1, *x.shape[1:]), k)
            step = min(step, fit)
        client = self._client()
        parts = [tc.infer(client, self.url, {INPUT_NAME: x[i:i + step]}, [OUTPUT_NAME],
                          self.timeout_s)[OUTPUT_NAME] for i in range(0, len(x), step)]
        return {OUTPUT_NAME: parts[0] if len(parts) == 1 else np.concatenate(parts)}


def _index(client: Any, protocol: str) -> list[Any]:
    if protocol == "grpc":
        return list(client.get_model_repository_index(as_json=True).get("models", []))
    return list(client.get_model_repository_index())


def _model_config(client: Any, url: tc.TritonURL) -> dict:
    """The model's config as a dict in the HTTP JSON layout, for either protocol."""
    if url.protocol == "grpc":
        cfg = client.get_model_config(url.model, url.version, as_json=True).get("config", {})
        for t in cfg.get("input", []) + cfg.get("output", []):
            t["dims"] = [int(d) for d in t.get("dims", [])]  # protobuf JSON gives int64 as strings
        cfg["max_batch_size"] = int(cfg.get("max_batch_size", cfg.get("maxBatchSize", 0)) or 0)
        return cfg
    return client.get_model_config(url.model, url.version)

