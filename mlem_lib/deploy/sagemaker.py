"""The ``sagemaker`` target: a real-time SageMaker endpoint, with plain boto3.

A rollout of model hash ``H`` to endpoint ``E``:

1. pushes the model's image to ``<registry>/<ecr_repository>:H`` (registry
   credentials from ECR's ``get_authorization_token`` unless the credentials name them);
2. uploads ``model.tar.gz`` (``model.mlem`` + artifacts) to
   ``s3://<bucket>/<prefix>/E/H/model.tar.gz``; SageMaker unpacks it into
   ``/opt/ml/model`` and the container gets ``MLEM_MODEL=/opt/ml/model/model``;
3. creates model ``E-H`` and endpoint config ``E-H`` (reused when a rerun finds them);
4. creates the endpoint, or switches it to the new config with ``update_endpoint``;
5. waits for ``InService`` and sends the smoke request through ``sagemaker-runtime``.

When 4-5 fail on an update, the endpoint is switched back to the previous
config and the new model/config are deleted. Where ``update_endpoint`` is not
implemented (moto answers HTTP 500), the switch deletes the endpoint and
creates it again with the other config: the same end state, with downtime,
which is why it is only a fallback. The model and config of the previous good
version are kept for rollback; older ones are deleted.

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
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mlem_lib.deploy.base import ModelSource, Progress, Target, TargetCredentials
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.smoke import SmokeRequest
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.errors import CredentialsError, DeploymentError, RolledBackError, SmokeTestError

MODEL_IN_CONTAINER = "/opt/ml/model/model"
_CREDENTIAL_CODES = {"UnrecognizedClientException", "InvalidClientTokenId",
                     "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                     "AccessDeniedException", "ExpiredToken", "ExpiredTokenException"}


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _http_status(exc: Exception) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


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

    # --- clients ---------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` honouring ``endpoint_urls`` and the credentials."""
        if service not in self._clients:
            from botocore.config import Config

            if self._session is None:
                self._session = self.credentials.session(self.decl.region)
            params = self.credentials.aws_client_parameters
            config = Config(retries={"max_attempts": 2, "mode": "standard"})
            if params.config:
                config = config.merge(Config(**params.config))
            kwargs: dict[str, Any] = {
                "region_name": self._session.region_name or self.decl.region,
                "config": config, **params.client_kwargs()}
            if self.decl.endpoint_urls.get(service):
                kwargs["endpoint_url"] = self.decl.endpoint_urls[service]
            self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    def _call(self, service: str, op: str, **kwargs: Any) -> Any:
        """Call ``op``, turning refused credentials into CredentialsError."""
        from botocore.exceptions import ClientError, NoCredentialsError

        try:
            return getattr(self.client(service), op)(**kwargs)
        except NoCredentialsError as exc:
            raise CredentialsError(f"no AWS credentials for {service}.{op}: set AWS_* "
                                   "variables or pass credentials= (an AwsCredentials block "
                                   "or a dict of its fields)") from exc
        except ClientError as exc:
            if _code(exc) in _CREDENTIAL_CODES or _http_status(exc) == 403:
                raise CredentialsError(f"AWS refused the credentials for {service}.{op}: "
                                       f"{exc}") from exc
            raise

    def _exists(self, service: str, op: str, **kwargs: Any) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._call(service, op, **kwargs)  # type: ignore[no-any-return]
        except ClientError as exc:
            if _code(exc) in ("ValidationException", "ResourceNotFound", "404", "NoSuchBucket",
                              "RepositoryNotFoundException", "NotFound"):
                return None
            raise

    # --- names -----------------------------------------------------------------
    def _names(self, model_hash: str) -> str:
        return f"{self.decl.endpoint_name[:50]}-{model_hash[:12]}"

    # --- image and model data ----------------------------------------------------
    def _registry_auth(self) -> tuple[str, str, str]:
        """(registry host from ECR, user, password)."""
        user = self.credentials.registry_username
        secret = self.credentials.registry_password
        password = secret.get_secret_value() if secret is not None else None
        repo = self._exists("ecr", "describe_repositories",
                            repositoryNames=[self.decl.ecr_repository])
        if repo is None:
            self.progress(f"creating ECR repository {self.decl.ecr_repository}")
            uri = self._call("ecr", "create_repository",
                             repositoryName=self.decl.ecr_repository)["repository"]["repositoryUri"]
        else:
            uri = repo["repositories"][0]["repositoryUri"]
        host = str(uri).split("/", 1)[0]
        if not (user and password):
            token = self._call("ecr", "get_authorization_token")["authorizationData"][0]
            user, _, password = base64.b64decode(token["authorizationToken"]).decode() \
                .partition(":")
        return host, str(user), str(password)

    def _push_image(self, source: ModelSource) -> tuple[str, str]:
        from mlem_lib.build.docker import build_docker, push_image

        ecr_host, user, password = self._registry_auth()
        registry = self.decl.registry or ecr_host
        ref = f"{registry}/{self.decl.ecr_repository}:{source.meta.model_hash[:12]}"
        self.progress(f"building image {ref}")
        image = build_docker(source.path, ref, base=self.decl.base,
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
        if self._exists("s3", "head_bucket", Bucket=bucket) is None:
            self.progress(f"creating bucket {bucket}")
            extra = {} if self.decl.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": self.decl.region}}
            self._call("s3", "create_bucket", Bucket=bucket, **extra)
        with tempfile.TemporaryDirectory(prefix="mlem-sm-") as tmp:
            path = os.path.join(tmp, "model.tar.gz")
            model_tarball(source.path, path)
            self.progress(f"uploading s3://{bucket}/{key}")
            with open(path, "rb") as f:
                self._call("s3", "put_object", Bucket=bucket, Key=key, Body=f)
        return f"s3://{bucket}/{key}"

    # --- endpoint ----------------------------------------------------------------
    def _create_model_and_config(self, name: str, image: str, data_url: str) -> None:
        if self._exists("sagemaker", "describe_model", ModelName=name) is None:
            self._call("sagemaker", "create_model", ModelName=name,
                       ExecutionRoleArn=self.decl.role_arn,
                       PrimaryContainer={"Image": image, "ModelDataUrl": data_url,
                                         "Environment": {"MLEM_MODEL": MODEL_IN_CONTAINER,
                                                         **self.decl.server_env()}})
        if self._exists("sagemaker", "describe_endpoint_config",
                        EndpointConfigName=name) is None:
            self._call("sagemaker", "create_endpoint_config", EndpointConfigName=name,
                       ProductionVariants=[{
                           "VariantName": "AllTraffic", "ModelName": name,
                           "InstanceType": self.decl.instance_type,
                           "InitialInstanceCount": self.decl.instance_count,
                           "InitialVariantWeight": 1.0}])

    def _endpoint(self) -> dict[str, Any] | None:
        return self._exists("sagemaker", "describe_endpoint",
                            EndpointName=self.decl.endpoint_name)

    def switch(self, config: str) -> None:
        """Point the endpoint at ``config`` (create it when missing).

        Uses ``update_endpoint``; where that call is not implemented (an HTTP 5xx
        such as moto's), deletes the endpoint and creates it again with ``config``.
        """
        from botocore.exceptions import ClientError

        name = self.decl.endpoint_name
        if self._endpoint() is None:
            self._call("sagemaker", "create_endpoint", EndpointName=name,
                       EndpointConfigName=config)
            return
        try:
            self._call("sagemaker", "update_endpoint", EndpointName=name,
                       EndpointConfigName=config)
        except ClientError as exc:
            if _http_status(exc) < 500 and _code(exc) not in ("InternalFailure",
                                                              "NotImplemented"):
                raise
            self.progress("update_endpoint is not available here: recreating the endpoint "
                          f"with {config}")
            self._call("sagemaker", "delete_endpoint", EndpointName=name)
            self._wait_gone()
            self._call("sagemaker", "create_endpoint", EndpointName=name,
                       EndpointConfigName=config)

    def _wait_gone(self) -> None:
        deadline = time.monotonic() + self.decl.wait_timeout
        while self._endpoint() is not None:
            if time.monotonic() >= deadline:
                raise DeploymentError(f"endpoint {self.decl.endpoint_name} was not deleted "
                                      f"within {self.decl.wait_timeout:g}s")
            time.sleep(self.decl.poll_interval)

    def wait_in_service(self, config: str) -> None:
        """Poll until the endpoint is ``InService`` on ``config``.

        Raises:
            DeploymentError: it went ``Failed`` or the wait timed out.
        """
        deadline = time.monotonic() + self.decl.wait_timeout
        status = "missing"
        while True:
            desc = self._endpoint()
            if desc is not None:
                status = str(desc.get("EndpointStatus"))
                if status == "InService" and desc.get("EndpointConfigName") == config:
                    return
                if status == "Failed":
                    raise DeploymentError(
                        f"endpoint {self.decl.endpoint_name} failed: "
                        f"{desc.get('FailureReason') or 'no reason given'}")
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"endpoint {self.decl.endpoint_name} did not reach InService within "
                    f"{self.decl.wait_timeout:g}s (status: {status}; field 'wait_timeout')")
            time.sleep(self.decl.poll_interval)

    def smoke(self, request: SmokeRequest) -> Any:
        """Send the smoke request through ``sagemaker-runtime``'s ``invoke_endpoint``."""
        from botocore.exceptions import BotoCoreError, ClientError

        method, body = request.method, request.body
        try:
            r = self._call("sagemaker-runtime", "invoke_endpoint",
                           EndpointName=self.decl.endpoint_name, Body=json.dumps(body),
                           ContentType="application/json", Accept="application/json",
                           CustomAttributes=f"method={method}")
            return json.loads(r["Body"].read())
        except CredentialsError:
            raise
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise SmokeTestError(f"smoke request to endpoint {self.decl.endpoint_name} "
                                 f"({method}) failed: {exc}") from exc

    def _delete(self, name: str) -> None:
        """Delete endpoint config and model ``name`` (missing ones are fine)."""
        from botocore.exceptions import ClientError

        for op, key in (("delete_endpoint_config", "EndpointConfigName"),
                        ("delete_model", "ModelName")):
            try:
                self._call("sagemaker", op, **{key: name})
            except ClientError as exc:
                if _code(exc) not in ("ValidationException", "ResourceNotFound"):
                    raise

    # --- rollout -------------------------------------------------------------------
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        meta = source.meta
        request = SmokeRequest.for_model(meta, self.smoke_method)
        name = self._names(meta.model_hash)
        image, image_id = self._push_image(source)
        data_url = self._upload_model(source)
        self._create_model_and_config(name, image, data_url)
        old = str(current.target["config"]) if current is not None else None
        self.progress(f"{'updating' if self._endpoint() else 'creating'} endpoint "
                      f"{self.decl.endpoint_name} with config {name}")
        try:
            self.switch(name)
            self.wait_in_service(name)
            self.smoke(request)
        except Exception as exc:
            self._recover(current, old, name, exc)
            raise
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

    def _recover(self, current: DeploymentState | None, old: str | None, new: str,
                 error: Exception) -> None:
        """Switch back to ``old`` (or delete what a first rollout created).

        Raises:
            RolledBackError: it did; ``restored_state`` is what runs now.
        """
        try:
            if old is not None and old != new:
                self.progress(f"rollout failed ({error}); switching back to {old}")
                self.switch(old)
                self.wait_in_service(old)
                self._delete(new)
                restored: DeploymentState | None = current
            elif current is None:
                self.progress(f"rollout failed ({error}); deleting what it created")
                if self._endpoint() is not None:
                    self._call("sagemaker", "delete_endpoint",
                               EndpointName=self.decl.endpoint_name)
                self._delete(new)
                restored = None
            else:
                return
        except Exception as exc:
            raise DeploymentError(f"rollout failed ({error}) and so did the rollback: "
                                  f"{exc}") from error
        what = f"config {old} serves again" if restored else "what it created was deleted"
        raise RolledBackError(f"{error} (rolled back: {what})", restored_state=restored,
                              reason=error) from error

    def rollback(self, current: DeploymentState) -> DeploymentState:
        previous = current.previous
        assert previous is not None
        config = str(previous.target.get("config", ""))
        if not config or self._exists("sagemaker", "describe_endpoint_config",
                                      EndpointConfigName=config) is None:
            raise DeploymentError(f"the previous endpoint config {config or '?'} is gone: "
                                  "deploy the previous model again instead")
        self.progress(f"switching endpoint {self.decl.endpoint_name} back to {config}")
        try:
            self.switch(config)
            self.wait_in_service(config)
            if previous.smoke is not None:
                self.smoke(previous.smoke)
        except Exception as exc:
            back = str(current.target["config"])
            self.progress(f"rollback failed ({exc}); switching back to {back}")
            try:
                self.switch(back)
                self.wait_in_service(back)
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
        desc = self._endpoint()
        if desc is None:
            return DeploymentStatus(**base, deployed=False, healthy=False,
                                    detail=f"endpoint {self.decl.endpoint_name} does not exist")
        st = str(desc.get("EndpointStatus"))
        config = desc.get("EndpointConfigName")
        healthy = st == "InService" and (current is None or config == current.target.get(
            "config"))
        return DeploymentStatus(**base, deployed=current is not None, healthy=healthy,
                                detail=f"endpoint {st} with config {config}")

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        from botocore.exceptions import ClientError

        if self._endpoint() is not None:
            self.progress(f"deleting endpoint {self.decl.endpoint_name}")
            try:
                self._call("sagemaker", "delete_endpoint", EndpointName=self.decl.endpoint_name)
            except ClientError as exc:
                if _code(exc) != "ValidationException":
                    raise
        for state in (current, current.previous if current else None):
            if state is not None and state.target.get("config"):
                self._delete(str(state.target["config"]))
