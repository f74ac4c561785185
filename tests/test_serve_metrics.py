"""GET /metrics (Prometheus text format) and the JSON access log of a served model."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from starlette.testclient import TestClient

from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.docs_auth import protect_docs
from mlem_lib.serve.settings import ServerSettings


def _value(text: str, sample: str) -> float:
    """The value of one sample line (``name{labels}``) of an exposition."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample} in:\n{text}")


@pytest.fixture(scope="module")
def loaded_lr(saved_lr) -> LoadedModel:
    return LoadedModel.load(saved_lr)


def test_metrics_count_requests_errors_and_latency_per_method_and_status(loaded_lr, iris):
    client = TestClient(create_app(loaded_lr, ServerSettings()))
    rows = iris[0].head(2).to_dict("records")
    for _ in range(3):
        assert client.post("/predict", json={"data": rows}).status_code == 200
    assert client.post("/predict_proba", json={"data": rows}).status_code == 200
    bad = client.post("/predict", json={"data": [{"sepal_length": "x"}]})
    assert bad.status_code == 400
    assert client.post("/invocations", json=rows).status_code == 200

    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert _value(text, 'mlem_requests_total{method="predict",status="200"}') == 3
    assert _value(text, 'mlem_requests_total{method="predict",status="400"}') == 1
    assert _value(text, 'mlem_requests_total{method="predict_proba",status="200"}') == 1
    assert _value(text, 'mlem_requests_total{method="invocations",status="200"}') == 1
    assert _value(text, 'mlem_request_errors_total{method="predict",status="400"}') == 1
    assert 'mlem_request_errors_total{method="predict",status="200"}' not in text
    assert _value(text, 'mlem_request_duration_seconds_count{method="predict"}') == 4
    assert _value(text, 'mlem_request_duration_seconds_bucket{le="+Inf",method="predict"}') == 4
    assert 0 < _value(text, 'mlem_request_duration_seconds_sum{method="predict"}') < 5
    info = re.search(r'mlem_model_info\{model_hash="(\w+)",model_type="sklearn",'
                     r'version="[^"]+"\} 1.0', text)
    assert info and info.group(1) == loaded_lr.meta.model_hash
    # the exposition parses with Prometheus' own parser
    from prometheus_client.parser import text_string_to_metric_families

    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"mlem_requests", "mlem_request_errors", "mlem_request_duration_seconds",
            "mlem_model_info"} <= names


def test_no_metrics_means_no_route_and_auth_docs_covers_metrics(loaded_lr):
    off = TestClient(create_app(loaded_lr, ServerSettings(metrics=False)))
    assert off.get("/metrics").status_code == 404
    assert ServerSettings.from_env({"MLEM_METRICS": "0"}).metrics is False

    settings = ServerSettings(auth_token="s3cret", auth_docs=True)
    guarded = TestClient(protect_docs(create_app(loaded_lr, settings), settings))
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer s3cret"}
                       ).status_code == 200
    settings = ServerSettings(auth_token="s3cret")  # the token alone leaves them open
    assert TestClient(protect_docs(create_app(loaded_lr, settings), settings)
                      ).get("/metrics").status_code == 200


def test_several_workers_add_up_in_one_exposition(start_server, saved_lr, iris):
    server = start_server(saved_lr, "--workers", "2")
    rows = iris[0].head(1).to_dict("records")
    with httpx.Client(timeout=30) as client:
        for _ in range(40):
            answer = client.post(f"{server.url}/predict", json={"data": rows},
                                 headers={"Connection": "close"})  # spread over workers
            assert answer.status_code == 200
        for _ in range(6):  # whichever worker answers /metrics, it counts all 40
            text = client.get(f"{server.url}/metrics", headers={"Connection": "close"}).text
            assert _value(text, 'mlem_requests_total{method="predict",status="200"}') == 40
    assert "metrics at /metrics" in server.output()


def test_json_logs_have_one_access_line_per_request(start_server, saved_lr, iris):
    server = start_server(saved_lr, "--log-format", "json", "--no-metrics")
    rows = iris[0].head(1).to_dict("records")
    assert httpx.post(f"{server.url}/predict", json={"data": rows}, timeout=30
                      ).status_code == 200
    assert httpx.post(f"{server.url}/predict", content=b"{", timeout=30).status_code == 400
    assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 404
    from tests._fixtures.serve import stop

    stop(server.proc)
    lines = [json.loads(line) for line in server.output().splitlines()
             if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "mlem_lib.access"]
    posts = [(a["http_method"], a["path"], a["status"]) for a in access
             if a["path"] != "/health"]
    assert posts == [("POST", "/predict", 200), ("POST", "/predict", 400),
                     ("GET", "/metrics", 404)]
    first = next(a for a in access if a["path"] == "/predict")
    assert first["duration_ms"] > 0 and first["response_bytes"] > 0
    assert first["request_bytes"] > 0 and first["time"].endswith("+00:00")
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # start-up, as JSON
