"""``mlem build MODEL pip|docker|docker-dir|onnx``: package or export a saved model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DESCRIPTION = """\
Package a saved model. The kinds are the registered builders (plugins add their own); the
builtin ones:
  pip         a wheel + sdist of a Python package holding the model (import it and call
              predict(...), or serve it with its console script), plus the serving-only
              mlem_lib wheel it requires; install the printed wheel files with pip
              (default name mlem-model-<model>; a name taken on the index is warned about)
  docker-dir  a Docker build context: requirements installed in a layer before the model,
              own venv in /opt/venv, non-root user, exec-form entrypoint serving the model
              on $SAGEMAKER_BIND_TO_PORT / $PORT / 8080 (accepts SageMaker's `serve`)
  docker      that context built by the Docker engine at $DOCKER_HOST, optionally pushed
  onnx        the model exported to ONNX as a new saved model (TARGET/NAME.onnx + .mlem),
              same methods and schemas, refused when its answers on the saved sample differ
              from the model's by more than --tolerance
Every option of a kind can also be given as -o NAME=VALUE (VALUE is read as YAML: 3, true,
[a, b]); the kind's options model checks them all."""

EXAMPLES = """\
examples:
  mlem build models/rf pip --package-name iris-rf --target build/ --pin compatible
  mlem build models/rf docker-dir --target build/ctx --apt curl --pip shap==0.46.0
  mlem build models/rf docker --image iris-rf:1.0 --base python:3.11-slim
  mlem build models/cnn docker --image digits:1.0 --wheelhouse ./wheels
  mlem build models/rf pip -o sdist=false
  mlem build models/rf onnx --target build/onnx --tolerance 1e-4
  MLEM_REGISTRY_USERNAME=me MLEM_REGISTRY_PASSWORD=... \\
      mlem build rf@v1.2.0 docker --image iris-rf:1.2.0 --push registry.example.com/team
MLEM's spellings work too (its builder names pip, whl, docker, docker_dir and options):
  mlem build models/rf pip -c package_name=iris_rf -c target=build/     (MLEM 0.2)
  mlem build pip --model models/rf --package_name iris_rf --target build/  (MLEM 0.4)
  mlem build --load build_docker.mlem models/rf                   (a MLEM builder file)
"""

# option name -> the flag that sets it (for error messages)
_FLAGS = {
    "target": "--target", "package_name": "--package-name", "version": "--package-version",
    "image": "--image", "tags": "--tag", "base": "--base", "python_version": "--python-version",
    "apt": "--apt", "pip": "--pip", "model_version": "--model-version", "push": "--push",
    "username": "--username", "password": "--password", "nocache": "--no-cache",
    "context_dir": "--context-dir", "strip_tests": "--keep-tests", "pin": "--pin",
    "tolerance": "--tolerance", "opset": "--opset", "sample": "--sample",
    "wheelhouse": "--wheelhouse", "torch_index": "--torch-index",
}


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="package a model as a pip package or a Docker image",
                       description=DESCRIPTION, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?",
                   help="model path or URL (with or without .mlem), a registry reference "
                        "like rf@v1.0.0 / rf#prod, or a registered name (its latest version)")
    p.add_argument("kind", nargs="?",
                   help="what to build: pip, docker, docker-dir or a plugin's kind (MLEM's "
                        "whl and docker_dir too); optional with --load")
    p.add_argument("-o", "--option", dest="extra", action="append", default=[],
                   metavar="NAME=VALUE", help="any option of the kind (repeatable)")
    p.add_argument("-c", "--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="an option with MLEM's name (package_name, target, image.name, "
                        "image.tag, args.python_version...), or one of ours")
    p.add_argument("-l", "--load", metavar="BUILDER",
                   help="a MLEM builder file (object_type: builder) giving the kind and "
                        "its options")
    p.add_argument("-m", "--model", dest="model_option", metavar="MODEL",
                   help="the model, when the first argument is the kind (MLEM 0.4)")
    p.add_argument("-p", "--project", help="MLEM project (folder, bucket or git "
                                           "repository) the model path is in")
    p.add_argument("--rev", help="git revision of --project (or of this repository)")
    p.add_argument("--target", help="output folder (pip: default build/; docker-dir: default "
                                    "build/docker, replaced as a whole)")
    p.add_argument("--package-name", help="pip: distribution name (default: from the model "
                                          "path, models/rf -> mlem-model-rf); imported with "
                                          "underscores")
    p.add_argument("--pin", choices=["exact", "compatible"],
                   help="pip/docker: require the saved versions exactly (==, default) or any "
                        "later patch release (compatible: ~=1.5.0)")
    p.add_argument("--package-version", dest="version", help="pip: package version (default 0.1.0)")
    p.add_argument("--image", help="docker: image name and tag (default: <model name>:latest)")
    p.add_argument("--tag", dest="tags", action="append", help="docker: another tag (repeatable)")
    p.add_argument("--base", help="docker: base image (default python:3.11-slim; any Debian-based "
                                  "image with or without Python works)")
    p.add_argument("--python-version", help="docker: use python:<VERSION>-slim as the base")
    p.add_argument("--apt", action="append", help="docker: extra system packages (repeatable or "
                                                  "comma-separated; libgomp1 is automatic for "
                                                  "xgboost/lightgbm)")
    p.add_argument("--pip", action="append", help="docker: extra pip requirements (repeatable or "
                                                  "comma-separated)")
    p.add_argument("--model-version", help="docker: the version label (default: the registry "
                                           "version, else 'unversioned')")
    p.add_argument("--push", metavar="REGISTRY", help="docker: push to host[:port][/namespace] "
                                                      "after building")
    p.add_argument("--username", help="registry user (default: $MLEM_REGISTRY_USERNAME)")
    p.add_argument("--password", help="registry password (default: $MLEM_REGISTRY_PASSWORD; "
                                      "prefer the variable: flags show up in `ps`)")
    p.add_argument("--no-cache", dest="nocache", action="store_true",
                   help="docker: ignore the engine's layer cache")
    p.add_argument("--keep-tests", dest="strip_tests", action="store_false", default=None,
                   help="docker: keep the test suites installed packages ship (removed by "
                        "default: about 110 MB for scikit-learn models)")
    p.add_argument("--context-dir", help="docker: keep the generated context in this folder")
    p.add_argument("--tolerance", type=float, help="onnx: largest difference allowed on "
                   "floats, relative to max(1, |native value|) (default 1e-5); labels and "
                   "integers must be equal")
    p.add_argument("--opset", type=int, help="onnx: ONNX opset (default: the converter's)")
    p.add_argument("--sample", help="onnx: data file to check parity on (default: the sample "
                                    "saved with the model)")
    p.add_argument("--wheelhouse", metavar="DIR",
                   help="docker: install from this folder of wheels before the package index "
                        "(offline builds when it holds every requirement; default "
                        "$MLEM_WHEELHOUSE)")
    p.add_argument("--torch-index", metavar="URL",
                   help="docker: where torch models get torch when the wheelhouse has none "
                        "(default: PyTorch's CPU index; '' for the package index)")
    p.add_argument("--repo", help="git repository for registry references")
    p.add_argument("--quiet", action="store_true", help="no build output")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_build)


