"""Outputs get the mode a plain open() gives, write failures are one WriteError with no temp file left,
and an output that resolves to an input is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from toolkit.errors import OutputIsInputError, WriteError
from toolkit.files import atomic_write, check_writable, refuse_output_over_input, same_file


def _with_umask(mask: int, fn):
    old = os.umask(mask)
    try:
        return fn()
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_output_gets_the_umask_mode_like_open(tmp_path: Path, umask: int) -> None:
    def both() -> tuple[int, int]:
        plain = tmp_path / f"plain{umask:o}"
        with open(plain, "w") as f:
            f.write("x")
        ours = atomic_write(tmp_path / f"ours{umask:o}", lambda tmp: tmp.write_text("x"))
        return plain.stat().st_mode & 0o777, ours.stat().st_mode & 0o777

    plain_mode, our_mode = _with_umask(umask, both)
    assert our_mode == plain_mode == 0o666 & ~umask


def test_existing_output_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640


def test_unwritable_folder_is_one_write_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where a folder is expected (works as root, unlike chmod 0555)")
    with pytest.raises(WriteError, match=r"cannot write .*file/sub/out\.onnx: .*file is a file, not a folder") as e:
        atomic_write(blocker / "sub" / "out.onnx", lambda tmp: tmp.write_bytes(b"x"))
    assert e.value.exit_code == 3


def test_failing_writer_leaves_no_temp_file(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match=r"cannot write .*m\.onnx: No space left on device \(ENOSPC\)"):
        atomic_write(tmp_path / "m.onnx", fail)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_simulated_by_a_file_size_limit(tmp_path: Path) -> None:
    """A child process with RLIMIT_FSIZE (SIGXFSZ ignored) gets EFBIG from write(), as on a full disk."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from toolkit.errors import WriteError
        from toolkit.files import atomic_write
        try:
            atomic_write({str(tmp_path / 'big.bin')!r}, lambda tmp: tmp.write_bytes(bytes(100_000)))
        except WriteError as e:
            print(e)
            sys.exit(e.exit_code)
    """)
    assert signal.SIGXFSZ  # POSIX only
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 3, run.stderr
    assert "cannot write" in run.stdout and "big.bin: File too large (EFBIG)" in run.stdout
    assert list(tmp_path.iterdir()) == []


def test_same_file_through_symlink_and_hard_link(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    (tmp_path / "other.mp4").write_bytes(b"video")
    assert same_file(src, tmp_path / "link.mp4") and same_file(src, tmp_path / "hard.mp4")
    assert same_file(src, tmp_path / "sub" / ".." / "clip.mp4")
    assert not same_file(src, tmp_path / "other.mp4") and not same_file(src, tmp_path / "new.mp4")
    with pytest.raises(OutputIsInputError, match=r"--output .*hard\.mp4 is the input .*clip\.mp4 \(through a link\)"):
        refuse_output_over_input(tmp_path / "hard.mp4", [None, src])
    refuse_output_over_input(tmp_path / "new.mp4", [src])
    refuse_output_over_input(None, [src])


def test_read_only_folder_names_the_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 0555 does not stop root (these tests may run as root), so the folder's refusal is injected where
    the OS would give it: creating the temp file."""
    import tempfile

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(WriteError, match=r"cannot write .*report\.json: Permission denied \(EACCES\)"):
        atomic_write(tmp_path / "report.json", lambda tmp: tmp.write_text("{}"))
    assert list(tmp_path.iterdir()) == []


def test_check_writable_before_the_work(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "m.onnx")  # creates the folder, leaves no file
    assert list((tmp_path / "new").iterdir()) == []
    with pytest.raises(WriteError, match="it is a folder, not a file"):
        check_writable(tmp_path / "new")
    (tmp_path / "f").write_text("x")
    with pytest.raises(WriteError, match="f is a file, not a folder"):
        check_writable(tmp_path / "f" / "m.onnx")
