"""``mlem build MODEL pip``: an installable Python package holding a model.

Design: mlem-lib is not on PyPI, so next to the model's wheel and sdist the
target folder gets a serving-only ``mlem_lib`` wheel (see
:mod:`mlem_lib.build.runtime`). The model package requires the model's pinned
requirements plus ``mlem-lib``; install both by their file names
(``pip install TARGET/mlem_model_rf-0.1.0-py3-none-any.whl TARGET/mlem_lib-...whl``, as
``mlem build`` prints it), so that no package of the same name on an index can be
installed instead. The default name is distinctive (``models/rf`` -> ``mlem-model-rf``),
and a name the configured index already lists gets a warning
(:mod:`mlem_lib.build.index`). Vendoring mlem_lib
inside every model package was rejected: two model packages would then ship
clashing copies of the same top-level module.

The package exposes one function per model method (``iris_rf.predict(df)``),
``load()`` for the raw model, ``serve()``, and a console script
``<package-name>-serve``. Local code the model imports is shipped inside the
package (``<pkg>/_local_code``) and put on ``sys.path`` when the package is
imported.

Example:
    >>> pkg = build_pip("models/rf", target="build/", package_name="iris-rf")
    >>> os.path.basename(pkg.wheel)
    'iris_rf-0.1.0-py3-none-any.whl'
"""

from __future__ import annotations

import keyword
import os
import re
import warnings
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from mlem_lib.build.base import Builder, BuildOptions, BuildProgress
from mlem_lib.build.model_files import MODEL_NAME, ModelBundle, collect
from mlem_lib.build.wheel import DistSpec, file_stem, normalize_name, write_sdist, write_wheel
from mlem_lib.errors import BuildError
from mlem_lib.meta import public_name

_VERSION = re.compile(r"^\d+(\.\d+)*([abc]|rc)?\d*(\.post\d+)?(\.dev\d+)?(\+[a-z0-9.]+)?$", re.I)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


class PipPackage(BaseModel):
    """What ``build(model, "pip")`` produced.

    Attributes:
        name: the distribution name (``iris-rf``).
        import_name: the module to import (``iris_rf``).
        version: the package version.
        wheel: path of the model package's wheel.
        sdist: path of its source distribution.
        dependency_wheels: other wheels in the target that pip needs (``mlem_lib``'s).
        requirements: the package's ``Requires-Dist`` lines.
        script: the console script that serves the model.
    """

    name: str
    import_name: str
    version: str
    wheel: str
    sdist: str
    dependency_wheels: list[str] = []
    requirements: list[str] = []
    script: str


def default_package_name(model: str) -> str:
    """A package name from a model path or reference: ``models/rf`` -> ``rf``."""
    base = re.split(r"[@#]", model.rstrip("/"))[0]
    base = os.path.basename(base)
    if base.endswith(".mlem"):
        base = base[: -len(".mlem")]
    name = normalize_name(re.sub(r"[^A-Za-z0-9._-]+", "-", base)).strip("-.")
    return name if name and name[0].isalpha() else f"model-{name or 'package'}"


def default_distribution_name(model: str) -> str:
    """The default name of a model's pip package: distinctive, so that ``pip`` cannot
    confuse it with a package of an index (``models/dt`` -> ``mlem-model-dt``, not ``dt``).

    Example:
        >>> default_distribution_name("models/dt"), default_distribution_name("models/2024")
        ('mlem-model-dt', 'mlem-model-2024')
    """
    short = default_package_name(model)
    return "mlem-" + (short if short.startswith("model-") else f"model-{short}")


#: the environment variable that turns the index look-up of package names off (``0``)
CHECK_INDEX_ENV = "MLEM_BUILD_CHECK_INDEX"