def _extra_options(pairs: list[str]) -> dict[str, Any]:
    import yaml

    from mlem_lib.errors import BuildError

    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise BuildError(f"-o {pair!r}: use -o NAME=VALUE")
        try:
            options[name.strip().replace("-", "_")] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            options[name.strip().replace("-", "_")] = text
    return options


def _model_kind_options(args: argparse.Namespace) -> tuple[str, str, dict[str, Any]]:
    """The model, our build kind and the options from ``--load`` and ``-c``, whichever of
    ``build MODEL KIND``, ``build KIND --model MODEL`` and ``build --load FILE MODEL``
    was used."""
    from mlem_lib.compat.builders import read_builder, to_build_options
    from mlem_lib.compat.objects import parse_options
    from mlem_lib.errors import BuildError, MetadataError

    given = [a for a in (args.model, args.kind) if a]
    if args.model_option:
        model, rest = args.model_option, given
    elif given:
        model, rest = given[0], given[1:]
    else:
        raise BuildError("no model given: mlem build MODEL KIND (or --load BUILDER MODEL)")
    if len(rest) > 1:
        raise BuildError(f"unexpected argument {rest[1]!r}")
    kind = rest[0] if rest else None
    options: dict[str, Any] = {}
    if args.load:
        loaded, options, ignored = read_builder(args.load)
        for item in ignored:
            print(f"warning: {args.load}: MLEM option {item} is not used", file=sys.stderr)
        if kind is not None and to_build_options(kind, {})[0] != loaded:
            raise BuildError(f"{args.load} builds {loaded}, not {kind}")
        kind = loaded
    if kind is None:
        raise BuildError("no build kind given: mlem build MODEL pip|docker|docker-dir "
                         "(or --load BUILDER)")
    try:
        conf = parse_options(args.conf)
    except MetadataError as exc:
        raise BuildError(str(exc)) from None
    ours, mapped, ignored = to_build_options(kind, conf)
    for item in ignored:
        print(f"warning: MLEM option {item} is not used", file=sys.stderr)
    return model, ours, {**options, **mapped}


def _build(args: argparse.Namespace) -> int:
    from mlem_lib.build import builder
    from mlem_lib.compat.cli import model_in_project
    from mlem_lib.errors import BuildError

    model, kind_name, loaded = _model_kind_options(args)
    args.kind = kind_name
    kind = builder(kind_name)
    flags: dict[str, Any] = {
        "target": args.target, "package_name": args.package_name, "version": args.version,
        "image": args.image, "tags": args.tags, "base": args.base,
        "python_version": args.python_version, "apt": _split(args.apt), "pip": _split(args.pip),
        "model_version": args.model_version, "push": args.push, "username": args.username,
        "password": args.password, "nocache": args.nocache or None,
        "context_dir": args.context_dir, "strip_tests": args.strip_tests, "pin": args.pin,
        "tolerance": args.tolerance, "opset": args.opset, "sample": args.sample,
        "wheelhouse": args.wheelhouse, "torch_index": args.torch_index,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    known = set(kind.Options.model_fields)
    wrong = sorted(_FLAGS[k] for k in flags if k not in known)
    if wrong:
        raise BuildError(f"{', '.join(wrong)} cannot be used with `build {args.kind}` (its "
                         f"options: {', '.join(sorted(known)) or 'none'})")
    options = {**loaded, **flags, **_extra_options(args.extra)}
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with model_in_project(model, args.project, args.rev) as path:
        result = kind.run(path, options, repo=args.repo,
                          progress=None if args.quiet else progress)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    for line in kind.summary(result):
        print(line)
    return 0
