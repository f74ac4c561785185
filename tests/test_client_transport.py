"""HTTPClient's seam: an ``httpx.Client`` or transport, as ``httpx.Client(transport=)`` allows.

With ``httpx.MockTransport`` the wire protocol is checked in milliseconds: headers, the
JSON and binary bodies the data types write, and how answers and errors are read. A
starlette ``TestClient`` (an ``httpx.Client``) runs the real app in-process. The real
server over uvicorn is tested in test_client.py.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from mlem_lib.client import FAST_ROWS, HTTPClient
from mlem_lib.errors import SchemaError, ServeError, ServerUnreachableError, TransientError

COLUMNS = ["a", "b"]
INTERFACE = {
    "meta": {"server": "mlem_lib"},
    "methods": {"predict": {
        "args": [{"name": "data", "data_type": {"type": "dataframe", "columns": COLUMNS,
                                                "dtypes": ["float64", "float64"]}}],
        "returns": {"data_type": {"type": "ndarray", "shape": [None], "dtype": "float64"}}}},
}


class FakeServer:
    """Answers like ``mlem serve`` for a model summing its two columns; records requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/interface.json":
            return httpx.Response(200, json=INTERFACE)
        kind = request.headers["content-type"]
        if kind == "application/x-parquet":
            frame = pd.read_parquet(io.BytesIO(request.content))
        else:
            rows = orjson.loads(request.content)["data"]["values"]
            if any("b" not in row for row in rows):
                return httpx.Response(400, json={"error": "missing column 'b'", "field": "b",
                                                 "expected": "column 'b'", "got": "missing"})
            frame = pd.DataFrame(rows)
        sums = (frame["a"] + frame["b"]).to_numpy()
        if request.headers["accept"] == "application/x-npy":
            buf = io.BytesIO()
            np.save(buf, sums)
            return httpx.Response(200, content=buf.getvalue(),
                                  headers={"Content-Type": "application/x-npy"})
        return httpx.Response(200, json=sums.tolist())


def test_small_batches_travel_as_mlem_json_with_the_token():
    server = FakeServer()
    with HTTPClient("http://model", transport=httpx.MockTransport(server),
                    auth_token="tok") as client:
        got = client.predict(pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 0.5]}))
    np.testing.assert_array_equal(got, [1.5, 2.5])
    assert isinstance(got, np.ndarray)
    call = server.requests[-1]
    assert call.url == "http://model/predict"
    assert call.headers["authorization"] == "Bearer tok"
    assert call.headers["content-type"] == "application/json"
    assert orjson.loads(call.content) == {"data": {"values": [{"a": 1.0, "b": 0.5},
                                                              {"a": 2.0, "b": 0.5}]}}
    assert all(r.headers["authorization"] == "Bearer tok" for r in server.requests)


def test_big_batches_take_the_data_types_binary_media_types():
    server = FakeServer()
    frame = pd.DataFrame({"a": np.arange(FAST_ROWS, dtype=float), "b": 1.0})
    with HTTPClient("http://model", transport=httpx.MockTransport(server)) as client:
        got = client.predict(frame)
    np.testing.assert_array_equal(got, frame["a"] + 1.0)
    call = server.requests[-1]
    assert call.headers["content-type"] == "application/x-parquet"
    assert call.headers["accept"] == "application/x-npy"


def test_errors_are_mapped_to_our_exceptions():
    server = FakeServer()
    with HTTPClient("http://model", transport=httpx.MockTransport(server)) as client, \
            pytest.raises(SchemaError) as err:
        client.predict(pd.DataFrame({"a": [1.0]}))
    assert err.value.field == "b"

    def boom(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/interface.json":
            return httpx.Response(200, json=INTERFACE)
        return httpx.Response(500, json={"error": "ValueError: negative"})

    with HTTPClient("http://model", transport=httpx.MockTransport(boom)) as client, \
            pytest.raises(ServeError, match="500: ValueError: negative"):
        client.predict(pd.DataFrame({"a": [1.0], "b": [2.0]}))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServerUnreachableError, match="cannot reach") as unreachable:
        HTTPClient("http://model", transport=httpx.MockTransport(refuse))
    assert isinstance(unreachable.value, TransientError)
    with pytest.raises(ValueError, match="not both"):
        HTTPClient("http://model", client=httpx.Client(),
                   transport=httpx.MockTransport(refuse))


def test_a_given_httpx_client_is_used_and_left_open():
    server = FakeServer()
    http = httpx.Client(transport=httpx.MockTransport(server), headers={"X-Trace": "7"})
    with HTTPClient("http://model", client=http) as client:
        client.predict(pd.DataFrame({"a": [1.0], "b": [1.0]}))
    assert not http.is_closed
    assert server.requests[-1].headers["x-trace"] == "7"
    http.close()


def test_the_real_app_in_process(saved_lr, iris, iris_lr):
    from starlette.testclient import TestClient

    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import create_app
    from mlem_lib.serve.settings import ServerSettings

    app = create_app(LoadedModel.load(saved_lr), ServerSettings())
    with TestClient(app) as http, HTTPClient("http://testserver", client=http) as client:
        X = iris[0]
        np.testing.assert_array_equal(client.predict(X.head(3)), iris_lr.predict(X.head(3)))
        big = pd.concat([X] * 7, ignore_index=True)
        np.testing.assert_allclose(client.predict_proba(big), iris_lr.predict_proba(big))
