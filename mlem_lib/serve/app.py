"""The FastAPI app generated from a model's metadata.

One ``POST /<method>`` per model method (MLEM's request and response shapes),
``GET /interface.json`` in MLEM's layout, ``GET /health``, SageMaker's
``GET /ping`` and ``POST /invocations``, OpenAPI docs at ``/docs`` whose
request and response schemas come from the saved data schemas, a page to try the
model at ``/`` (:mod:`mlem_lib.serve.page`) and Prometheus metrics at ``/metrics``
(:mod:`mlem_lib.serve.metrics`).

Requests skip FastAPI's per-field validation: the raw body is parsed with orjson
(or, in any other media type the argument's data type speaks, by the data type
itself) and validated once, vectorised, by the argument's schema, the same way
``mlem apply`` validates. Answers are written by the return type, in the media
type the ``Accept`` header picks among those it speaks.

The routes that do not depend on the model live on the module-level :data:`router`;
:func:`create_app` adds one route per method and ``/invocations`` with their OpenAPI
schemas. Every endpoint is a module-level function that finds the model's
:class:`ModelService` (and the :class:`InFlight` counter) on ``app.state``.

Example:
    >>> import tempfile, mlem_lib.api as mlem
    >>> from starlette.testclient import TestClient
    >>> from mlem_lib.runner import LoadedModel
    >>> def double(xs: list) -> list:
    ...     return [2 * x for x in xs]
    >>> path = tempfile.mkdtemp() + "/double"
    >>> _ = mlem.save(double, path, sample_data=[1.0, 2.0])
    >>> client = TestClient(create_app(LoadedModel.load(path), ServerSettings()))
    >>> client.post("/predict", json={"data": [1.5, 2]}).json()
    [3.0, 4.0]
    >>> client.post("/predict", content=b"1\\n2\\n", headers={"Content-Type": "text/csv",
    ...                                                      "Accept": "text/csv"}).text
    '2.0\\n4.0\\n'
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlem_lib.data import media
from mlem_lib.data.media import JSON
from mlem_lib.errors import HTTPProblem, SchemaError
from mlem_lib.meta import public_name  # one naming rule for show, routes and packages
from mlem_lib.serve import codecs
from mlem_lib.serve.batching import MicroBatcher
from mlem_lib.serve.settings import ServerSettings

if TYPE_CHECKING:
    from mlem_lib.data.base import DataType
    from mlem_lib.meta import Signature
    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.fastpath import ArrayPath
    from mlem_lib.serve.metrics import ServerMetrics

# a lone request up to this size (~3000 JSON rows) runs on the event loop, which is fastest;
# bigger ones, and any request while others run, go to worker threads (/ping stays responsive)
INLINE_BODY_BYTES = 256 * 1024
# ...and so does any small request to a method that answers faster than this, even while
# others are in flight: a thread hop and the GIL hand-over would cost more than the work
INLINE_COST_S = 0.001
SAGEMAKER_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
METHOD_HEADER = "x-mlem-method"


def interface(loaded: LoadedModel) -> dict[str, Any]:
    """``/interface.json`` in MLEM 0.4's layout, so MLEM's own ``HTTPClient`` can use it.

    Example:
        >>> from mlem_lib.runner import LoadedModel
        >>> lm = LoadedModel.from_object(lambda xs: xs, sample_data=[1.0])
        >>> interface(lm)["methods"]["predict"]["args"][0]["data_type"]
        {'type': 'array', 'dtype': {'type': 'primitive', 'ptype': 'float'}, 'size': None}
    """
    from mlem_lib import __version__

    methods: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, sig in loaded.meta.model_type.methods.items():
        public = public_name(name)
        if public in methods and name == "__call__":
            continue
        methods[public] = {
            "name": public,
            "args": [{"data_type": a.type_.mlem_dump(), "serializer": {"type": a.type_.type},
                      "name": a.name, "required": a.required, "default": a.default}
                     for a in sig.args],
            "returns": {"data_type": sig.returns.mlem_dump(),
                        "serializer": {"type": sig.returns.type}},
        }
        # the full schemas (MLEM's client refuses fields it does not know, such as the
        # categories of a column) and the body formats this server reads for each method
        schemas[public] = {"args": [_dump(a.type_) for a in sig.args],
                           "returns": _dump(sig.returns),
                           "media_types": list(sig.args[0].type_.media_types()
                                               if sig.args else (JSON,)),
                           "answers": list(sig.returns.media_types()),
                           "output_columns": sig.output_columns}
    return {"methods": methods, "version": __version__,
            "meta": {"server": "mlem_lib", "model_type": loaded.meta.model_type.type,
                     "model_hash": loaded.meta.model_hash, "schemas": schemas}}


def _dump(data_type: DataType) -> dict[str, Any]:
    return data_type.model_dump(mode="json", exclude_none=False)


def _error_response(status: int, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Response:
    import orjson

    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- OpenAPI ---------------------------------------------------------------------------

def _request_schema(sig: Signature) -> dict[str, Any]:
    if not sig.args:
        return {"type": "object"}
    arg = sig.args[0]
    schema = dict(arg.type_.input_json_schema() or {}, description=arg.type_.describe())
    return {"type": "object", "title": f"{public_name(sig.name)} request",
            "properties": {arg.name: schema}, "required": [arg.name],
            "additionalProperties": False}


_ERROR_SCHEMA = {"type": "object", "title": "error", "properties": {
    "error": {"type": "string"}, "field": {"type": ["string", "null"]},
    "expected": {"type": ["string", "null"]}, "got": {"type": ["string", "null"]}},
    "required": ["error"]}


def _openapi(sig: Signature) -> tuple[dict[str, Any], dict[int | str, Any]]:
    """The request body and responses of a method: the media types its data types speak."""
    arg_type = sig.args[0].type_ if sig.args else None
    body_types = arg_type.media_types() if arg_type is not None else (JSON,)
    content: dict[str, dict[str, Any]] = {
        kind: {"schema": _request_schema(sig) if kind == JSON or arg_type is None
               else arg_type.body_schema(kind)} for kind in body_types}
    example = request_example(sig)
    if example is not None:
        content[JSON]["example"] = example  # built from the saved sample's first row
    request = {"requestBody": {"required": True, "content": content}}
    returns = dict(sig.returns.json_schema() or {}, title=f"{public_name(sig.name)} response",
                   description=sig.returns.describe())
    err = {"content": {JSON: {"schema": _ERROR_SCHEMA}}}
    responses: dict[int | str, Any] = {
        200: {"description": "the method's result (format chosen by Accept)",
              "content": {kind: {"schema": returns if kind == JSON
                                 else sig.returns.body_schema(kind)}
                          for kind in sig.returns.media_types()}},
        400: dict(err, description="bad input: names the field and what was expected"),
        401: dict(err, description="missing or wrong bearer token (when auth is on)"),
        413: dict(err, description="body larger than the configured limit"),
        500: dict(err, description="the model raised an exception"),
    }
    return request, responses


def request_example(sig: Signature) -> dict[str, Any] | None:
    """A JSON request for ``/docs``: the row saved from the sample, else the schema's example.

    Example:
        >>> from mlem_lib.runner import LoadedModel
        >>> lm = LoadedModel.from_object(lambda xs: xs, sample_data=[1.5, 2.5])
        >>> request_example(lm.signature("predict"))
        {'data': [1.5]}
    """
    if not sig.args:
        return None
    arg = sig.args[0]
    if arg.example is not None:
        return {arg.name: arg.example}
    try:
        value = arg.type_.example()
        return None if value is None else {arg.name: arg.type_.to_json(value)}
    except Exception:  # a schema that cannot build an example: the docs just show none
        return None


def _describe_args(sig: Signature) -> str:
    return ", ".join(f"{a.name}: {a.type_.describe()}" for a in sig.args) or "()"


# --- request handling --------------------------------------------------------------------

class InFlight:
    """Model requests being served right now (read, queued or running).

    A lone small request runs on the event loop, which is fastest; while others are in
    flight, requests go to worker threads so that models releasing the GIL overlap and
    ``/ping`` stays responsive. Only the event loop's thread touches the count.

    Example:
        >>> inflight = InFlight()
        >>> with inflight.track():
        ...     inflight.alone()
        True
        >>> inflight.count
        0
    """

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one request for the duration of the block."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1

    def alone(self) -> bool:
        """True when the request being tracked is the only one."""
        return self.count == 1


class ModelService:
    """Everything the endpoints need about one served model (kept on ``app.state.service``).

    Decoding, validation, the call and encoding; auth, the body limit and the method of
    an ``/invocations`` request; ``/interface.json`` and ``/health`` rendered once.
    """

    def __init__(self, loaded: LoadedModel, settings: ServerSettings) -> None:
        import orjson

        self.loaded = loaded
        self.settings = settings
        self.token = settings.auth_token.encode() if settings.auth_token else None
        self.routes: dict[str, str] = {}  # public route name -> method name
        for name in loaded.meta.model_type.methods:
            self.routes.setdefault(public_name(name), name)
        from mlem_lib.serve.fastpath import ArrayPath

        # methods whose JSON rows can go to the estimator as an array (same predictions)
        self.fast_paths: dict[str, ArrayPath] = {}
        for name in loaded.meta.model_type.methods:
            args = loaded.signature(name).args
            path = ArrayPath.for_model(loaded.model, args[0].type_) if args else None
            if path is not None:
                self.fast_paths[name] = path
        self._batchers: dict[str, MicroBatcher] = {}
        self._costs: dict[str, float] = {}  # method -> smoothed seconds of a small request
        info = interface(loaded)
        self.version = str(info["version"])
        self.interface_bytes = orjson.dumps(info)
        self.metrics: ServerMetrics | None = None
        if settings.metrics:
            from mlem_lib.serve.metrics import ServerMetrics

            self.metrics = ServerMetrics(model_hash=loaded.meta.model_hash,
                                         model_type=loaded.meta.model_type.type,
                                         version=self.version)
        from mlem_lib.serve.page import render_page

        self.page_bytes = render_page(loaded, self.routes, auth=self.token is not None,
                                      metrics=settings.metrics)
        self.health_bytes = orjson.dumps({"status": "ok",
                                          "model_type": loaded.meta.model_type.type,
                                          "model_hash": loaded.meta.model_hash,
                                          "methods": sorted(info["methods"])})

    def authorize(self, request: Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token):
            raise HTTPProblem(401, "missing or invalid bearer token", field="Authorization",
                              expected="Bearer <token>",
                              got="nothing" if not header else "another token")

    async def read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise HTTPProblem(400, "invalid Content-Length", field="Content-Length",
                                  expected="an integer", got=length) from None
            if declared > limit:
                raise self._too_large(declared)
            return await request.body()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise self._too_large(size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int) -> HTTPProblem:
        return HTTPProblem(413, f"request body of {size} bytes exceeds the limit of "
                                f"{self.settings.max_body_mb:g} MB", field="body",
                           expected=f"at most {self.settings.max_body_bytes} bytes",
                           got=f"{size} bytes")

    async def serve(self, request: Request, method: str | None, inflight: InFlight) -> Response:
        """Answer a model request: ``method`` from the route, or ``None`` for /invocations."""
        with inflight.track():
            try:
                self.authorize(request)
                body = await self.read_body(request)
                wrapped = method is not None
                if method is None:
                    method = self.method_for_invocation(request)
            except HTTPProblem as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return _error_response(exc.status, exc.body, headers)
            ctype = request.headers.get("content-type")
            accept = request.headers.get("accept")
            inline = len(body) <= INLINE_BODY_BYTES
            if self.settings.batch_max_size:
                return await self._serve_batched(method, body, ctype, accept, wrapped,
                                                 inline, inflight)
            if inline and (inflight.alone() or self._cheap(method)):
                return self.handle(method, body, ctype, accept, wrapped)
            # concurrent or big requests: threads let models that release the GIL overlap
            return await run_in_threadpool(self.handle, method, body, ctype, accept, wrapped)

    def _cheap(self, method: str) -> bool:
        """Whether small requests to ``method`` take less time than a hop to a thread would
        add (a one-row linear model on the array fast path: a fraction of a millisecond)."""
        return self._costs.get(method, INLINE_COST_S) < INLINE_COST_S

    def _timed_handle(self, method: str, body: bytes, content_type: str | None,
                      accept: str | None, wrapped: bool) -> Response:
        start = time.perf_counter()
        try:
            return self._handle(method, body, content_type, accept, wrapped)
        finally:
            if len(body) <= INLINE_BODY_BYTES:  # the cost of small requests, smoothed
                spent = time.perf_counter() - start
                self._costs[method] = 0.8 * self._costs.get(method, spent) + 0.2 * spent

    async def _serve_batched(self, method: str, body: bytes, ctype: str | None,
                             accept: str | None, wrapped: bool, inline: bool,
                             inflight: InFlight) -> Response:
        """Decode alone, call together with concurrent requests, encode alone.

        A model whose calls cost less than a hop to a thread (a one-row linear model) is
        called at once, as without batching: merging could not save it anything."""
        # batchers are kept by the method's own name (/invocations may ask for a callable's
        # ``__call__`` as ``predict``); the method was checked when the request was routed
        batcher = self._batchers.get(self.loaded.signature(method).name)
        if inline and batcher is not None and batcher.cheap() and not batcher.waiting():
            return self.handle(method, body, ctype, accept, wrapped)
        if inline:  # small bodies decode faster on the loop than a thread hop costs
            prepared = self.prepare(method, body, ctype, accept, wrapped)
        else:
            prepared = await run_in_threadpool(self.prepare, method, body, ctype, accept,
                                               wrapped)
        if isinstance(prepared, Response):
            return prepared
        sig, out_kind, data = prepared
        if batcher is None:
            batcher = self._batchers[sig.name] = MicroBatcher(
                functools.partial(self.loaded.handler.call, self.loaded.model, sig.name),
                max_size=self.settings.batch_max_size,
                max_latency=self.settings.batch_max_latency_ms / 1000,
                expected=lambda: inflight.count)
        try:
            result = await batcher.submit(data)
        except SchemaError as exc:
            return _error_response(400, dict(exc.to_dict(), error=_exception_text(exc)))
        except Exception as exc:  # this caller's rows failed (others' are answered)
            return self.model_error(exc, method, data)
        if inline:
            return self.respond(sig, out_kind, result)
        return await run_in_threadpool(self.respond, sig, out_kind, result)

    def model_error(self, exc: Exception, method: str, data: Any) -> Response:
        """500 for an exception of the model; 400 naming the field when the input held NaN
        or an infinity, so that such a value gets the same 4xx in every body format."""
        where = media.nonfinite_field(data, _arg_name(self.loaded, method))
        if where is not None:
            return _error_response(400, {
                "error": f"the model cannot take NaN or infinite values (in '{where}'): "
                         f"{_exception_text(exc)}", "field": where,
                "expected": "finite numbers", "got": "NaN or infinity"})
        return _error_response(500, {"error": _exception_text(exc)})

    def handle(self, method: str, body: bytes, content_type: str | None, accept: str | None,
               wrapped: bool) -> Response:
        """Decode, validate, call and encode; every failure becomes a JSON error response.

        ``wrapped`` is True for MLEM's ``{"data": ...}`` bodies; ``/invocations`` also takes
        the bare value.
        """
        return self._timed_handle(method, body, content_type, accept, wrapped)

    def _handle(self, method: str, body: bytes, content_type: str | None, accept: str | None,
                wrapped: bool) -> Response:
        prepared = self.prepare(method, body, content_type, accept, wrapped)
        if isinstance(prepared, Response):
            return prepared
        sig, out_kind, data = prepared
        try:
            result = self.loaded.handler.call(self.loaded.model, sig.name, data)
        except SchemaError as exc:  # the model refused the input (an ONNX graph's types)
            return _error_response(400, dict(exc.to_dict(), error=_exception_text(exc)))
        except Exception as exc:
            return self.model_error(exc, method, data)
        return self.respond(sig, out_kind, result)

    def prepare(self, method: str, body: bytes, content_type: str | None, accept: str | None,
                wrapped: bool) -> tuple[Signature, str, Any] | Response:
        """(signature, answer's media type, decoded argument), or the error response."""
        try:
            sig = self.loaded.signature(method)
            out_kind = codecs.choose_output(accept, sig.returns.media_types())
            data = self._decode(sig, body, content_type, wrapped)
        except HTTPProblem as exc:
            return _error_response(exc.status, exc.body)
        except SchemaError as exc:
            body_ = exc.to_dict()
            body_["error"] = _exception_text(exc)
            if not body_.get("field"):  # the whole argument is wrong: name it
                body_["field"] = _arg_name(self.loaded, method)
            return _error_response(400, body_)
        except Exception as exc:  # any decoding failure is the client's input, not a 5xx
            return _error_response(400, {"error": _exception_text(exc), "field": "data"})
        return sig, out_kind, data

    def respond(self, sig: Signature, out_kind: str, result: Any) -> Response:
        """The method's result in the media type the client accepts."""
        try:
            payload = sig.returns.encode(result, out_kind)
        except HTTPProblem as exc:
            return _error_response(exc.status, exc.body)
        except Exception as exc:
            return _error_response(500, {"error": _exception_text(exc)})
        return Response(payload, media_type=out_kind)

    def _decode(self, sig: Signature, body: bytes, content_type: str | None,
                wrapped: bool) -> Any:
        if not sig.args:
            return None
        arg = sig.args[0]
        arg_type = arg.type_
        kind, params = codecs.body_media_type(content_type, arg_type.media_types())
        fast = self.fast_paths.get(sig.name)
        if kind == JSON:
            dtype = arg_type.json_matrix_dtype() if len(body) >= media.MATRIX_MIN_BYTES \
                else None
            found = media.loads_json_matrix(body, dtype) if dtype else None
            if found is not None:  # a big split table: its rows read as one array
                data = self._from_matrix(arg.name, arg_type, fast, wrapped, *found)
                if data is not None:
                    return data
            payload = codecs.loads_json(body)
            if wrapped or (isinstance(payload, dict) and len(payload) == 1
                           and arg.name in payload):
                payload = _unwrap(payload, arg.name)
            if fast is not None:
                rows = fast.from_json(payload)
                if rows is not None:
                    return rows
            data = arg_type.from_json(payload)
        else:
            if fast is not None and kind == media.PARQUET:
                rows = fast.from_parquet(body)
                if rows is not None:
                    return rows
            data = arg_type.decode(body, kind, params)
        if arg_type.is_empty(data):  # models answer a batch of no rows with an exception
            raise SchemaError("the batch has no rows: send at least one", field="data",
                              expected="at least one row", got="0 rows")
        if fast is not None:  # a validated table: what the estimator would make of it
            return fast.from_frame(data)
        return data

    @staticmethod
    def _from_matrix(name: str, arg_type: DataType, fast: ArrayPath | None, wrapped: bool,
                     rest: Any, values: Any) -> Any:
        """The argument from a body whose matrix was read as an array, or None when the body
        is not one the shortcut takes (the regular path then reads and words it)."""
        if wrapped or (isinstance(rest, dict) and len(rest) == 1 and name in rest):
            if not isinstance(rest, dict) or rest.keys() != {name}:
                return None
            rest = rest[name]
        if fast is not None:
            rows = fast.from_matrix(rest, values)
            if rows is not None:
                return rows
        data = arg_type.from_matrix(rest, values)
        if data is not None and fast is not None:
            return fast.from_frame(data)
        return data

    def method_for_invocation(self, request: Request) -> str:
        method = request.headers.get(METHOD_HEADER)
        if not method:
            attributes = request.headers.get(SAGEMAKER_ATTRIBUTES, "")
            for part in attributes.replace(";", ",").split(","):
                key, _, value = part.partition("=")
                if key.strip().lower() == "method" and value.strip():
                    method = value.strip()
        method = method or self.settings.sagemaker_method
        try:
            self.loaded.signature(method)
        except AttributeError:
            methods = [public_name(m) for m in self.loaded.meta.model_type.methods]
            raise HTTPProblem(400, f"model has no method '{method}' (it has: "
                                   f"{', '.join(methods)})", field="method",
                              expected=f"one of {methods}", got=method) from None
        return method


def _arg_name(loaded: LoadedModel, method: str) -> str:
    try:
        args = loaded.signature(method).args
    except AttributeError:
        return "data"
    return args[0].name if args else "data"


def _unwrap(payload: Any, name: str) -> Any:
    if not isinstance(payload, dict):
        raise HTTPProblem(400, f"expected a JSON object like {{\"{name}\": ...}}, got "
                               f"{type(payload).__name__}", field="body",
                          expected=f"object with key {name!r}", got=type(payload).__name__)
    if name not in payload:
        raise HTTPProblem(400, f"missing key '{name}' in the request body (got keys: "
                               f"{', '.join(map(str, payload)) or 'none'})", field=name,
                          expected=f"key {name!r}", got="missing")
    extra = [k for k in payload if k != name]
    if extra:
        raise HTTPProblem(400, f"unknown key '{extra[0]}' in the request body (expected only "
                               f"'{name}')", field=str(extra[0]), expected=f"only {name!r}",
                          got=f"key {extra[0]!r}")
    return payload[name]


# --- the routes ----------------------------------------------------------------------------

def _service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


#: The routes every served model has; :func:`create_app` adds the model's own.
router = APIRouter()


@router.get("/", include_in_schema=False)
async def page(request: Request) -> Response:
    """The model page: description, schemas and a form per method (mlem_lib.serve.page)."""
    from mlem_lib.serve.page import ORIGIN

    origin = str(request.base_url).rstrip("/").encode()
    return Response(_service(request).page_bytes.replace(ORIGIN.encode(), origin),
                    media_type="text/html; charset=utf-8")


@router.get("/interface.json", tags=["meta"], summary="methods and schemas (MLEM's layout)")
async def get_interface(request: Request) -> Response:
    return Response(_service(request).interface_bytes, media_type=JSON)


@router.get("/health", tags=["meta"], summary="liveness: 200 while the model is loaded")
async def health(request: Request) -> Response:
    return Response(_service(request).health_bytes, media_type=JSON)


@router.get("/ping", tags=["sagemaker"], summary="SageMaker health check", name="ping")
async def ping(request: Request) -> Response:
    return Response(_service(request).health_bytes, media_type=JSON)


# ``POST /<method>``: the route's name is the method's public name. (No docstrings on
# endpoints: FastAPI would show them in /docs.)
async def call_method(request: Request) -> Response:
    service = _service(request)
    public = request.scope["route"].name
    if service.metrics is None:
        return await service.serve(request, service.routes[public], request.app.state.inflight)
    start = time.perf_counter()
    response = await service.serve(request, service.routes[public], request.app.state.inflight)
    service.metrics.observe(public, response.status_code, time.perf_counter() - start)
    return response


# SageMaker's ``POST /invocations``: the method comes from the request's headers. The
# answer names the served model in X-Amzn-SageMaker-Custom-Attributes, which SageMaker hands
# to the caller as CustomAttributes: how a deployment checks which model an endpoint serves.
async def invocations(request: Request) -> Response:
    service = _service(request)
    start = time.perf_counter()
    response = await service.serve(request, None, request.app.state.inflight)
    response.headers[SAGEMAKER_ATTRIBUTES] = \
        f"model_hash={service.loaded.meta.model_hash}"
    if service.metrics is not None:
        service.metrics.observe("invocations", response.status_code,
                                time.perf_counter() - start)
    return response


async def metrics(request: Request) -> Response:
    from mlem_lib.serve.metrics import CONTENT_TYPE

    service_metrics = _service(request).metrics
    assert service_metrics is not None  # the route exists only when metrics are on
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)


