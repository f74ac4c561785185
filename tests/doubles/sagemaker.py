"""A TEST DOUBLE of SageMaker's endpoints and runtime, in front of moto. It is not AWS.

moto answers SageMaker's control plane with endpoints that are ``InService`` the
moment they are created, answers ``update_endpoint`` with HTTP 500 and never
runs a container. This double sits in front of moto (point the ``sagemaker``,
``sagemaker-runtime`` and ``ecr`` clients' ``endpoint_url`` at :attr:`url`) and
gives endpoints the documented lifecycle
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html):

* ``CreateEndpoint`` answers at once with the endpoint ``Creating``. In the
  background the double reads the config's model from moto, downloads its
  ``ModelDataUrl`` (``model.tar.gz`` in moto's S3) into a folder mounted at
  ``/opt/ml/model``, starts the model's ``Image`` with the argument ``serve`` and
  the model's ``Environment`` (no ``SAGEMAKER_BIND_TO_PORT``: single-container
  endpoints listen on 8080) and polls ``GET /ping``. A 200 within the health-check
  timeout (the variant's ``ContainerStartupHealthCheckTimeoutInSeconds``, else
  :attr:`SageMakerDouble.ping_timeout`) makes it ``InService``; otherwise it goes
  ``Failed`` with a ``FailureReason`` and the container is removed.
* ``UpdateEndpoint`` needs an ``InService`` endpoint (else ``ValidationException``
  "Cannot update in-progress endpoint ..."), sets ``Updating`` and brings the new
  config up the same way *beside* the old one, which keeps serving. On success
  the endpoint moves to the new config and the old container stops; on failure
  it returns to ``InService`` **on the old config** with ``FailureReason`` set.
* ``DeleteEndpoint`` sets ``Deleting``, stops the containers, then the endpoint is
  gone. ``DescribeEndpoint`` / ``ListEndpoints`` report all that; every other
  call (models, configs, S3, ECR repositories) goes to moto unchanged.
* ``InvokeEndpoint`` (``POST /endpoints/{name}/invocations``) needs a SigV4
  request, an endpoint that is ``InService`` (or ``Updating``: the old config
  answers) and a body of at most 6 MB (else ``ValidationError``). It forwards
  Content-Type, Accept and ``X-Amzn-SageMaker-Custom-Attributes`` to
  ``/invocations`` of the serving container and waits at most 60 s. A non-2xx
  answer or a timeout becomes a 424 ``ModelError``, as on SageMaker.
  Containers are never started inside an invocation.
* ECR's ``GetAuthorizationToken`` answers with a token for the loopback registry
  that stands in for ECR's (user and password of that registry, base64 as
  ``user:password``); repositories are moto's.
* Faults: :meth:`SageMakerDouble.fail` makes the next calls of an operation fail
  with a given error (``ThrottlingException``, ``InternalFailure``...).

Each container runs on a network of its own (:mod:`tests.doubles.isolated`), so
two of them can listen on 8080 side by side during an update. For machines
without Docker, :class:`ProcessInstances` runs the image's entrypoint
(``python -m mlem_lib.serve.container serve``) as a local process instead, with
``SAGEMAKER_BIND_TO_PORT`` set (the multi-container contract).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from typing import Any

import httpx

from tests.doubles.isolated import (
    Box,
    ContainerTimeout,
    ContainerUnreachable,
    IsolatedContainer,
    clean_env,
    start_entrypoint,
)
from tests.doubles.loopback import HOP_HEADERS, LoopbackServer, json_response

ACCOUNT = "123456789012"  # moto's account
MAX_PAYLOAD = 6 * 1024 * 1024
INVOCATION_TIMEOUT = 60.0
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
PING_FAILURE = ("The primary container for production variant AllTraffic did not pass the "
                "ping health check. Please check CloudWatch logs for this endpoint.")
OWN_OPERATIONS = {"CreateEndpoint", "UpdateEndpoint", "DescribeEndpoint", "DeleteEndpoint",
                  "ListEndpoints"}
JSON_11 = "application/x-amz-json-1.1"


def aws_error(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    """An error in the JSON protocols' shape (``__type`` plus ``x-amzn-ErrorType``)."""
    return httpx.Response(status, json={"__type": code, "message": message, **extra},
                          headers={"x-amzn-ErrorType": code, "Content-Type": JSON_11})


