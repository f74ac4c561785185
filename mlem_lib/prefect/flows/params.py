"""Pydantic models of the flows' parameters: Prefect renders them as validated forms.

Example:
    >>> RolloutRequest(model="iris@v0.0.1", declaration="deployments/local.yaml").stage is None
    True
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_NAME = r"^[A-Za-z0-9][\w.-]*$"
_STAGE = r"^[a-z][a-z0-9-]*$"
_VERSION = r"^v?\d+\.\d+\.\d+$"
_REF_HELP = "saved model path, or rf@v1.2.0 / rf@latest / rf#prod"
Bump = Literal["patch", "minor", "major"]
Sample = list[dict[str, Any]] | list[list[Any]]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterOptions(_Params):
    """How ``register_model`` saves and registers a trained model."""

    name: str = Field(..., pattern=_NAME, description="model name in the registry and file name")
    repo: str = Field(default=".", description="git repository that is the registry")
    models_dir: str = Field(default="models", description="folder in the repo for saved models")
    version: str | None = Field(default=None, pattern=_VERSION,
                                description="explicit version (default: bump the latest)")
    bump: Bump = Field(default="patch", description="part of the version to bump")
    description: str | None = Field(default=None, description="free text for the model card")
    labels: list[str] = Field(default_factory=list, description="tags for the metadata")
    push: bool = Field(default=True, description="push the binary with DVC")
    stage: str | None = Field(default=None, pattern=_STAGE,
                              description="assign this stage to the new version (e.g. staging)")


class RegisterSavedRequest(_Params):
    """``register_saved_model``: register a model that is already saved inside the repo."""

    model_path: str = Field(..., description="saved model path inside the repo (no .mlem)")
    repo: str = Field(default=".", description="git repository that is the registry")
    version: str | None = Field(default=None, pattern=_VERSION)
    bump: Bump = Field(default="patch")
    metrics: dict[str, float] = Field(default_factory=dict,
                                      description="metrics shown on the model card")
    push: bool = Field(default=True, description="push the binary with DVC")
    stage: str | None = Field(default=None, pattern=_STAGE)


class PackageRequest(_Params):
    """``package_model``: what to build for a model path, version or stage reference."""

    model: str = Field(..., description=_REF_HELP)
    repo: str = Field(default=".", description="registry repository for a reference")
    pip: bool = Field(default=True, description="build an sdist and a wheel")
    docker: bool = Field(default=False, description="build a docker image")
    target: str = Field(default="build", description="output folder of the pip package")
    image: str | None = Field(default=None, description="image name:tag (default: name:version)")
    base: str | None = Field(default=None, description="base image (default: python:3.11-slim)")
    push_to: str | None = Field(default=None, description="registry host to push the image to")
    registry_username: str | None = Field(default=None)
    registry_password_secret: str | None = Field(
        default=None, description="name of a Prefect Secret block with the registry password")


class RolloutRequest(_Params):
    """``rollout_model``: deploy a model to a declared target, check it, maybe promote it."""

    model: str = Field(..., description=_REF_HELP)
    repo: str = Field(default=".", description="registry repository for a reference")
    declaration: str = Field(default="deployments/local.yaml",
                             description="deployment declaration (YAML in deployments/)")
    sample: Sample | None = Field(
        default=None, description="rows sent in the smoke test (default: the schema's example)")
    method: str = Field(default="predict", description="method the smoke test calls")
    package: PackageRequest | None = Field(
        default=None, description="build packages first (model and repo come from here)")
    stage: str | None = Field(default=None, pattern=_STAGE,
                              description="assign this stage to the version once it answers")
    aws_credentials_block: str | None = Field(
        default=None, description="name of a saved prefect-aws AwsCredentials block")
    heroku_credentials_block: str | None = Field(
        default=None, description="name of a saved HerokuCredentials block")
    state_url: str | None = Field(default=None, description="override of the state file")
    smoke_timeout: float = Field(default=60.0, gt=0, le=3600,
                                 description="seconds to wait for the deployment to answer")


class RedeployRequest(_Params):
    """``redeploy_stage``: keep a deployment on whatever version holds a stage."""

    name: str = Field(..., pattern=_NAME, description="model name in the registry")
    stage: str = Field(default="prod", pattern=_STAGE, description="stage to follow")
    repo: str = Field(default=".", description="registry repository")
    declaration: str = Field(default="deployments/local.yaml",
                             description="deployment declaration")
    sample: Sample | None = Field(default=None, description="rows sent in the smoke test")
    method: str = Field(default="predict", description="method the smoke test calls")
    aws_credentials_block: str | None = Field(default=None)
    heroku_credentials_block: str | None = Field(default=None)
    state_url: str | None = Field(default=None, description="override of the state file")
    smoke_timeout: float = Field(default=60.0, gt=0, le=3600)

