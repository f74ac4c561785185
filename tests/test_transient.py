"""Failures a retry may fix reach callers as ``TransientError``; the rest do not.

Prefect's retry conditions check ``isinstance(exc, TransientError)`` only, so the core
must translate its client libraries' network failures at its boundaries.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from mlem_lib.errors import SchemaError, TransientError, TransientStorageError
from mlem_lib.transient import is_transient, reraise_transient
from tests.conftest import REPO_ROOT, free_port

UNREACHABLE_S3 = """
import mlem_lib.api as mlem
from mlem_lib.errors import TransientStorageError
try:
    mlem.load_meta("s3://no-such-bucket/models/rf")
except TransientStorageError as exc:
    print("transient:", str(exc).splitlines()[0][:60])
"""


def test_an_unreachable_object_store_is_a_transient_storage_error():
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", UNREACHABLE_S3], capture_output=True,
                         text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("transient: reading s3://no-such-bucket/models/rf")


def test_client_library_network_errors_are_transient_and_keep_their_cause():
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    with pytest.raises(TransientStorageError) as info, \
            reraise_transient("saving s3://b/rf", storage=True):
        raise httpx.ConnectError("connection refused", request=request)
    assert isinstance(info.value, TransientError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_our_own_errors_and_plain_bugs_pass_through_unchanged():
    with pytest.raises(SchemaError), reraise_transient("applying"):
        raise SchemaError("bad column", field="x")
    with pytest.raises(KeyError), reraise_transient("applying"):
        raise KeyError("x")
    assert not is_transient(ValueError("nope"))


def test_throttling_answers_of_aws_apis_are_transient():
    class ClientError(Exception):  # the shape botocore gives its ClientError
        response = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}

    class Denied(Exception):
        response = {"Error": {"Code": "AccessDenied", "Message": "no"}}

    assert is_transient(ClientError()) and not is_transient(Denied())
