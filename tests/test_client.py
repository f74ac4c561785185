"""mlem_lib.client.HTTPClient against a real ``mlem serve`` process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlem_lib.client import FAST_ROWS, HTTPClient
from mlem_lib.errors import MethodNotFoundError, SchemaError, ServeError
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(lr_server):
    with HTTPClient(lr_server.url, auth_token="client-token") as c:
        yield c


def test_methods_and_small_json_calls(client, iris, iris_lr):
    assert {"predict", "predict_proba"} <= set(client.methods)
    assert "predict" in dir(client)
    X = iris[0].head(5)
    np.testing.assert_array_equal(client.predict(X), iris_lr.predict(X))
    np.testing.assert_allclose(client.call("predict_proba", X), iris_lr.predict_proba(X))


def test_big_frames_take_the_binary_path(lr_server, iris, iris_lr):
    """Big frames travel as Parquet and come back as .npy; small ones stay JSON. The
    formats are read off the wire (an httpx response hook), not off the client."""
    import httpx

    from mlem_lib.data.media import JSON, NPY, PARQUET

    wire: list[tuple[str, str, str]] = []

    def record(response: httpx.Response) -> None:
        wire.append((response.request.url.path, response.request.headers.get("content-type", ""),
                     response.headers.get("content-type", "").split(";")[0]))

    with httpx.Client(event_hooks={"response": [record]}, timeout=60) as http, \
            HTTPClient(lr_server.url, client=http, auth_token="client-token") as client:
        wire.clear()  # the interface read
        X = pd.concat([iris[0]] * (FAST_ROWS // len(iris[0]) + 1), ignore_index=True)
        assert len(X) >= FAST_ROWS
        got = client.predict_proba(X)
        assert isinstance(got, np.ndarray) and got.shape == (len(X), 3)
        np.testing.assert_allclose(got, iris_lr.predict_proba(X))
        np.testing.assert_array_equal(client.predict(X), iris_lr.predict(X))
        np.testing.assert_array_equal(client.predict(X.head(5)), iris_lr.predict(X.head(5)))
    assert wire == [("/predict_proba", PARQUET, NPY), ("/predict", PARQUET, NPY),
                    ("/predict", JSON, JSON)]


def test_errors(client, lr_server, iris):
    with pytest.raises(MethodNotFoundError):
        client.call("fit", iris[0])
    bad = iris[0].head(2).drop(columns="petal_width")
    with pytest.raises(SchemaError) as err:
        client.predict(bad)
    assert err.value.field == "petal_width"
    with HTTPClient(lr_server.url) as anonymous, pytest.raises(ServeError, match="401"):
        anonymous.predict(iris[0].head(1))
    with pytest.raises(ServeError, match="cannot reach"):
        HTTPClient(f"http://127.0.0.1:{free_port()}", timeout=2)


def test_schema_error_names_the_column(client, iris):
    frame = iris[0].head(2).copy()
    frame["sepal_width"] = ["wide", 3.0]
    with pytest.raises(SchemaError) as err:
        client.predict(frame)
    assert err.value.field == "sepal_width"
