"""``mlem show`` and ``mlem apply``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("show", help="print a model's or data object's metadata as tables",
                       description="Print the metadata of a saved object: framework, "
                                   "methods with their input/output schemas, pinned "
                                   "requirements and artifacts (size, hash).")
    p.add_argument("path", help="object path or URL (with or without .mlem), or a "
                                "registry reference like rf@v1.0.0 / rf#prod")
    p.add_argument("--repo", help="git repository for registry references")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON instead")
    p.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    if args.json:
        import json

        meta = mlem.load_meta(args.path, repo=args.repo)
        print(json.dumps(meta.model_dump(mode="json", exclude_none=True), indent=2))
    else:
        print(mlem.show(args.path, repo=args.repo))
    return 0
