"""Pydantic models of the deployment declarations in ``deployments/*.yaml``.

A declaration says *where* a model goes (``type: local | heroku | sagemaker``
plus that target's settings); it never holds secrets: API keys and AWS
credentials come from the environment, Prefect blocks or keyword options.

Example:
    >>> decl = parse_declaration({"type": "local", "port": 8081}, name="staging")
    >>> decl.name, decl.port
    ('staging', 8081)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlem_lib.errors import DeclarationError

_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="deployment name (default: the file's stem)")
    state_url: str | None = Field(
        None, description="where the state lives (default: <name>.state.json next to the file)")
    smoke_method: str | None = Field(
        None, description="model method the smoke request calls (default: predict)")
    wait_timeout: float = Field(120.0, gt=0, description="seconds to wait for the target")
    poll_interval: float = Field(0.5, gt=0, description="seconds between readiness polls")


class LocalDeclaration(_Declaration):
    """The model served on this machine, in a container or as a background process."""

    type: Literal["local"] = "local"
    runtime: Literal["auto", "process", "container"] = Field(
        "auto", description="container when a Docker engine answers (auto), else a process")
    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)
    image: str | None = Field(None, description="image name (default: mlem-<name>:<hash>)")
    base: str | None = Field(None, description="base image of the build")


class HerokuDeclaration(_Declaration):
    """A Heroku app running the model's image (``stack: container``)."""

    type: Literal["heroku"] = "heroku"
    app: str = Field(..., pattern=r"^[a-z][a-z0-9-]{2,29}$")
    region: str = "us"
    api_url: str = "https://api.heroku.com"
    registry: str = "registry.heroku.com"
    registry_user: str = "_"
    app_url: str | None = Field(None, description="URL of the app (default: web_url from the API)")
    base: str | None = None
    wait_timeout: float = Field(300.0, gt=0)


class SageMakerDeclaration(_Declaration):
    """An AWS SageMaker real-time endpoint."""

    type: Literal["sagemaker"] = "sagemaker"
    endpoint_name: str = Field(..., pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    region: str = "us-east-1"
    role_arn: str = Field(..., description="IAM role SageMaker assumes for the model")
    bucket: str = Field(..., description="S3 bucket for model.tar.gz")
    prefix: str = "mlem"
    ecr_repository: str = Field("mlem", description="ECR repository of the image")
    registry: str | None = Field(
        None, description="image registry host (default: the ECR repository's host)")
    instance_type: str = "ml.t2.medium"
    instance_count: int = Field(1, ge=1)
    base: str | None = None
    endpoint_urls: dict[str, str] = Field(
        default_factory=dict,
        description="per-service endpoint URL override (sagemaker, sagemaker-runtime, s3, ecr)")
    wait_timeout: float = Field(1800.0, gt=0)


Declaration = Annotated[LocalDeclaration | HerokuDeclaration | SageMakerDeclaration,
                        Field(discriminator="type")]
AnyDeclaration = LocalDeclaration | HerokuDeclaration | SageMakerDeclaration


def parse_declaration(data: Any, *, name: str = "deployment",
                      source: str = "<declaration>") -> AnyDeclaration:
    """Validate a declaration mapping; the error names the bad field.

    Raises:
        DeclarationError: not a mapping, unknown ``type`` or an invalid field.
    """
    from pydantic import TypeAdapter

    if not isinstance(data, dict):
        raise DeclarationError(f"{source}: a declaration must be a mapping")
    kinds = ("local", "heroku", "sagemaker")
    if data.get("type") not in kinds:
        raise DeclarationError(
            f"{source}: field 'type' must be one of {', '.join(kinds)}, got {data.get('type')!r}")
    try:
        decl: AnyDeclaration = TypeAdapter(Declaration).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise DeclarationError(f"{source}: field '{where}': {first['msg']}") from None
    if not decl.name:
        decl.name = name
    return decl


def load_declaration(path: str) -> AnyDeclaration:
    """Read and validate a declaration YAML file.

    Example:
        >>> load_declaration("deployments/local.yaml").type  # doctest: +SKIP
        'local'
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise DeclarationError(f"no deployment declaration at {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeclarationError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    return parse_declaration(data, name=p.stem, source=path)


def default_state_url(path: str, decl: AnyDeclaration) -> str:
    """``<dir of the declaration>/<name>.state.json`` unless the declaration says otherwise."""
    if decl.state_url:
        return decl.state_url
    return str(Path(path).resolve().parent / f"{decl.name}.state.json")
