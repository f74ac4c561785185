"""Content negotiation: which media type a request body is in, and which to answer in.

The bodies themselves are read and written by the data types
(:meth:`~mlem_lib.data.base.DataType.decode` / :meth:`~mlem_lib.data.base.DataType.encode`);
each type lists the media types it speaks, and only those are accepted and offered.

Example:
    >>> media_type("application/json; charset=utf-8")
    'application/json'
    >>> choose_output("text/csv;q=0.5, application/json", (JSON, CSV))
    'application/json'
    >>> body_media_type("text/csv; header=present", (JSON, CSV))
    ('text/csv', {'header': 'present'})
"""

from __future__ import annotations

from collections.abc import Sequence

from mlem_lib.data.media import ALIASES, CSV, JSON, NPY, PARQUET, TABULAR, loads_json
from mlem_lib.errors import HTTPProblem

__all__ = [
    "CSV",
    "JSON",
    "NPY",
    "PARQUET",
    "HTTPProblem",
    "body_media_type",
    "choose_output",
    "loads_json",
    "media_type",
]

# what curl and friends send when nobody sets a type: try JSON (unless the data type
# speaks that media type itself)
_UNTYPED = ("application/x-www-form-urlencoded", "text/plain")


def _split(header: str) -> tuple[str, dict[str, str]]:
    kind, *rest = header.split(";")
    params: dict[str, str] = {}
    for param in rest:
        key, _, value = param.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def media_type(header: str | None) -> str:
    """The bare, lower-cased media type of a Content-Type header (JSON when absent).

    Other names of the same type (``application/vnd.apache.parquet``...) are given
    their usual name.
    """
    if not header:
        return JSON
    kind = _split(header)[0]
    return ALIASES.get(kind, JSON if kind in _UNTYPED else kind)


def body_media_type(header: str | None,
                    supported: Sequence[str] = TABULAR) -> tuple[str, dict[str, str]]:
    """The media type of a body and its parameters, checked against ``supported``.

    ``supported`` are the media types of the body's data type (a request's argument, a
    response's return type); a type that speaks a media type usually taken for JSON
    (``text/plain``) gets it.

    Raises:
        HTTPProblem: 415 for a media type the data type does not read.
    """
    if not header:
        return JSON, {}
    kind, params = _split(header)
    if kind not in supported:
        kind = ALIASES.get(kind, JSON if kind in _UNTYPED else kind)
    if kind not in supported:
        raise HTTPProblem(415, f"unsupported Content-Type {header!r}; send one of "
                               f"{', '.join(supported)}", field="Content-Type",
                          expected=" or ".join(supported), got=header)
    return kind, params


def choose_output(accept: str | None, supported: Sequence[str] = TABULAR) -> str:
    """The response format for an Accept header: the best one in ``supported``.

    JSON answers a missing header and ``*/*``; ``text/*`` takes the first text type.

    Raises:
        HTTPProblem: 406 when the header names only formats the result cannot be written in.
    """
    if not accept:
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        kind, params = _split(part)
        kind = kind if kind in supported else ALIASES.get(kind, kind)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if q > 0 and kind:
            ranked.append((-q, i, kind))
    for _, _, kind in sorted(ranked):
        if kind in supported:
            return kind
        if kind in ("*/*", "application/*") and JSON in supported:
            return JSON
        if kind.endswith("/*"):
            prefix = kind[:-1]
            match = next((s for s in supported if s.startswith(prefix)), None)
            if match is not None:
                return match
    raise HTTPProblem(406, f"cannot answer in {accept!r}; supported: {', '.join(supported)}",
                      field="Accept", expected=" or ".join(supported), got=accept)
