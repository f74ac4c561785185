"""The ``mlem`` command line.

Each command group lives in its own module under :mod:`mlem_lib.commands` and
registers its sub-commands here; heavy imports happen only when a command runs,
so ``mlem --help`` stays fast. Every :class:`~mlem_lib.errors.MlemError` becomes
one line on stderr and exit code 1, never a traceback.
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used as the console script)."""
    from mlem_lib.errors import MlemError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except MlemError as exc:
        if args.traceback:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
