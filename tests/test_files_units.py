"""The small helpers of toolkit/files.py one at a time, each written against a survivor of its mutation run
(docs/MUTATION.md): the exact one-line messages, the probe file's place, the folders a refused run removes,
the streamed hash, and PNG/JSON outputs that keep the previous file when a write fails."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import toolkit.files as files
from toolkit.errors import OutputIsInputError, WriteError
from toolkit.files import (
    check_writable,
    file_sha256,
    folders_made_by,
    make_folder,
    no_empty_folder_on_failure,
    refuse_output_over_input,
    remove_empty,
    same_file,
    write_error,
    write_json,
    write_png,
)


@pytest.mark.parametrize(("err", "line"), [
    (OSError(errno.ENOSPC, "No space left on device"), "cannot write out.bin: No space left on device (ENOSPC)"),
    (OSError(99999, "odd failure"), "cannot write out.bin: odd failure"),  # an errno without a name
    (OSError("no errno here"), "cannot write out.bin: no errno here"),
    (OSError(), "cannot write out.bin: OSError"),  # nothing but the type to name
    (PermissionError(), "cannot write out.bin: PermissionError"),
])
def test_write_error_is_one_exact_line(err: OSError, line: str) -> None:
    assert str(write_error("out.bin", err)) == line


def test_make_folder_makes_every_missing_parent(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    assert make_folder(deep) == deep and deep.is_dir()
    assert make_folder(deep) == deep  # already there: fine


def _refuse_mkdir(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *a: object, **k: object) -> None:  # what a read-only parent gives (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)


def test_make_folder_failure_names_the_target_or_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_mkdir(monkeypatch)
    folder, target = tmp_path / "new", tmp_path / "new" / "m.onnx"
    with pytest.raises(WriteError) as e:
        make_folder(folder, target)
    assert str(e.value) == f"cannot write {target}: Permission denied (EACCES)"
    with pytest.raises(WriteError) as e:
        make_folder(folder)
    assert str(e.value) == f"cannot write {folder}: Permission denied (EACCES)"


def test_check_writable_names_the_output_when_its_folder_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "m.onnx"
    with pytest.raises(WriteError) as e:
        check_writable(out)
    assert str(e.value) == f"cannot write {out}: {tmp_path / 'f'} is a file, not a folder (ENOTDIR)"


def test_check_writable_probes_with_a_hidden_file_beside_the_output(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside it: a probe elsewhere (the default temp folder) would not test the output's folder at all."""
    made: list[str] = []
    real = tempfile.mkstemp

    def record(*a: object, **k: object) -> tuple[int, str]:
        fd, name = real(*a, **k)  # type: ignore[call-overload]
        made.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", record)
    out = tmp_path / "m.onnx"
    check_writable(out)
    (name,) = made
    probe = Path(name)
    assert probe.parent == tmp_path and probe.name.startswith(".m.onnx.") and probe.name.endswith(".probe")
    assert not probe.exists() and list(tmp_path.iterdir()) == []


def test_check_writable_refusal_is_one_exact_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*a: object, **k: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "m.onnx"
    with pytest.raises(WriteError) as e:
        check_writable(out)
    assert str(e.value) == f"cannot write {out}: Permission denied (EACCES)"
    check_writable(None)  # nothing to write: nothing checked


def test_same_file_is_false_when_the_os_cannot_tell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("x")

    def vanished(x: object, y: object) -> bool:  # e.g. a file removed between exists() and stat()
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(files.os.path, "samefile", vanished)
    assert same_file(a, b) is False


def test_refusal_of_the_same_path_is_one_exact_line(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"video")
    with pytest.raises(OutputIsInputError) as e:
        refuse_output_over_input(src, [src], option="--save-video")
    assert str(e.value) == (f"--save-video {src} is the input {src}; writing it would destroy the input: "
                            "choose another output path")


@pytest.mark.parametrize("url", ["triton://localhost:8001/segnet", "TRITON://localhost:8001/segnet"])
def test_a_triton_url_is_not_a_file_to_protect(url: str) -> None:
    """A Triton model is read over the network: an output spelled like the URL (a relative path that happens to
    match) destroys nothing, and same_file would say "same" for the equal strings."""
    refuse_output_over_input(url, [url])


def test_folders_made_by_lists_the_missing_ones_deepest_first(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "m.onnx"
    assert folders_made_by(out) == [out, out.parent, out.parent.parent]
    assert folders_made_by(tmp_path) == [] and folders_made_by(None) == []
    assert folders_made_by(Path("/")) == []


def test_remove_empty_keeps_folders_that_hold_a_file(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "kept.txt").write_text("x")
    remove_empty([tmp_path / "a" / "b", tmp_path / "a", tmp_path / "c", tmp_path / "missing"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_no_empty_folder_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "run" / "sub" / "m.onnx"
    with pytest.raises(RuntimeError), no_empty_folder_on_failure(out):
        out.parent.mkdir(parents=True)
        raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == []
    with no_empty_folder_on_failure(out):  # a run that succeeds keeps what it made
        out.parent.mkdir(parents=True)
    assert out.parent.is_dir()


def test_file_sha256_streams_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) * 2 + 5)  # two full chunks and a tail
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_write_json_is_indented_newline_terminated_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r" / "report.json"
    assert write_json(out, {"b": [1, 2], "a": None}) == out
    assert out.read_text() == json.dumps({"b": [1, 2], "a": None}, indent=2) + "\n"
    assert out.stat().st_mode & 0o777 == 0o666 & ~files.current_umask()

    def full(self: Path, text: str, *a: object, **k: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(WriteError, match="No space left on device"):
        write_json(out, {"new": 1})
    monkeypatch.undo()
    assert json.loads(out.read_text()) == {"b": [1, 2], "a": None}


def test_write_png_round_trips_and_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = tmp_path / "frames" / "000.png"
    assert write_png(out, img) == out
    assert np.array_equal(cv2.imread(str(out)), img)
    before = out.read_bytes()

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(WriteError, match=r"000\.png: No space left on device \(ENOSPC\)"):
        write_png(out, img[::-1])
    monkeypatch.undo()
    assert out.read_bytes() == before and sorted(p.name for p in out.parent.iterdir()) == ["000.png"]


def test_write_png_names_an_image_opencv_cannot_encode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.setattr(cv2, "imencode", lambda ext, img: (False, None))
    out = tmp_path / "x.png"
    with pytest.raises(WriteError) as e:
        write_png(out, np.zeros((2, 2, 3), np.uint8))
    assert str(e.value) == f"cannot write {out}: OpenCV could not encode the image as PNG"
    assert not out.exists()
