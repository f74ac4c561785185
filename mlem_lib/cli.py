"""The ``mlem`` command line.

Each command group lives in its own module under :mod:`mlem_lib.commands` and
registers its sub-commands here; heavy imports happen only when a command runs,
so ``mlem --help`` stays fast. Every :class:`~mlem_lib.errors.MlemError` becomes
one line on stderr and exit code 1, never a traceback (``--traceback``, anywhere on
the command line, shows it). Output piped into a reader that stops early
(``mlem show rf | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "mlem_lib.commands.core",
    "mlem_lib.commands.apply",
    "mlem_lib.commands.serve",
    "mlem_lib.commands.build",
    "mlem_lib.commands.deployment",
    "mlem_lib.commands.registry",
    "mlem_lib.commands.objects",
    "mlem_lib.commands.catalog",
)

EPILOG = """examples:
  mlem show models/rf
  mlem apply models/rf data/test.parquet -m predict_proba -o preds.parquet
  mlem serve models/rf --port 8080
  mlem build models/rf docker --image iris-rf:1.0
  mlem deployment run deployments/local.yaml --model models/rf
  mlem registry register models/rf --bump-minor
"""


def build_parser() -> argparse.ArgumentParser:
    from mlem_lib import __version__

    parser = argparse.ArgumentParser(
        prog="mlem",
        description="Save, inspect, serve, package, deploy and register ML models. "
                    "A model is a binary plus a readable .mlem YAML file with its "
                    "inferred schema and requirements.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mlem_lib {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback on errors (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def _pop_traceback(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--traceback`` out of ``argv`` wherever it is (not after ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = "--traceback" in argv[:end]
    head = [a for a in argv[:end] if a != "--traceback"]
    return head + argv[end:], found


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop without a traceback."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail
    return 141  # what a shell reports for a process ended by SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used as the console script)."""
    from mlem_lib.compat.cli import translate
    from mlem_lib.errors import MlemError

    parser = build_parser()
    args_list, traceback = _pop_traceback(list(sys.argv[1:] if argv is None else argv))
    try:
        args_list = translate(args_list, parser)  # MLEM's spellings of our commands
    except MlemError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    _one_line_warnings()
    args = parser.parse_args(args_list)
    args.traceback = traceback
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except MlemError as exc:
        if args.traceback:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _one_line_warnings() -> None:
    """Format mlem_lib's own warnings as ``warning: ...`` lines, without source lines.

    Only the formatting changes: whoever collects warnings (pytest, logging) still gets
    them.
    """
    import warnings

    default = warnings.formatwarning
    if getattr(default, "mlem_lib", False):
        return

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int,
            line: str | None = None) -> str:
        if category.__module__.startswith("mlem_lib"):
            return f"warning: {_one_line(Exception(str(message)))}\n"
        return default(message, category, filename, lineno, line)

    fmt.mlem_lib = True  # type: ignore[attr-defined]
    warnings.formatwarning = fmt


def _one_line(exc: BaseException, limit: int = 2000) -> str:
    """The exception's message on one line, cut at ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
