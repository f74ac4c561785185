"""A serving-only wheel of mlem_lib itself, for pip packages and Docker images.

mlem-lib is not on PyPI and its full dependency list (Prefect, DVC, boto3,
docker...) is far more than a model server needs. Packages and images therefore
get a wheel of the installed ``mlem_lib`` source (a repository checkout or an
installed wheel alike: the files are read from the imported package's folder)
whose metadata requires only the serving runtime.

Example:
    >>> "fastapi" in [normalize_name(r.split(">")[0].split("<")[0].split("=")[0])
    ...               for r in serving_requirements()]
    True
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING

from mlem_lib.build.wheel import DistSpec, normalize_name, write_wheel

if TYPE_CHECKING:
    from mlem_lib.meta import ModelMeta

DIST_NAME = "mlem-lib"
# what loading a model and serving it over HTTP imports; everything else is optional
SERVING_DISTRIBUTIONS = ("pydantic", "pyyaml", "fsspec", "numpy", "pandas", "orjson",
                         "fastapi", "uvicorn", "httpx", "python-multipart",
                         "prometheus-client")


def requirement_name(req: str) -> str:
    """The normalised distribution name of a requirement line (``PyYAML>=6`` -> ``pyyaml``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return normalize_name(match.group(1)) if match else ""


def _declared_requirements() -> list[str]:
    """mlem-lib's own ``Requires-Dist`` (installed metadata, else the repo's pyproject)."""
    import importlib.metadata

    try:
        reqs = importlib.metadata.requires(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        reqs = None
    if reqs:
        return list(reqs)
    pyproject = os.path.join(os.path.dirname(source_dir()), "pyproject.toml")
    if os.path.exists(pyproject):
        import tomllib

        with open(pyproject, "rb") as f:
            project = tomllib.load(f).get("project", {})
        if normalize_name(project.get("name", "")) == DIST_NAME:
            return list(project.get("dependencies", []))
    return []


@functools.lru_cache(maxsize=1)
def serving_requirements() -> tuple[str, ...]:
    """The version ranges mlem-lib declares, restricted to :data:`SERVING_DISTRIBUTIONS`."""
    wanted = {normalize_name(d) for d in SERVING_DISTRIBUTIONS}
    found: dict[str, str] = {}
    for req in _declared_requirements():
        name = requirement_name(req)
        if name in wanted and ";" not in req:
            found[name] = req.strip()
    return tuple(found.get(normalize_name(d), d) for d in SERVING_DISTRIBUTIONS)


#: the distribution a server needs to read and write each body format beyond JSON/CSV/.npy
FORMAT_DISTRIBUTIONS = {"application/x-parquet": "pyarrow"}


def format_requirements(meta: ModelMeta) -> list[str]:
    """What a package or image of the model needs to speak every body format its data
    types can use: ``pyarrow`` (mlem-lib's declared range) for Parquet bodies and
    answers of DataFrames and Series, so ``Accept: application/x-parquet`` and
    ``HTTPClient``'s Parquet path work where the model is served.

    Example:
        >>> from mlem_lib.runner import LoadedModel
        >>> import pandas as pd
        >>> lm = LoadedModel.from_object(lambda df: df, sample_data=pd.DataFrame({"x": [1.0]}))
        >>> [requirement_name(r) for r in format_requirements(lm.meta)]
        ['pyarrow']
        >>> format_requirements(LoadedModel.from_object(lambda x: x, sample_data=1).meta)
        []
    """
    from mlem_lib.data.media import CSV, PARQUET

    kinds: set[str] = set()
    for sig in meta.model_type.methods.values():
        for data_type in [*(a.type_ for a in sig.args), sig.returns]:
            spoken = set(data_type.media_types())
            kinds |= spoken
            if CSV in spoken:  # a table speaks Parquet wherever pyarrow is installed
                kinds.add(PARQUET)
    declared = {requirement_name(r): r.strip() for r in _declared_requirements()
                if ";" not in r}
    out = []
    for kind, dist in FORMAT_DISTRIBUTIONS.items():
        if kind in kinds:
            out.append(declared.get(normalize_name(dist), dist))
    return out


def source_dir() -> str:
    """The folder of the imported ``mlem_lib`` package."""
    import mlem_lib

    return os.path.dirname(os.path.abspath(mlem_lib.__file__))


def source_files() -> dict[str, bytes]:
    """``mlem_lib/...`` path -> content for every ``.py`` (and ``py.typed``) file."""
    root = source_dir()
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for fn in sorted(filenames):
            if fn.endswith(".py") or fn == "py.typed":
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, os.path.dirname(root)).replace(os.sep, "/")
                with open(full, "rb") as f:
                    files[rel] = f.read()
    return files


def runtime_spec() -> DistSpec:
    """The distribution spec of the serving-only mlem-lib wheel."""
    from mlem_lib import __version__

    return DistSpec(name=DIST_NAME, version=__version__, files=source_files(),
                    requires=list(serving_requirements()),
                    scripts={"mlem": "mlem_lib.cli:main"},
                    summary="mlem_lib (serving runtime build: load and serve saved models)",
                    requires_python=">=3.11")


def write_runtime_wheel(target_dir: str) -> str:
    """Write ``mlem_lib-<version>-py3-none-any.whl`` into ``target_dir``; returns its path.

    Example:
        >>> write_runtime_wheel("build/")  # doctest: +SKIP
        'build/mlem_lib-0.1.0-py3-none-any.whl'
    """
    return write_wheel(runtime_spec(), target_dir)
