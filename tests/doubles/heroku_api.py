"""A TEST DOUBLE of Heroku's documented Platform API. It is not Heroku.

It implements the subset of https://devcenter.heroku.com/articles/platform-api-reference
that ``mlem_lib.deploy.heroku`` calls, with the documented shapes:

* every call needs ``Authorization: Bearer <key>`` (else 401 ``unauthorized``) and
  ``Accept: application/vnd.heroku+json; version=3`` (else 400 ``bad_request``);
  ``PATCH /apps/{app}/formation`` with an image needs the
  ``version=3.docker-releases`` variant;
* ``POST /apps`` (``name``, ``region``, ``stack``) answers 201, or 422
  ``invalid_params`` "Name is already taken" for names in use (``taken`` holds
  names owned by "other accounts");
* ``GET|DELETE /apps/{app}``: 404 ``{"id": "not_found", "message": "Couldn't find
  that app.", "resource": "app"}`` for unknown apps;
* ``PATCH /apps/{app}/formation`` ``{"updates": [{"type": "web", "docker_image": ID}]}``
  checks that the manifest pushed to ``REGISTRY/APP/web:latest`` (a real local
  docker-registry) has ``config.digest == ID`` (else 422), creates a release and
  starts the web dyno: a container from that image with ``PORT`` set, on the host
  network (plus ``MLEM_HOST=127.0.0.1`` so nothing listens beyond loopback);
* ``POST /apps/{app}/releases`` ``{"release": ID}`` rolls back to that release;
* ``GET /apps/{app}/dynos`` and ``GET /apps/{app}/releases`` reflect the containers.

The app's ``web_url`` is ``http://127.0.0.1:<port>/`` with a port reserved per app.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.doubles.loopback import LoopbackServer, free_port

ACCEPT = "application/vnd.heroku+json; version=3"
ACCEPT_DOCKER = ACCEPT + ".docker-releases"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HerokuDouble(LoopbackServer):
    """The double's state and its FastAPI app, served by uvicorn on 127.0.0.1.

    Args:
        api_key: the only key it accepts.
        registry: ``(host:port, user, password)`` of the registry images are pushed to.
        docker_client: the engine that runs the dynos.
        taken: app names that "other accounts" own (creating them answers 422).
        dyno_user: the user dynos run as (Heroku never runs them as root).
    """

    label = "Heroku double"

    def __init__(self, api_key: str, registry: tuple[str, str, str], docker_client: Any,
                 taken: set[str] | None = None, dyno_user: str = "65534:65534") -> None:
        self.api_key = api_key
        self.registry = registry
        self.docker = docker_client
        self.taken = set(taken or ())
        self.dyno_user = dyno_user
        self.apps: dict[str, dict[str, Any]] = {}
        self.releases: dict[str, list[dict[str, Any]]] = {}
        self.dynos: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.app = self._build()
        super().__init__()

    # --- lifecycle -----------------------------------------------------------
    def stop(self) -> None:
        for name in list(self.dynos):
            self._stop_dyno(name)
        self.stop_server()

    # --- dynos -----------------------------------------------------------------
    def _stop_dyno(self, app: str) -> None:
        dyno = self.dynos.pop(app, None)
        if dyno is not None:
            with contextlib.suppress(Exception):  # already gone
                dyno["container"].remove(force=True)

    def _start_dyno(self, app: str, release: dict[str, Any]) -> None:
        self._stop_dyno(app)
        container = self.docker.containers.run(
            release["docker_image"], detach=True, network_mode="host", user=self.dyno_user,
            environment={"PORT": str(self.ports[app]), "MLEM_HOST": "127.0.0.1"},
            labels={"mlem.test": "heroku-double"})
        self.dynos[app] = {"id": str(uuid.uuid4()), "container": container,
                           "release": release, "created_at": _now()}

    def _dyno_state(self, app: str) -> str:
        dyno = self.dynos[app]
        container = dyno["container"]
        container.reload()
        if container.status in ("exited", "dead"):
            return "crashed"
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", self.ports[app])) == 0:
                return "up"
        return "starting"

    # --- registry --------------------------------------------------------------
    def _pushed_config_digest(self, app: str) -> str | None:
        import httpx

        address, user, password = self.registry
        r = httpx.get(f"http://{address}/v2/{app}/web/manifests/latest", auth=(user, password),
                      headers={"Accept": MANIFEST_V2}, timeout=10, trust_env=False)
        if r.status_code != 200 or r.headers.get("content-type", "").split(";")[0] \
                != MANIFEST_V2:
            return None
        return str(r.json()["config"]["digest"])

    # --- the API ---------------------------------------------------------------
    def _app_json(self, app: str) -> dict[str, Any]:
        return self.apps[app]

    def _new_release(self, app: str, image: str, description: str) -> dict[str, Any]:
        rels = self.releases[app]
        release = {"id": str(uuid.uuid4()), "version": len(rels) + 1, "status": "succeeded",
                   "description": description, "current": True, "created_at": _now(),
                   "docker_image": image}
        for r in rels:
            r["current"] = False
        rels.append(release)
        return release

    def _build(self) -> Any:
        api = FastAPI(title="Heroku Platform API test double")

        def err(status: int, id_: str, message: str, **extra: Any) -> JSONResponse:
            return JSONResponse({"id": id_, "message": message, **extra}, status_code=status)

        def not_found() -> JSONResponse:
            return err(404, "not_found", "Couldn't find that app.", resource="app")

        @api.middleware("http")
        async def auth_and_version(request: Request, call_next: Any) -> Any:
            self.calls.append((request.method, request.url.path))
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return err(401, "unauthorized", "Invalid credentials provided.")
            accept = request.headers.get("accept", "")
            if accept not in (ACCEPT, ACCEPT_DOCKER):
                return err(400, "bad_request", "Please specify a version along with "
                                               "Heroku's API MIME type.")
            request.state.accept = accept
            return await call_next(request)

        @api.post("/apps", status_code=201)
        async def create_app(request: Request) -> Any:
            body = await request.json()
            name = body.get("name") or f"app-{uuid.uuid4().hex[:8]}"
            with self.lock:
                if name in self.apps or name in self.taken:
                    return err(422, "invalid_params", "Name is already taken")
                self.ports[name] = free_port()
                stack = body.get("stack", "heroku-24")
                self.apps[name] = {
                    "id": str(uuid.uuid4()), "name": name, "created_at": _now(),
                    "region": {"name": body.get("region", "us")},
                    "stack": {"name": stack}, "build_stack": {"name": stack},
                    "web_url": f"http://127.0.0.1:{self.ports[name]}/"}
                self.releases[name] = []
            return JSONResponse(self.apps[name], status_code=201)

        @api.get("/apps/{app}")
        def get_app(app: str) -> Any:
            return self.apps[app] if app in self.apps else not_found()

        @api.delete("/apps/{app}")
        def delete_app(app: str) -> Any:
            with self.lock:
                if app not in self.apps:
                    return not_found()
                self._stop_dyno(app)
                self.releases.pop(app, None)
                return self.apps.pop(app)

        @api.patch("/apps/{app}/formation")
        async def formation(app: str, request: Request) -> Any:
            if app not in self.apps:
                return not_found()
            body = await request.json()
            updates = body.get("updates") or []
            web = [u for u in updates if u.get("type") == "web"]
            if not web or not web[0].get("docker_image"):
                return err(422, "invalid_params", "updates need type web and docker_image")
            if request.state.accept != ACCEPT_DOCKER:
                return err(422, "invalid_params", "docker_image needs the Accept header "
                                                  f"{ACCEPT_DOCKER}")
            if self.apps[app]["build_stack"]["name"] != "container":
                return err(422, "invalid_params", "the app's stack is not container")
            image = str(web[0]["docker_image"])
            if self._pushed_config_digest(app) != image:
                return err(422, "invalid_params",
                           f"Invalid docker image: {image} is not the image pushed to "
                           f"registry.heroku.com/{app}/web")
            with self.lock:
                release = self._new_release(app, image, "Deployed web")
                self._start_dyno(app, release)
            return [{"id": str(uuid.uuid4()), "type": "web", "quantity": 1, "size": "basic",
                     "command": "", "docker_image": {"id": image},
                     "app": {"name": app, "id": self.apps[app]["id"]}}]

        @api.post("/apps/{app}/releases", status_code=201)
        async def rollback(app: str, request: Request) -> Any:
            if app not in self.apps:
                return not_found()
            target = (await request.json()).get("release")
            old = [r for r in self.releases[app] if r["id"] == target or
                   str(r["version"]) == str(target)]
            if not old:
                return err(404, "not_found", "Couldn't find that release.", resource="release")
            with self.lock:
                release = self._new_release(app, old[0]["docker_image"],
                                            f"Rollback to v{old[0]['version']}")
                self._start_dyno(app, release)
            return JSONResponse(release, status_code=201)

        @api.get("/apps/{app}/dynos")
        def dynos(app: str) -> Any:
            if app not in self.apps:
                return not_found()
            if app not in self.dynos:
                return []
            d = self.dynos[app]
            return [{"id": d["id"], "name": "web.1", "type": "web", "size": "basic",
                     "state": self._dyno_state(app), "created_at": d["created_at"],
                     "release": {"id": d["release"]["id"], "version": d["release"]["version"]},
                     "app": {"name": app, "id": self.apps[app]["id"]}}]

        @api.get("/apps/{app}/releases")
        def releases(app: str) -> Any:
            if app not in self.apps:
                return not_found()
            return [{k: v for k, v in r.items() if k != "docker_image"}
                    for r in self.releases[app]]

        return api
