"""``mlem link``, ``mlem import``, ``mlem declare``, ``mlem init``: MLEM's object commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    link = sub.add_parser(
        "link", help="write a link (a .mlem file naming another object)",
        description="Write NAME.mlem, a MLEM link to SOURCE: loading, serving, building or "
                    "deploying NAME then uses SOURCE (mlem link models/rf latest). Links are "
                    "MLEM's files: MLEM reads ours and we read its, including links into "
                    "another git repository or revision.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mlem link models/rf latest\n  mlem link models/rf links/prod "
               "--abs")
    link.add_argument("source", help="the object to link to (path, with or without .mlem)")
    link.add_argument("target", help="the link to write (NAME or NAME.mlem)")
    link.add_argument("--abs", "--absolute", dest="absolute", action="store_true",
                      help="record the absolute path (default: relative to the MLEM project "
                           "or to the link's folder)")
    link.add_argument("--rel", "--relative", dest="absolute", action="store_false",
                      help="record a relative path (the default)")
    link.add_argument("--nf", "--no-follow-links", dest="follow", action="store_false",
                      help="when SOURCE is itself a link, link to it rather than to what it "
                           "points at")
    link.add_argument("--f", "--follow-links", dest="follow", action="store_true",
                      default=True, help="link to what SOURCE points at (the default)")
    link.set_defaults(func=_link)

    imp = sub.add_parser(
        "import", help="save a model (or data) from a file made elsewhere",
        description="Read a model file (a pickle or joblib dump, or a framework's own file "
                    "such as .onnx, .pt, .cbm, .keras: see --list) or a data file (CSV, "
                    "Parquet, JSON Lines, .npy) and save it as OUT + OUT.mlem with "
                    "inferred metadata. --sample gives the methods' schemas. Pickles are "
                    "code: import only files you trust.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mlem import model.pkl models/rf --sample data/train.csv\n"
               "  mlem import booster.txt models/gbm --type lightgbm\n"
               "  mlem import data/data.csv data/imported_data")
    imp.add_argument("path", nargs="?", help="the file to import (local path or URL)")
    imp.add_argument("out", nargs="?", help="where to save it (without .mlem)")
    imp.add_argument("--sample", metavar="FILE",
                     help="a data file whose first rows give the methods' schemas")
    imp.add_argument("--type", "--framework", dest="framework", metavar="NAME",
                     help="how to read the file: a framework (lightgbm, xgboost...), "
                          "pickle, joblib, or pandas[csv] for data (default: by suffix)")
    imp.add_argument("--description", help="free text for the metadata")
    imp.add_argument("--label", dest="labels", action="append", metavar="LABEL",
                     help="a label for the metadata (repeatable)")
    imp.add_argument("--copy", "--no-copy", dest="copy_ignored", action="store_true",
                     help=argparse.SUPPRESS)  # MLEM's; the file is always read and saved
    imp.add_argument("--list", action="store_true",
                     help="list the file suffixes this installation imports, and exit")
    imp.set_defaults(func=_import)

    dec = sub.add_parser(
        "declare", help="write a MLEM deployment, env or builder file",
        description="Write NAME.mlem in MLEM's layout (object_type: deployment|env|builder, "
                    "type and the fields given as --FIELD VALUE or -c FIELD=VALUE; dotted "
                    "fields nest: --image.name x). The file works with `mlem deployment run "
                    "NAME.mlem`, `env: NAME` in a deployment, or `mlem build --load "
                    "NAME.mlem`. Secrets (api_key) are better left in the environment.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mlem declare deployment heroku app --app_name iris-app --env "
               "staging\n  mlem declare env sagemaker aws --region eu-west-1 --role ARN\n"
               "  mlem declare builder pip build_pip --package_name iris --target build/")
    dec.add_argument("object_type", choices=["deployment", "env", "builder"])
    dec.add_argument("type", help="heroku, sagemaker, docker_container (deployments, envs); "
                                  "pip, whl, docker, docker_dir (builders)")
    dec.add_argument("name", help="the file to write (NAME or NAME.mlem)")
    dec.add_argument("-c", "--conf", action="append", default=[], metavar="KEY=VALUE",
                     help="a field (repeatable)")
    dec.set_defaults(func=_declare)

    init = sub.add_parser("init", help="(MLEM) nothing to initialise",
                          description="MLEM needed `mlem init` to make a project; mlem_lib "
                                      "needs none. Writes an empty .mlem.yaml so MLEM's own "
                                      "tools still find the project.")
    init.add_argument("path", nargs="?", default=".")
    init.set_defaults(func=_init)


def _link(args: argparse.Namespace) -> int:
    from mlem_lib.compat.links import write_link

    path, link = write_link(args.source, args.target, absolute=args.absolute,
                            follow=args.follow)
    print(f"{path} -> {link.path}" + (f" ({link.project}"
                                      f"{'@' + link.rev if link.rev else ''})"
                                      if link.project or link.rev else ""))
    return 0


def _import(args: argparse.Namespace) -> int:
    from mlem_lib.errors import UnsupportedObjectError
    from mlem_lib.importer import import_file, import_formats
    from mlem_lib.meta import ModelMeta

    if args.list:
        for suffix, reader in sorted(import_formats().items()):
            print(f"{suffix}\t{reader}")
        return 0
    if not args.path or not args.out:
        raise UnsupportedObjectError("mlem import PATH OUT: give the file and where to "
                                     "save it")
    meta = import_file(args.path, args.out, sample=args.sample, framework=args.framework,
                       description=args.description, labels=args.labels)
    if isinstance(meta, ModelMeta):
        methods = ", ".join(meta.model_type.methods) or "none"
        print(f"saved {args.out} ({meta.model_type.type} model; methods: {methods})")
    else:
        print(f"saved {args.out} (data: {getattr(meta.data_type, 'type', '?')})")
    return 0


def _declare(args: argparse.Namespace) -> int:
    from mlem_lib.compat.objects import parse_options, write_object
    from mlem_lib.errors import DeclarationError, MetadataError

    try:
        fields = parse_options(args.conf)
    except MetadataError as exc:
        raise DeclarationError(str(exc)) from None
    if args.object_type == "deployment":
        from mlem_lib.compat.deployments import declare

        env = fields.pop("env") if isinstance(fields.get("env"), str) else None
        path = declare(args.name, args.type, env=env, options=fields)
    else:
        known = {"env": ("heroku", "sagemaker", "docker"),
                 "builder": ("pip", "whl", "docker", "docker_dir")}[args.object_type]
        if args.type not in known:
            raise DeclarationError(f"unknown {args.object_type} type {args.type!r} "
                                   f"(supported: {', '.join(known)})")
        path = write_object(args.name, args.object_type, args.type, fields)
    if "api_key" in fields or "env.api_key" in fields:
        print(f"warning: {path} now stores an api_key: secrets belong in the environment "
              "(HEROKU_API_KEY) or a Prefect block, not in a file in git", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def _init(args: argparse.Namespace) -> int:
    import os

    marker = os.path.join(args.path, ".mlem.yaml")
    os.makedirs(args.path, exist_ok=True)
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
    print(f"{args.path}: ready (mlem_lib needs no initialisation; {marker} marks the "
          "MLEM project root for links)")
    return 0
