"""The FastAPI app generated from a model's metadata.

One ``POST /<method>`` per model method (MLEM's request and response shapes),
``GET /interface.json`` in MLEM's layout, ``GET /health``, SageMaker's
``GET /ping`` and ``POST /invocations``, and OpenAPI docs at ``/docs`` whose
request and response schemas come from the saved data schemas.

Requests skip FastAPI's per-field validation: the raw body is parsed with orjson
(or read as CSV / Parquet / ``.npy``) and validated once, vectorised, by the
argument's schema, the same way ``mlem apply`` validates.

Example:
    >>> from mlem_lib.runner import LoadedModel  # doctest: +SKIP
    >>> app = create_app(LoadedModel.load("models/rf"))  # doctest: +SKIP
    >>> # uvicorn.run(app, port=8080)
"""

from __future__ import annotations

import contextlib
import hmac
import os
from typing import TYPE_CHECKING, Any

from mlem_lib.serve.codecs import CSV, JSON, NPY, PARQUET, HTTPProblem
from mlem_lib.serve.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from mlem_lib.data.base import DataType
    from mlem_lib.meta import Signature
    from mlem_lib.runner import LoadedModel

# a lone request up to this size (~3000 JSON rows) runs on the event loop, which is fastest;
# bigger ones, and any request while others run, go to worker threads (/ping stays responsive)
INLINE_BODY_BYTES = 256 * 1024
SAGEMAKER_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
METHOD_HEADER = "x-mlem-method"


def public_name(method: str) -> str:
    """The route name of a model method: a callable's ``__call__`` is served as ``predict``."""
    return "predict" if method == "__call__" else method


def interface(loaded: LoadedModel) -> dict[str, Any]:
    """``/interface.json`` in MLEM 0.4's layout, so MLEM's own ``HTTPClient`` can use it.

    Example:
        >>> interface(lm)["methods"]["predict"]["args"][0]["name"]  # doctest: +SKIP
        'data'
    """
    from mlem_lib import __version__

    methods: dict[str, Any] = {}
    for name, sig in loaded.meta.model_type.methods.items():
        public = public_name(name)
        if public in methods and name == "__call__":
            continue
        methods[public] = {
            "name": public,
            "args": [{"data_type": _dump(a.type_), "serializer": {"type": a.type_.type},
                      "name": a.name, "required": a.required, "default": a.default}
                     for a in sig.args],
            "returns": {"data_type": _dump(sig.returns),
                        "serializer": {"type": sig.returns.type}},
        }
    return {"methods": methods, "version": __version__,
            "meta": {"server": "mlem_lib", "model_type": loaded.meta.model_type.type,
                     "model_hash": loaded.meta.model_hash}}


def _dump(data_type: DataType) -> dict[str, Any]:
    return data_type.model_dump(mode="json", exclude_none=False)


def _error_response(status: int, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Response:
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _request_schema(sig: Signature) -> dict[str, Any]:
    if not sig.args:
        return {"type": "object"}
    arg = sig.args[0]
    schema = arg.type_.json_schema() or {}
    if arg.type_.type == "dataframe":
        split = {"type": "object", "title": "split layout (pandas orient='split')",
                 "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array"}}},
                 "required": ["columns", "data"]}
        schema = {"anyOf": [dict(schema, title="row objects"), split]}
    schema = dict(schema, description=f"{arg.type_.describe()}")
    return {"type": "object", "title": f"{public_name(sig.name)} request",
            "properties": {arg.name: schema}, "required": [arg.name],
            "additionalProperties": False}


_ERROR_SCHEMA = {"type": "object", "title": "error", "properties": {
    "error": {"type": "string"}, "field": {"type": ["string", "null"]},
    "expected": {"type": ["string", "null"]}, "got": {"type": ["string", "null"]}},
    "required": ["error"]}
_BINARY = {"type": "string", "format": "binary"}