def warn_if_taken(name: str, warn: Callable[[str], None] | None = None) -> bool:
    """Warn when the configured package index lists ``name`` (``True`` if it does).

    Off when ``$MLEM_BUILD_CHECK_INDEX`` is ``0`` (offline builds, tests); an index that
    cannot be reached says nothing.
    """
    from mlem_lib.build.index import configured_index, name_on_index

    if os.environ.get(CHECK_INDEX_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    index = configured_index()
    if not name_on_index(name, index):
        return False
    message = (f"package name {name!r} is taken on {index}: `pip install {name}` could "
               "install that package instead of this model; install the built wheel by its "
               "file name (as printed) or choose another --package-name")
    if warn is None:
        from mlem_lib.errors import BuildWarning

        warnings.warn(message, BuildWarning, stacklevel=3)
    else:
        warn(f"warning: {message}")
    return True


def check_package_name(name: str) -> str:
    """Validate a distribution name and return its import name.

    Raises:
        BuildError: the name is not a valid distribution name or import name.
    """
    if not _NAME.match(name):
        raise BuildError(f"package_name {name!r} must start with a letter and contain only "
                         "letters, digits, '-', '_' and '.'")
    import_name = file_stem(name)
    if keyword.iskeyword(import_name) or not import_name.isidentifier():
        raise BuildError(f"package_name {name!r} gives the import name {import_name!r}, "
                         "which is not a valid Python module name")
    if import_name in ("mlem_lib", "test", "tests"):
        raise BuildError(f"package_name {name!r} would shadow the module {import_name!r}")
    return import_name


def _method_functions(bundle: ModelBundle) -> str:
    names: list[str] = []
    for name in bundle.meta.model_type.methods:
        public = public_name(name)
        if public.isidentifier() and not keyword.iskeyword(public) and public not in names:
            names.append(public)
    blocks = []
    for name in names:
        blocks.append(f'''

def {name}(data: Any) -> Any:
    """Call the model's ``{name}`` method (input is validated against the saved schema)."""
    return call({name!r}, data)''')
    return "".join(blocks)


_INIT_TEMPLATE = '''"""{summary}

Generated by mlem_lib {mlem_version}. Example::

    import {import_name}
    {import_name}.{first_method}(data)      # validated against the saved input schema
    model = {import_name}.load()           # the raw model object

Serve it over HTTP with ``{script} --port 8080`` (or ``python -m {import_name}``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__version__ = {version!r}
METHODS = {methods!r}
MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model", {model_name!r})

_LOCAL_CODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_local_code")
if os.path.isdir(_LOCAL_CODE) and _LOCAL_CODE not in sys.path:
    sys.path.append(_LOCAL_CODE)

_loaded: Any = None


def loaded_model() -> Any:
    """The model with its metadata (a ``mlem_lib.runner.LoadedModel``), loaded once."""
    global _loaded
    if _loaded is None:
        from mlem_lib.runner import LoadedModel

        _loaded = LoadedModel.load(MODEL_PATH)
    return _loaded


def load() -> Any:
    """The raw model object (for example the scikit-learn estimator)."""
    return loaded_model().model


def call(method: str, data: Any) -> Any:
    """Call any model method by name."""
    return loaded_model().call(method, data)
{method_functions}


def serve(host: str | None = None, port: int | None = None, workers: int = 1,
          auth_token: str | None = None) -> None:
    """Serve the model with mlem_lib's HTTP server (blocks)."""
    from mlem_lib.serve.runner import run

    host = host or os.environ.get("MLEM_HOST", "127.0.0.1")
    port = port or int(os.environ.get("PORT", "8080"))
    run(MODEL_PATH, host=host, port=port, workers=workers, auth_token=auth_token, repo=None)


def main(argv: list[str] | None = None) -> int:
    """The ``{script}`` console script."""
    import argparse

    parser = argparse.ArgumentParser(prog={script!r},
                                     description="Serve the packaged model over HTTP.")
    parser.add_argument("--host", help="bind address (default: $MLEM_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $PORT or 8080)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--auth-token", default=os.environ.get("MLEM_AUTH_TOKEN"),
                        help="require this bearer token (default: $MLEM_AUTH_TOKEN)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.workers, args.auth_token)
    return 0
'''

_PYPROJECT_TEMPLATE = '''[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = {name}
version = {version}
description = {summary}
requires-python = ">=3.11"
dependencies = {requires}

[project.scripts]
{script} = "{import_name}:main"

[tool.hatch.build.targets.wheel]
packages = ["{import_name}"]
'''


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value)


