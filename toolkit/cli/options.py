"""One vocabulary for the options every command shares: ``--model/-m``, ``--output/-o``, ``--input-shape``,
``--unpool``, ``--plugin``, ``--precision``, ``--target``, ``--device``.

Why one module: the same option used to be spelled differently per command (``--shape``, ``--lowering``,
``--plugin-lib``, ``--out``, a positional model). Each shared option is declared here once, and the old
spellings stay accepted as hidden aliases (``OLD_SPELLINGS``, applied by ``ToolkitCommand``), so scripts
keep working while ``--help`` shows one name. Closed sets are str Enums; a value outside them is refused
while the options are parsed, with one line naming the valid choices (exit 2), like every other bad input.
Nothing here imports a heavy library, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.22 carries its own copy of Click; older ones use Click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import UsageError

from toolkit.cli.common import report_error
from toolkit.core import defaults
from toolkit.errors import DeviceError, ToolkitError, UnknownNameError, suggest

if TYPE_CHECKING:
    pass


class Precision(str, Enum):
    """What ``toolkit quantize`` writes (the fp32 model is ``toolkit export``'s)."""

    fp16 = "fp16"
    int8 = "int8"


class RunPrecision(str, Enum):
    """What a PyTorch checkpoint runs in (``toolkit.backend.torch.precision.PRECISION_CHOICES``): auto is fp16
    on CUDA, bf16 on a CPU with AMX, fp32 elsewhere."""

    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Io(str, Enum):
    """What one ``toolkit bench`` call moves (``toolkit.bench.IO_MODES``)."""

    logits = "logits"
    frames = "frames"


class Target(str, Enum):
    """Which runtime an int8 model is shaped for (``toolkit.quant.TARGETS``)."""

    tensorrt = "tensorrt"
    cpu = "cpu"


class Unpool(str, Enum):
    """The unpooling lowering in an exported ONNX graph (``toolkit.models.unpool.UNPOOL_MODES``)."""

    maxunpool = "maxunpool"
    mask = "mask"
    plugin = "plugin"


class Device(str, Enum):
    """Where a model runs; ``cuda:N`` picks a GPU. ``tensorrt`` is ONNX Runtime's TensorRT provider."""

    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


MODEL_DEVICES = (Device.cpu, Device.cuda, Device.tensorrt)  # PyTorch takes cpu/cuda, ONNX Runtime all three
TORCH_DEVICES = (Device.cpu, Device.cuda)

# old spelling -> the option it now means; only applied where the command has that option
OLD_SPELLINGS = {"--shape": "--input-shape", "--lowering": "--unpool", "--plugin-lib": "--plugin", "--out": "--output"}


def _values(choices: Iterable[Enum]) -> list[str]:
    return [str(c.value) for c in choices]


def choice_parser(option: str, choices: Sequence[Enum]):
    """A typer ``parser`` that returns the value as a plain str when it is one of ``choices``."""
    names = _values(choices)

    def parse(value: Any) -> str:
        text = value.value if isinstance(value, Enum) else str(value)
        if text not in names:
            raise UnknownNameError(f"{option} {text}: {suggest(text, names)}")
        return text

    return parse


def device_parser(choices: Sequence[Device]):
    """Like ``choice_parser``, but ``cuda:N`` is a device too; 'gpu' gets PyTorch's explanation (issue 16)."""
    names = _values(choices)

    def parse(value: Any) -> str:
        text = value.value if isinstance(value, Enum) else str(value)
        base, sep, index = text.strip().lower().partition(":")
        if base == "gpu":
            from toolkit.backend.torch.device import torch_device

            torch_device(text)  # raises the one line that says what to type instead (and whether CUDA exists)
        if base not in names or (sep and (base != "cuda" or not index.isdigit())):
            shown = [s for n in names for s in ((n, "cuda:N") if n == "cuda" else (n,))]
            raise DeviceError(f"--device {text}: {suggest(text.strip().lower(), shown)}")
        return text

    return parse


def _metavar(choices: Sequence[Enum]) -> str:
    return "[" + "|".join("cuda|cuda:N" if c is Device.cuda else str(c.value) for c in choices) + "]"


def model_option(help: str, default: Any = None) -> Any:
    """``--model/-m``: a zoo name, model file or triton:// URL (export, quantize, build-engine and eval also
    take it positionally, the old spelling)."""
    return typer.Option(default, "--model", "-m", help=help)


def output_option(help: str, default: Any = None) -> Any:
    """``--output/-o``: the file or folder a command writes (``--out`` is the old spelling)."""
    return typer.Option(default, "--output", "-o", help=help)


def input_shape_option(default: str = defaults.INPUT_SHAPE, help: str = "Input shape NxCxHxW.") -> Any:
    """``--input-shape NxCxHxW`` (``--shape`` is the old spelling)."""
    return typer.Option(default, "--input-shape", help=help)


def unpool_option(default: str = "mask", help: str = "Unpooling lowering.") -> Any:
    """``--unpool maxunpool|mask|plugin`` (``--lowering`` is the old spelling)."""
    return typer.Option(default, "--unpool", help=help, parser=choice_parser("--unpool", list(Unpool)),
                        metavar=_metavar(list(Unpool)))


def plugin_option(help: str) -> Any:
    """``--plugin FILE``: the TensorRT plugin library (``--plugin-lib`` is the old spelling)."""
    return typer.Option(None, "--plugin", help=help)


def precision_option(default: Any, choices: Sequence[Precision] = tuple(Precision), help: str = "") -> Any:
    """``--precision`` from a closed set."""
    return typer.Option(default, "--precision", help=help, parser=choice_parser("--precision", choices),
                        metavar=_metavar(choices))


def run_precision_option() -> Any:
    """``--precision`` of infer and bench: how a PyTorch checkpoint runs (ONNX files and engines carry theirs)."""
    choices = list(RunPrecision)
    return typer.Option("auto", "--precision", help="PyTorch checkpoints: auto (fp16 on CUDA, bf16 on a CPU with "
                        "AMX, else fp32), fp32, fp16, bf16; ONNX files and engines carry theirs.",
                        parser=choice_parser("--precision", choices), metavar=_metavar(choices))


def cuda_graph_option() -> Any:
    """``--cuda-graph/--no-cuda-graph``: None leaves each backend its default."""
    return typer.Option(None, "--cuda-graph/--no-cuda-graph", help="Replay one captured CUDA graph per input "
                        "shape: PyTorch on CUDA (default on) and TensorRT engines (default off).")


def compile_option() -> Any:
    """``--compile``: torch.compile a PyTorch checkpoint (refused for other models)."""
    return typer.Option(False, "--compile", help="PyTorch checkpoints: torch.compile the model first (halves the "
                        "GPU compute of the w=64 model on an H100, but 15-20 s at start-up: docs/BENCHMARKS.md).")


def io_option() -> Any:
    """``--io logits|frames`` of bench."""
    choices = list(Io)
    return typer.Option("logits", "--io", help="logits: float tensor in, fp32 logits back to the host (what "
                        "eval/parity do); frames: uint8 frame in, class map back, pre/post-processing on the "
                        "GPU (what infer does on CUDA; PyTorch checkpoints on --device cuda).",
                        parser=choice_parser("--io", choices), metavar=_metavar(choices))


def target_option(default: Any = None, help: str = "") -> Any:
    """``--target tensorrt|cpu`` (int8 only)."""
    return typer.Option(default, "--target", help=help, parser=choice_parser("--target", list(Target)),
                        metavar=_metavar(list(Target)))


def device_option(default: str = "cpu", choices: Sequence[Device] = MODEL_DEVICES,
                  help: str = "Where the model runs (tensorrt: ONNX Runtime's TensorRT provider).") -> Any:
    """``--device``: one of ``choices``, or cuda:N."""
    return typer.Option(default, "--device", help=help, parser=device_parser(choices), metavar=_metavar(choices))


def rename_old_spellings(args: list[str], known: set[str]) -> list[str]:
    """``args`` with each old spelling (``--shape X``, ``--shape=X``) renamed to its option, where the command
    has that option and not one of the old name itself; everything after ``--`` is left as typed."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        new = OLD_SPELLINGS.get(name)
        out.append(new + eq + value if new in known and name not in known else arg)
    return out


class ToolkitCommand(TyperCommand):
    """Every ``toolkit`` command: accepts the old option spellings, and reports a bad option value (an enum
    typo, a device name) as the same one line and exit code as any other ToolkitError."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        known = {opt for p in self.params for opt in (*p.opts, *p.secondary_opts)}
        try:
            return super().parse_args(ctx, rename_old_spellings(args, known))
        except ToolkitError as e:
            raise typer.Exit(report_error(e)) from None
        except UsageError as e:
            raise typer.Exit(report_usage_error(e)) from None


def report_usage_error(e: UsageError) -> int:
    """Click's parser error (no such option, a bad int, a missing option) as the one ``error:`` line every other
    bad input gets, with where to look for help; Rich would draw it as a 5-line box (issue 25)."""
    ctx = e.ctx
    where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    return report_error(ToolkitError(" ".join(e.format_message().split()).rstrip(".") + where))


class ToolkitGroup(TyperGroup):
    """The ``toolkit`` group: an unknown command or a bad root option is one ``error:`` line too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as e:
            raise typer.Exit(report_usage_error(e)) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as e:
            raise typer.Exit(report_usage_error(e)) from None
