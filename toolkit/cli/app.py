"""The ``toolkit`` command: one Typer app, one module per command (each exposes ``register(app)``)."""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperCommand

from toolkit.cli.options import ToolkitCommand, ToolkitGroup

app = typer.Typer(
    name="toolkit",
    cls=ToolkitGroup,  # parser errors as one line (issue 25)
    # Click's plain help, not Rich's boxes: Rich cut option names at 80 columns and in pipes
    # ('--distill-weig…') and broke the examples across lines; Click keeps every name whole (a long one gets
    # its own line) and prints the examples' \b paragraph unwrapped, so both stay copy-pasteable (issue 25)
    rich_markup_mode=None,
    help="SegNet deployment toolkit: train, export to ONNX, quantize (FP16/INT8), build TensorRT "
    "engines, check mIoU parity and run real-time video segmentation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Keeps ``toolkit`` a command group (Typer would otherwise promote a lone command to the root)."""


# Order is the order of `toolkit --help`. A command module must import heavy libraries lazily.
COMMAND_MODULES = [
    "info", "models", "train", "eval", "export", "quantize", "parity", "build_plugin", "build_engine", "infer", "bench",
    "serve", "export_triton", "demo",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"toolkit.cli.{_name}").register(app)
for _command in app.registered_commands:  # the shared option vocabulary's old spellings and value checks
    if _command.cls in (None, TyperCommand):  # typer fills in its own class when a command names none
        _command.cls = ToolkitCommand


def main() -> None:
    """Console-script entry point."""
    from toolkit.cli.logs import setup_logging
    from toolkit.cli.pipe import guard_stdout

    guard_stdout()  # `toolkit parity ... | head -1`: the run goes on and writes its files (issue 25)
    setup_logging()  # third-party noise filtered once; FFmpeg/OpenCV lines before our error (issue 25)
    app()