def create_app(loaded: LoadedModel, settings: ServerSettings | None = None) -> FastAPI:
    """Build the FastAPI app that serves ``loaded``.

    Args:
        loaded: the model and its metadata.
        settings: auth token, body limit and SageMaker method (default: from the environment).

    Returns:
        A FastAPI app; run it with uvicorn.

    Example:
        >>> from mlem_lib.runner import LoadedModel
        >>> lm = LoadedModel.from_object(lambda x: x + 1, sample_data=1)
        >>> app = create_app(lm, ServerSettings(auth_token="s3cret"))
        >>> sorted(r.path for r in app.routes if "POST" in getattr(r, "methods", ()))
        ['/__call__', '/invocations', '/predict']
    """
    settings = settings or ServerSettings.from_env()
    service = ModelService(loaded, settings)
    app = FastAPI(title=f"mlem_lib: {loaded.meta.model_type.type} model",
                  description="Generated from the model's .mlem metadata. Send "
                              "`{\"data\": ...}` as JSON (DataFrames as `{\"values\": [rows]}` "
                              "or `{\"columns\": [...], \"data\": [[...]]}`), or a CSV, "
                              "Parquet (`application/x-parquet`) or `.npy` "
                              "(`application/x-npy`) body; choose the answer's format with "
                              "Accept.", version=service.version)
    for public, name in service.routes.items():
        sig = loaded.signature(name)
        extra, responses = _openapi(sig)
        app.add_api_route(f"/{public}", call_method, methods=["POST"], name=public,
                          summary=f"{public}: {_describe_args(sig)} -> {sig.returns.describe()}",
                          openapi_extra=extra, responses=responses, response_class=Response,
                          tags=["model"])
        if name != public:  # a callable's own name, as the .mlem file spells it
            app.add_api_route(f"/{name}", call_method, methods=["POST"], name=public,
                              include_in_schema=False, response_class=Response)
    app.include_router(router)
    default_sig = None
    with contextlib.suppress(AttributeError):
        default_sig = loaded.signature(settings.sagemaker_method)
    extra, responses = _openapi(default_sig) if default_sig is not None else ({}, {})
    app.add_api_route("/invocations", invocations, methods=["POST"], tags=["sagemaker"],
                      summary="SageMaker inference: method from X-Mlem-Method, "
                              "X-Amzn-SageMaker-Custom-Attributes 'method=...' or "
                              f"MLEM_SAGEMAKER_METHOD (now {settings.sagemaker_method})",
                      openapi_extra=extra, responses=responses, response_class=Response)
    if service.metrics is not None:
        app.add_api_route("/metrics", metrics, methods=["GET"], tags=["meta"],
                          summary="Prometheus metrics: requests, errors and latency by method",
                          response_class=Response)
    app.state.service = service
    app.state.inflight = InFlight()
    app.state.loaded = loaded
    app.state.settings = settings
    app.state.pid = os.getpid()
    return app
