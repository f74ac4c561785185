"""The heroku target against the Platform API double and a real local registry + engine."""

from __future__ import annotations

import httpx
import pytest

from mlem_lib.deploy import deploy, remove, status
from mlem_lib.errors import AppNameTakenError, CredentialsError, RolledBackError, SmokeTestError
from tests._fixtures.deploy import HEROKU_TEST_KEY, OTHERS_APP

CREDS = {"api_key": HEROKU_TEST_KEY}


def test_create_release_rollback_and_remove(heroku_decl, heroku_double, removed_after,
                                            saved_lr, broken_lr, iris):
    decl = removed_after(heroku_decl("iris-staging"), credentials=CREDS)
    state = deploy(decl, saved_lr, credentials=CREDS, progress=False)

    app = heroku_double.apps["iris-staging"]
    assert app["build_stack"]["name"] == "container"
    assert state.url == app["web_url"].rstrip("/")
    assert state.image_id == heroku_double.releases["iris-staging"][-1]["docker_image"]
    X, _ = iris
    r = httpx.post(f"{state.url}/predict", json={"data": {"values": X.head(2).to_dict("records")}},
                   trust_env=False)
    assert r.status_code == 200 and len(r.json()) == 2
    assert heroku_double.called("PATCH", "/apps/iris-staging/formation") == 1

    assert deploy(decl, saved_lr, credentials=CREDS, progress=False) == state
    assert heroku_double.called("PATCH", "/apps/iris-staging/formation") == 1  # a no-op

    with pytest.raises(RolledBackError, match="HTTP 500") as failed:
        deploy(decl, broken_lr, credentials=CREDS, progress=False)
    assert isinstance(failed.value.reason, SmokeTestError)
    assert failed.value.restored_state is not None
    assert failed.value.restored_state.model_hash == state.model_hash
    releases = heroku_double.releases["iris-staging"]
    assert [r["description"] for r in releases] == ["Deployed web", "Deployed web",
                                                    "Rollback to v1"]
    st = status(decl, credentials=CREDS)
    assert st.healthy and st.model_hash == state.model_hash and "v3" in st.detail

    remove(decl, credentials=CREDS)
    assert "iris-staging" not in heroku_double.apps
    assert status(decl, credentials=CREDS).deployed is False
    remove(decl, credentials=CREDS)  # already gone: the 404 is fine


def test_failed_first_rollout_deletes_the_new_app(heroku_decl, heroku_double, broken_lr):
    decl = heroku_decl("iris-broken")
    with pytest.raises(RolledBackError, match="deleted") as failed:
        deploy(decl, broken_lr, credentials=CREDS, progress=False)
    assert isinstance(failed.value.reason, SmokeTestError)
    assert failed.value.restored_state is None
    assert "iris-broken" not in heroku_double.apps
    assert status(decl, credentials=CREDS).deployed is False


def test_bad_credentials(heroku_api_decl, saved_lr, monkeypatch):
    decl = heroku_api_decl("iris-creds")
    with pytest.raises(CredentialsError, match="401 unauthorized"):
        deploy(decl, saved_lr, credentials={"api_key": "wrong-key"}, progress=False)
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    with pytest.raises(CredentialsError, match="HEROKU_API_KEY"):
        deploy(decl, saved_lr, progress=False)
    monkeypatch.setenv("HEROKU_API_KEY", "also-wrong")
    with pytest.raises(CredentialsError):
        status(decl)


def test_app_name_taken(heroku_api_decl, heroku_api, saved_lr):
    """Heroku answers 403 ``forbidden`` (not 404) for an app another account owns."""
    decl = heroku_api_decl(OTHERS_APP)
    with pytest.raises(AppNameTakenError, match="field 'app'"):
        deploy(decl, saved_lr, credentials=CREDS, progress=False)
    assert heroku_api.apps == {}
    assert heroku_api.called("POST", "/apps") == 0