Pin = Literal["exact", "compatible"]


def package_spec(bundle: ModelBundle, name: str, version: str, pin: Pin = "exact") -> DistSpec:
    """The wheel contents for a model bundle (no file is written).

    The package requires the model's requirements (``==`` the saved versions, or ``~=``
    with ``pin="compatible"``), what its body formats need (``pyarrow`` for Parquet) and
    the mlem_lib runtime.
    """
    from mlem_lib import __version__ as mlem_version
    from mlem_lib.build.dockerfile import merge_requirements
    from mlem_lib.build.runtime import DIST_NAME, format_requirements
    from mlem_lib.requirements import pip_lines

    import_name = check_package_name(name)
    script = f"{normalize_name(name)}-serve"
    methods = list(dict.fromkeys(public_name(m) for m in bundle.meta.model_type.methods))
    summary = (bundle.meta.description or
               f"The {bundle.meta.model_type.type} model packaged by mlem_lib")
    summary = " ".join(summary.split())
    files: dict[str, bytes] = {}
    init = _INIT_TEMPLATE.format(
        summary=summary, mlem_version=mlem_version, import_name=import_name,
        first_method=methods[0] if methods else "call", script=script, version=version,
        methods=methods, model_name=MODEL_NAME, method_functions=_method_functions(bundle))
    files[f"{import_name}/__init__.py"] = init.encode()
    files[f"{import_name}/__main__.py"] = (
        f"import sys\n\nfrom {import_name} import main\n\nsys.exit(main())\n").encode()
    for rel, data in bundle.files.items():
        files[f"{import_name}/model/{rel}"] = data
    for rel, data in bundle.code.items():
        files[f"{import_name}/_local_code/{rel}"] = data
    requires = merge_requirements(pip_lines(bundle.meta.python_requirements(), pin),
                                  format_requirements(bundle.meta))
    requires.append(f"{DIST_NAME}>={mlem_version}")
    return DistSpec(name=name, version=version, files=files, requires=requires,
                    scripts={script: f"{import_name}:main"}, summary=summary,
                    requires_python=">=3.11")


