"""``mlem registry register|assign|unassign|deregister|deprecate|show|history|latest``:
the git-native model registry."""

from __future__ import annotations

import argparse
from typing import Any

_REPO_HELP = ("git repository: a work tree (default: the current directory), a bare "
              "repository, a file:// or remote URL")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "registry", help="version models and move them between stages (git tags + DVC)",
        description="A model registry inside your git repository. Versions are git tags "
                    "NAME@vX.Y.Z and stages NAME#STAGE#N (GTO's format, so the gto CLI reads "
                    "them); binaries are tracked and pushed by DVC. Load a version anywhere "
                    "with `mlem show NAME@v1.0.0` or mlem_lib.api.load('NAME#prod').",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mlem registry register models/rf --bump-minor\n"
               "  mlem registry register models/rf --version v1.0.0 --push\n"
               "  mlem registry assign rf --version v0.1.0 --stage prod --push\n"
               "  mlem registry unassign rf --stage prod\n"
               "  mlem registry deregister rf v0.1.0\n  mlem registry deprecate rf\n"
               "  mlem registry show --repo https://github.com/org/models.git\n"
               "  mlem registry history rf\n"
               "  mlem registry latest rf --stage prod")
    rsub = p.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)

    reg = rsub.add_parser(
        "register", help="register a saved model as a new version",
        description="Track the model binary with DVC, commit its .mlem file and .dvc "
                    "pointer, dvc push the binary to the default remote and create the "
                    "tag NAME@vX.Y.Z. Refuses unrelated uncommitted changes and content "
                    "that is already registered.")
    reg.add_argument("path", help="the saved model (with or without .mlem)")
    reg.add_argument("--name", help="registry name (default: the .mlem file's stem)")
    which = reg.add_mutually_exclusive_group()
    which.add_argument("--version", help="explicit version, e.g. v1.2.0")
    for part in ("patch", "minor", "major"):
        which.add_argument(f"--bump-{part}", dest="bump", action="store_const", const=part,
                           help=f"bump the {part} part of the latest version"
                                + (" (the default)" if part == "patch" else ""))
    reg.add_argument("-m", "--message", help="commit and tag message")
    reg.add_argument("--no-push", dest="push", action="store_false",
                     help="do not dvc push the binary (others cannot load it then)")
    reg.add_argument("--push", dest="push_git", action="store_true",
                     help="also push the commit and the tag to the git remote (the binary "
                          "goes to the DVC remote either way)")
    reg.add_argument("--force", action="store_true",
                     help="register a version lower than the latest one")
    reg.add_argument("--metrics", metavar="FILE",
                     help="JSON file of evaluation results, committed with the version as "
                          "<model>.metrics.json (see `registry show NAME@VERSION`)")
    reg.add_argument("--plots", metavar="PATH", action="append",
                     help="folder or file of plots (png, svg, json...), committed with the "
                          "version under <model>.plots/; repeatable")
    _repo_and_json(reg)
    reg.set_defaults(func=_register)

    asg = rsub.add_parser(
        "assign", help="put a version in a stage (e.g. prod)",
        description="Create the tag NAME#STAGE#N. Assigning the version the stage already "
                    "has does nothing; another version moves the stage.")
    asg.add_argument("name", help="registry name of the model")
    asg.add_argument("--stage", required=True, help="stage name, e.g. prod or staging")
    asg.add_argument("--version", help="version to assign (default: the latest)")
    _push(asg)
    _repo_and_json(asg)
    asg.set_defaults(func=_assign)

    una = rsub.add_parser(
        "unassign", help="take the version out of a stage",
        description="Create GTO's tag NAME#STAGE!#N: the stage is empty until another "
                    "version is assigned (NAME#STAGE then resolves to nothing).")
    una.add_argument("name", help="registry name of the model")
    una.add_argument("--stage", required=True, help="stage name, e.g. prod")
    _push(una)
    _repo_and_json(una)
    una.set_defaults(func=_unassign)

    der = rsub.add_parser(
        "deregister", help="withdraw a version (NAME@latest moves back)",
        description="Create GTO's tag NAME@VERSION!: the version no longer counts as "
                    "registered. Nothing is deleted; the history keeps it.")
    der.add_argument("name", help="registry name of the model, or NAME@VERSION")
    der.add_argument("version", nargs="?", help="the version, e.g. v1.0.0")
    _push(der)
    _repo_and_json(der)
    der.set_defaults(func=_deregister)

    dep = rsub.add_parser(
        "deprecate", help="retire a whole model",
        description="Create GTO's tag NAME@deprecated: the model leaves `registry show` "
                    "and NAME@latest; its tags and history stay.")
    dep.add_argument("name", help="registry name of the model")
    _push(dep)
    _repo_and_json(dep)
    dep.set_defaults(func=_deprecate)

    show = rsub.add_parser(
        "show", help="table of models, their latest version and stages",
        description="Without NAME: one row per model (latest version, one column per "
                    "stage, description). With NAME: its versions. With NAME@VERSION (or "
                    "NAME#STAGE): that version's tag, who registered it, its metrics and "
                    "plots.")
    show.add_argument("name", nargs="?", help="show the versions of this model, or one "
                                              "version: NAME@v1.0.0, NAME#prod")
    _repo_and_json(show)
    show.set_defaults(func=_show)

    cmp_ = rsub.add_parser(
        "compare", help="metric deltas between two versions",
        description="Metric by metric: the values registered with OLD and NEW and the "
                    "change NEW - OLD (numbers only).")
    cmp_.add_argument("old", help="e.g. rf@v1.0.0 or rf#prod")
    cmp_.add_argument("new", help="e.g. rf@v1.1.0 or rf@latest")
    _repo_and_json(cmp_)
    cmp_.set_defaults(func=_compare)

    hist = rsub.add_parser("history", help="registrations and assignments of a model",
                           description="Events of a model, newest first.")
    hist.add_argument("name", help="registry name of the model")
    _repo_and_json(hist)
    hist.set_defaults(func=_history)

    lat = rsub.add_parser(
        "latest", help="print the latest version (or the one in a stage)",
        description="Print a version string; exit code 1 when there is none.")
    lat.add_argument("name", help="registry name of the model")
    lat.add_argument("--stage", help="print the version in this stage instead")
    lat.add_argument("--repo", default=".", help=_REPO_HELP)
    lat.set_defaults(func=_latest)



