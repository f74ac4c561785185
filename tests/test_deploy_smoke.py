"""The smoke request built from the saved schema, against a real server process."""

from __future__ import annotations

import pytest

from mlem_lib.deploy.package import read_model_meta
from mlem_lib.deploy.smoke import check_http, pick_method, smoke_request, wait_healthy
from mlem_lib.errors import DeploymentError, MethodNotFoundError, SmokeTestError
from tests.conftest import free_port


def test_request_from_the_dataframe_schema(saved_lr):
    meta = read_model_meta(saved_lr)
    method, body = smoke_request(meta)
    assert method == "predict"
    rows = body["data"]["values"]
    assert len(rows) == 1
    assert set(rows[0]) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert smoke_request(meta, "predict_proba")[0] == "predict_proba"
    with pytest.raises(MethodNotFoundError, match="transform"):
        pick_method(meta, "transform")


def test_callable_model_is_called_as_predict(tmp_path):
    import mlem_lib.api as mlem

    mlem.save(lambda xs: [x * 2 for x in xs], str(tmp_path / "double"), sample_data=[1, 2])
    method, body = smoke_request(read_model_meta(str(tmp_path / "double")))
    assert method == "predict"
    assert isinstance(body["data"], list)


@pytest.fixture
def served(saved_lr):
    """``mlem_lib.serve`` on 127.0.0.1 in a real uvicorn process."""
    import os
    import subprocess
    import sys

    from tests._fixtures.deploy import kill_pid

    port = free_port()
    env = dict(os.environ, MLEM_MODEL=saved_lr, PORT=str(port), MLEM_HOST="127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-m", "mlem_lib.serve.container"], env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 60)
        yield url
    finally:
        kill_pid(proc.pid)


def test_check_http_against_a_server(served, saved_lr):
    meta = read_model_meta(saved_lr)
    answer = check_http(served, meta)
    assert isinstance(answer, list) and len(answer) == 1
    with pytest.raises(SmokeTestError, match="HTTP 4"):
        check_http(served + "/nothing-here", meta)


def test_wait_healthy_times_out():
    with pytest.raises(DeploymentError, match=r"did not answer 200 within 0\.3s"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", 0.3, poll=0.1)
    with pytest.raises(DeploymentError, match="process died"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", 5, alive=lambda: "process died")


def test_smoke_test_wants_the_server_to_serve_the_deployed_model(served, saved_lr, saved_rf,
                                                                  iris):
    """Issue 12 item 8: a server that answers but serves another model does not pass."""
    from mlem_lib.deploy.smoke import SmokeRequest, smoke_test

    lr, rf = read_model_meta(saved_lr), read_model_meta(saved_rf)
    with pytest.raises(SmokeTestError, match=f"does not serve model {rf.model_hash[:12]}.*"
                                             f"reports {lr.model_hash[:12]}"):
        smoke_test(served, model_hash=rf.model_hash, request=SmokeRequest.for_model(rf),
                   timeout=0.5, poll=0.1)
    answer = smoke_test(served, model_hash=lr.model_hash, request=SmokeRequest.for_model(lr))
    assert isinstance(answer, list) and len(answer) == 1
    rows = smoke_test(served, data=iris[0].head(3), model_hash=lr.model_hash)
    assert len(rows) == 3
    assert smoke_test(served, model_hash=lr.model_hash) is None  # health and hash only
    with pytest.raises(SmokeTestError, match="HTTP 4"):
        smoke_test(served, data=[{"not_a_column": 1.0}])
