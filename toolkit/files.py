"""Writing outputs safely: atomic replace with the mode a plain open() gives, one-line write errors, and
the refusal to write over a command's own input.

Why one module: every command's outputs (checkpoints, ONNX files, reports, plots, videos, the Triton
repository) go through the same three rules, so a full disk or a same-path typo behaves the same in all
of them: nothing half-written at the output path, no temporary file left, the input never destroyed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from toolkit.errors import OutputIsInputError, WriteError

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux exposes it (/proc), else set-and-restore."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # os.umask can only be read by setting it: keep other threads of ours out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def output_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file keeps its own, a new one
    gets 0666 minus the umask (mkstemp's 0600 would hide outputs from a Triton container or another user)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def write_error(path: str | Path, e: OSError) -> WriteError:
    """One line naming the output and the OS's reason (errno name included, for searching)."""
    code = errno.errorcode.get(e.errno, "") if e.errno else ""
    reason = e.strerror or str(e) or type(e).__name__
    return WriteError(f"cannot write {path}: {reason}{f' ({code})' if code else ''}")


def make_folder(folder: str | Path, target: str | Path | None = None) -> Path:
    """``mkdir -p folder``; on failure a WriteError naming ``target`` (default: the folder). A regular file
    in the way is named as such: mkdir alone says "File exists" about the folder the user asked for."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise WriteError(f"cannot write {target or folder}: {blocker} is a file, not a folder (ENOTDIR)") from None
        raise write_error(target or folder, e) from None
    return folder


def folders_made_by(path: str | Path | None) -> list[Path]:
    """The folders a run writing into ``path`` would create (the missing ones, deepest first): a run that
    writes nothing removes them again, so a refused run leaves no empty folder behind (issue 25)."""
    if path is None:
        return []
    missing = []
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is empty; leave anything that holds a file."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def no_empty_folder_on_failure(path: str | Path | None) -> Iterator[None]:
    """A run that fails or is refused inside the block removes the folders it made for ``path`` while they are
    still empty (an interrupted training keeps a folder holding its checkpoints); a folder that was already
    there, or holds a file, is never touched."""
    made = folders_made_by(path)
    try:
        yield
    except BaseException:
        remove_empty(made)
        raise


def check_writable(path: str | Path | None) -> None:
    """Create (and remove) a temp file where ``path`` will be written: a read-only or missing folder fails
    before a long export, calibration or evaluation, not after it. A full disk can still fail later."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder, not a file (EISDIR); give a file name inside it")
    make_folder(path.parent, path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise write_error(path, e) from None


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp path beside ``path``, fsync it, give it the mode a plain open() would,
    then rename over ``path``. Any OSError on the way is a WriteError naming ``path``; the temp file is
    always removed, so a failed or killed write leaves the previous file (or nothing) at ``path``."""
    path = Path(path)
    tmp: Path | None = None
    make_folder(path.parent, path)
    try:
        mode = output_mode(path)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: equal real paths (symlinks resolved) or the same inode (hard links)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_output_over_input(output: str | Path | None, inputs: Iterable[str | Path | None],
                             option: str = "--output") -> None:
    """Refuse an output that resolves to an input: writing it would destroy the input before (or while)
    it is read. One line naming both; the caller picks another path."""
    if output is None:
        return
    for src in inputs:
        if src is not None and not str(src).lower().startswith("triton:/") and same_file(output, src):
            same = "" if os.path.abspath(output) == os.path.abspath(src) else " (through a link)"
            raise OutputIsInputError(f"{option} {output} is the input {src}{same}; writing it would destroy "
                                     "the input: choose another output path")


def write_png(path: str | Path, image_bgr: object) -> Path:
    """Encode an image as PNG and write it atomically (cv2.imwrite only returns False on a full disk, and a
    failed write must leave the previous file, not delete it)."""
    import cv2

    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise WriteError(f"cannot write {path}: OpenCV could not encode the image as PNG")
    data = buf.tobytes()
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (for provenance in ONNX metadata and engine sidecars)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON (newline-terminated) atomically: reports are never half-written."""
    text = json.dumps(obj, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
