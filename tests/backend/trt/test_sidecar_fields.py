"""Sidecar details the round-trip tests leave open (from the mutation run over toolkit/backend/trt/sidecar.py,
docs/MUTATION.md): the JSON layout, the defaults of an older sidecar, the time stamp, and each message."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.backend.trt import onnx_graphs as g
from tests.backend.trt.test_sidecar import ORIN, make_engine
from toolkit.backend.trt.sidecar import (
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    EngineMismatchError,
    Sidecar,
    check_sidecar,
    model_meta_from_onnx_metadata,
    read_sidecar,
    sidecar_path,
)
from toolkit.errors import ToolkitError

MINIMAL = {"format": SIDECAR_FORMAT, "tensorrt_version": "10.3.0.30", "gpu": ORIN.to_dict(), "precision": "fp16",
           "shapes": {}}


def test_json_is_sorted_and_indented(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    text = sidecar_path(engine).read_text()
    assert text == json.dumps(asdict(read_sidecar(engine)), indent=2, sort_keys=True) + "\n"  # diffable by hand
    keys = list(json.loads(text))
    assert keys == sorted(keys) and text.startswith('{\n  "build": {\n    "opt_level": 3')


def test_an_older_sidecar_gets_the_defaults() -> None:
    side = Sidecar.from_dict(dict(MINIMAL))
    assert (side.engine_sha256, side.toolkit_version, side.created) == ("", "", "")
    assert side.format_version == SIDECAR_VERSION and side.onnx == {} and side.plugin_library is None
    assert Sidecar.from_dict({**MINIMAL, "format_version": 7}).format_version == 7


def test_another_format_names_it() -> None:
    with pytest.raises(ToolkitError) as e:
        Sidecar.from_dict({**MINIMAL, "format": "polygraphy"})
    assert str(e.value) == "not a toolkit engine sidecar (format 'polygraphy')"


def test_created_is_a_local_iso_time(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", read_sidecar(engine).created)


def test_unreadable_sidecar_names_the_error(tmp_path: Path) -> None:
    engine = tmp_path / "m.plan"
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(EngineMismatchError, match=r"unreadable engine sidecar \(JSONDecodeError\)"):
        read_sidecar(engine)


def test_a_sidecar_without_gpu_fields_says_unknown(tmp_path: Path) -> None:
    engine, side = make_engine(tmp_path)
    side.gpu = {}
    with pytest.raises(EngineMismatchError, match=re.escape("built for ? (compute capability ?), this GPU is")):
        check_sidecar(engine, side, "10.3.0.30", ORIN, check_hash=False)


def test_missing_sidecar_message_in_full(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    with pytest.raises(EngineMismatchError) as e:
        check_sidecar(engine, None, "10.3.0.30", ORIN)
    assert str(e.value).endswith("(or, for an engine you built yourself on this machine, pass --no-sidecar-check)")


def test_malformed_metadata_is_warned_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="toolkit"):
        assert model_meta_from_onnx_metadata({**g.META, "toolkit.palette": "[[1, 2"}) is None
    (msg,) = caplog.messages
    assert msg.startswith("model: malformed toolkit metadata (") and msg.endswith("; classes and normalisation unknown")


def test_the_warning_names_the_source_given(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="toolkit"):
        model_meta_from_onnx_metadata({**g.META, "toolkit.palette": "[[1, 2"}, source="m.engine")
    assert caplog.messages[0].startswith("m.engine: malformed toolkit metadata")
