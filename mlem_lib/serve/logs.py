"""Structured logs of the model server (``--log-format json``).

Every log line is one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message`` and, for the access log (logger ``mlem_lib.access``, on stdout), one line
per HTTP request with ``http_method``, ``path``, ``status``, ``duration_ms``,
``client``, ``request_bytes`` and ``response_bytes``. uvicorn's own lines (start-up,
shutdown, errors) go to stderr in the same shape, so a log shipper parses everything.
The default (``text``) keeps uvicorn's plain lines and no access log: logging each
request costs time that a fast model server should not spend unless asked to.

Example:
    >>> import logging
    >>> record = logging.LogRecord("mlem_lib.access", logging.INFO, __file__, 1,
    ...                            "POST /predict 200", None, None)
    >>> record.fields = {"status": 200, "path": "/predict"}
    >>> line = JsonFormatter().format(record)
    >>> import json; parsed = json.loads(line)
    >>> parsed["logger"], parsed["status"], parsed["message"]
    ('mlem_lib.access', 200, 'POST /predict 200')
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "mlem_lib.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a record's ``fields`` dict is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``log_format`` (``None``: uvicorn's default)."""
    if log_format != "json":
        return None
    formatter = {"()": f"{__name__}.JsonFormatter"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stderr"},
            "stdout": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "mlem_lib": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        },
    }


class AccessLog:
    """ASGI middleware: one ``mlem_lib.access`` record per HTTP request, with its fields."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen = {"status": 500, "bytes": 0}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._log(scope, seen["status"], seen["bytes"], time.perf_counter() - start)

    def _log(self, scope: dict[str, Any], status: int, sent: int, seconds: float) -> None:
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"0")
        client = scope.get("client")
        fields = {"http_method": scope.get("method"), "path": scope.get("path"),
                  "status": status, "duration_ms": round(seconds * 1000, 3),
                  "client": f"{client[0]}:{client[1]}" if client else None,
                  "request_bytes": int(length) if length.isdigit() else None,
                  "response_bytes": sent}
        self.logger.info("%s %s %s", fields["http_method"], fields["path"], status,
                         extra={"fields": fields})
