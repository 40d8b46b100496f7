"""``python -m engine``: parses a command line or a job file, runs one command, reports through events.

Each command lives in ``engine/commands/<name>.py`` with ``add_arguments(parser)`` and ``run(args, events)``.
"""

import argparse
import importlib
import json
import logging
import sys
import traceback
from pathlib import Path

from engine import __version__, cancel
from engine.errors import EngineError, InputError, InputFileError, OutOfMemory
from engine.events import Events

COMMANDS = {
    "train": "Train a segmentation model from class points on rasters.",
    "predict": "Predict classes and uncertainty over a raster, by tiles.",
    "suggest": "Suggest where to click next.",
    "simulate": "Run the labelling loop with a dense reference label playing the annotator.",
}
log = logging.getLogger("engine")


class _Parser(argparse.ArgumentParser):
    """Raises InputError instead of exiting, so bad options still end in one error event."""

    def error(self, message: str) -> None:
        raise InputError(f"{self.prog}: {message}; run with --help for the options")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sparse-al engine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(command)
        _command_module(name).add_arguments(command)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common")
    group.add_argument("--job", help="JSON file with the same fields as the options (CONTRACT.md)")
    group.add_argument("--events", choices=("text", "json"), default="text", help="progress as text or JSON lines")
    group.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    from engine.device import PRECISIONS

    group.add_argument("--precision", default="auto", choices=PRECISIONS,
                       help="auto (bf16 on a GPU with it, else float16; bf16 on a CPU where it is natively faster, "
                       "timed once; else float32), float32, or bf16")  # fmt: skip
    group.add_argument("--seed", type=int, default=0, help="random seed (runs on the CPU are deterministic)")
    group.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def _command_module(name: str):
    return importlib.import_module(f"engine.commands.{name}")


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; values of a ``--job`` file fill every option not given on the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        raise InputError("no command given; use one of: " + ", ".join(COMMANDS))
    if args.job:
        subparser = _subparser(parser, args.command)
        given = {a.dest: getattr(args, a.dest) for a in _repeatable(subparser) if getattr(args, a.dest) != a.default}
        subparser.set_defaults(**_read_job(Path(args.job), subparser))
        args = parser.parse_args(argv)
        vars(args).update(given)  # a repeatable option on the command line replaces the job's list, not adds to it
        _check_choices(subparser, args)
    return args


def _repeatable(subparser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in subparser._actions if isinstance(a, argparse._AppendAction | argparse._ExtendAction)]


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions:
        if name in action.choices:
            return action.choices[name]
    raise KeyError(name)


def _read_job(path: Path, subparser: argparse.ArgumentParser) -> dict:
    try:
        job = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputFileError(f"--job: {path} does not exist", "job") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(f"--job: {path} is not readable JSON ({exc}); fix or regenerate it", "job") from exc
    if not isinstance(job, dict):
        raise InputError(f"--job: {path} must hold a JSON object of option names and values", "job")
    known = {action.dest for action in subparser._actions}
    unknown = sorted(set(job) - known - {"command"})
    if unknown:
        raise InputError(f"--job: {path} has unknown field(s) {', '.join(unknown)}; see --help for the options", "job")
    job.pop("command", None)
    job.pop("job", None)
    for action in _repeatable(subparser):
        value = job.get(action.dest)
        if isinstance(value, str):
            job[action.dest] = [value]
        elif value is not None and not isinstance(value, list):
            raise InputError(f'--job: field {action.dest} is {value!r}; give a list, e.g. ["..."]', action.dest)
    return job


def _check_choices(subparser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for action in subparser._actions:
        value = getattr(args, action.dest, None)
        if action.choices is not None and value is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise InputError(f"--job: field {action.dest} is {value!r}; use one of {choices}", action.dest)


def _events_mode(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--events" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in ("json", "text") else "text"
        if arg.startswith("--events="):
            return arg.split("=", 1)[1]
    return "text"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    events = Events("json" if _events_mode(argv) == "json" else "text")
    try:
        args = parse(argv)
        from engine import distributed

        here = distributed.world()
        events = Events(args.events) if here.lead else distributed.Silent()
        _setup_logging(args.log_level if args.events == "text" and here.lead else "warning")
        cancel.reset()
        cancel.install_handlers()
        from engine.device import describe, pick_device, set_precision

        args.torch_device = distributed.start(args.command, pick_device(args.device))
        set_precision(args.precision, args.torch_device)
        processes = f", {here.size} processes" if here.size > 1 else ""
        events.start(args.command, __version__, describe(args.torch_device) + processes)
        _command_module(args.command).run(args, events)
        return 0
    except EngineError as exc:
        events.error(exc.code, exc.message, exc.field)
        return exc.exit_code
    except MemoryError as exc:
        err = OutOfMemory(f"out of memory ({exc}); lower --batch-size or the patch/tile size and try again")
        events.error(err.code, err.message)
        return err.exit_code
    except Exception as exc:  # a bug: report it as one error event, keep the traceback in the log
        if _is_cuda_oom(exc):
            err = OutOfMemory("the GPU ran out of memory; lower --batch-size or the patch/tile size and try again")
            events.error(err.code, err.message)
            return err.exit_code
        traceback.print_exc(file=sys.stderr)
        events.error("internal", f"engine fault: {type(exc).__name__}: {exc}; the traceback is on stderr")
        return 1
    finally:  # a --precision holds for its command only (the benchmarks run several in one process)
        device = sys.modules.get("engine.device")
        if device is not None:
            device.reset_precision()
        if "engine.distributed" in sys.modules:
            sys.modules["engine.distributed"].stop()


def _is_cuda_oom(exc: Exception) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)
