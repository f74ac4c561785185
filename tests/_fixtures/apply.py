"""Fixtures for the apply tests (loaded by conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IRIS_FORMATS = ("csv", "parquet", "jsonl", "npy", "mlem")


@pytest.fixture(scope="session")
def iris_files(iris: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The iris features in every input format, keyed by format name.

    The Parquet file has row groups of 40 rows (150 rows: 4 groups, the last one short),
    so row-group partitions and chunking are exercised. ``mlem`` is a saved data
    object given by its ``.mlem`` file; ``mlem-bare`` is the same without the suffix.
    """
    import numpy as np

    import mlem_lib.api as mlem

    X, _ = iris
    folder = tmp_path_factory.mktemp("iris-files")
    paths = {fmt: str(folder / f"iris.{fmt}") for fmt in ("csv", "parquet", "jsonl", "npy")}
    X.to_csv(paths["csv"], index=False)
    X.to_parquet(paths["parquet"], index=False, row_group_size=40)
    X.to_json(paths["jsonl"], orient="records", lines=True)
    np.save(paths["npy"], X.to_numpy())
    mlem.save(X, str(folder / "iris_data"))
    paths["mlem"] = str(folder / "iris_data.mlem")
    paths["mlem-bare"] = str(folder / "iris_data")
    return paths


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with an empty bucket; yields ``s3://<bucket>``.

    The AWS variables point s3fs and boto3 at it for the rest of the session.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_SESSION_TOKEN", "AWS_PROFILE"]}
    os.environ.update(env)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="mlem-apply")
        yield "s3://mlem-apply"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def served_lr(saved_lr: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlem serve`` of the iris LogisticRegression on 127.0.0.1; yields its URL."""
    from tests._fixtures.serve import stop, wait_ready
    from tests.conftest import free_port

    port = free_port()
    log = Path(tmp_path_factory.mktemp("serve-log")) / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlem_lib.cli", "serve", saved_lr, "--host", "127.0.0.1",
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, timeout=90.0)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def dask_address() -> Iterator[str]:
    """A real ``distributed.LocalCluster`` with two worker processes on 127.0.0.1."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
