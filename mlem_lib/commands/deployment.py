"""``mlem deployment run|status|rollback|remove|history|apply``."""

from __future__ import annotations

import argparse
import os
from typing import Any

_DECL_HELP = "deployment declaration (YAML whose type names a target: local, heroku, " \
             "sagemaker or a plugin's; or a MLEM deployment file, NAME or NAME.mlem)"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "deployment", help="roll a model out to a local server, Heroku or SageMaker",
        description="Deploy models to the targets declared in deployments/*.yaml. The "
                    "state (model hash, image, URL, previous version) is kept in "
                    "<name>.state.json next to the declaration; two runs on one "
                    "deployment cannot interleave. Credentials come from the "
                    "environment (HEROKU_API_KEY, AWS_*), never from the declaration.")
    dsub = p.add_subparsers(dest="deployment_command", metavar="ACTION", required=True)

    run = dsub.add_parser(
        "run", help="create or update a deployment (a no-op when the model already runs)",
        description="Create or update the deployment. After the rollout one request (the "
                    "first rows of --sample, else the example saved with the model or one "
                    "built from its saved schema) must "
                    "succeed, otherwise the previous version is put back where the target "
                    "allows. --port, --sample and --set replace fields of the declaration "
                    "for this run; the file is not changed.",
        epilog="examples:\n"
               "  mlem deployment run deployments/local.yaml --model models/rf\n"
               "  mlem deployment run deployments/local.yaml -m rf@v1.2.0 --port 9000 "
               "--sample data/rows.csv\n"
               "  mlem deployment run deployments/sm.yaml -m models/rf --set "
               "instance_type=ml.m5.large --set wait_timeout=600",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("declaration", nargs="?", help=_DECL_HELP)
    run.add_argument("name", nargs="?", help="with MLEM's `run TYPE NAME`: the declaration "
                                             "(created from -c/--FIELD options if missing)")
    run.add_argument("--model", "-m",
                     help="saved model path/URL or registry reference (rf@v1.0.0, rf#prod); "
                          "optional when a MLEM declaration names its model")
    run.add_argument("--repo", help="git repository for registry references")
    run.add_argument("--port", type=int, help="the declaration's port (local targets)")
    run.add_argument("--sample", metavar="FILE",
                     help="data file (CSV, JSON Lines, Parquet, .npy; path or URL) whose first "
                          "rows the smoke request sends (the declaration's smoke_data)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="FIELD=VALUE",
                     help="replace any field of the declaration (VALUE is read as YAML: 3, "
                          "true, [a, b]); repeatable")
    mlem_run_options(run)
    _common(run)
    run.add_argument("--lock-timeout", type=float, default=0.0,
                     help="seconds to wait for another run of this deployment (default: 0)")
    run.set_defaults(func=_run)

    st = dsub.add_parser("status", help="what runs and whether it answers",
                         description="Print the recorded state and ask the target whether "
                                     "it is healthy; exit code 1 when it is not.")
    st.add_argument("declaration", nargs="?", help=_DECL_HELP)
    _common(st)
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=_status)

    rb = dsub.add_parser(
        "rollback", help="run the previous version again",
        description="Put the version recorded as previous back into service (after the "
                    "same health and smoke checks as a rollout). The version rolled back "
                    "from becomes the previous one, so a second rollback undoes the first.")
    rb.add_argument("declaration", nargs="?", help=_DECL_HELP)
    _common(rb)
    rb.add_argument("--lock-timeout", type=float, default=0.0,
                    help="seconds to wait for another run of this deployment (default: 0)")
    rb.set_defaults(func=_rollback)

    rm = dsub.add_parser("remove", help="tear the deployment down and forget its state",
                         description="Stop and delete what the deployment created; "
                                     "succeeds when it is already gone.")
    rm.add_argument("declaration", nargs="?", help=_DECL_HELP)
    _common(rm)
    rm.add_argument("--lock-timeout", type=float, default=0.0,
                    help="seconds to wait for another run of this deployment (default: 0)")
    rm.add_argument("--force", action="store_true",
                    help="also delete what this tool did not create (e.g. a Heroku app made "
                         "by hand), where the target refuses to by default")
    rm.set_defaults(func=_remove)

    hist = dsub.add_parser("history", help="who rolled out what, and when",
                           description="The rollouts and rollbacks recorded in the "
                                       "deployment's state, newest first: when, what (model "
                                       "hash, the reference deployed), who (user, host).")
    hist.add_argument("declaration", nargs="?", help=_DECL_HELP)
    _common(hist)
    hist.add_argument("--json", action="store_true", help="print the history as JSON")
    hist.set_defaults(func=_history)

    ap = dsub.add_parser("apply", help="run the deployed model over a data file",
                         description="apply-remote against the URL the deployment runs at "
                                     "(MLEM's `mlem deployment apply NAME DATA`).")
    ap.add_argument("declaration", help=_DECL_HELP)
    ap.add_argument("data", help="input file path or URL")
    ap.add_argument("--method", "-m", default="predict", help="model method (default predict)")
    ap.add_argument("-o", "--output", help="where to write predictions (default: print JSON)")
    ap.add_argument("--json", action="store_true", help="print JSON (the default)")
    _common(ap)
    ap.set_defaults(func=_apply)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-url", help="where the state file lives (local path or fsspec URL)")
    p.add_argument("-l", "--load", metavar="DECLARATION",
                   help="the declaration (MLEM's spelling; same as the argument)")
    p.set_defaults(resolve_declaration=True)


