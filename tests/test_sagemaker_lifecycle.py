"""SageMaker's endpoint lifecycle, throttling and network errors, read by
``mlem_lib.deploy.sagemaker_endpoint`` and ``mlem_lib.deploy.aws`` against the SageMaker
double in front of moto. No Docker: the double runs each model as a local process of the
image's entrypoint (tests/doubles/sagemaker.py ``ProcessInstances``)."""

from __future__ import annotations

import json
import time

import pytest

from mlem_lib.deploy.aws import AwsCalls
from mlem_lib.deploy.sagemaker_endpoint import Endpoint
from mlem_lib.errors import (
    CredentialsError,
    DeploymentError,
    NetworkError,
    TargetFailedError,
    TargetNotReadyError,
    TargetUnreachableError,
    UpdateRevertedError,
)
from tests._fixtures.cloud import model_hash
from tests.conftest import free_port

WAIT = 300.0  # generous: a busy 2-core machine starts a model server in 5-25 s


def _calls(session, url: str, lines: list[str] | None = None, **options) -> AwsCalls:
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=70)
    clients = {}

    def client(service: str):
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=url, config=config)
        return clients[service]

    return AwsCalls(client, lines.append if lines is not None else None,
                    **{"first": 0.05, **options})


@pytest.fixture
def calls(aws_session, sagemaker_api):
    return _calls(aws_session, sagemaker_api.url)


def _invoke(aws_session, url: str, endpoint: str, rows) -> list[int]:
    runtime = aws_session.client("sagemaker-runtime", endpoint_url=url)
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json",
        Body=json.dumps({"data": {"values": rows.to_dict("records")}}))
    return list(json.loads(answer["Body"].read()))


def test_create_then_update_in_place_never_deletes(calls, sagemaker_api, sagemaker_config,
                                                   aws_session, saved_lr, saved_lr_v2,
                                                   identity_rows):
    v1, v2 = sagemaker_config(saved_lr), sagemaker_config(saved_lr_v2)
    ep = Endpoint(calls, "life-ep", poll=0.2, timeout=WAIT)
    ep.create(v1)
    assert ep.describe()["EndpointStatus"] == "Creating"  # not InService at once
    ep.wait(v1)
    assert sagemaker_api.served_hash("life-ep") == model_hash(saved_lr)
    assert _invoke(aws_session, sagemaker_api.url, "life-ep", identity_rows) == [0, 1, 2]

    before = ep.update(v2)
    assert ep.describe()["EndpointStatus"] == "Updating"
    # the old config keeps serving while the new one comes up beside it
    assert _invoke(aws_session, sagemaker_api.url, "life-ep", identity_rows) == [0, 1, 2]
    ep.wait(v2, before)
    assert sagemaker_api.served_hash("life-ep") == model_hash(saved_lr_v2)
    assert _invoke(aws_session, sagemaker_api.url, "life-ep", identity_rows) == [1, 2, 0]
    assert sagemaker_api.count("UpdateEndpoint") == 1
    assert sagemaker_api.count("DeleteEndpoint") == 0
    assert ep.delete() and (ep.wait_gone() or True) and ep.describe() is None


def test_failed_update_is_seen_at_once_and_the_old_config_serves(
        calls, sagemaker_api, sagemaker_config, saved_lr, saved_lr_v2):
    v1, v2 = sagemaker_config(saved_lr), sagemaker_config(saved_lr_v2)
    ep = Endpoint(calls, "revert-ep", poll=0.2, timeout=WAIT)
    ep.create(v1)
    ep.wait(v1)
    sagemaker_api.ping_timeout = 0.5  # the new container cannot pass /ping in time
    before = ep.update(v2)
    started = time.monotonic()
    with pytest.raises(UpdateRevertedError, match="ping health check") as err:
        ep.wait(v2, before)
    assert time.monotonic() - started < 60  # not the whole wait_timeout
    assert err.value.restored == v1 and "ping health check" in err.value.reason
    desc = ep.describe()
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", v1)
    assert sagemaker_api.served_hash("revert-ep") == model_hash(saved_lr)
    ep.delete()