def _openapi(sig: Signature) -> tuple[dict[str, Any], dict[int | str, Any]]:
    request = {"requestBody": {"required": True, "content": {
        JSON: {"schema": _request_schema(sig)},
        PARQUET: {"schema": _BINARY}, NPY: {"schema": _BINARY},
        CSV: {"schema": {"type": "string"}}}}}
    returns = dict(sig.returns.json_schema() or {}, title=f"{public_name(sig.name)} response",
                   description=sig.returns.describe())
    err = {"content": {JSON: {"schema": _ERROR_SCHEMA}}}
    responses: dict[int | str, Any] = {
        200: {"description": "the method's result (format chosen by Accept)",
              "content": {JSON: {"schema": returns}, CSV: {"schema": {"type": "string"}},
                          PARQUET: {"schema": _BINARY}, NPY: {"schema": _BINARY}}},
        400: dict(err, description="bad input: names the field and what was expected"),
        401: dict(err, description="missing or wrong bearer token (when auth is on)"),
        413: dict(err, description="body larger than the configured limit"),
        500: dict(err, description="the model raised an exception"),
    }
    return request, responses


class _Service:
    """Request handling shared by the model routes and ``/invocations``."""

    def __init__(self, loaded: LoadedModel, settings: ServerSettings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.token = settings.auth_token.encode() if settings.auth_token else None

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

    def handle(self, method: str, body: bytes, content_type: str | None, accept: str | None,
               wrapped: bool) -> Response:
        """Decode, validate, call and encode; every failure becomes a JSON error response.

        ``wrapped`` is True for MLEM's ``{"data": ...}`` bodies; ``/invocations`` also takes
        the bare value.
        """
        from starlette.responses import Response

        from mlem_lib.errors import SchemaError
        from mlem_lib.serve import codecs

        try:
            out_kind = codecs.choose_output(accept)
            sig = self.loaded.signature(method)
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
        try:
            result = self.loaded.handler.call(self.loaded.model, sig.name, data)
        except Exception as exc:
            return _error_response(500, {"error": _exception_text(exc)})
        try:
            payload = codecs.dumps(result, sig.returns, out_kind)
        except HTTPProblem as exc:
            return _error_response(exc.status, exc.body)
        except Exception as exc:
            return _error_response(500, {"error": _exception_text(exc)})
        return Response(payload, media_type=out_kind)

    def _decode(self, sig: Signature, body: bytes, content_type: str | None,
                wrapped: bool) -> Any:
        from mlem_lib.serve import codecs

        if not sig.args:
            return None
        arg = sig.args[0]
        kind = codecs.media_type(content_type)
        if kind != JSON:
            _, obj = codecs.decode_input(body, content_type, arg.type_)
            return _non_empty(arg.type_.validate_value(obj, None), arg.type_)
        payload = codecs.loads_json(body)
        if wrapped or (isinstance(payload, dict) and len(payload) == 1 and arg.name in payload):
            payload = _unwrap(payload, arg.name)
        return _non_empty(arg.type_.from_json(payload), arg.type_)

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


def _non_empty(data: Any, arg_type: DataType) -> Any:
    """Reject a batch of zero rows, which models answer with an exception (a 500)."""
    from mlem_lib.errors import SchemaError

    if arg_type.type in ("dataframe", "ndarray", "series") and getattr(data, "ndim", None) != 0 \
            and len(data) == 0:
        raise SchemaError("the batch has no rows: send at least one", field="data",
                          expected="at least one row", got="0 rows")
    return data


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


def create_app(loaded: LoadedModel, settings: ServerSettings | None = None) -> FastAPI:
    """Build the FastAPI app that serves ``loaded``.

    Args:
        loaded: the model and its metadata.
        settings: auth token, body limit and SageMaker method (default: from the environment).

    Returns:
        A FastAPI app; run it with uvicorn.

    Example:
        >>> app = create_app(LoadedModel.load("models/rf"),  # doctest: +SKIP
        ...                  ServerSettings(auth_token="s3cret"))
    """
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response

    settings = settings or ServerSettings.from_env()
    service = _Service(loaded, settings)
    model_type = loaded.meta.model_type.type
    info = interface(loaded)
    app = FastAPI(title=f"mlem_lib: {model_type} model",
                  description="Generated from the model's .mlem metadata. Send "
                              "`{\"data\": ...}` as JSON (DataFrames as `{\"values\": [rows]}` "
                              "or `{\"columns\": [...], \"data\": [[...]]}`), or a CSV, "
                              "Parquet (`application/x-parquet`) or `.npy` "
                              "(`application/x-npy`) body; choose the answer's format with "
                              "Accept.", version=str(info["version"]))
    import orjson

    interface_bytes = orjson.dumps(info)
    health_bytes = orjson.dumps({"status": "ok", "model_type": model_type,
                                 "model_hash": loaded.meta.model_hash,
                                 "methods": sorted(info["methods"])})

    # this module uses postponed annotations; FastAPI needs the real classes to spot Request
    resolved = {"request": Request, "return": Response}

    active = [0]  # model requests being served right now (read, queued or running)

    async def serve(request: Request, method: str, wrapped: bool) -> Response:
        active[0] += 1
        try:
            return await _serve(request, method, wrapped)
        finally:
            active[0] -= 1

    async def _serve(request: Request, method: str, wrapped: bool) -> Response:
        try:
            service.authorize(request)
            body = await service.read_body(request)
            if wrapped is False:
                method = service.method_for_invocation(request)
        except HTTPProblem as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return _error_response(exc.status, exc.body, headers)
        ctype = request.headers.get("content-type")
        accept = request.headers.get("accept")
        if len(body) <= INLINE_BODY_BYTES and active[0] == 1:
            return service.handle(method, body, ctype, accept, wrapped)
        # concurrent or big requests: threads let models that release the GIL overlap
        return await run_in_threadpool(service.handle, method, body, ctype, accept, wrapped)

    def add_method(name: str, sig: Signature) -> None:
        public = public_name(name)

        async def endpoint(request: Request) -> Response:
            return await serve(request, name, True)

        endpoint.__annotations__ = resolved

        extra, responses = _openapi(sig)
        app.add_api_route(f"/{public}", endpoint, methods=["POST"], name=public,
                          summary=f"{public}: {_describe_args(sig)} -> {sig.returns.describe()}",
                          openapi_extra=extra, responses=responses, response_class=Response,
                          tags=["model"])

    seen: set[str] = set()
    for name, sig in loaded.meta.model_type.methods.items():
        if public_name(name) in seen:
            continue
        seen.add(public_name(name))
        add_method(name, sig)

    async def root() -> Response:
        return RedirectResponse("/docs", status_code=307)

    async def get_interface() -> Response:
        return Response(interface_bytes, media_type=JSON)

    async def health() -> Response:
        return Response(health_bytes, media_type=JSON)

    for fn in (root, get_interface, health):
        fn.__annotations__ = {"return": Response}
    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    app.add_api_route("/interface.json", get_interface, methods=["GET"], tags=["meta"],
                      summary="methods and schemas (MLEM's layout)")
    app.add_api_route("/health", health, methods=["GET"], tags=["meta"],
                      summary="liveness: 200 while the model is loaded")
    app.add_api_route("/ping", health, methods=["GET"], tags=["sagemaker"],
                      summary="SageMaker health check", name="ping")

    default_sig = None
    with contextlib.suppress(AttributeError):
        default_sig = loaded.signature(settings.sagemaker_method)

    async def invocations(request: Request) -> Response:
        return await serve(request, settings.sagemaker_method, False)

    invocations.__annotations__ = resolved

    extra, responses = _openapi(default_sig) if default_sig is not None else ({}, {})
    app.add_api_route("/invocations", invocations, methods=["POST"], tags=["sagemaker"],
                      summary="SageMaker inference: method from X-Mlem-Method, "
                              "X-Amzn-SageMaker-Custom-Attributes 'method=...' or "
                              f"MLEM_SAGEMAKER_METHOD (now {settings.sagemaker_method})",
                      openapi_extra=extra, responses=responses, response_class=Response)
    app.state.loaded = loaded
    app.state.settings = settings
    app.state.pid = os.getpid()
    return app


def _describe_args(sig: Signature) -> str:
    return ", ".join(f"{a.name}: {a.type_.describe()}" for a in sig.args) or "()"
