"""Settings of the model server, from arguments or the environment.

The bearer token is a secret: pass it in a file (``--auth-token-file``,
``MLEM_AUTH_TOKEN_FILE``) or in ``MLEM_AUTH_TOKEN``; ``--auth-token T`` works but
anyone on the machine sees it in ``ps``.

Example:
    >>> ServerSettings(auth_token="s3cret").max_body_bytes
    104857600
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, Field

# environment variables the server (and its worker processes) read
ENV_MODEL = "MLEM_MODEL"
ENV_REPO = "MLEM_REPO"
ENV_AUTH_TOKEN = "MLEM_AUTH_TOKEN"
ENV_AUTH_TOKEN_FILE = "MLEM_AUTH_TOKEN_FILE"
ENV_AUTH_DOCS = "MLEM_AUTH_DOCS"
ENV_MAX_BODY_MB = "MLEM_MAX_BODY_MB"
ENV_SAGEMAKER_METHOD = "MLEM_SAGEMAKER_METHOD"
ENV_BATCH_MAX_SIZE = "MLEM_BATCH_MAX_SIZE"
ENV_BATCH_MAX_LATENCY_MS = "MLEM_BATCH_MAX_LATENCY_MS"
ENV_MODEL_RUNTIME = "MLEM_MODEL_RUNTIME"
ENV_ONNX_MODEL = "MLEM_ONNX_MODEL"
ENV_METRICS = "MLEM_METRICS"
ENV_LOG_FORMAT = "MLEM_LOG_FORMAT"

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_MB = 100.0
DEFAULT_BATCH_MAX_LATENCY_MS = 5.0


class ServerSettings(BaseModel):
    """How the app behaves: auth, body limit and the method ``/invocations`` calls.

    Attributes:
        auth_token: when set, model endpoints need ``Authorization: Bearer <token>``.
        auth_docs: the token is also needed on ``/docs``, ``/redoc``, ``/openapi.json`` and
            ``/interface.json`` (``/health`` and ``/ping`` stay open).
        max_body_mb: bodies larger than this get 413.
        sagemaker_method: the method ``POST /invocations`` calls unless a header says otherwise.
        batch_max_size: merge concurrent requests to a method into model calls of up to
            this many rows (0: off; see :mod:`mlem_lib.serve.batching`).
        batch_max_latency_ms: the longest a request waits for others to join its batch
            (a lone request never waits).
        model_runtime: ``native``, ``onnx`` (an ONNX export answers; see
            :mod:`mlem_lib.serve.model_runtime`) or ``auto`` (ONNX when the export passes
            its parity check, else native).
        onnx_model: an ONNX export of the model to use instead of exporting one.
        metrics: Prometheus metrics at ``/metrics`` (on by default).
        log_format: ``text`` (uvicorn's lines, no access log) or ``json`` (one JSON object
            per line, with an access log line per request).
    """

    auth_token: str | None = Field(default=None, repr=False)
    auth_docs: bool = False
    max_body_mb: float = Field(default=DEFAULT_MAX_BODY_MB, gt=0)
    sagemaker_method: str = "predict"
    batch_max_size: int = Field(default=0, ge=0)
    batch_max_latency_ms: float = Field(default=DEFAULT_BATCH_MAX_LATENCY_MS, ge=0)
    model_runtime: Literal["native", "onnx", "auto"] = "native"
    onnx_model: str | None = None
    metrics: bool = True
    log_format: Literal["text", "json"] = "text"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 auth_token_file: str | None = None, **overrides: object) -> ServerSettings:
        """Settings from ``MLEM_AUTH_TOKEN`` (or ``MLEM_AUTH_TOKEN_FILE``),
        ``MLEM_AUTH_DOCS``, ``MLEM_MAX_BODY_MB``, ``MLEM_SAGEMAKER_METHOD``,
        ``MLEM_BATCH_MAX_SIZE``, ``MLEM_BATCH_MAX_LATENCY_MS``, ``MLEM_MODEL_RUNTIME``,
        ``MLEM_ONNX_MODEL``, ``MLEM_METRICS`` (``0``: off) and ``MLEM_LOG_FORMAT`` (``text``
        or ``json``).

        Keyword overrides that are not ``None`` win over the environment; a token given
        directly wins over a token file.

        Raises:
            ServeError: the token file cannot be read or is empty, or ``auth_docs`` is on
                without a token.

        Example:
            >>> ServerSettings.from_env({"MLEM_MAX_BODY_MB": "2"}).max_body_mb
            2.0
        """
        from mlem_lib.errors import ServeError

        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get(ENV_AUTH_TOKEN_FILE):
            values["auth_token"] = read_token_file(env[ENV_AUTH_TOKEN_FILE])
        if env.get(ENV_AUTH_TOKEN):
            values["auth_token"] = env[ENV_AUTH_TOKEN]
        if env.get(ENV_AUTH_DOCS):
            values["auth_docs"] = _flag(env[ENV_AUTH_DOCS])
        if env.get(ENV_MAX_BODY_MB):
            values["max_body_mb"] = env[ENV_MAX_BODY_MB]
        if env.get(ENV_SAGEMAKER_METHOD):
            values["sagemaker_method"] = env[ENV_SAGEMAKER_METHOD]
        if env.get(ENV_BATCH_MAX_SIZE):
            values["batch_max_size"] = env[ENV_BATCH_MAX_SIZE]
        if env.get(ENV_BATCH_MAX_LATENCY_MS):
            values["batch_max_latency_ms"] = env[ENV_BATCH_MAX_LATENCY_MS]
        if env.get(ENV_MODEL_RUNTIME):
            values["model_runtime"] = env[ENV_MODEL_RUNTIME].strip().lower()
        if env.get(ENV_ONNX_MODEL):
            values["onnx_model"] = env[ENV_ONNX_MODEL]
        if env.get(ENV_METRICS):
            values["metrics"] = _flag(env[ENV_METRICS])
        if env.get(ENV_LOG_FORMAT):
            values["log_format"] = env[ENV_LOG_FORMAT].strip().lower()
        if auth_token_file is not None:
            values["auth_token"] = read_token_file(auth_token_file)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls.model_validate(values)
        except ValueError as exc:  # pydantic's ValidationError: one line naming the field
            raise ServeError(_first_error(exc)) from None
        if settings.auth_docs and not settings.auth_token:
            raise ServeError("protecting the docs (--auth-docs, MLEM_AUTH_DOCS) needs a token: "
                             "give --auth-token-file, MLEM_AUTH_TOKEN_FILE or MLEM_AUTH_TOKEN")
        return settings


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid server setting {where}: {first.get('msg')} (got {first.get('input')!r})"
    return f"invalid server settings: {exc}"


def batching_env(batch_max_size: int, batch_max_latency_ms: float) -> dict[str, str]:
    """The environment that turns batching on in a server started elsewhere (a worker
    process, a container, a cloud target).

    Example:
        >>> batching_env(32, 2.5)
        {'MLEM_BATCH_MAX_SIZE': '32', 'MLEM_BATCH_MAX_LATENCY_MS': '2.5'}
    """
    return {ENV_BATCH_MAX_SIZE: str(batch_max_size),
            ENV_BATCH_MAX_LATENCY_MS: f"{batch_max_latency_ms:g}"}


def read_token_file(path: str) -> str:
    """The token in a file (surrounding whitespace and the final newline stripped).

    Raises:
        ServeError: the file cannot be read or holds no token.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
        ...     _ = f.write("s3cret\\n"); f.flush()
        ...     read_token_file(f.name)
        's3cret'
    """
    from mlem_lib.errors import ServeError

    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"cannot read the token file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise ServeError(f"the token file {path} is empty")
    if any(c.isspace() for c in token):
        raise ServeError(f"the token file {path} must hold one token without spaces")
    return token


# what a server process started by us inherits: how to run Python, locale and temp
# folders, and the server's non-secret settings; everything else must be named
CHILD_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
             "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE",
             "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS",
             "XDG_CACHE_HOME", "MLEM_LIB_CACHE_DIR", "MLEM_ONNX_CACHE_DIR", ENV_MAX_BODY_MB,
             ENV_SAGEMAKER_METHOD,
             ENV_BATCH_MAX_SIZE, ENV_BATCH_MAX_LATENCY_MS, ENV_METRICS, ENV_LOG_FORMAT)


def server_environment(names: Iterable[str] = (), env: Mapping[str, str] | None = None,
                       **values: str) -> dict[str, str]:
    """A minimal environment for a server process we start, never all of ours.

    Secrets of the deployer (``HEROKU_API_KEY``, ``AWS_SECRET_ACCESS_KEY``...) must not
    end up in a child's ``/proc/<pid>/environ``: the child gets :data:`CHILD_ENV`, the
    ``LC_*`` locale variables, the variables in ``names`` and ``values``.

    Raises:
        ServeError: a variable in ``names`` is not set.

    Example:
        >>> env = {"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x", "MY_FLAG": "1"}
        >>> server_environment(["MY_FLAG"], env, PORT="8080")
        {'PATH': '/bin', 'MY_FLAG': '1', 'PORT': '8080'}
    """
    from mlem_lib.errors import ServeError

    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if k in CHILD_ENV or k.startswith("LC_")}
    for name in names:
        if name not in env:
            raise ServeError(f"the environment variable {name} that the declaration passes "
                             "to the server is not set")
        out[name] = env[name]
    out.update(values)
    return out


def default_port(env: Mapping[str, str] | None = None) -> int:
    """``SAGEMAKER_BIND_TO_PORT``, else Heroku's ``PORT``, else 8080.

    Example:
        >>> default_port({"PORT": "5000"})
        5000
    """
    env = os.environ if env is None else env
    for name in ("SAGEMAKER_BIND_TO_PORT", "PORT"):
        if env.get(name):
            return int(env[name])
    return DEFAULT_PORT