def mlem_run_options(run: argparse.ArgumentParser) -> None:
    """MLEM's options of ``deployment run`` (0.2: ``-t ENV -c k=v``; 0.4: ``--field v``)."""
    run.add_argument("-t", "--env", metavar="ENV",
                     help="MLEM env file (e.g. staging.mlem) for a declaration created here")
    run.add_argument("-c", "--conf", action="append", default=[], metavar="KEY=VALUE",
                     help="a field of the MLEM declaration (app_name=..., region=...); "
                          "creates NAME.mlem when it does not exist")
    run.add_argument("--force", action="store_true",
                     help="rewrite the MLEM declaration when -c fields differ from it")
    run.add_argument("--mp", "--model-project", dest="model_project",
                     help="MLEM project (folder or git repository) the model path is in")
    run.add_argument("--mr", "--model-rev", dest="model_rev",
                     help="git revision of --model-project (or of this repository)")


def _declaration(args: argparse.Namespace) -> str:
    from mlem_lib.compat.deployments import find_declaration
    from mlem_lib.errors import DeclarationError

    given = args.load or args.declaration
    if not given:
        raise DeclarationError("no deployment declaration given")
    return find_declaration(given) or given


def _run(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.compat.cli import model_in_project
    from mlem_lib.compat.deployments import prepare_run

    declaration, model = prepare_run(
        [a for a in (args.declaration, args.name) if a], load=args.load, env=args.env,
        conf=args.conf, force=args.force, model=args.model)
    with model_in_project(model, args.model_project, args.model_rev) as path:
        state = mlem.deploy(declaration, path, repo=args.repo,
                            state_url=args.state_url, lock_timeout=args.lock_timeout,
                            overrides=_overrides(args))
    print(f"{state.name}: model {state.model_hash[:12]} at {state.url}")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The declaration fields given on the command line (``--set`` first, then the named
    flags, which win)."""
    import yaml

    from mlem_lib.errors import DeclarationError

    out: dict[str, Any] = {}
    for pair in args.overrides:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise DeclarationError(f"--set {pair!r}: use --set FIELD=VALUE")
        try:
            out[name] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            out[name] = text
    if args.port is not None:
        out["port"] = args.port
    if args.sample:
        out["smoke_data"] = args.sample if "://" in args.sample else os.path.abspath(args.sample)
    return out


def _history(args: argparse.Namespace) -> int:
    import json

    from mlem_lib.deploy import open_deployment
    from mlem_lib.describe import table

    opened = open_deployment(_declaration(args), state_url=args.state_url, progress=False)
    records = opened.history()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return 0
    if not records:
        print(f"{opened.declaration.name}: no rollout recorded")
        return 0
    print(table(["when", "action", "model", "reference", "user", "host"],
                [[r.at, r.action, r.model_hash[:12], r.model or "", r.user or "",
                  r.host or ""] for r in records]))
    return 0


def _apply(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.commands.apply import _report
    from mlem_lib.deploy import open_deployment
    from mlem_lib.errors import DeploymentError

    opened = open_deployment(_declaration(args), state_url=args.state_url, progress=False)
    current = opened.recorded()
    if current is None or not current.url:
        raise DeploymentError(f"{opened.declaration.name} is not deployed: nothing to apply")
    return _report(mlem.apply_remote(current.url, args.data, method=args.method,
                                     output=args.output), args.data)


def _rollback(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    state = mlem.rollback(_declaration(args), state_url=args.state_url,
                          lock_timeout=args.lock_timeout)
    print(f"{state.name}: model {state.model_hash[:12]} runs again at {state.url}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    st = mlem.status(_declaration(args), state_url=args.state_url)
    if args.json:
        print(st.model_dump_json(indent=2))
    else:
        state = "healthy" if st.healthy else ("unhealthy" if st.deployed else "not deployed")
        model = f" model {st.model_hash[:12]}" if st.model_hash else ""
        print(f"{st.name} ({st.type}): {state}{model} at {st.url or '-'}\n  {st.detail}")
    return 0 if st.healthy else 1


def _remove(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem

    declaration = _declaration(args)
    mlem.remove(declaration, state_url=args.state_url, lock_timeout=args.lock_timeout,
                force=args.force)
    print(f"removed {declaration}")
    return 0