def _push(p: argparse.ArgumentParser) -> None:
    p.add_argument("--push", action="store_true",
                   help="push the tag to the git remote (always done when --repo is a bare "
                        "repository or a URL)")


def _repo_and_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", default=".", help=_REPO_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

def _dump(items: Any) -> str:
    import json

    if isinstance(items, list):
        return json.dumps([i.model_dump(mode="json") for i in items], indent=2)
    return str(items.model_dump_json(indent=2))


def _register(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    found = mlem.register(args.path, name=args.name, version=args.version, bump=args.bump,
                          repo=args.repo, push=args.push, message=args.message,
                          push_git=args.push_git, force=args.force, metrics=args.metrics,
                          plots=args.plots)
    print(_dump(found) if args.json else
          f"registered {found.name} {found.version} (tag {found.tag}, commit "
          f"{found.commit[:7]})" + (", pushed" if args.push_git else ""))
    return 0


def _assign(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    found = mlem.assign(args.name, args.stage, version=args.version, repo=args.repo,
                        push=args.push)
    print(_dump(found) if args.json else
          f"{found.name} {found.version} is in stage {found.stage} (tag {found.tag})")
    return 0


def _event(args: argparse.Namespace, event: Any, what: str) -> int:
    print(_dump(event) if args.json else f"{what} (tag {event.tag})")
    return 0


def _unassign(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    event = mlem.unassign(args.name, args.stage, repo=args.repo, push=args.push)
    return _event(args, event, f"{args.name} {event.version} left stage {args.stage}")


def _deregister(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.errors import RegistryError

    name, _, version = args.name.partition("@")
    version = version or args.version
    if not version or (args.version and args.version != version):
        raise RegistryError("give the version to deregister: NAME VERSION or NAME@VERSION")
    event = mlem.deregister(name, version, repo=args.repo, push=args.push)
    return _event(args, event, f"{name} {version} is deregistered")


def _deprecate(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    event = mlem.deprecate(args.name, repo=args.repo, push=args.push)
    return _event(args, event, f"{args.name} is deprecated")


def _show(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.describe import table
    from mlem_lib.errors import UnknownModelError

    if args.name and ("@" in args.name or "#" in args.name):
        return _show_version(args)
    models = mlem.list_models(args.repo)
    if args.name:
        models = [m for m in models if m.name == args.name]
        if not models:
            raise UnknownModelError(f"no model named {args.name!r} in the registry")
    if args.json:
        print(_dump(models))
        return 0
    stages = sorted({s for m in models for s in m.stages})
    if not args.name:
        if not models:
            print("no models registered yet")
            return 0
        rows = [[m.name, m.latest or "", *(m.stages.get(s) or "" for s in stages),
                 m.description or ""] for m in models]
        print(table(["name", "latest", *(f"#{s}" for s in stages), "description"], rows))
        return 0
    model = models[0]
    print(f"Model {model.name}  (latest {model.latest or 'none'}"
          + (f", at {model.path}" if model.path else "") + ")")
    if model.description:
        print(f"Description: {model.description}")
    if model.labels:
        print(f"Labels: {', '.join(model.labels)}")
    rows = []
    for e in mlem.history(model.name, args.repo):
        if e.event != "registration" or not e.version:
            continue
        in_stages = ", ".join(s for s in stages if model.stages.get(s) == e.version)
        rows.append([e.version, in_stages, e.commit[:7], e.timestamp.isoformat()])
    print()
    print(table(["version", "stages", "commit", "registered"], rows))
    return 0


def _show_version(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.describe import table
    from mlem_lib.registry.metrics import flatten

    records = mlem.version_records(args.name, repo=args.repo)
    if args.json:
        print(_dump(records))
        return 0
    print(f"Version {records.tag}" + (f"  (registered by {records.tagger}, "
                                      f"{records.tagged_at})" if records.tagger else ""))
    metrics = flatten(records.metrics)
    if metrics:
        print()
        print(table(["metric", "value"], [[k, _number(v)] for k, v in metrics.items()]))
    else:
        print("no metrics registered with this version")
    if records.plots:
        print()
        print("Plots:")
        for p in records.plots:
            print(f"  {p}")
    return 0


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _compare(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.describe import table

    rows = mlem.compare_versions(args.old, args.new, repo=args.repo)
    if args.json:
        print(_dump(rows))
        return 0
    if not rows:
        print(f"neither {args.old} nor {args.new} has metrics")
        return 0
    print(table(["metric", args.old, args.new, "change"],
                [[r.metric, _number(r.old) if r.old is not None else "",
                  _number(r.new) if r.new is not None else "",
                  "" if r.delta is None else f"{r.delta:+.6g}"] for r in rows]))
    return 0


def _history(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.describe import table

    events = mlem.history(args.name, args.repo)
    if args.json:
        print(_dump(events))
        return 0
    rows = [[e.timestamp.isoformat(), e.event, e.version or "", e.stage or "", e.commit[:7],
             e.tag or "", _who(e.author, e.author_email)] for e in events]
    print(table(["timestamp", "event", "version", "stage", "commit", "tag", "author"], rows))
    return 0


def _who(name: str | None, email: str | None) -> str:
    return " ".join(p for p in (name, f"<{email}>" if email else None) if p)


def _latest(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.errors import VersionNotFoundError

    if args.stage:
        found = mlem.find_stage_version(args.name, args.stage, repo=args.repo)
        if found is None:
            raise VersionNotFoundError(f"no version of {args.name!r} is in stage "
                                       f"{args.stage!r}")
    else:
        found = mlem.find_latest_version(args.name, repo=args.repo)
        if found is None:
            raise VersionNotFoundError(f"model {args.name!r} has no registered version")
    print(found)
    return 0
