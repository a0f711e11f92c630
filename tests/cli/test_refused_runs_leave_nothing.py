"""A refused `train` or `demo`, or a failed `export-triton`, leaves nothing behind (issue 25): no empty output
folder, no half-built repository, and never a loss of what the user had there before."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.cli.app import app
from toolkit.errors import ToolkitError

runner = CliRunner()
TRAIN = ["train", "--width", "4", "--crop", "32x32", "--size", "32x48", "--epochs", "1", "--threads", "1",
         "--no-progress"]


def _refused(args: list[str], words: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("error:") and words in result.output, result.output


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"/" for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("extra", "words"), [
    (["--data", "missing_dataset_folder"], "missing_dataset_folder"),
    (["--data", "synthetic", "--batch-size", "1000"], "lower --batch-size"),
])
def test_refused_train_makes_no_output_folder(extra: list[str], words: str, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "new"
    _refused([*TRAIN, *extra, "--output", str(out)], words)
    assert list(tmp_path.iterdir()) == []


def test_refused_train_with_overwrite_keeps_the_old_run_and_a_users_empty_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.safetensors", "train_log.csv", "notes.txt"):
        (run / name).write_text(f"the user's {name}")
    before = _tree(run)
    _refused([*TRAIN, "--data", "missing_dataset_folder", "--overwrite", "--output", str(run)], "missing_dataset")
    assert _tree(run) == before  # --overwrite removes the old run only once the new one's inputs are checked
    empty = tmp_path / "mine"
    empty.mkdir()
    _refused([*TRAIN, "--data", "missing_dataset_folder", "--output", str(empty)], "missing_dataset")
    assert empty.is_dir()  # a folder that was there is never removed


def test_refused_demo_makes_no_output_folder(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = tiny_onnx(tmp_path_factory, "mask")
    out = tmp_path / "demo" / "run"
    work = tmp_path / "work"
    work.mkdir()
    _refused(["demo", "--model", str(model), "--output", str(out)], "starts from a checkpoint")
    _refused(["demo", "--model", str(tiny_checkpoint(tmp_path_factory)), "--data", str(tmp_path / "no_camvid"),
              "--output", str(out)], "no CamVid layout there")
    assert not (tmp_path / "demo").exists()
    _refused(["demo", "--model", str(model), "--output", str(work)], "starts from a checkpoint")
    assert work.is_dir()


def test_refused_export_triton_writes_no_model_folder(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two models, the second's folder already there: it used to write the first before refusing."""
    model = str(tiny_onnx(tmp_path_factory, "mask"))
    repo = tmp_path / "repo"
    (repo / "segnet_onnx_2").mkdir(parents=True)
    (repo / "segnet_onnx_2" / "config.pbtxt").write_text("the user's config")
    before = _tree(repo)
    _refused(["export-triton", model, model, "-o", str(repo)], "segnet_onnx_2 exists; pass --overwrite")
    assert _tree(repo) == before


def test_failed_export_triton_leaves_no_half_built_repository(tmp_path: Path,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """A failure while the second of two models is written (here its config check) removes every folder the
    run made; with --overwrite the folders that were there stay as they were."""
    from toolkit.serve.triton_repo import plan_models, write_repository

    model = tiny_onnx(tmp_path_factory, "mask")
    planned = plan_models([model, model])

    def check(config: Path) -> None:
        if config.parent.name.startswith(".segnet_onnx_2"):
            raise ToolkitError(f"{config}: not a valid Triton model config (made to fail)")

    repo = tmp_path / "new" / "repo"
    with pytest.raises(ToolkitError, match="made to fail"):
        write_repository(planned, repo, check=check)
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old"
    write_repository(planned, old)
    (old / "segnet_onnx_1" / "notes.txt").write_text("the user's notes")
    before = _tree(old)
    with pytest.raises(ToolkitError, match="made to fail"):
        write_repository(planned, old, overwrite=True, check=check)
    assert _tree(old) == before
    write_repository(planned, old, overwrite=True)
    assert not (old / "segnet_onnx_1" / "notes.txt").exists() and (old / "segnet_onnx_2" / "config.pbtxt").is_file()
