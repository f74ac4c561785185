"""Optional dependencies: import them on first use, or say which extra to install.

The core (``pip install mlem-lib``) saves, loads, applies, shows and serves. Everything
else comes with an extra (``pip install 'mlem-lib[docker]'``). Code that needs an optional
package imports it through :func:`require`, so a missing extra is one clear line
(:class:`~mlem_lib.errors.MissingExtraError`) instead of a bare ``ModuleNotFoundError``.

Example:
    >>> json = require("json", extra="core", feature="reading JSON")
    >>> json.dumps([1])
    '[1]'
    >>> try:
    ...     require("no_such_module_xyz", extra="docker", feature="building images")
    ... except ImportError as exc:
    ...     print(exc)
    building images needs the 'docker' extra (missing module 'no_such_module_xyz'): pip install 'mlem-lib[docker]'
"""  # noqa: E501

from __future__ import annotations

import importlib
from types import ModuleType

from mlem_lib.errors import MissingExtraError

# extra -> the top-level modules mlem_lib imports from it (pyproject.toml has the pins).
# A new extra is one line here and one in pyproject.toml.
EXTRAS: dict[str, tuple[str, ...]] = {
    "prefect": ("prefect",),
    "registry": ("gto", "dvc"),
    "docker": ("docker",),
    "aws": ("boto3", "s3fs"),
    "dask": ("prefect_dask", "distributed"),
    "sklearn": ("sklearn",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "onnx": ("onnx", "onnxruntime"),
    "catboost": ("catboost",),
    "keras": ("keras",),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "images": ("PIL",),
}


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``extra``.

    Args:
        module: the dotted module name to import.
        extra: the pip extra of mlem-lib that installs it.
        feature: what the caller was doing, in words ("building docker images").

    Raises:
        MissingExtraError: the module (or one it imports) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        raise MissingExtraError(feature, extra, missing) from exc


def need(extra: str, feature: str, *modules: str) -> None:
    """Check, without importing anything, that ``extra`` is installed before ``feature`` runs.

    Args:
        extra: the pip extra (a key of :data:`EXTRAS`).
        feature: what is about to run, in words ("the model registry").
        modules: the modules the feature imports (default: all of the extra's).

    Raises:
        MissingExtraError: one of them cannot be found.

    Example:
        >>> need("core", "reading JSON", "json")
        >>> try:
        ...     need("docker", "building images", "no_such_module_xyz")
        ... except ImportError as exc:
        ...     print(exc.extra)
        docker
    """
    for module in modules or EXTRAS[extra]:
        if not available(module):
            raise MissingExtraError(feature, extra, module)


def extra_of(module: str) -> str | None:
    """The extra that installs the top-level module of ``module``, if one does.

    Example:
        >>> extra_of("sklearn.linear_model"), extra_of("json")
        ('sklearn', None)
    """
    top = module.split(".")[0]
    return next((extra for extra, mods in EXTRAS.items() if top in mods), None)


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it).

    Example:
        >>> available("json"), available("no_such_module_xyz")
        (True, False)
    """
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
