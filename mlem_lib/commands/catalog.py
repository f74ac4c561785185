"""``mlem ls`` (list and search models and data) and ``mlem checkenv``."""

from __future__ import annotations

import argparse
from typing import Any

LS_DESCRIPTION = """\
List the models and data objects in a folder (recursively; default: the current one) or
the models registered in a repository (--repo: a path, a bare repository or a git URL):
name, framework (a data object's type), methods, latest version and stages (for models
registered in the folder's git repository), labels and description. Filter with --label
(repeatable: all of them), --framework and --query (a case-insensitive substring of the
name, description or labels); --type adds MLEM's links, deployments, envs and builders."""

LS_EXAMPLES = """\
examples:
  mlem ls
  mlem ls models --framework sklearn --label iris
  mlem ls --repo https://github.com/org/models.git --query churn --json
  mlem ls --type all
"""


def register(sub: Any) -> None:
    ls = sub.add_parser("ls", help="list and search models and data objects",
                        description=LS_DESCRIPTION, epilog=LS_EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.add_argument("path", nargs="?", default=None, help="folder to list (default: .)")
    ls.add_argument("--repo", "--project", "-p", dest="repo",
                    help="list this repository's registry instead")
    ls.add_argument("--label", action="append", metavar="LABEL",
                    help="keep objects with this label (repeatable: all of them)")
    ls.add_argument("--framework", help="keep models of this framework (sklearn, xgboost, "
                                        "...) or data objects of this type (dataframe...)")
    ls.add_argument("--query", "-q", help="keep objects whose name, description or labels "
                                          "contain this text")
    ls.add_argument("--type", "-t", dest="kinds", action="append",
                    choices=["model", "data", "link", "deployment", "env", "builder", "all"],
                    help="object types to list (repeatable; default: model and data)")
    ls.add_argument("--json", action="store_true", help="print the entries as JSON")
    ls.set_defaults(func=_ls)

    ce = sub.add_parser(
        "checkenv", help="check that installed packages match a model's requirements",
        description="Compare the Python packages the model recorded (exact versions) with "
                    "the installed ones. Exit code 1 when one is missing or differs, so CI "
                    "and image builds can stop early.")
    ce.add_argument("path", help="model path, registry reference or registered name")
    ce.add_argument("--repo", help="git repository for registry references")
    ce.add_argument("--json", action="store_true", help="print the report as JSON")
    ce.set_defaults(func=_checkenv)


def _ls(args: argparse.Namespace) -> int:
    import json

    from mlem_lib.catalog import list_objects, list_registry, search
    from mlem_lib.describe import table
    from mlem_lib.errors import RegistryError

    if args.repo and args.path:
        raise RegistryError("give a folder or --repo, not both")
    kinds = args.kinds or ["model", "data"]
    if "all" in kinds:
        kinds = ["model", "data", "link", "deployment", "env", "builder"]
    entries = list_registry(args.repo) if args.repo else \
        list_objects(args.path or ".", kinds=kinds)
    entries = search(entries, label=args.label, framework=args.framework, query=args.query)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return 0
    if not entries:
        print("nothing found")
        return 0
    rows = [[e.name + (f" -> {e.link_to}" if e.link_to else ""), e.object_type,
             e.framework or "", ", ".join(e.methods), e.latest or "",
             ", ".join(f"{s}={v}" for s, v in sorted(e.stages.items())),
             ", ".join(e.labels), (e.description or "").replace("\n", " ")[:60]]
            for e in entries]
    print(table(["name", "type", "framework", "methods", "latest", "stages", "labels",
                 "description"], rows))
    return 0


def _checkenv(args: argparse.Namespace) -> int:
    import sys

    from mlem_lib.envcheck import check_environment

    report = check_environment(args.path, repo=args.repo)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        for mismatch in report.mismatches:
            print(f"mismatch: {mismatch}", file=sys.stderr)
        for item in report.unchecked:
            print(f"not checked: {item}")
        if report.ok:
            print(f"{args.path}: the environment matches its {report.checked} "
                  "requirements")
        else:
            print(f"{args.path}: {len(report.mismatches)} of {report.checked} requirements "
                  "are not satisfied", file=sys.stderr)
    return 0 if report.ok else 1
