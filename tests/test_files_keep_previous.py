"""atomic_write's promise that a failed write leaves the previous file at the path, byte for byte and
with its mode, and that the umask is read without changing it (the /proc path and the fallback agree)."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

import toolkit.files as files
from toolkit.errors import WriteError
from toolkit.files import atomic_write, current_umask


def test_failing_writer_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    target.chmod(0o640)

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"previous model"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_successful_write_replaces_the_content(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    assert atomic_write(target, lambda tmp: tmp.write_text("new")) == target
    assert target.read_text() == "new"


def test_umask_on_linux_is_read_without_setting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc on this system: the set-and-restore fallback is the only path")
    expected = current_umask()

    def no_set(mask: int) -> int:  # another thread's file would get 0o022 while the umask is set
        raise AssertionError("os.umask called although /proc gives the umask")

    monkeypatch.setattr(files.os, "umask", no_set)
    assert files.current_umask() == expected


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_umask_is_read_from_proc_and_by_the_fallback_alike(mask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        assert os.umask(mask) == mask  # reading it left it unchanged
        real_open = builtins.open

        def no_proc(path, *a, **k):  # a system without /proc: the set-and-restore fallback
            if str(path).startswith("/proc"):
                raise FileNotFoundError(path)
            return real_open(path, *a, **k)

        monkeypatch.setattr(builtins, "open", no_proc)
        assert files.current_umask() == mask
        monkeypatch.undo()
        assert os.umask(mask) == mask
    finally:
        os.umask(old)


def test_the_temp_file_is_hidden_beside_the_output(tmp_path: Path) -> None:
    """Beside it, so the final rename stays on one filesystem (atomic); hidden and named after it, so a reader
    of the folder never takes it for an output."""
    seen: list[Path] = []
    target = tmp_path / "model.onnx"
    atomic_write(target, lambda tmp: (seen.append(tmp), tmp.write_text("x")))
    (tmp,) = seen
    assert tmp.parent == target.parent and tmp.name.startswith(".model.onnx.") and tmp.name.endswith(".tmp")


def test_a_writer_that_removed_its_temp_file_still_gets_the_write_error(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        tmp.unlink()
        raise OSError(5, "Input/output error")

    with pytest.raises(WriteError, match=r"Input/output error \(EIO\)"):
        atomic_write(tmp_path / "out.bin", fail)