# --- instances: what runs a model ------------------------------------------------------

class Instance:
    """One running copy of a SageMaker model (its container) and its model data folder."""

    def __init__(self, folder: str, box: Box) -> None:
        self.folder = folder
        self.box = box

    def alive(self) -> bool:
        return self.box.running()

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes,
                timeout: float) -> httpx.Response:
        return self.box.request(method, path, headers=headers, body=body, timeout=timeout)

    def logs(self) -> str:
        return self.box.logs()

    def stop(self) -> None:
        self.box.remove()
        shutil.rmtree(self.folder, ignore_errors=True)


class DockerInstances:
    """Runs the model's image as SageMaker does: ``docker run IMAGE serve``.

    Args:
        docker_client: the engine.
        registry: ``(host:port, user, password)`` of the registry images are pulled from.
    """

    def __init__(self, docker_client: Any, registry: tuple[str, str, str]) -> None:
        self.docker = docker_client
        self.registry = registry

    def start(self, model: dict[str, Any], folder: str) -> Instance:
        _, user, password = self.registry
        image = str(model["Image"])
        repo, _, tag = image.rpartition(":")
        self.docker.images.pull(repo, tag=tag,
                                auth_config={"username": user, "password": password})
        env = {k: str(v) for k, v in (model.get("Environment") or {}).items()}
        box = IsolatedContainer.run(
            self.docker, image, port=int(env.get("SAGEMAKER_BIND_TO_PORT") or 8080),
            command=["serve"], environment=env,
            volumes={folder: {"bind": "/opt/ml/model", "mode": "ro"}},
            labels={"mlem.test": "sagemaker-double"})
        return Instance(folder, box)


class ProcessInstances:
    """Runs the image's entrypoint as a local process (machines without Docker)."""

    def start(self, model: dict[str, Any], folder: str) -> Instance:
        from tests.conftest import free_port

        port = free_port()  # SageMaker, not the container, chooses SAGEMAKER_BIND_TO_PORT
        env = clean_env(**{key: str(value).replace("/opt/ml/model", folder)
                           for key, value in (model.get("Environment") or {}).items()})
        env.update(SAGEMAKER_BIND_TO_PORT=str(port), MLEM_HOST="127.0.0.1")
        log = os.path.join(folder, ".instance.log")
        return Instance(folder, start_entrypoint(env, port, log, "serve"))


# --- the double ---------------------------------------------------------------------------

