"""Pydantic models of the flows' parameters: Prefect renders them as validated forms.

Every field has a description (the UI shows it under the input), and the patterns are
the registry's own rules (GTO's names), so a bad value is refused before a run starts.

Example:
    >>> RolloutRequest(model="iris@v0.0.1", declaration="deployments/local.yaml").stage is None
    True
    >>> from pydantic import ValidationError
    >>> try:
    ...     RolloutRequest(model="iris@v0.0.1", stage="Bad Stage!")
    ... except ValidationError as exc:
    ...     print(exc.errors()[0]["loc"], exc.errors()[0]["ctx"]["pattern"])
    ('stage',) ^[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?$
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# GTO's rule for model and stage names: letters, digits, '_', '-', '/', starting and ending
# with a letter or digit. (Character classes start with an upper-case letter on purpose:
# Prefect's CLI prints validation errors through Rich, which would take "[a-z]" for markup
# and show the pattern "^[a-z][a-z0-9-]*$" as "^*$".)
NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?$"
VERSION_PATTERN = r"^v?\d+\.\d+\.\d+$"

Bump = Annotated[Literal["patch", "minor", "major"],
                 Field(description="The part of the version to bump.")]
ModelRef = Annotated[str, Field(description="A saved model's path, or a registry reference: "
                                            "rf@v1.2.0, rf@latest or rf#prod.")]
Repo = Annotated[str, Field(description="The git repository that is the registry (a local "
                                        "path).")]
Version = Annotated[str | None, Field(pattern=VERSION_PATTERN,
                                      description="An explicit version, e.g. v1.2.0 (default: "
                                                  "bump the latest).")]
NewStage = Annotated[str | None, Field(pattern=NAME_PATTERN,
                                       description="Assign this stage (e.g. staging) to the "
                                                   "new version.")]
Push = Annotated[bool, Field(description="Push the binary to the DVC remote.")]
Declaration = Annotated[str, Field(description="The deployment declaration (a YAML file).")]
Sample = Annotated[list[dict[str, Any]] | list[list[Any]] | None, Field(
    description="Rows sent in the smoke test, as a list of row objects or of lists "
                "(default: the example built from the saved schema).")]
Method = Annotated[str, Field(description="The method the smoke test calls.")]
Credentials = Annotated[str | None, Field(
    description="Credentials for the deployment target: the name of a saved block, as "
                "'<block-type-slug>/<block-name>' (e.g. 'heroku-credentials/prod' or "
                "'aws-credentials/prod'). Empty: the target reads the environment.")]
StateUrl = Annotated[str | None, Field(description="Where the deployment's state file lives "
                                                   "(default: next to the declaration).")]
SmokeTimeout = Annotated[float, Field(gt=0, le=3600, description="Seconds to wait for the "
                                                                 "deployment to answer.")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterOptions(_Params):
    """How ``register_model`` saves and registers a trained model."""

    name: str = Field(..., pattern=NAME_PATTERN,
                      description="The model's name in the registry, also its file name.")
    repo: Repo = "."
    models_dir: str = Field(default="models",
                            description="The folder of the repository that holds saved models.")
    version: Version = None
    bump: Bump = "patch"
    description: str | None = Field(default=None,
                                    description="Free text for the metadata and the model card.")
    labels: list[str] = Field(default_factory=list, description="Tags written into the metadata.")
    push: Push = True
    stage: NewStage = None


class RegisterSavedRequest(_Params):
    """``register_saved_model``: register a model that is already saved inside the repo."""

    model_path: str = Field(..., description="The saved model's path inside the repository "
                                             "(without .mlem).")
    repo: Repo = "."
    version: Version = None
    bump: Bump = "patch"
    metrics: dict[str, float] = Field(default_factory=dict,
                                      description="Metrics, committed with the version and "
                                                  "shown on the model card.")
    plots: str | None = Field(default=None,
                              description="A folder of plots (png, svg...) inside the "
                                          "repository, committed with the version.")
    push: Push = True
    stage: NewStage = None


class PackageRequest(_Params):
    """``package_model``: what to build for a model path, version or stage reference."""

    model: ModelRef
    repo: Repo = "."
    pip: bool = Field(default=True, description="Build an sdist and a wheel.")
    docker: bool = Field(default=False, description="Build a docker image.")
    target: str = Field(default="build", description="The output folder of the pip package.")
    image: str | None = Field(default=None,
                              description="The image's name:tag (default: <model>:<version>).")
    base: str | None = Field(default=None,
                             description="The base image (default: python:3.11-slim).")
    push_to: str | None = Field(default=None,
                                description="The registry host to push the image to.")
    registry_username: str | None = Field(
        default=None, description="The user name for the image registry (default: the "
                                  "engine's stored login).")
    registry_password_secret: str | None = Field(
        default=None, description="The name of a Prefect Secret block holding the image "
                                  "registry's password.")
    builds: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Other build kinds (a plugin's, or docker-dir) and "
                                          "their options, e.g. {\"docker-dir\": {\"target\": "
                                          "\"build/ctx\"}}.")


class RolloutRequest(_Params):
    """``rollout_model``: deploy a model to a declared target, check it, maybe promote it."""

    model: ModelRef
    repo: Repo = "."
    declaration: Declaration = "deployments/local.yaml"
    sample: Sample = None
    method: Method = "predict"
    package: PackageRequest | None = Field(
        default=None, description="Build packages first (their model and repo come from "
                                  "this request).")
    stage: str | None = Field(default=None, pattern=NAME_PATTERN,
                              description="Assign this stage to the version once it answers.")
    credentials: Credentials = None
    state_url: StateUrl = None
    smoke_timeout: SmokeTimeout = 60.0


class RedeployRequest(_Params):
    """``redeploy_stage``: keep a deployment on whatever version holds a stage."""

    name: str = Field(..., pattern=NAME_PATTERN, description="The model's name in the registry.")
    stage: str = Field(default="prod", pattern=NAME_PATTERN,
                       description="The stage to follow.")
    repo: Repo = "."
    declaration: Declaration = "deployments/local.yaml"
    sample: Sample = None
    method: Method = "predict"
    credentials: Credentials = None
    state_url: StateUrl = None
    smoke_timeout: SmokeTimeout = 60.0


class AssignRequest(_Params):
    """``assign_model``: put a registered version in a stage (promote it)."""

    name: str = Field(..., pattern=NAME_PATTERN, description="The model's name in the registry.")
    stage: str = Field(default="prod", pattern=NAME_PATTERN,
                       description="The stage to put the version in (assigning prod rolls "
                                   "it out through the rollout deployment's trigger).")
    version: str | None = Field(default=None, pattern=VERSION_PATTERN,
                                description="The version, e.g. v1.2.0 (default: the latest).")
    repo: Repo = "."
