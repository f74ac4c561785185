"""The sagemaker target against the SageMaker double (tests/doubles/sagemaker.py) in front
of moto: endpoints with SageMaker's lifecycle, containers of the pushed image serving the
model data from S3, ECR's token opening the local registry that stands in for ECR's."""

from __future__ import annotations

import json

import pytest

from mlem_lib.deploy import deploy, remove, status
from mlem_lib.errors import CredentialsError, DeploymentError, RolledBackError, SmokeTestError


def _endpoint(session, moto_url, name):
    sm = session.client("sagemaker", endpoint_url=moto_url)
    return sm, sm.describe_endpoint(EndpointName=name)


def test_create_update_rollback_remove(sagemaker_decl, sagemaker_options, sagemaker_double,
                                       aws_session, moto_url, removed_after, saved_lr,
                                       saved_rf, broken_lr, iris):
    decl = removed_after(sagemaker_decl("iris-ep"), **sagemaker_options)
    first = deploy(decl, saved_lr, **sagemaker_options)
    sm, ep = _endpoint(aws_session, sagemaker_double.url, "iris-ep")
    assert ep["EndpointStatus"] == "InService"
    assert ep["EndpointConfigName"] == first.target["config"]
    model = sm.describe_model(ModelName=first.target["model"])["PrimaryContainer"]
    assert model["Image"] == first.image and model["ModelDataUrl"].endswith("model.tar.gz")
    assert sagemaker_double.invocations == ["iris-ep"]  # the smoke request went through it

    runtime = aws_session.client("sagemaker-runtime", endpoint_url=sagemaker_double.url)
    X, _ = iris
    answer = runtime.invoke_endpoint(
        EndpointName="iris-ep", ContentType="application/json",
        Body=json.dumps({"data": {"values": X.head(3).to_dict("records")}}))
    assert len(json.loads(answer["Body"].read())) == 3

    assert deploy(decl, saved_lr, **sagemaker_options) == first  # no-op
    second = deploy(decl, saved_rf, **sagemaker_options)
    assert sagemaker_double.count("UpdateEndpoint") == 1
    assert sagemaker_double.count("DeleteEndpoint") == 0  # updated in place, never deleted
    _, ep = _endpoint(aws_session, sagemaker_double.url, "iris-ep")
    assert ep["EndpointConfigName"] == second.target["config"] != first.target["config"]
    assert second.previous is not None and second.previous.model_hash == first.model_hash

    with pytest.raises(RolledBackError, match="ModelError") as failed:
        deploy(decl, broken_lr, **sagemaker_options)
    assert isinstance(failed.value.reason, SmokeTestError)
    _, ep = _endpoint(aws_session, sagemaker_double.url, "iris-ep")
    assert ep["EndpointConfigName"] == second.target["config"]  # switched back
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert configs >= {first.target["config"], second.target["config"]}
    assert not any(c.startswith("iris-ep-") and c not in (first.target["config"],
                                                          second.target["config"])
                   for c in configs)  # the failed version's config was deleted
    st = status(decl, **sagemaker_options)
    assert st.healthy and st.model_hash == second.model_hash

    remove(decl, **sagemaker_options)
    assert status(decl, **sagemaker_options).deployed is False
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert not any(c.startswith("iris-ep-") for c in configs)
    models = {m["ModelName"] for m in sm.list_models()["Models"]}
    assert not any(m.startswith("iris-ep-") for m in models)
    remove(decl, **sagemaker_options)  # already gone


def test_endpoint_never_passes_ping(sagemaker_decl, sagemaker_options, sagemaker_double,
                                    aws_session, moto_url, saved_lr):
    decl = sagemaker_decl("stuck-ep")
    sagemaker_double.ping_timeout = 1.0  # the container cannot answer /ping that fast
    with pytest.raises(DeploymentError, match="did not pass the ping health check"):
        deploy(decl, saved_lr, **sagemaker_options)
    sagemaker_double.wait_settled()
    sm = aws_session.client("sagemaker", endpoint_url=sagemaker_double.url)
    assert not [e for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"] == "stuck-ep"]
    assert status(decl, **sagemaker_options).deployed is False


def test_registry_refuses_credentials(sagemaker_decl, sagemaker_options, saved_lr):
    decl = sagemaker_decl("creds-ep")
    with pytest.raises(CredentialsError):
        deploy(decl, saved_lr, credentials={**sagemaker_options["credentials"],
                                            "registry_username": "mlem",
                                            "registry_password": "wrong"})


def test_no_aws_credentials(sagemaker_api_decl, monkeypatch, tmp_path, saved_lr):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    decl = sagemaker_api_decl("nocreds-ep")
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        deploy(decl, saved_lr, credentials={"region_name": "us-east-1"}, progress=False)


def test_interrupted_rollout_rerun(sagemaker_decl, sagemaker_options, aws_session, moto_url,
                                   removed_after, saved_lr):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    decl = removed_after(sagemaker_decl("int-ep"), **sagemaker_options)
    code = ("from mlem_lib.deploy import deploy\n"
            f"deploy({decl!r}, {saved_lr!r}, credentials={sagemaker_options['credentials']!r}, "
            "progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    sm = aws_session.client("sagemaker", endpoint_url=moto_url)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not [
            m for m in sm.list_models()["Models"] if m["ModelName"].startswith("int-ep-")]:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # mid-rollout: model created, lock left behind
    proc.wait()
    assert not Path(decl).with_name("int-ep.state.json").exists()
    assert Path(decl).with_name("int-ep.state.json.lock").exists()

    state = deploy(decl, saved_lr, **sagemaker_options)  # reuses what exists, finishes
    assert [m["ModelName"] for m in sm.list_models()["Models"]
            if m["ModelName"].startswith("int-ep-")] == [state.target["model"]]
    assert status(decl, **sagemaker_options).healthy
