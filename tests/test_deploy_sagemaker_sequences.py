"""The sagemaker target's rollouts against the SageMaker double, without Docker.

The declarations name a prebuilt ``image`` (so nothing is built or pushed) and the
double runs each model from its S3 data as a local process of the image's entrypoint.
Everything else is the real path: S3 upload, models and configs in moto, the endpoint
lifecycle, ``invoke_endpoint``, the state file. After every change the test asks the
*server* which model it serves (``/health``) and checks answers that differ between
the two versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from mlem_lib.deploy import deploy, remove, rollback, status
from mlem_lib.deploy.state import StateStore
from mlem_lib.errors import (
    DeploymentError,
    RolledBackError,
    SmokeTestError,
    TargetNotReadyError,
    UpdateRevertedError,
)
from tests._fixtures.cloud import model_hash
from tests.conftest import REPO_ROOT, free_port

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlem:prebuilt"


@pytest.fixture
def endpoint(sagemaker_api_decl, removed_after, sagemaker_options):
    def make(name: str, **fields):
        return removed_after(sagemaker_api_decl(name, image=IMAGE, wait_timeout=300,
                                                **fields), **sagemaker_options)
    return make


def _predict(aws_session, double, name: str, rows) -> list[int]:
    runtime = aws_session.client("sagemaker-runtime", endpoint_url=double.url)
    answer = runtime.invoke_endpoint(
        EndpointName=name, ContentType="application/json",
        Body=json.dumps({"data": {"values": rows.to_dict("records")}}))
    return list(json.loads(answer["Body"].read()))


def _serves(double, aws_session, name, rows, model: str, answers: list[int]) -> None:
    assert double.served_hash(name) == model_hash(model)
    assert _predict(aws_session, double, name, rows) == answers


def test_update_failed_update_smoke_failure_and_rollback(
        endpoint, sagemaker_api, sagemaker_options, aws_session, saved_lr, saved_lr_v2,
        broken_lr, identity_rows):
    decl = endpoint("seq-ep")
    first = deploy(decl, saved_lr, **sagemaker_options)
    _serves(sagemaker_api, aws_session, "seq-ep", identity_rows, saved_lr, [0, 1, 2])

    second = deploy(decl, saved_lr_v2, **sagemaker_options)
    _serves(sagemaker_api, aws_session, "seq-ep", identity_rows, saved_lr_v2, [1, 2, 0])
    assert sagemaker_api.count("UpdateEndpoint") == 1
    assert sagemaker_api.count("DeleteEndpoint") == 0  # updated in place

    # the new container cannot pass /ping: SageMaker puts config v2 back by itself
    sagemaker_api.ping_timeout = 0.5
    started = time.monotonic()
    with pytest.raises(RolledBackError, match="ping health check") as failed:
        deploy(decl, saved_lr, **sagemaker_options)  # v1 again (its config is reused)
    assert time.monotonic() - started < 120  # seen at once, not after wait_timeout
    assert isinstance(failed.value.reason, UpdateRevertedError)
    recorded = StateStore(str(decl).replace(".yaml", ".state.json")).load()
    assert recorded.model_hash == second.model_hash
    assert recorded.target["failed_update"]["model_hash"] == first.model_hash
    assert "ping health check" in recorded.target["failed_update"]["reason"]
    _serves(sagemaker_api, aws_session, "seq-ep", identity_rows, saved_lr_v2, [1, 2, 0])
    sagemaker_api.ping_timeout = 180.0

    # the smoke request fails: the target switches back itself
    with pytest.raises(RolledBackError, match="ModelError") as failed:
        deploy(decl, broken_lr, **sagemaker_options)
    assert isinstance(failed.value.reason, SmokeTestError)
    _serves(sagemaker_api, aws_session, "seq-ep", identity_rows, saved_lr_v2, [1, 2, 0])
    assert status(decl, **sagemaker_options).healthy

    back = rollback(decl, **sagemaker_options)
    assert back.model_hash == first.model_hash
    _serves(sagemaker_api, aws_session, "seq-ep", identity_rows, saved_lr, [0, 1, 2])
    assert sagemaker_api.count("DeleteEndpoint") == 0


def test_throttling_and_a_busy_endpoint(endpoint, sagemaker_api, sagemaker_options,
                                        aws_session, saved_lr, saved_lr_v2, identity_rows):
    decl = endpoint("busy-seq-ep")
    lines: list[str] = []
    sagemaker_api.fail("CreateEndpoint", "ThrottlingException", times=2)
    sagemaker_api.fail("DescribeEndpoint", "ThrottlingException", times=2)
    first = deploy(decl, saved_lr, **{**sagemaker_options, "progress": lines.append})
    assert sum("throttled" in line for line in lines) == 4
    assert sagemaker_api.count("CreateEndpoint") == 3

    # another run's update is in progress: a clear error, nothing changed, state true
    sagemaker_api.fail("UpdateEndpoint", "ValidationException", message=(
        "Cannot update in-progress endpoint "
        "'arn:aws:sagemaker:us-east-1:123456789012:endpoint/busy-seq-ep'."))
    with pytest.raises(TargetNotReadyError, match="another operation is in progress"):
        deploy(decl, saved_lr_v2, **sagemaker_options)
    assert StateStore(str(decl).replace(".yaml", ".state.json")).load() == first
    _serves(sagemaker_api, aws_session, "busy-seq-ep", identity_rows, saved_lr, [0, 1, 2])

    # a transient 5xx on update_endpoint never deletes the live endpoint
    sagemaker_api.fail("UpdateEndpoint", "InternalFailure", status=500)
    with pytest.raises(DeploymentError, match=r"InternalFailure.*InService on config"):
        deploy(decl, saved_lr_v2, **sagemaker_options)
    assert sagemaker_api.count("DeleteEndpoint") == 0
    _serves(sagemaker_api, aws_session, "busy-seq-ep", identity_rows, saved_lr, [0, 1, 2])


def test_ecr_login_comes_from_the_authorization_token(sagemaker_api_decl, sagemaker_options):
    """No registry credentials given: user and password come from ECR's token, the host
    from the repository (account and region)."""
    from mlem_lib.deploy import open_deployment

    target = open_deployment(sagemaker_api_decl("ecr-ep"),
                             credentials=sagemaker_options["credentials"]).target
    host, user, password = target.registry_auth()  # moto's ECR through the double
    assert host == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert (user, password) == ("AWS", "123456789012-auth-token")


def test_unreachable_sagemaker_is_one_line_on_the_cli(sagemaker_api_decl):
    url = f"http://127.0.0.1:{free_port()}"
    decl = sagemaker_api_decl("gone-ep", endpoint_urls={"sagemaker": url, "s3": url})
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "deployment", "status", decl],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
                         env={**os.environ, "AWS_ACCESS_KEY_ID": "testing",
                              "AWS_SECRET_ACCESS_KEY": "testing"})
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach AWS sagemaker" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_remove_and_status_after(endpoint, sagemaker_api, sagemaker_options, saved_lr):
    decl = endpoint("gone-after-ep")
    deploy(decl, saved_lr, **sagemaker_options)
    remove(decl, **sagemaker_options)
    sagemaker_api.wait_settled()
    assert status(decl, **sagemaker_options).deployed is False
