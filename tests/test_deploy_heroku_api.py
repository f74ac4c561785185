"""Heroku's Platform API call sequence through ``httpx.MockTransport``: no network, no Docker.

Each handler answers the way the documented API does (shapes from
https://devcenter.heroku.com/articles/platform-api-reference) and records what the
client sent, so the tests check both directions in milliseconds. The Docker-backed
double in tests/doubles/heroku_api.py stays the end-to-end test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mlem_lib.deploy.heroku import ACCEPT, ACCEPT_DOCKER, HerokuAPI
from mlem_lib.errors import AppNameTakenError, CredentialsError, DeploymentError

API = "https://api.heroku.test"
KEY = "hrku-unit-test"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport whose answers come from ``routes`` and which keeps every request."""

    def __init__(self, routes: dict[tuple[str, str], Handler | httpx.Response]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"id": "not_found", "message": "Not found."})
        return answer(request) if callable(answer) else answer

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def body(self, index: int) -> Any:
        return json.loads(self.requests[index].content)


def _api(recorder: Recorder) -> HerokuAPI:
    return HerokuAPI(API, KEY, transport=recorder.transport)


APP = {"id": "01234567-89ab-cdef-0123-456789abcdef", "name": "iris-unit",
       "web_url": "https://iris-unit.herokuapp.com/", "build_stack": {"name": "container"}}
NOT_FOUND = httpx.Response(404, json={"id": "not_found", "message": "Couldn't find that app.",
                                      "resource": "app"})


def test_missing_app_is_created_with_the_container_stack():
    rec = Recorder({("GET", "/apps/iris-unit"): NOT_FOUND,
                    ("POST", "/apps"): httpx.Response(201, json=APP)})
    api = _api(rec)
    assert api.get_app("iris-unit") is None
    created = api.create_app("iris-unit", "eu")
    assert created["web_url"] == APP["web_url"]
    assert rec.sent() == [("GET", "/apps/iris-unit"), ("POST", "/apps")]
    assert rec.body(1) == {"name": "iris-unit", "region": "eu", "stack": "container"}
    for request in rec.requests:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.headers["Accept"] == ACCEPT
        assert str(request.url).startswith(API + "/")


def test_name_taken_is_a_clear_error():
    taken = httpx.Response(422, json={"id": "invalid_params",
                                      "message": "Name is already taken"})
    rec = Recorder({("POST", "/apps"): taken})
    with pytest.raises(AppNameTakenError, match="field 'app'"):
        _api(rec).create_app("someone-elses", "us")
    assert rec.sent() == [("POST", "/apps")]


def test_other_refusals_name_the_call_and_the_status():
    rec = Recorder({("POST", "/apps"): httpx.Response(
        422, json={"id": "invalid_params", "message": "Region is invalid"})})
    with pytest.raises(DeploymentError, match="POST /apps: HTTP 422 invalid_params: Region"):
        _api(rec).create_app("iris-unit", "mars")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_a_credentials_error(status):
    rec = Recorder({("GET", "/apps/iris-unit"): httpx.Response(
        status, json={"id": "unauthorized", "message": "Invalid credentials provided."})})
    with pytest.raises(CredentialsError, match=f"HTTP {status} unauthorized"):
        _api(rec).get_app("iris-unit")


def test_release_uses_the_docker_releases_variant():
    release = {"id": "rel-2", "version": 2, "description": "Deployed web"}

    def formation(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"type": "web", "quantity": 1, "release": release}])

    rec = Recorder({("PATCH", "/apps/iris-unit/formation"): formation})
    _api(rec).release_image("iris-unit", "sha256:" + "ab" * 32)
    assert rec.requests[0].headers["Accept"] == ACCEPT_DOCKER
    assert rec.body(0) == {"updates": [{"type": "web", "docker_image": "sha256:" + "ab" * 32}]}


def test_rollback_posts_the_release_to_go_back_to():
    rec = Recorder({("POST", "/apps/iris-unit/releases"): httpx.Response(
        201, json={"id": "rel-3", "version": 3, "description": "Rollback to v1"})})
    new = _api(rec).rollback("iris-unit", "rel-1")
    assert new["version"] == 3
    assert rec.body(0) == {"release": "rel-1"}


def test_releases_are_sorted_and_app_deletion_reports_whether_it_existed():
    rec = Recorder({
        ("GET", "/apps/iris-unit/releases"): httpx.Response(
            200, json=[{"id": "b", "version": 10}, {"id": "a", "version": 9}]),
        ("DELETE", "/apps/iris-unit"): httpx.Response(200, json=APP),
        ("DELETE", "/apps/gone"): NOT_FOUND})
    api = _api(rec)
    assert [r["version"] for r in api.releases("iris-unit")] == [9, 10]
    assert api.delete_app("iris-unit") is True
    assert api.delete_app("gone") is False


def test_a_client_passed_in_is_used_and_left_open():
    rec = Recorder({("GET", "/apps/iris-unit"): httpx.Response(200, json=APP)})
    with httpx.Client(transport=rec.transport) as client:
        api = HerokuAPI(API, KEY, client=client)
        assert api.get_app("iris-unit") == APP
        api.close()
        assert not client.is_closed
    assert rec.sent() == [("GET", "/apps/iris-unit")]


def test_a_dropped_connection_is_a_deployment_error():
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = HerokuAPI(API, KEY, transport=httpx.MockTransport(drop))
    with pytest.raises(DeploymentError, match="GET /apps/iris-unit failed"):
        api.get_app("iris-unit")
