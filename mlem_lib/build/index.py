"""Is a package name already taken on the package index pip is configured to use?

``mlem build MODEL pip`` asks before naming a package, because ``pip install NAME``
picks the index's package of that name when it is newer than the built one (``dt`` on
PyPI is not your decision tree). The index is the one pip would use: ``$PIP_INDEX_URL``,
else ``index-url`` in pip's configuration files, else PyPI. The question is one GET of
the index's simple page for the name (PEP 503); an index that cannot be reached, or
answers anything but 200/404, gives no answer (``None``) and never fails the build.

Example:
    >>> simple_url("https://pypi.org/simple", "Iris_RF")
    'https://pypi.org/simple/iris-rf/'
"""

from __future__ import annotations

import configparser
import os

from mlem_lib.build.wheel import normalize_name

PYPI = "https://pypi.org/simple"


def _config_files() -> list[str]:
    """pip's configuration files, lowest priority first (global, user, site, $PIP_CONFIG_FILE)."""
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = ["/etc/pip.conf", os.path.join(home, ".pip", "pip.conf"),
             os.path.join(xdg, "pip", "pip.conf")]
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        files.append(os.path.join(venv, "pip.conf"))
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    return files


def configured_index() -> str:
    """The index URL pip would use here.

    Example:
        >>> configured_index().startswith("http")
        True
    """
    url = os.environ.get("PIP_INDEX_URL")
    if url:
        return url
    found = PYPI
    for path in _config_files():
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                found = parser.get(section, "index-url")
    return found


def simple_url(index: str, name: str) -> str:
    """The PEP 503 page of ``name`` on ``index``."""
    return f"{index.rstrip('/')}/{normalize_name(name)}/"


def name_on_index(name: str, index: str | None = None, timeout: float = 5.0) -> bool | None:
    """Whether the index lists a project called ``name`` (``None``: it could not tell).

    Args:
        name: a distribution name (normalised as pip does: ``Iris_RF`` is ``iris-rf``).
        index: the simple index URL (default: :func:`configured_index`).
        timeout: seconds for the whole request.

    Example:
        >>> name_on_index("anything", index="http://127.0.0.1:9/simple", timeout=1) is None
        True
    """
    import httpx

    url = simple_url(index or configured_index(), name)
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True, headers={
            "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    except httpx.HTTPError:
        return None
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    return None