def test_failed_creation_names_the_reason(calls, sagemaker_api, sagemaker_config, saved_lr):
    v1 = sagemaker_config(saved_lr)
    sagemaker_api.ping_timeout = 0.5
    ep = Endpoint(calls, "failed-ep", poll=0.2, timeout=WAIT)
    ep.create(v1)
    with pytest.raises(TargetFailedError, match="ping health check") as err:
        ep.wait(v1)
    assert not isinstance(err.value, UpdateRevertedError)
    assert ep.describe()["EndpointStatus"] == "Failed"
    ep.delete()


def test_update_in_progress_is_not_ready_and_changes_nothing(calls, sagemaker_api,
                                                             sagemaker_config, saved_lr,
                                                             saved_lr_v2):
    v1, v2 = sagemaker_config(saved_lr), sagemaker_config(saved_lr_v2)
    ep = Endpoint(calls, "busy-ep", poll=0.2, timeout=WAIT)
    ep.create(v1)
    with pytest.raises(TargetNotReadyError, match="Creating on config"):
        ep.update(v2)  # still Creating: refused before calling UpdateEndpoint
    assert sagemaker_api.count("UpdateEndpoint") == 0
    ep.wait(v1)
    # another run's update starts between our DescribeEndpoint and our UpdateEndpoint
    sagemaker_api.fail("UpdateEndpoint", "ValidationException", message=(
        "Cannot update in-progress endpoint "
        "'arn:aws:sagemaker:us-east-1:123456789012:endpoint/busy-ep'."))
    with pytest.raises(TargetNotReadyError, match="another operation is in progress"):
        ep.update(v2)
    desc = ep.describe()
    assert (desc["EndpointStatus"], desc["EndpointConfigName"]) == ("InService", v1)
    ep.wait(v2, ep.update(v2))
    assert ep.describe()["EndpointConfigName"] == v2
    ep.delete()


def test_throttling_is_retried_with_growing_pauses(aws_session, sagemaker_api):
    lines: list[str] = []
    calls = _calls(aws_session, sagemaker_api.url, lines)
    sagemaker_api.fail("ListEndpoints", "ThrottlingException", times=3)
    assert calls("sagemaker", "list_endpoints")["Endpoints"] == []
    assert sagemaker_api.count("ListEndpoints") == 4
    pauses = [float(line.rsplit(" ", 1)[-1].rstrip("s")) for line in lines]
    assert len(pauses) == 3 and pauses[0] < pauses[1] < pauses[2]

    sagemaker_api.fail("ListEndpoints", "ThrottlingException", times=3)
    with pytest.raises(TargetNotReadyError, match="kept throttling"):
        _calls(aws_session, sagemaker_api.url, attempts=3)("sagemaker", "list_endpoints")


def test_other_errors_are_not_retried(calls, sagemaker_api):
    from botocore.exceptions import ClientError

    sagemaker_api.fail("ListEndpoints", "InternalFailure", status=500)
    with pytest.raises(ClientError, match="InternalFailure"):
        calls("sagemaker", "list_endpoints")
    assert sagemaker_api.count("ListEndpoints") == 1
    sagemaker_api.fail("ListEndpoints", "AccessDeniedException", status=400)
    with pytest.raises(CredentialsError, match="AccessDeniedException"):
        calls("sagemaker", "list_endpoints")


def test_error_lines_give_the_code_and_the_first_line():
    from botocore.exceptions import ClientError

    from mlem_lib.deploy.aws import describe, error_code, http_status

    exc = ClientError({"Error": {"Code": "ValidationException", "Message": "first\nsecond"},
                       "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateEndpoint")
    assert describe(exc) == "ValidationException: first"
    assert (error_code(exc), http_status(exc)) == ("ValidationException", 400)
    assert describe(ValueError("plain\nmore")) == "ValueError: plain"
    assert (error_code(ValueError()), http_status(ValueError())) == ("", 0)


def test_network_errors_are_one_line(aws_session):
    calls = _calls(aws_session, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TargetUnreachableError) as err:
        calls("sagemaker", "describe_endpoint", EndpointName="nowhere")
    message = str(err.value)
    assert "\n" not in message and "cannot reach AWS sagemaker" in message
    assert isinstance(err.value, NetworkError) and isinstance(err.value, DeploymentError)
