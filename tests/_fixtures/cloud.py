"""Fixtures for the Heroku and SageMaker tests (loaded by conftest.py): two model versions
that answer differently, and SageMaker models/configs made directly in moto.

Served-model identity is checked on what the *server* says (``/health``'s
``model_hash``) and on answers that differ between versions: ``saved_lr`` predicts
``[0, 1, 2]`` on :data:`IDENTITY_ROWS` (one row of each class), ``saved_lr_v2`` predicts
``[1, 2, 0]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

IDENTITY_ROWS = [0, 50, 100]  # one iris row of each class


@pytest.fixture(scope="session")
def saved_lr_v2(iris: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Version 2 of the iris model: same schema as ``saved_lr``, labels shifted by one,
    so on :data:`IDENTITY_ROWS` it answers ``[1, 2, 0]`` where version 1 answers ``[0, 1, 2]``."""
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = iris
    path = str(tmp_path_factory.mktemp("models") / "lr_v2")
    mlem.save(LogisticRegression(max_iter=500).fit(X, (y + 1) % 3), path, sample_data=X,
              description="iris logistic regression, version 2")
    return path


@pytest.fixture(scope="session")
def identity_rows(iris: Any) -> Any:
    """The rows whose predictions tell the two versions apart."""
    return iris[0].iloc[IDENTITY_ROWS].reset_index(drop=True)


def model_hash(path: str) -> str:
    """The ``model_hash`` recorded in a saved model's ``.mlem`` file."""
    from mlem_lib.deploy.package import read_model_meta

    return read_model_meta(path).model_hash


@pytest.fixture
def sagemaker_config(aws_session: Any, moto_url: str, tmp_path: Path
                     ) -> Callable[[str], str]:
    """``sagemaker_config(model_path)``: upload the model's ``model.tar.gz`` to moto's S3,
    create a SageMaker model and endpoint config for it; returns the config's name."""
    from mlem_lib.deploy.package import model_tarball

    s3 = aws_session.client("s3", endpoint_url=moto_url)
    sm = aws_session.client("sagemaker", endpoint_url=moto_url)
    bucket = f"cfg-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    def make(model: str) -> str:
        name = f"cfg-{uuid.uuid4().hex[:12]}"
        tarball = str(tmp_path / f"{name}.tar.gz")
        model_tarball(model, tarball)
        s3.upload_file(tarball, bucket, f"{name}/model.tar.gz")
        sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                        PrimaryContainer={"Image": "mlem:prebuilt",
                                          "ModelDataUrl": f"s3://{bucket}/{name}/model.tar.gz",
                                          "Environment": {"MLEM_MODEL": "/opt/ml/model/model"}})
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.t2.medium",
            "InitialInstanceCount": 1}])
        return name

    return make