def build_pip(model: str, target: str = "build/", package_name: str | None = None,
              version: str = "0.1.0", *, repo: str | None = None, sdist: bool = True,
              runtime_wheel: bool = True, pin: Pin = "exact",
              warn: Callable[[str], None] | None = None) -> PipPackage:
    """Build a wheel (and sdist) of a Python package that holds the model.

    Args:
        model: the saved model's path, URL or registry reference (``rf@v1.0.0``).
        target: folder for the built files (created if missing; rebuilding overwrites).
        package_name: distribution name (default: from the model path, ``models/rf`` ->
            ``mlem-model-rf``); a name the configured index lists gets a warning.
        version: the package version (PEP 440).
        repo: git repository for registry references.
        sdist: also write a ``.tar.gz`` source distribution (buildable with hatchling).
        runtime_wheel: also write the serving-only ``mlem_lib`` wheel the package requires.
        pin: ``exact`` requires the saved versions (``==``), ``compatible`` any later
            patch release of them (``~=1.5.0``).
        warn: receives warnings as lines (default: :class:`~mlem_lib.errors.BuildWarning`).

    Returns:
        The paths and names of what was built.

    Raises:
        BuildError: invalid ``package_name`` or ``version``, or a data object given.

    Example:
        >>> pkg = build_pip("models/rf", "build/", package_name="iris-rf")  # doctest: +SKIP
        >>> # pip install build/iris_rf-0.1.0-py3-none-any.whl build/mlem_lib-0.1.0-py3-none-any.whl
        >>> # then: import iris_rf; iris_rf.predict(df)
    """
    from mlem_lib.build.runtime import write_runtime_wheel

    if not _VERSION.match(version):
        raise BuildError(f"version {version!r} is not a valid PEP 440 version (e.g. 1.0.0)")
    if pin not in ("exact", "compatible"):
        raise BuildError(f"pin {pin!r}: use exact (==) or compatible (~=)")
    name = default_distribution_name(model) if package_name is None else package_name
    import_name = check_package_name(name)
    bundle = collect(model, repo)
    spec = package_spec(bundle, name, version, pin)
    warn_if_taken(name, warn)
    wheel = write_wheel(spec, target)
    sdist_path = ""
    if sdist:
        pyproject = _PYPROJECT_TEMPLATE.format(
            name=_toml_str(name), version=_toml_str(version), summary=_toml_str(spec.summary),
            requires="[" + ", ".join(_toml_str(r) for r in spec.requires) + "]",
            script=next(iter(spec.scripts)), import_name=import_name)
        readme = f"# {name}\n\n{spec.summary}\n"
        sdist_path = write_sdist(spec, target, {"pyproject.toml": pyproject.encode(),
                                                "README.md": readme.encode()})
    deps = [write_runtime_wheel(target)] if runtime_wheel else []
    return PipPackage(name=name, import_name=import_name, version=version, wheel=wheel,
                      sdist=sdist_path, dependency_wheels=deps, requirements=spec.requires,
                      script=next(iter(spec.scripts)))


class PipOptions(BuildOptions):
    """Options of ``build(model, "pip")`` (see :func:`build_pip`)."""

    target: str = Field("build/", description="folder for the built files")
    package_name: str | None = Field(
        None, description="distribution name (default: from the model path, models/rf -> "
                          "mlem-model-rf)")
    version: str = Field("0.1.0", description="package version (PEP 440; a leading v is "
                                              "dropped)")
    sdist: bool = Field(True, description="also write a source distribution")
    runtime_wheel: bool = Field(True, description="also write the serving-only mlem_lib "
                                                  "wheel the package requires")
    pin: Pin = Field("exact", description="requirements: exact (==, the saved versions) or "
                                          "compatible (~=, any later patch release)")

    @field_validator("version")
    @classmethod
    def _drop_v(cls, value: str) -> str:
        return value[1:] if value[:1] in ("v", "V") and value[1:2].isdigit() else value


class PipBuilder(Builder[PipOptions, PipPackage]):
    """``pip``: a wheel and sdist of a Python package holding the model."""

    name = "pip"
    description = ("a wheel + sdist of a Python package holding the model (import it and "
                   "call predict(...), or serve it with its console script), plus the "
                   "serving-only mlem_lib wheel it requires")
    Options = PipOptions
    Result = PipPackage

    def build(self, model: str, options: PipOptions, *, repo: str | None = None,
              progress: BuildProgress = None) -> PipPackage:
        return build_pip(model, options.target, options.package_name, options.version,
                         repo=repo, sdist=options.sdist, runtime_wheel=options.runtime_wheel,
                         pin=options.pin, warn=progress)

    def summary(self, result: PipPackage) -> list[str]:
        lines = [f"built {result.wheel}"]
        if result.sdist:
            lines.append(f"built {result.sdist}")
        lines += [f"built {dep}" for dep in result.dependency_wheels]
        # file names, not a package name: nothing from an index can be picked instead
        files = " ".join([result.wheel, *result.dependency_wheels])
        lines.append(f"install: pip install {files}")
        lines.append(f"use:     import {result.import_name}; {result.import_name}.predict(data)"
                     f"   serve: {result.script} --port 8080")
        return lines


BUILDER = PipBuilder()
