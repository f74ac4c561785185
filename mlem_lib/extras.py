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
