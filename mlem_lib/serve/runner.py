"""Starting the model server with uvicorn: one process, or ``workers`` processes.

With one worker the model is loaded once and the app object is handed to
uvicorn. With more, uvicorn starts each worker from the import string
``mlem_lib.serve.runner:app_from_env`` (a factory), which reads the model path
and settings from the environment this function sets. SIGTERM and SIGINT shut
down gracefully: the server stops accepting connections and in-flight requests
finish (up to ``GRACEFUL_SECONDS``); a SIGTERM that comes before the server is up
(while the model loads) stops the process at once. With several workers the
supervisor process only checks the model (metadata, artifact hashes); it never
unpickles it. A worker that cannot load the model stops them all (instead of being
restarted for ever) and the command fails with one line.

Example:
    >>> run("models/rf", host="127.0.0.1", port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlem_lib.meta import ModelMeta
from mlem_lib.serve.settings import (
    ENV_AUTH_DOCS,
    ENV_AUTH_TOKEN,
    ENV_LOG_FORMAT,
    ENV_MAX_BODY_MB,
    ENV_METRICS,
    ENV_MODEL,
    ENV_MODEL_RUNTIME,
    ENV_ONNX_MODEL,
    ENV_REPO,
    ServerSettings,
    batching_env,
    default_port,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlem_lib.runner import LoadedModel

# SageMaker sends SIGKILL 30 s after SIGTERM: finish in-flight requests before that
GRACEFUL_SECONDS = 25


def app_from_env() -> FastAPI:
    """The app for the model named by ``MLEM_MODEL`` (uvicorn's factory for worker processes).

    Example:
        >>> # MLEM_MODEL=models/rf uvicorn --factory mlem_lib.serve.runner:app_from_env
    """
    from mlem_lib.errors import ServeError
    from mlem_lib.runner import LoadedModel

    path = os.environ.get(ENV_MODEL)
    if not path:
        raise ServeError(f"set {ENV_MODEL} to the path of the model to serve")
    from uvicorn.config import STARTUP_FAILURE

    settings = ServerSettings.from_env()
    try:
        loaded = LoadedModel.load(path, repo=os.environ.get(ENV_REPO) or None)
        loaded = _with_runtime(loaded, settings, path)
    except Exception as exc:
        # the same error in every restart: uvicorn's supervisor stops on this exit code
        print(f"worker {os.getpid()}: cannot load {path}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None
    app = build_app(loaded, settings)
    settle_heap()
    return app


def build_app(loaded: LoadedModel, settings: ServerSettings) -> FastAPI:
    """The served app: the model's routes, the docs' auth, and the access log in JSON mode."""
    from mlem_lib.serve.app import create_app
    from mlem_lib.serve.docs_auth import protect_docs

    app = protect_docs(create_app(loaded, settings), settings)
    if settings.log_format == "json":  # outermost: 401s from the docs' auth are logged too
        from mlem_lib.serve.logs import AccessLog

        app.add_middleware(AccessLog)  # type: ignore[arg-type]
    return app


def settle_heap() -> None:
    """Exempt everything loaded so far (the model, the libraries) from garbage collection.

    They live as long as the server. Frozen, they are no longer rescanned by every full
    collection, which a large request (100k JSON rows are half a million new objects)
    triggers several times: decoding such a body gets about twice as fast.
    """
    import gc

    gc.collect()
    gc.freeze()


def _with_runtime(loaded: LoadedModel, settings: ServerSettings, path: str) -> LoadedModel:
    """The model served by the runtime the settings ask for (native, onnx or auto)."""
    if settings.model_runtime == "native":
        return loaded
    from mlem_lib.serve.model_runtime import with_runtime

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return with_runtime(loaded, settings.model_runtime, onnx_model=settings.onnx_model,
                        path=path, log=log)


_SERVER: list[Any] = []  # the uvicorn.Server of this process, once it exists


def _stop(signum: int, frame: object) -> None:
    if _SERVER:  # uvicorn's loop runs (or is about to): let it shut down gracefully
        _SERVER[0].should_exit = True
        return
    raise SystemExit(0)


def _exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM end the process with status 0, whenever it arrives.

    Before the server exists (loading the model, importing the app) it stops the process
    at once. Once it exists, the signal asks it to shut down gracefully, also in the
    moments before uvicorn installs its own handlers (which it restores to this one, and
    re-raises the signal to, after its shutdown): the process then ends with status 0
    instead of -15, which orchestrators report as a crash.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)


def _serve_one(app: Any, options: dict[str, Any]) -> None:
    """Run one uvicorn server in this process; ``_stop`` can reach it from the start."""
    import uvicorn

    from mlem_lib.errors import ServeError

    server = uvicorn.Server(uvicorn.Config(app, **options))
    _SERVER[:] = [server]
    try:
        server.run()
    finally:
        _SERVER.clear()
    if not server.started and not server.should_exit:
        raise ServeError(f"the server did not start on {options['host']}:{options['port']} "
                         "(see the log above)")


def check_model(path: str, repo: str | None = None) -> ModelMeta:
    """Read a model's metadata and check its artifacts' size and hash, unpickling nothing.

    What the supervisor of ``--workers N`` does instead of loading the model: a missing
    or tampered model still fails with one clear line, and only the workers hold it.

    Raises:
        ObjectNotFoundError: no model there, or an artifact is missing.
        ArtifactIntegrityError: an artifact was truncated or modified.
        MetadataError: the path holds a data object or unreadable metadata.
    """
    from mlem_lib import mlemfile
    from mlem_lib.errors import MetadataError
    from mlem_lib.locate import resolve_reference
    from mlem_lib.objects import verify_artifacts

    with resolve_reference(path, repo) as local:
        meta, fs, meta_path = mlemfile.read(local)
        if not isinstance(meta, ModelMeta):
            raise MetadataError(f"{path} is a data object, not a model")
        verify_artifacts(meta, fs, meta_path)
    return meta


def _batching_note(settings: ServerSettings) -> str:
    if not settings.batch_max_size:
        return ""
    return (f", batching up to {settings.batch_max_size} rows within "
            f"{settings.batch_max_latency_ms:g} ms")


def run(path: str, host: str = "127.0.0.1", port: int | None = None, workers: int = 1,
        auth_token: str | None = None, repo: str | None = None, *,
        max_body_mb: float | None = None, log_level: str = "info",
        auth_token_file: str | None = None, auth_docs: bool | None = None,
        batch_max_size: int | None = None, batch_max_latency_ms: float | None = None,
        model_runtime: str | None = None, onnx_model: str | None = None,
        metrics: bool | None = None, log_format: str | None = None) -> None:
    """Serve the model at ``path`` until SIGTERM/SIGINT (blocks).

    Args:
        path: model path, URL or registry reference.
        host: interface to bind (``0.0.0.0`` inside containers).
        port: TCP port; default ``SAGEMAKER_BIND_TO_PORT``, else ``PORT``, else 8080.
        workers: uvicorn worker processes.
        auth_token: require ``Authorization: Bearer <token>`` on model endpoints
            (default: env ``MLEM_AUTH_TOKEN``).
        auth_token_file: read the token from this file instead (default: env
            ``MLEM_AUTH_TOKEN_FILE``); unlike a command-line argument it is not in ``ps``.
        auth_docs: require the token on ``/docs``, ``/openapi.json`` and
            ``/interface.json`` too (default: env ``MLEM_AUTH_DOCS``).
        repo: git repository for registry references.
        max_body_mb: body size limit (default: env ``MLEM_MAX_BODY_MB`` or 100).
        batch_max_size: merge concurrent requests into model calls of up to this many rows
            (default: env ``MLEM_BATCH_MAX_SIZE``, else 0: off).
        batch_max_latency_ms: longest wait for a batch to fill (default: env
            ``MLEM_BATCH_MAX_LATENCY_MS``, else 5).
        model_runtime: ``native``, ``onnx`` or ``auto`` (default: env
            ``MLEM_MODEL_RUNTIME``, else native; see :mod:`mlem_lib.serve.model_runtime`).
        onnx_model: an ONNX export of the model to serve instead of exporting one
            (default: env ``MLEM_ONNX_MODEL``).
        metrics: Prometheus metrics at ``/metrics`` (default: env ``MLEM_METRICS``, else
            on). With several workers they use prometheus-client's multiprocess mode.
        log_format: ``text`` or ``json`` (structured lines and an access log; default:
            env ``MLEM_LOG_FORMAT``, else ``text``).
        log_level: uvicorn's log level.

    Raises:
        ServeError: bad arguments.
        ObjectNotFoundError: no model at ``path``.

    Example:
        >>> run("models/rf", port=8080, workers=2, auth_token="s3cret")  # doctest: +SKIP
    """

    from mlem_lib.errors import ServeError
    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.logs import log_config

    if workers < 1:
        raise ServeError(f"--workers must be at least 1, got {workers}")
    port = default_port() if port is None else port
    if not 0 <= port < 65536:
        raise ServeError(f"port must be between 0 and 65535, got {port}")
    settings = ServerSettings.from_env(auth_token=auth_token, max_body_mb=max_body_mb,
                                       auth_token_file=auth_token_file, auth_docs=auth_docs,
                                       batch_max_size=batch_max_size,
                                       batch_max_latency_ms=batch_max_latency_ms,
                                       model_runtime=model_runtime, onnx_model=onnx_model,
                                       metrics=metrics, log_format=log_format)
    _exit_cleanly_on_sigterm()
    # a missing or broken model fails here with one clear line; with several workers the
    # supervisor only checks it: each worker loads its own copy
    loaded = LoadedModel.load(path, repo=repo) if workers == 1 else None
    if loaded is not None:
        loaded = _with_runtime(loaded, settings, path)
    meta = loaded.meta if loaded is not None else check_model(path, repo)
    methods = ", ".join(sorted({m if m != "__call__" else "predict"
                                for m in meta.model_type.methods}))
    print(f"serving {path} ({meta.model_type.type}: {methods}) on "
          f"http://{host}:{port} with {workers} worker(s)"
          f"{', bearer auth on' if settings.auth_token else ''}"
          f"{' (docs too)' if settings.auth_docs else ''}"
          f"{_batching_note(settings)}; model page at /, docs at /docs"
          f"{', metrics at /metrics' if settings.metrics else ''}",
          file=sys.stderr, flush=True)
    options = {"host": host, "port": port, "log_level": log_level,
               "timeout_graceful_shutdown": GRACEFUL_SECONDS, "access_log": False,
               "proxy_headers": True, "server_header": False}
    if settings.log_format == "json":
        options["log_config"] = log_config("json")
    if loaded is not None:
        app = build_app(loaded, settings)
        settle_heap()
        _serve_one(app, options)
        return
    os.environ[ENV_MODEL] = path
    if repo:
        os.environ[ENV_REPO] = repo
    if settings.auth_token:
        os.environ[ENV_AUTH_TOKEN] = settings.auth_token
    os.environ[ENV_AUTH_DOCS] = "1" if settings.auth_docs else "0"
    os.environ[ENV_MAX_BODY_MB] = str(settings.max_body_mb)
    os.environ.update(batching_env(settings.batch_max_size, settings.batch_max_latency_ms))
    os.environ[ENV_MODEL_RUNTIME] = settings.model_runtime
    if settings.onnx_model:
        os.environ[ENV_ONNX_MODEL] = settings.onnx_model
    os.environ[ENV_METRICS] = "1" if settings.metrics else "0"
    os.environ[ENV_LOG_FORMAT] = settings.log_format
    with _shared_metrics_dir(settings.metrics):
        _serve_workers(workers, options)


def _serve_workers(workers: int, options: dict[str, Any]) -> None:
    """Run uvicorn's supervisor of ``workers`` processes, each loading the model itself.

    Raises:
        ServeError: a worker could not load the model (its reason is on stderr).
    """
    from uvicorn import Config
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from mlem_lib.errors import ServeError

    config = Config("mlem_lib.serve.runner:app_from_env", factory=True, workers=workers,
                    **options)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise ServeError("the workers could not load the model (the reason is above); "
                         "fix it and start again")


@contextlib.contextmanager
def _shared_metrics_dir(enabled: bool) -> Iterator[None]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers' metric files, removed after."""
    from mlem_lib.serve.metrics import MULTIPROC_ENV

    if not enabled:
        yield
        return
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="mlem-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
