"""A TEST DOUBLE of the SageMaker runtime (``invoke_endpoint``). It is not AWS.

moto answers the SageMaker control-plane calls but its ``invoke_endpoint``
never reaches a model. This double serves ``POST /endpoints/{name}/invocations``
on 127.0.0.1 the way SageMaker does: it reads the endpoint, its config and its
model from the control plane (moto), downloads the model's ``model.tar.gz``
from S3 (moto), unpacks it into a folder mounted at ``/opt/ml/model``, starts
the model's image with the ``serve`` argument, ``SAGEMAKER_BIND_TO_PORT`` and
the model's ``Environment`` on the host network, waits for ``GET /ping`` and
forwards the request (body, Content-Type, Accept, CustomAttributes) to
``/invocations``. A non-200 answer of the container becomes a 424
``ModelError``, as on SageMaker. One container runs per SageMaker model; when
the endpoint moves to another config, the old model's container is stopped.

Point a ``sagemaker-runtime`` boto3 client's ``endpoint_url`` at :attr:`url`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.doubles.loopback import LoopbackServer, free_port

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


def _model_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": status,
         "OriginalMessage": message,
         "message": f"Received server error ({status}) from primary with message "
                    f"\"{message}\"."},
        status_code=424, headers={"x-amzn-ErrorType": "ModelError"})


class SageMakerRuntimeDouble(LoopbackServer):
    """The runtime double; ``start()`` returns its base URL.

    Args:
        session: a boto3 Session for the control plane and S3 (moto's credentials).
        endpoint_url: moto's URL (SageMaker and S3).
        docker_client: the engine that runs the model containers.
        ready_timeout: seconds a container gets to answer ``/ping``.
    """

    label = "SageMaker runtime double"

    def __init__(self, session: Any, endpoint_url: str, docker_client: Any,
                 ready_timeout: float = 120.0) -> None:
        self.sm = session.client("sagemaker", endpoint_url=endpoint_url)
        self.s3 = session.client("s3", endpoint_url=endpoint_url)
        self.docker = docker_client
        self.ready_timeout = ready_timeout
        self.running: dict[str, dict[str, Any]] = {}  # SageMaker model name -> container
        self.invocations: list[str] = []
        self.lock = threading.Lock()
        self.app = self._build()
        super().__init__()

    def stop(self) -> None:
        for name in list(self.running):
            self._stop(name)
        self.stop_server()

    def _stop(self, model_name: str) -> None:
        entry = self.running.pop(model_name, None)
        if entry is not None:
            with contextlib.suppress(Exception):  # already gone
                entry["container"].remove(force=True)
            shutil.rmtree(entry["dir"], ignore_errors=True)

    def _container_for(self, endpoint: str) -> dict[str, Any] | JSONResponse:
        try:
            desc = self.sm.describe_endpoint(EndpointName=endpoint)
        except self.sm.exceptions.ClientError:
            return JSONResponse({"message": f"Endpoint {endpoint} not found."}, status_code=400,
                                headers={"x-amzn-ErrorType": "ValidationError"})
        if desc["EndpointStatus"] != "InService":
            return JSONResponse({"message": f"Endpoint {endpoint} is {desc['EndpointStatus']}"},
                                status_code=400, headers={"x-amzn-ErrorType": "ValidationError"})
        config = self.sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
        model_name = config["ProductionVariants"][0]["ModelName"]
        for other in [m for m in self.running if self.running[m]["endpoint"] == endpoint
                      and m != model_name]:
            self._stop(other)
        if model_name in self.running:
            return self.running[model_name]
        model = self.sm.describe_model(ModelName=model_name)["PrimaryContainer"]
        bucket, _, key = model["ModelDataUrl"].removeprefix("s3://").partition("/")
        folder = tempfile.mkdtemp(prefix="sm-model-")
        os.chmod(folder, 0o755)
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        for root, dirs, files in os.walk(folder):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        port = free_port()
        env = {**model.get("Environment", {}), "SAGEMAKER_BIND_TO_PORT": str(port),
               "MLEM_HOST": "127.0.0.1"}
        container = self.docker.containers.run(
            model["Image"], command=["serve"], detach=True, network_mode="host",
            environment=env, volumes={folder: {"bind": "/opt/ml/model", "mode": "ro"}},
            labels={"mlem.test": "sagemaker-runtime-double"})
        entry = {"container": container, "port": port, "dir": folder, "endpoint": endpoint}
        self.running[model_name] = entry
        self._wait_ping(entry)
        return entry

    def _wait_ping(self, entry: dict[str, Any]) -> None:
        import httpx

        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{entry['port']}/ping", timeout=2,
                             trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            entry["container"].reload()
            if entry["container"].status in ("exited", "dead"):
                break
            time.sleep(0.2)
        logs = entry["container"].logs(tail=20).decode(errors="replace")
        raise RuntimeError(f"the model container did not answer /ping: {logs}")

    def _build(self) -> FastAPI:
        api = FastAPI(title="SageMaker runtime test double")

        @api.post("/endpoints/{endpoint}/invocations")
        async def invoke(endpoint: str, request: Request) -> Any:
            import httpx
            from starlette.concurrency import run_in_threadpool

            if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
                return JSONResponse({"message": "Missing Authentication Token"}, 403,
                                    headers={"x-amzn-ErrorType": "MissingAuthenticationToken"})
            self.invocations.append(endpoint)

            def locked() -> Any:
                with self.lock:
                    return self._container_for(endpoint)

            try:
                entry = await run_in_threadpool(locked)
            except RuntimeError as exc:
                return _model_error(500, str(exc))
            if isinstance(entry, JSONResponse):
                return entry
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("content-type", "accept",
                                        CUSTOM_ATTRIBUTES.lower())}
            async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
                r = await client.post(f"http://127.0.0.1:{entry['port']}/invocations",
                                      content=await request.body(), headers=headers)
            if r.status_code != 200:
                return _model_error(r.status_code, r.text)
            return Response(r.content, media_type=r.headers.get("content-type"),
                            headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"})

        return api
