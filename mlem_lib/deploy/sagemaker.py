"""The ``sagemaker`` target: a real-time SageMaker endpoint, with plain boto3.

A rollout of model hash ``H`` to endpoint ``E``:

1. pushes the model's image to ``<registry>/<ecr_repository>:H`` (registry
   credentials from ECR's ``get_authorization_token`` unless the credentials name
   them), or uses the declaration's ``image`` (an image that serves mlem_lib models,
   built once) and skips the build;
2. uploads ``model.tar.gz`` (``model.mlem`` + artifacts) to
   ``s3://<bucket>/<prefix>/E/H/model.tar.gz``; SageMaker unpacks it into
   ``/opt/ml/model`` and the container gets ``MLEM_MODEL=/opt/ml/model/model``;
3. creates model ``E-H`` and endpoint config ``E-H`` (reused when a rerun finds them);
4. creates the endpoint, or switches it to the new config with ``update_endpoint``
   (a live endpoint is never deleted to change it);
5. waits for ``InService`` (see :mod:`mlem_lib.deploy.sagemaker_endpoint`) and sends
   the smoke request through ``sagemaker-runtime`` (at most 6 MB, 60 s); the server
   reports its model hash in the ``CustomAttributes`` of the answer, which must be ``H``.

When the update does not come up, SageMaker itself puts the old config back: that is
seen at once and reported as a :class:`~mlem_lib.errors.RolledBackError` whose state
records the failed update. When the smoke request fails, the endpoint is switched
back to the previous config. Either way the new model/config are deleted. The model
and config of the previous good version are kept for rollback; older ones are deleted.

Throttled calls are retried with growing pauses; network errors are one line
(:mod:`mlem_lib.deploy.aws`).

Credentials: :class:`SageMakerCredentials`, whose fields are those of prefect-aws's
``AwsCredentials`` block (which validates into it), plus the image registry's user and
password; empty fields fall back to boto3's own chain (``AWS_*`` variables, profiles).

Example:
    >>> deploy("deployments/sagemaker.yaml", "models/rf",
    ...        credentials={"profile_name": "ml"})  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mlem_lib.deploy.aws import AwsCalls, describe, error_code
from mlem_lib.deploy.base import ModelSource, Progress, Target, TargetCredentials
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.sagemaker_endpoint import Endpoint
from mlem_lib.deploy.smoke import SmokeRequest
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.errors import (
    CredentialsError,
    DeploymentError,
    RolledBackError,
    SmokeTestError,
    TargetUnreachableError,
    UpdateRevertedError,
)

MODEL_IN_CONTAINER = "/opt/ml/model/model"
MAX_PAYLOAD = 6 * 1024 * 1024  # InvokeEndpoint's limit on a request body
INVOKE_TIMEOUT = 70.0  # the runtime gives the container 60 s; its ModelError comes first
CUSTOM_ATTRIBUTES_HASH = "model_hash="


class SageMakerDeclaration(BaseDeclaration):
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
    image: str | None = Field(
        None, description="an image in ECR that serves mlem_lib models (e.g. built once "
                          "with `mlem build docker`): the rollout uploads the model data "
                          "and uses this image instead of building and pushing one")
    endpoint_urls: dict[str, str] = Field(
        default_factory=dict,
        description="per-service endpoint URL override (sagemaker, sagemaker-runtime, s3, ecr)")
    wait_timeout: float = Field(1800.0, gt=0)


class AwsClientParameters(BaseModel):
    """Extra boto3 client arguments (prefect-aws's ``AwsClientParameters`` fields)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, frozen=True)

    api_version: str | None = None
    use_ssl: bool = True
    verify: bool | Path | None = None
    verify_cert_path: Path | None = None
    endpoint_url: str | None = Field(default=None, description="one endpoint for every "
                                                               "service (moto, LocalStack)")
    config: dict[str, Any] | None = Field(default=None, description="botocore Config arguments")

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``session.client(...)`` these parameters give."""
        kwargs: dict[str, Any] = {"use_ssl": self.use_ssl}
        if self.api_version:
            kwargs["api_version"] = self.api_version
        verify = self.verify_cert_path if self.verify_cert_path is not None else self.verify
        if verify is not None:
            kwargs["verify"] = str(verify) if isinstance(verify, Path) else verify
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return kwargs


class SageMakerCredentials(TargetCredentials):
    """AWS credentials (named as prefect-aws's ``AwsCredentials``) and registry login.

    Example:
        >>> creds = SageMakerCredentials.resolve({"aws_access_key_id": "AKID",
        ...     "aws_secret_access_key": "s3cret", "region_name": "eu-west-1",
        ...     "aws_client_parameters": {"endpoint_url": "http://127.0.0.1:5000"}})
        >>> creds.aws_secret_access_key, creds.aws_client_parameters.endpoint_url
        (SecretStr('**********'), 'http://127.0.0.1:5000')
    """

    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    profile_name: str | None = None
    region_name: str | None = None
    aws_client_parameters: AwsClientParameters = Field(default_factory=AwsClientParameters)
    registry_username: str | None = Field(
        None, description="image registry user (default: ECR's token, or "
                          "MLEM_REGISTRY_USERNAME)")
    registry_password: SecretStr | None = None

    def session(self, default_region: str) -> Any:
        """A ``boto3.Session`` with these credentials (boto3's chain for empty fields)."""
        import boto3

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return boto3.Session(aws_access_key_id=self.aws_access_key_id,
                             aws_secret_access_key=secret(self.aws_secret_access_key),
                             aws_session_token=secret(self.aws_session_token),
                             profile_name=self.profile_name,
                             region_name=self.region_name or default_region)


class SageMakerTarget(Target):
    """Deploy to a SageMaker endpoint through boto3 (endpoint URLs configurable)."""

    Declaration = SageMakerDeclaration
    Credentials = SageMakerCredentials
    decl: SageMakerDeclaration
    credentials: SageMakerCredentials

    def __init__(self, decl: Any, state_url: str, credentials: TargetCredentials,
                 *, progress: Progress = None) -> None:
        super().__init__(decl, state_url, credentials, progress=progress)
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self.calls = AwsCalls(self.client, self.progress, first=min(1.0, decl.poll_interval))
        self.endpoint = Endpoint(self.calls, decl.endpoint_name, poll=decl.poll_interval,
                                 timeout=decl.wait_timeout, progress=self.progress)

    # --- clients ---------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` honouring ``endpoint_urls`` and the credentials.

        botocore's own retries are off: :class:`~mlem_lib.deploy.aws.AwsCalls` retries
        throttling and says when it gives up.
        """
        if service not in self._clients:
            from botocore.config import Config

            if self._session is None:
                self._session = self.credentials.session(self.decl.region)
            params = self.credentials.aws_client_parameters
            config = Config(retries={"total_max_attempts": 1}, connect_timeout=10,
                            read_timeout=INVOKE_TIMEOUT)
            if params.config:
                config = config.merge(Config(**params.config))
            kwargs: dict[str, Any] = {
                "region_name": self._session.region_name or self.decl.region,
                "config": config, **params.client_kwargs()}
            if self.decl.endpoint_urls.get(service):
                kwargs["endpoint_url"] = self.decl.endpoint_urls[service]
            self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    # --- names -----------------------------------------------------------------
    def _names(self, model_hash: str) -> str:
        return f"{self.decl.endpoint_name[:50]}-{model_hash[:12]}"

    # --- image and model data ----------------------------------------------------
    def registry_auth(self) -> tuple[str, str, str]:
        """(ECR registry host of the repository, user, password).

        The host is the repository URI's (``<account>.dkr.ecr.<region>.amazonaws.com``);
        user and password come from the credentials, else from ECR's
        ``get_authorization_token`` (base64 ``user:password``).
        """
        user = self.credentials.registry_username
        secret = self.credentials.registry_password
        password = secret.get_secret_value() if secret is not None else None
        repo = self.calls.find("ecr", "describe_repositories",
                               repositoryNames=[self.decl.ecr_repository])
        if repo is None:
            self.progress(f"creating ECR repository {self.decl.ecr_repository}")
            uri = self.calls("ecr", "create_repository", repositoryName=self.decl
                             .ecr_repository)["repository"]["repositoryUri"]
        else:
            uri = repo["repositories"][0]["repositoryUri"]
        host = str(uri).split("/", 1)[0]
        if not (user and password):
            token = self.calls("ecr", "get_authorization_token")["authorizationData"][0]
            user, _, password = base64.b64decode(token["authorizationToken"]).decode() \
                .partition(":")
        return host, str(user), str(password)

    def _image(self, source: ModelSource) -> tuple[str, str | None]:
        """The image the model runs in: the declared one, or one built and pushed now."""
        from mlem_lib.build.docker import build_docker, push_image

        if self.decl.image:
            self.progress(f"using image {self.decl.image} (field 'image': no build)")
            return self.decl.image, None
        ecr_host, user, password = self.registry_auth()
        registry = self.decl.registry or ecr_host
        ref = f"{registry}/{self.decl.ecr_repository}:{source.meta.model_hash[:12]}"
        self.progress(f"building image {ref}")
        image = build_docker(source.path, ref, base=self.decl.base,
                             pip=self.decl.image_requirements(source.meta) or None,
                             model_version=source.version)
        self.progress(f"pushing {ref}")
        push_image(ref, registry, user, password)
        return ref, str(image.image_id)

    def _upload_model(self, source: ModelSource) -> str:
        from mlem_lib.deploy.package import model_tarball

        meta = source.meta
        bucket = self.decl.bucket
        key = f"{self.decl.prefix.strip('/')}/{self.decl.endpoint_name}/" \
              f"{meta.model_hash[:12]}/model.tar.gz".lstrip("/")
        if self.calls.find("s3", "head_bucket", Bucket=bucket) is None:
            self.progress(f"creating bucket {bucket}")
            extra = {} if self.decl.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": self.decl.region}}
            self.calls("s3", "create_bucket", Bucket=bucket, **extra)
        with tempfile.TemporaryDirectory(prefix="mlem-sm-") as tmp:
            path = os.path.join(tmp, "model.tar.gz")
            model_tarball(source.path, path)
            self.progress(f"uploading s3://{bucket}/{key}")
            with open(path, "rb") as f:
                self.calls("s3", "put_object", Bucket=bucket, Key=key, Body=f)
        return f"s3://{bucket}/{key}"

    # --- endpoint ----------------------------------------------------------------
    def _create_model_and_config(self, name: str, image: str, data_url: str) -> None:
        if self.calls.find("sagemaker", "describe_model", ModelName=name) is None:
            self.calls("sagemaker", "create_model", ModelName=name,
                       ExecutionRoleArn=self.decl.role_arn,
                       PrimaryContainer={"Image": image, "ModelDataUrl": data_url,
                                         "Environment": {"MLEM_MODEL": MODEL_IN_CONTAINER,
                                                         **self.decl.server_env()}})
        if self.calls.find("sagemaker", "describe_endpoint_config",
                           EndpointConfigName=name) is None:
            self.calls("sagemaker", "create_endpoint_config", EndpointConfigName=name,
                       ProductionVariants=[{
                           "VariantName": "AllTraffic", "ModelName": name,
                           "InstanceType": self.decl.instance_type,
                           "InitialInstanceCount": self.decl.instance_count,
                           "InitialVariantWeight": 1.0}])

    def smoke(self, request: SmokeRequest, model_hash: str | None = None) -> Any:
        """Send the smoke request through ``sagemaker-runtime``'s ``invoke_endpoint``.

        The body must fit InvokeEndpoint's 6 MB; the runtime gives the container 60 s.
        When the server reports its model hash (``CustomAttributes: model_hash=...``),
        it must be ``model_hash``.

        Raises:
            SmokeTestError: too big a request, an error answer, or another model serving.
        """
        from botocore.exceptions import ClientError

        body = json.dumps(request.body).encode()
        if len(body) > MAX_PAYLOAD:
            raise SmokeTestError(
                f"the smoke request for {request.method} is {len(body)} bytes: SageMaker "
                f"takes at most {MAX_PAYLOAD} bytes (6 MB) per invocation; choose another "
                "method with the declaration's smoke_method")
        try:
            r = self.calls("sagemaker-runtime", "invoke_endpoint",
                           EndpointName=self.decl.endpoint_name, Body=body,
                           ContentType="application/json", Accept="application/json",
                           CustomAttributes=f"method={request.method}")
            answer = json.loads(r["Body"].read())
        except (CredentialsError, TargetUnreachableError):
            raise
        except (ClientError, ValueError) as exc:
            raise SmokeTestError(f"smoke request to endpoint {self.decl.endpoint_name} "
                                 f"({request.method}) failed: {describe(exc)}") from exc
        served = _served_hash(r.get("CustomAttributes"))
        if model_hash and served is not None and served != model_hash:
            raise SmokeTestError(
                f"endpoint {self.decl.endpoint_name} answers with model {served[:12]}, "
                f"not the model just deployed ({model_hash[:12]})")
        if model_hash and served is None:
            self.progress("the endpoint's server does not report its model hash: the served "
                          "model was not verified")
        return answer

    def _discard(self, name: str, current: DeploymentState | None) -> None:
        """Delete the config and model a failed rollout made, unless a recorded version
        uses them (redeploying the previous version reuses its config)."""
        used = {str(state.target.get("config")) for state in
                (current, current.previous if current is not None else None)
                if state is not None}
        if name not in used:
            self._delete(name)

    def _delete(self, name: str) -> None:
        """Delete endpoint config and model ``name`` (missing ones are fine)."""
        from botocore.exceptions import ClientError

        for op, key in (("delete_endpoint_config", "EndpointConfigName"),
                        ("delete_model", "ModelName")):
            try:
                self.calls("sagemaker", op, **{key: name})
            except ClientError as exc:
                if error_code(exc) not in ("ValidationException", "ResourceNotFound"):
                    raise

    # --- rollout -------------------------------------------------------------------
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        meta = source.meta
        request = SmokeRequest.for_model(meta, self.smoke_method, self.smoke_data)
        name = self._names(meta.model_hash)
        image, image_id = self._image(source)
        data_url = self._upload_model(source)
        self._create_model_and_config(name, image, data_url)
        desc = self.endpoint.describe()
        if desc is not None and desc.get("EndpointStatus") == "Failed":
            # a Failed endpoint serves nothing: it may go
            self.progress(f"endpoint {self.decl.endpoint_name} is Failed "
                          f"({desc.get('FailureReason') or 'no reason given'}): deleting it "
                          "and creating it again")
            self.endpoint.delete()
            self.endpoint.wait_gone()
            desc = None
        if desc is None:
            self._create(name, request, meta.model_hash, current)
        else:
            self._update(str(desc.get("EndpointConfigName")), name, request, meta.model_hash,
                         current)
        old = str(desc.get("EndpointConfigName")) if desc is not None else None
        keep = {name, old}
        if current is not None and current.previous is not None:
            older = str(current.previous.target.get("config"))
            if older not in keep:
                self._delete(older)
        return DeploymentState(
            name=self.decl.name, type="sagemaker", model_hash=meta.model_hash,
            model_path=source.reference, image=image, image_id=image_id, smoke=request,
            url=f"sagemaker://{self.decl.region}/{self.decl.endpoint_name}",
            target={"endpoint": self.decl.endpoint_name, "config": name, "model": name,
                    "model_data_url": data_url})

    def _create(self, name: str, request: SmokeRequest, model_hash: str,
                current: DeploymentState | None) -> None:
        """Create the endpoint on ``name``; on failure delete what was created."""
        self.progress(f"creating endpoint {self.decl.endpoint_name} with config {name}")
        self.endpoint.create(name)
        try:
            self.endpoint.wait(name)
            self.smoke(request, model_hash)
        except Exception as exc:
            self.progress(f"rollout failed ({exc}); deleting what it created")
            try:
                self.endpoint.delete()
                self._discard(name, current)
            except Exception as again:
                raise DeploymentError(f"rollout failed ({exc}) and so did deleting the "
                                      f"endpoint it created: {again}") from exc
            raise RolledBackError(f"{exc} (the endpoint this rollout created was deleted)",
                                  restored_state=None, reason=exc) from exc

    def _update(self, old: str, name: str, request: SmokeRequest, model_hash: str,
                current: DeploymentState | None) -> None:
        """Switch the live endpoint from ``old`` to ``name``; put ``old`` back on failure."""
        self.progress(f"updating endpoint {self.decl.endpoint_name}: config {old} -> {name}")
        before = self.endpoint.update(name)  # refused: nothing changed, state stays true
        restored = current if current is not None and current.target.get("config") == old \
            else None
        try:
            self.endpoint.wait(name, before)
        except UpdateRevertedError as exc:
            self._discard(name, current)
            raise RolledBackError(
                f"{exc} (SageMaker rolled the endpoint back itself)",
                restored_state=_with_failure(restored, name, model_hash, exc.reason),
                reason=exc) from exc
        try:
            self.smoke(request, model_hash)
        except Exception as exc:
            self.progress(f"rollout failed ({exc}); switching back to {old}")
            try:
                self.endpoint.wait(old, self.endpoint.update(old))
                self._discard(name, current)
            except Exception as again:
                raise DeploymentError(f"rollout failed ({exc}) and so did switching back to "
                                      f"{old}: {again}") from exc
            raise RolledBackError(f"{exc} (rolled back: config {old} serves again)",
                                  restored_state=_with_failure(restored, name, model_hash,
                                                               str(exc)),
                                  reason=exc) from exc

    def rollback(self, current: DeploymentState) -> DeploymentState:
        previous = current.previous
        assert previous is not None
        config = str(previous.target.get("config", ""))
        if not config or self.calls.find("sagemaker", "describe_endpoint_config",
                                         EndpointConfigName=config) is None:
            raise DeploymentError(f"the previous endpoint config {config or '?'} is gone: "
                                  "deploy the previous model again instead")
        back = str(current.target["config"])
        self.progress(f"switching endpoint {self.decl.endpoint_name} back to {config}")
        before = self.endpoint.update(config)
        try:
            self.endpoint.wait(config, before)
        except UpdateRevertedError as exc:
            raise RolledBackError(f"{exc} (config {back} serves again)", restored_state=current,
                                  reason=exc) from exc
        try:
            if previous.smoke is not None:
                self.smoke(previous.smoke, previous.model_hash)
        except Exception as exc:
            self.progress(f"rollback failed ({exc}); switching back to {back}")
            try:
                self.endpoint.wait(back, self.endpoint.update(back))
            except Exception as again:
                raise DeploymentError(f"rollback failed ({exc}) and so did switching back to "
                                      f"{back}: {again}") from exc
            raise RolledBackError(f"{exc} (config {back} serves again)", restored_state=current,
                                  reason=exc) from exc
        return previous.model_copy(update={"previous": None})

    # --- status / remove -----------------------------------------------------------
    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        base: dict[str, Any] = {"name": self.decl.name, "type": "sagemaker",
                                "url": current.url if current else None,
                                "model_hash": current.model_hash if current else None}
        desc = self.endpoint.describe()
        if desc is None:
            return DeploymentStatus(**base, deployed=False, healthy=False,
                                    detail=f"endpoint {self.decl.endpoint_name} does not exist")
        st = str(desc.get("EndpointStatus"))
        config = desc.get("EndpointConfigName")
        healthy = st == "InService" and (current is None or config == current.target.get(
            "config"))
        detail = f"endpoint {st} with config {config}"
        if desc.get("FailureReason"):
            detail += f"; last failure: {desc['FailureReason']}"
        return DeploymentStatus(**base, deployed=current is not None, healthy=healthy,
                                detail=detail)

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        if self.endpoint.describe() is not None:
            self.progress(f"deleting endpoint {self.decl.endpoint_name}")
            self.endpoint.delete()
        for state in (current, current.previous if current else None):
            if state is not None and state.target.get("config"):
                self._delete(str(state.target["config"]))


def _served_hash(attributes: str | None) -> str | None:
    """The ``model_hash=...`` a server put in the answer's CustomAttributes."""
    for part in (attributes or "").replace(";", ",").split(","):
        part = part.strip()
        if part.startswith(CUSTOM_ATTRIBUTES_HASH):
            return part[len(CUSTOM_ATTRIBUTES_HASH):]
    return None


def _with_failure(state: DeploymentState | None, config: str, model_hash: str,
                  reason: str) -> DeploymentState | None:
    """``state`` (what serves again) recording the update that failed, for the state file."""
    if state is None:
        return None
    failed = {"config": config, "model_hash": model_hash, "reason": reason,
              "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return state.model_copy(update={"target": {**state.target, "failed_update": failed}})
