"""The write path through the CLI: an output that is an input is refused, write failures are one line with
exit code 3 and no temp file, outputs get the umask's mode (issue 16)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()


def _refused(args: list[str], *messages: str, code: int = 2) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for m in messages:
        assert m in result.output, result.output
    return result.output


def test_output_that_resolves_to_an_input_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, clip = tiny
    before = clip.read_bytes()
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(clip), "--no-progress"],
             f"--output {clip} is the input {clip}; writing it would destroy")
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(link), "--no-progress"], "(through a link)")
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "--json", str(ckpt), "--no-progress"], "--json")
    assert clip.read_bytes() == before

    fp32 = tmp_path / "m.onnx"
    fp32.write_bytes(b"an fp32 model")
    os.link(fp32, tmp_path / "hard.onnx")
    _refused(["quantize", str(fp32), "--precision", "fp16", "-o", str(fp32)], "is the input")
    _refused(["quantize", str(fp32), "--precision", "fp16", "-o", str(tmp_path / "hard.onnx")], "(through a link)")
    assert fp32.read_bytes() == b"an fp32 model"

    os.link(ckpt, tmp_path / "ckpt_link.onnx")
    _refused(["export", str(ckpt), "-o", str(tmp_path / "ckpt_link.onnx"), "--no-verify"], "is the input")
    _refused(["bench", "-m", str(ckpt), "--json", str(ckpt), "-n", "1"], "--json", "is the input")
    _refused(["eval", str(ckpt), "--data", "synthetic", "--json", str(ckpt)], "--json", "is the input")
    _refused(["build-engine", str(fp32), "-o", str(tmp_path / "hard.onnx"), "--dry-run"], "is the input")
    assert ckpt.stat().st_size > 1000


def _with_file_size_limit(args: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run `toolkit ARGS` in a child whose writes past ``limit`` bytes fail with EFBIG, as on a full disk
    (CPython ignores SIGXFSZ, so write() returns the error instead of the process being killed)."""
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-c", "from toolkit.cli.app import main; main()", *args], cwd=cwd,
                          preexec_fn=limit_file_size, capture_output=True, text=True, timeout=120)


def test_video_that_does_not_read_back_is_an_error_and_removed(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Issue 16 item 1: VideoWriter reports no write errors; a video cut off by a full disk ("moov atom not
    found") was renamed into place with exit 0. Now: exit 3, one line, nothing at the output path."""
    ckpt, clip = tiny
    run = _with_file_size_limit(["infer", "-m", str(ckpt), "-s", str(clip), "-o", "out.mp4", "--no-progress"],
                                4096, tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    (line,) = [x for x in run.stderr.splitlines() if x.strip()]
    assert line.startswith("error: cannot write out.mp4: the 5-frame video") and "does not read back" in line
    assert "wrote out.mp4" not in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_masks_on_a_full_disk_name_the_file_and_leave_no_temp(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, clip = tiny
    run = _with_file_size_limit(["infer", "-m", str(ckpt), "-s", str(clip), "--masks", "m", "--no-progress"],
                                100, tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "error: cannot write m/000000.png: File too large (EFBIG)" in run.stderr
    assert "wrote" not in run.stdout
    assert list((tmp_path / "m").iterdir()) == []


def test_unwritable_outputs_are_one_line_with_exit_code_3(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A folder that cannot be created (its parent is a regular file; root ignores chmod 0555): every command
    names the path and the OS error, exit 3, and leaves no temporary file."""
    ckpt, clip = tiny
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cases = [
        (["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(blocker / "out.mp4"), "--no-progress"], "out.mp4"),
        (["infer", "-m", str(ckpt), "-s", str(clip), "--masks", str(blocker / "m"), "--no-progress"], "m"),
        (["infer", "-m", str(ckpt), "-s", str(clip), "--json", str(blocker / "run.json"), "--no-progress"],
         "run.json"),
        (["bench", "-m", str(ckpt), "--shape", "1x3x64x96", "-n", "1", "--warmup", "0", "--json",
          str(blocker / "b.json")], "b.json"),
        (["train", "--data", "synthetic", "--out", str(blocker / "run"), "--width", "4"], "run"),
        # checked before the export / the evaluation runs (the export here would take seconds)
        (["export", str(ckpt), "-o", str(blocker / "m.onnx")], "m.onnx"),
        (["eval", str(ckpt), "--data", "synthetic", "--json", str(blocker / "e.json")], "e.json"),
        (["quantize", str(ckpt), "--precision", "fp16", "-o", str(blocker / "q.onnx")], "q.onnx"),
        (["demo", "-m", str(ckpt), "--out", str(blocker / "demo"), "--synthetic"], "demo"),
    ]
    for args, name in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 3, (args[0], result.output)
        assert f"error: cannot write {blocker / name}: {blocker} is a file, not a folder (ENOTDIR)" in result.output, \
            result.output
        assert "encoder" not in result.output and "Traceback" not in result.output
        assert "wrote" not in result.output and "mIoU" not in result.output  # failed before the work
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_outputs_are_readable_by_other_users(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Issue 16 item 2 through the CLI: reports and videos get 0644 under umask 022, not mkstemp's 0600."""
    ckpt, clip = tiny
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(tmp_path / "o.mp4"),
                                     "--json", str(tmp_path / "run.json"), "--no-progress"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("o.mp4", "run.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
