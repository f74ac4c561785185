"""The heroku target against the Platform API double and a real local registry + engine."""

from __future__ import annotations

import itertools

import httpx
import pytest

from mlem_lib.deploy import deploy, remove, rollback, status
from mlem_lib.errors import (
    AppNameTakenError,
    BuildError,
    CredentialsError,
    DeploymentError,
    RolledBackError,
    SmokeTestError,
    TargetFailedError,
)
from tests._fixtures.cloud import model_hash
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


def _serves(double, app: str, url: str, model: str, rows, answers: list[int]) -> None:
    """The app's dyno reports ``model`` on /health and answers ``answers`` on ``rows``."""
    assert double.served_hash(app) == model_hash(model)
    r = httpx.post(f"{url}/predict", json={"data": {"values": rows.to_dict("records")}},
                   trust_env=False, timeout=30)
    assert r.status_code == 200 and r.json() == answers


def test_heroku_limits_on_an_app_with_history(heroku_decl, heroku_double, saved_lr,
                                              saved_lr_v2, broken_lr, identity_rows):
    """An existing app with 450 releases (more than one page), pending releases, a rate
    limit during the rollout, a failed release, a smoke failure, rollback and remove."""
    heroku_double.seed_app("iris-history", releases=450)
    heroku_double.release_delay = 1.0  # every release is pending for a second
    decl = heroku_decl("iris-history")
    first = deploy(decl, saved_lr, credentials=CREDS, progress=False)
    assert first.target["release_version"] == 451 and first.target["created_app"] is False
    _serves(heroku_double, "iris-history", first.url, saved_lr, identity_rows, [0, 1, 2])
    st = status(decl, credentials=CREDS)
    assert st.healthy and "release v451 (succeeded)" in st.detail

    # polls slow down as a wait goes on: the release stayed pending for a second, polled
    # after pauses of 0.3, 0.45, 0.675 s (each gap adds the call itself, whose time varies
    # with the machine's load). Not the dyno polls: how many of those a wait takes depends
    # on how fast the container starts (on a quiet machine, two).
    polls = [t for t, method, path, _ in heroku_double.calls
             if method == "GET" and path.startswith("/apps/iris-history/releases/")]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert len(gaps) >= 2 and max(gaps[1:]) > gaps[0] + 0.1, gaps

    # the account's budget runs out during the rollout: 429s are waited out
    heroku_double.rate_limit(remaining=2, refill_per_second=1.0, most=2)
    second = deploy(decl, saved_lr_v2, credentials=CREDS, progress=False)
    assert [s for *_, s in heroku_double.calls].count(429) >= 1
    _serves(heroku_double, "iris-history", second.url, saved_lr_v2, identity_rows, [1, 2, 0])
    heroku_double.budget = None

    # the release phase fails: a failed rollout, v2 keeps running
    heroku_double.fail_releases = 1
    with pytest.raises(RolledBackError, match="release v453 of iris-history failed") as err:
        deploy(decl, saved_lr, credentials=CREDS, progress=False)
    assert isinstance(err.value.reason, TargetFailedError)
    assert heroku_double.releases["iris-history"][-1]["status"] == "failed"
    _serves(heroku_double, "iris-history", second.url, saved_lr_v2, identity_rows, [1, 2, 0])

    # the smoke request fails: Heroku's rollback puts v2's release back
    with pytest.raises(RolledBackError, match="HTTP 500"):
        deploy(decl, broken_lr, credentials=CREDS, progress=False)
    _serves(heroku_double, "iris-history", second.url, saved_lr_v2, identity_rows, [1, 2, 0])

    back = rollback(decl, credentials=CREDS)
    assert back.model_hash == first.model_hash
    _serves(heroku_double, "iris-history", back.url, saved_lr, identity_rows, [0, 1, 2])

    # the app existed before mlem_lib deployed to it: remove refuses without force
    with pytest.raises(DeploymentError, match="not created by mlem_lib"):
        remove(decl, credentials=CREDS)
    assert "iris-history" in heroku_double.apps
    remove(decl, credentials=CREDS, force=True)
    assert "iris-history" not in heroku_double.apps


def test_a_rollout_failing_after_creating_the_app_deletes_it(heroku_decl, heroku_double,
                                                             saved_lr):
    decl = heroku_decl("iris-nobuild", base="mlem-missing-base:0")  # the build fails
    with pytest.raises(RolledBackError, match="deleted") as err:
        deploy(decl, saved_lr, credentials=CREDS, progress=False)
    assert isinstance(err.value.reason, BuildError)
    assert heroku_double.called("POST", "/apps") == 1
    assert "iris-nobuild" not in heroku_double.apps


def test_remove_refuses_an_app_without_a_recorded_deployment(heroku_api_decl, heroku_api):
    heroku_api.seed_app("iris-foreign")
    decl = heroku_api_decl("iris-foreign")
    with pytest.raises(DeploymentError, match="no deployment of it is recorded"):
        remove(decl, credentials=CREDS)
    assert "iris-foreign" in heroku_api.apps
    remove(decl, credentials=CREDS, force=True)
    assert "iris-foreign" not in heroku_api.apps


def test_batching_settings_become_config_vars(heroku_decl, heroku_double, removed_after,
                                              saved_lr, saved_lr_v2, identity_rows):
    """Regression: batch_max_size/batch_max_latency_ms reached local and SageMaker servers
    but never a Heroku dyno (no config vars were set)."""
    decl = removed_after(heroku_decl("iris-batched", batch_max_size=8,
                                     batch_max_latency_ms=2), credentials=CREDS)
    state = deploy(decl, saved_lr, credentials=CREDS, progress=False)
    batching = {"MLEM_BATCH_MAX_SIZE": "8", "MLEM_BATCH_MAX_LATENCY_MS": "2"}
    assert heroku_double.config["iris-batched"] == batching
    running = [r for r in heroku_double.releases["iris-batched"] if r["current"]]
    assert running[0]["id"] == state.target["release_id"]
    assert running[0]["config"] == batching  # what the web dyno runs with
    _serves(heroku_double, "iris-batched", state.url, saved_lr, identity_rows, [0, 1, 2])

    unbatched = heroku_decl("iris-batched")  # the settings dropped: the vars go too
    state = deploy(unbatched, saved_lr_v2, credentials=CREDS, progress=False)
    assert heroku_double.config["iris-batched"] == {}
    _serves(heroku_double, "iris-batched", state.url, saved_lr_v2, identity_rows, [1, 2, 0])


@pytest.mark.slow
def test_model_runtime_onnx_image_runs_onnx_runtime(heroku_decl, heroku_double, removed_after,
                                                    saved_lr, identity_rows, docker_client):
    """Regression: ``model_runtime: onnx`` set MLEM_MODEL_RUNTIME=onnx on a Heroku image built
    without ONNX Runtime or the converter, so the dyno could not start its server."""
    decl = removed_after(heroku_decl("iris-onnx", model_runtime="onnx"), credentials=CREDS)
    state = deploy(decl, saved_lr, credentials=CREDS, progress=False)
    assert heroku_double.config["iris-onnx"] == {"MLEM_MODEL_RUNTIME": "onnx"}
    _serves(heroku_double, "iris-onnx", state.url, saved_lr, identity_rows, [0, 1, 2])
    found = docker_client.containers.run(
        state.image_id, entrypoint=["python", "-c", "import onnxruntime, skl2onnx; print('ok')"],
        remove=True, network_mode="host").decode()
    assert found.strip() == "ok"