class SageMakerDouble(LoopbackServer):
    """Control plane (lifecycle), runtime and ECR token in front of moto.

    Args:
        moto_url: the moto server's URL.
        session: a boto3 Session with moto's credentials (to read models, configs, S3).
        instances: a :class:`DockerInstances` or :class:`ProcessInstances` runner.
        registry: ``(host:port, user, password)`` whose credentials the ECR token carries.
        ping_timeout: seconds a new container gets to pass ``/ping``.
    """

    label = "SageMaker double"

    def __init__(self, moto_url: str, session: Any,
                 instances: DockerInstances | ProcessInstances,
                 registry: tuple[str, str, str] | None = None,
                 ping_timeout: float = 180.0) -> None:
        super().__init__()
        self.moto_url = moto_url.rstrip("/")
        self.sm = session.client("sagemaker", endpoint_url=moto_url)
        self.s3 = session.client("s3", endpoint_url=moto_url)
        self.instances = instances
        self.registry = registry
        self.ping_timeout = ping_timeout
        self.invocation_timeout = INVOCATION_TIMEOUT
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[httpx.Response]] = {}
        self.calls: list[tuple[float, str]] = []  # (time, operation)
        self.invocations: list[str] = []
        self.lock = threading.RLock()
        self.workers: list[threading.Thread] = []
        self.closed = False
        self.last_logs = ""  # of the last container that failed /ping

    # --- knobs and probes --------------------------------------------------------------
    def fail(self, operation: str, code: str, status: int = 400, times: int = 1,
             message: str | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``code``."""
        text = message or {"ThrottlingException": "Rate exceeded"}.get(code, f"test: {code}")
        with self.lock:
            self.faults.setdefault(operation, []).extend(
                aws_error(status, code, text) for _ in range(times))

    def count(self, operation: str) -> int:
        """How often ``operation`` was called."""
        return sum(1 for _, op in self.calls if op == operation)

    def served_hash(self, endpoint: str) -> str | None:
        """The ``model_hash`` the container serving ``endpoint`` reports on ``/health``."""
        with self.lock:
            ep = self.endpoints.get(endpoint)
            instance = ep["instances"].get(ep["config"]) if ep else None
        if instance is None:
            return None
        r = instance.request("GET", "/health", {}, b"", timeout=10)
        return str(r.json()["model_hash"]) if r.status_code == 200 else None

    def wait_settled(self, timeout: float = 300.0) -> None:
        """Wait until no endpoint is Creating, Updating or Deleting (test teardown)."""
        deadline = time.monotonic() + timeout
        for worker in list(self.workers):
            worker.join(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self.closed = True
        self.wait_settled(60)
        with self.lock:
            for ep in self.endpoints.values():
                for instance in ep["instances"].values():
                    instance.stop()
            self.endpoints.clear()
        self.stop_server()

    # --- routing ------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.startswith("/endpoints/") \
                and path.endswith("/invocations"):
            return self._invoke(request, path.split("/")[2])
        target = request.headers.get("x-amz-target", "")
        service, _, op = target.partition(".")
        with self.lock:
            self.calls.append((time.monotonic(), op or path))
            queued = self.faults.get(op)
            if queued:
                return queued.pop(0)
        if service == "SageMaker" and op in OWN_OPERATIONS:
            region = self._region(request)
            body = json.loads(request.content or b"{}")
            return getattr(self, f"_{op}")(body, region)
        if op == "GetAuthorizationToken" and self.registry is not None:
            return self._token(self._region(request))
        return self._forward(request)

    @staticmethod
    def _region(request: httpx.Request) -> str:
        auth = request.headers.get("authorization", "")
        scope = auth.partition("Credential=")[2].split(",")[0].split("/")
        return scope[2] if len(scope) > 2 else "us-east-1"

    def _forward(self, request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        r = httpx.request(request.method, self.moto_url + request.url.raw_path.decode(),
                          headers=headers, content=request.content, timeout=60,
                          trust_env=False)
        return httpx.Response(r.status_code, content=r.content,
                              headers=[(k, v) for k, v in r.headers.items()
                                       if k.lower() not in HOP_HEADERS])

    def _token(self, region: str) -> httpx.Response:
        assert self.registry is not None
        _, user, password = self.registry
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return json_response(200, {"authorizationData": [{
            "authorizationToken": token, "expiresAt": time.time() + 12 * 3600,
            "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{region}.amazonaws.com"}]})

    # --- control plane --------------------------------------------------------------------
    @staticmethod
    def _arn(region: str, name: str) -> str:
        return f"arn:aws:sagemaker:{region}:{ACCOUNT}:endpoint/{name.lower()}"

    def _config(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.sm.describe_endpoint_config(EndpointConfigName=name))
        except self.sm.exceptions.ClientError:
            return None

    def _no_endpoint(self, region: str, name: str) -> httpx.Response:
        return aws_error(400, "ValidationException",
                         f"Could not find endpoint '{self._arn(region, name)}'.")

    def _missing_config(self, config: str, region: str) -> httpx.Response | None:
        if self._config(config) is not None:
            return None
        return aws_error(400, "ValidationException", "Could not find endpoint configuration "
                         f"'arn:aws:sagemaker:{region}:{ACCOUNT}:endpoint-config/{config}'.")

    def _CreateEndpoint(self, body: dict[str, Any], region: str) -> httpx.Response:
        name, config = body["EndpointName"], body["EndpointConfigName"]
        missing = self._missing_config(config, region)
        if missing is not None:
            return missing
        with self.lock:
            if name in self.endpoints:
                return aws_error(400, "ValidationException", "Cannot create already existing "
                                 f"endpoint '{self._arn(region, name)}'.")
            now = time.time()
            self.endpoints[name] = {
                "EndpointName": name, "EndpointArn": self._arn(region, name),
                "config": config, "pending": config, "status": "Creating",
                "failure": None, "created": now, "modified": now, "instances": {}}
        self._in_background(self._bring_up, name, config, True)
        return json_response(200, {"EndpointArn": self._arn(region, name)})

    def _UpdateEndpoint(self, body: dict[str, Any], region: str) -> httpx.Response:
        name, config = body["EndpointName"], body["EndpointConfigName"]
        with self.lock:
            ep = self.endpoints.get(name)
            if ep is None:
                return self._no_endpoint(region, name)
            if ep["status"] != "InService":
                verb = "failed" if ep["status"] == "Failed" else "in-progress"
                return aws_error(400, "ValidationException",
                                 f"Cannot update {verb} endpoint '{self._arn(region, name)}'.")
        missing = self._missing_config(config, region)
        if missing is not None:
            return missing
        with self.lock:
            ep.update(status="Updating", pending=config, modified=time.time())
        self._in_background(self._bring_up, name, config, False)
        return json_response(200, {"EndpointArn": ep["EndpointArn"]})

    def _DescribeEndpoint(self, body: dict[str, Any], region: str) -> httpx.Response:
        name = body["EndpointName"]
        with self.lock:
            ep = self.endpoints.get(name)
            if ep is None:
                return self._no_endpoint(region, name)
            return json_response(200, self._describe(ep))

    def _describe(self, ep: dict[str, Any]) -> dict[str, Any]:
        out = {"EndpointName": ep["EndpointName"], "EndpointArn": ep["EndpointArn"],
               "EndpointConfigName": ep["config"], "EndpointStatus": ep["status"],
               "CreationTime": ep["created"], "LastModifiedTime": ep["modified"],
               "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0,
                                       "CurrentInstanceCount": 1 if ep["instances"] else 0,
                                       "DesiredInstanceCount": 1}]}
        if ep["failure"]:
            out["FailureReason"] = ep["failure"]
        if ep["status"] == "Updating":
            out["PendingDeploymentSummary"] = {"EndpointConfigName": ep["pending"]}
        return out

    def _ListEndpoints(self, body: dict[str, Any], region: str) -> httpx.Response:
        with self.lock:
            return json_response(200, {"Endpoints": [
                {k: v for k, v in self._describe(ep).items()
                 if k in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                          "EndpointStatus")} for ep in self.endpoints.values()]})

    def _DeleteEndpoint(self, body: dict[str, Any], region: str) -> httpx.Response:
        name = body["EndpointName"]
        with self.lock:
            ep = self.endpoints.get(name)
            if ep is None:
                return self._no_endpoint(region, name)
            ep.update(status="Deleting", modified=time.time())
        self._in_background(self._tear_down, name)
        return json_response(200, {})

    # --- lifecycle (background threads, never inside a request) ----------------------------
    def _in_background(self, fn: Any, *args: Any) -> None:
        worker = threading.Thread(target=fn, args=args, daemon=True)
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]
        worker.start()

    def _bring_up(self, name: str, config: str, creating: bool) -> None:
        instance, failure = self._start_instance(config)
        with self.lock:
            ep = self.endpoints.get(name)
            if ep is None or ep["status"] == "Deleting":
                if instance is not None:
                    instance.stop()
                return
            ep["modified"] = time.time()
            if instance is not None:
                old = {c: i for c, i in ep["instances"].items() if c != config}
                ep["instances"] = {config: instance}
                ep.update(config=config, status="InService", failure=None)
            elif creating:
                old = {}
                ep.update(status="Failed", failure=failure)
            else:  # the update failed: back in service on the old config
                old = {}
                ep.update(status="InService", failure=failure)
            ep["pending"] = None
        for instance in old.values():
            instance.stop()

    def _start_instance(self, config_name: str) -> tuple[Instance | None, str]:
        """Start the config's model and wait for ``/ping``; (instance, "") or (None, reason)."""
        config = self._config(config_name)
        if config is None:
            return None, f"Could not find endpoint configuration {config_name}."
        variant = config["ProductionVariants"][0]
        timeout = float(variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
                        or self.ping_timeout)
        model = self.sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
        folder = tempfile.mkdtemp(prefix="sm-model-")
        try:
            self._download(str(model["ModelDataUrl"]), folder)
            instance = self.instances.start(model, folder)
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return None, f"Failed to start the primary container: {exc}"
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline and instance.alive():
            try:
                if instance.request("GET", "/ping", {}, b"", timeout=2).status_code == 200:
                    return instance, ""
            except (ContainerUnreachable, ContainerTimeout):
                pass
            time.sleep(0.3)
        self.last_logs = instance.logs()
        instance.stop()
        return None, PING_FAILURE

    def _download(self, url: str, folder: str) -> None:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        os.chmod(folder, 0o755)
        for root, dirs, files in os.walk(folder):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)

    def _tear_down(self, name: str) -> None:
        with self.lock:
            ep = self.endpoints.get(name)
            instances = list(ep["instances"].values()) if ep else []
        for instance in instances:
            instance.stop()
        with self.lock:
            self.endpoints.pop(name, None)

    # --- runtime ------------------------------------------------------------------------------
    def _invoke(self, request: httpx.Request, name: str) -> httpx.Response:
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return aws_error(403, "MissingAuthenticationToken", "Missing Authentication Token")
        with self.lock:
            self.invocations.append(name)
            ep = self.endpoints.get(name)
            instance = ep["instances"].get(ep["config"]) if ep else None
        if ep is None:
            return aws_error(400, "ValidationError",
                             f"Endpoint {name} of account {ACCOUNT} not found.")
        if ep["status"] not in ("InService", "Updating") or instance is None:
            return aws_error(400, "ValidationError",
                             f"Endpoint {name} of account {ACCOUNT} is not in service "
                             f"(status {ep['status']}).")
        if len(request.content) > MAX_PAYLOAD:
            return aws_error(413, "ValidationError",
                             f"Request payload of {len(request.content)} bytes exceeds the "
                             f"6 MB limit of InvokeEndpoint.")
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "accept", CUSTOM_ATTRIBUTES.lower())}
        try:
            r = instance.request("POST", "/invocations", headers, request.content,
                                 timeout=self.invocation_timeout)
        except ContainerTimeout:
            return self._model_error(0, "Your invocation timed out while waiting for a "
                                        "response from container primary.")
        except ContainerUnreachable as exc:
            return self._model_error(0, f"connection to container primary failed: {exc}")
        if not 200 <= r.status_code < 300:
            return self._model_error(r.status_code, r.text)
        out = {"Content-Type": r.headers.get("content-type", "application/octet-stream"),
               "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        if r.headers.get(CUSTOM_ATTRIBUTES):
            out[CUSTOM_ATTRIBUTES] = r.headers[CUSTOM_ATTRIBUTES]
        return httpx.Response(200, content=r.content, headers=out)

    @staticmethod
    def _model_error(status: int, message: str) -> httpx.Response:
        kind = "server" if status == 0 or status >= 500 else "client"
        return aws_error(424, "ModelError",
                         f"Received {kind} error ({status}) from primary with message "
                         f"\"{message[:500]}\".",
                         OriginalStatusCode=status, OriginalMessage=message[:500],
                         LogStreamArn=f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:"
                                      "/aws/sagemaker/Endpoints")
