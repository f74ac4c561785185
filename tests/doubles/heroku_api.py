"""A TEST DOUBLE of Heroku's documented Platform API and router. It is not Heroku.

It answers the subset of https://devcenter.heroku.com/articles/platform-api-reference
that ``mlem_lib.deploy.heroku`` calls, the way Heroku does, including the
behaviour where rollouts break in production:

* **Auth and versions.** Every call needs ``Authorization: Bearer <key>`` (else 401
  ``unauthorized``) and ``Accept: application/vnd.heroku+json; version=3`` (else 400
  ``bad_request``); ``PATCH /apps/{app}/formation`` with an image needs the
  ``version=3.docker-releases`` variant.
* **Ownership.** An app another account owns (``others``) answers 403 ``forbidden``
  ("You do not have access to the app ...") to every call, not 404; creating an
  app with its name answers 422 ``invalid_params`` "Name ... is already taken".
  Unknown apps answer 404 ``not_found``.
* **Ranges.** List calls return at most 200 items (``max`` up to 1000) in the order
  of the ``Range`` header's field (``id`` by default, which is *not* chronological:
  ids are UUIDs), with ``206 Partial Content`` and ``Next-Range`` while more
  remain; ``order=desc`` reverses. ``Accept-Ranges`` names the fields.
* **Rate limit.** Every answer carries ``RateLimit-Remaining``; when the account's
  budget is spent the answer is 429 ``rate_limit`` until the budget refills
  (:meth:`HerokuDouble.rate_limit` sets the budget and refill rate; Heroku's is
  4500 requests an hour).
* **Releases.** ``PATCH /apps/{app}/formation`` ``{"updates": [{"type": "web",
  "docker_image": ID}]}`` checks that ID is the image pushed to ``APP/web``
  (422 otherwise) and creates a release with status ``pending``. After
  :attr:`HerokuDouble.release_delay` seconds (the release phase) the release
  becomes ``succeeded`` and the web dyno restarts on it, or, while
  :attr:`HerokuDouble.fail_releases` is positive, ``failed``: the dynos keep the
  previous release. ``POST /apps/{app}/releases`` ``{"release": ID}`` rolls back
  the same way. ``GET /apps/{app}/releases[/{id_or_version}]`` and
  ``GET /apps/{app}/dynos`` reflect all that.
* **Config vars.** ``GET``/``PATCH /apps/{app}/config-vars`` (``null`` removes one). A
  change is a release of the running image with the new vars; every release keeps its
  vars, dynos run with them in their environment, and a rollback brings them back.
* **Dynos and router.** A dyno gets ``$PORT`` and a network of its own (see
  :mod:`tests.doubles.isolated` for containers); it is ``starting`` until something
  listens on ``$PORT``, ``up`` then, ``crashed`` when its process exits or misses
  the 60 s boot timeout (R10). Each app has a router, a loopback server on a port
  the OS picked, which is the app's ``web_url``: it forwards requests to the web
  dyno, or answers 503 (H14 "No web processes running") without one.

Two dyno runners: :class:`DockerDynos` runs the pushed image (the real path), and
:class:`ProcessDynos` runs ``python -m mlem_lib.serve.container`` for a model
path registered under an image id, for tests on machines without Docker.

Example:
    >>> double = HerokuDouble("key")
    >>> api = httpx.Client(transport=double.transport(), base_url="https://api.heroku.com",
    ...                    headers={"Authorization": "Bearer key", "Accept": ACCEPT})
    >>> api.post("/apps", json={"name": "demo-app", "stack": "container"}).status_code
    201
    >>> r = api.get("/apps/demo-app/releases")
    >>> r.status_code, r.json(), r.headers["RateLimit-Remaining"]
    (200, [], '4499')
    >>> double.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.doubles.isolated import (
    Box,
    ContainerTimeout,
    ContainerUnreachable,
    IsolatedContainer,
    LocalProcess,
    clean_env,
    start_entrypoint,
)
from tests.doubles.loopback import HOP_HEADERS, LoopbackServer, json_response

ACCEPT = "application/vnd.heroku+json; version=3"
ACCEPT_DOCKER = ACCEPT + ".docker-releases"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
PAGE_DEFAULT, PAGE_MAX = 200, 1000
BOOT_TIMEOUT = 60.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, id_: str, message: str, **extra: Any) -> httpx.Response:
    return json_response(status, {"id": id_, "message": message, **extra})


# --- dynos ------------------------------------------------------------------------------

class Dyno:
    """A running web dyno (a container or a local process) and the release it runs."""

    def __init__(self, release: dict[str, Any], box: Box) -> None:
        self.id = str(uuid.uuid4())
        self.release = release
        self.box = box
        self.created_at = _now()
        self.started = time.monotonic()
        self.booted = False
        self.boot_timed_out = False

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes,
                timeout: float) -> httpx.Response:
        return self.box.request(method, path, headers=headers, body=body, timeout=timeout)

    def stop(self) -> None:
        self.box.remove()

    def state(self) -> str:
        """``starting`` | ``up`` | ``crashed``, as ``GET /apps/{app}/dynos`` reports it."""
        if self.boot_timed_out or not self.box.running():
            return "crashed"
        if not self.booted:
            try:
                self.request("GET", "/", {}, b"", timeout=5)
                self.booted = True
            except (ContainerUnreachable, ContainerTimeout):
                if time.monotonic() - self.started > BOOT_TIMEOUT:  # R10 boot timeout
                    self.boot_timed_out = True
                    self.stop()
                    return "crashed"
                return "starting"
        return "up"


class DockerDynos:
    """Dynos from images pushed to a real registry, each container on a network of its own.

    Every container it creates carries the labels ``mlem.test=heroku-double`` and
    ``mlem.test.double=<id>`` (:attr:`id`, unique to this runner) and is recorded by
    its id before it starts; :meth:`stop` removes them all, whether a restart
    replaced them, their app was deleted or a restart was still starting them.

    Args:
        docker_client: the engine that runs the dynos.
        registry: ``(host:port, user, password)`` standing in for registry.heroku.com.
        user: the user dynos run as (Heroku never runs them as root).
    """

    def __init__(self, docker_client: Any, registry: tuple[str, str, str],
                 user: str = "65534:65534") -> None:
        self.docker = docker_client
        self.registry = registry
        self.user = user
        self.id = uuid.uuid4().hex
        self.labels = {"mlem.test": "heroku-double", "mlem.test.double": self.id}
        self.containers: list[str] = []  # the id of every container it created
        self._lock = threading.Lock()

    def image_pushed(self, app: str, image_id: str) -> bool:
        """True when ``APP/web:latest`` in the registry is the image ``image_id``."""
        address, user, password = self.registry
        r = httpx.get(f"http://{address}/v2/{app}/web/manifests/latest", auth=(user, password),
                      headers={"Accept": MANIFEST_V2}, timeout=10, trust_env=False)
        if r.status_code != 200 or r.headers.get("content-type", "").split(";")[0] \
                != MANIFEST_V2:
            return False
        return bool(r.json()["config"]["digest"] == image_id)

    def start(self, app: str, release: dict[str, Any]) -> Dyno:
        address, user, password = self.registry
        self.docker.images.pull(f"{address}/{app}/web", tag="latest",
                                auth_config={"username": user, "password": password})
        port = random.randint(3000, 60000)  # Heroku's $PORT is arbitrary: the app must read it
        # created, recorded, then started: a container that fails to start is removed too
        container = self.docker.containers.create(
            release["docker_image"], network_mode="none", user=self.user,
            environment={**release["config"], "PORT": str(port)}, labels=self.labels)
        with self._lock:
            self.containers.append(str(container.id))
        container.start()
        return Dyno(release, IsolatedContainer(container, port))

    def stop(self) -> None:
        """Remove every container this runner created (by id), and any container with
        its label that a failed create call left behind."""
        import docker.errors

        with self._lock:
            ids = list(self.containers)
        with contextlib.suppress(docker.errors.APIError):
            ids += [str(c.id) for c in self.docker.containers.list(
                all=True, filters={"label": f"mlem.test.double={self.id}"})]
        for container_id in dict.fromkeys(ids):
            try:
                self.docker.api.remove_container(container_id, force=True)
            except docker.errors.APIError as exc:
                if exc.status_code not in (404, 409):  # gone, or its removal under way
                    raise


class ProcessDynos:
    """Dynos as local processes of the image's entrypoint, for machines without Docker.

    ``images`` maps an image id to the saved model the "image" serves;
    ``python -m mlem_lib.serve.container`` runs with ``PORT`` and ``MLEM_MODEL``,
    which is what the generated image's entrypoint does.
    """

    def __init__(self, images: dict[str, str] | None = None) -> None:
        self.images = dict(images or {})
        self.logs = tempfile.mkdtemp(prefix="heroku-dynos-")
        self.processes: list[LocalProcess] = []  # every process it started
        self._lock = threading.Lock()

    def image_pushed(self, app: str, image_id: str) -> bool:
        return image_id in self.images

    def start(self, app: str, release: dict[str, Any]) -> Dyno:
        from tests.conftest import free_port

        port = free_port()  # Heroku, not the app, chooses $PORT
        env = clean_env(**release["config"], PORT=str(port), MLEM_HOST="127.0.0.1",
                        MLEM_MODEL=self.images[release["docker_image"]])
        log = os.path.join(self.logs, f"{app}-v{release['version']}.log")
        process = start_entrypoint(env, port, log)
        with self._lock:
            self.processes.append(process)
        return Dyno(release, process)

    def stop(self) -> None:
        """Stop every process this runner started, by its PID."""
        with self._lock:
            processes = list(self.processes)
        for process in processes:
            process.remove()


# --- the router -------------------------------------------------------------------------

class AppRouter(LoopbackServer):
    """An app's URL: forwards to its web dyno, as Heroku's router does."""

    label = "Heroku router double"

    def __init__(self, double: HerokuDouble, app: str) -> None:
        super().__init__()
        self.double = double
        self.app = app

    def handle(self, request: httpx.Request) -> httpx.Response:
        dyno = self.double.dynos.get(self.app)
        if dyno is None or dyno.state() != "up":
            return httpx.Response(503, text="Application error",
                                  headers={"Content-Type": "text/html",
                                           "X-Heroku-Error": "H14 No web processes running"})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        path = request.url.raw_path.decode()
        try:
            r = dyno.request(request.method, path, headers, request.content, timeout=30)
        except ContainerTimeout:  # H12: the router gives up after 30 s
            return httpx.Response(503, text="Application error",
                                  headers={"X-Heroku-Error": "H12 Request timeout"})
        except ContainerUnreachable:
            return httpx.Response(503, text="Application error",
                                  headers={"X-Heroku-Error": "H13 Connection closed"})
        return httpx.Response(r.status_code, headers=[(k, v) for k, v in r.headers.items()
                                                      if k.lower() not in HOP_HEADERS],
                              content=r.content)


# --- ranges -----------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*(?P<field>[a-z_]+)\s+(?P<excl>\])?(?P<start>[^.;]*)\.\."
                    r"(?P<end>[^;]*)(?:;(?P<params>.*))?$")


def parse_range(header: str | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """``id ]abc..; max=10, order=desc`` -> its parts, or None when malformed."""
    if not header:
        return {"field": fields[0], "start": None, "exclusive": False, "max": PAGE_DEFAULT,
                "desc": False}
    m = _RANGE.match(header)
    if not m or m["field"] not in fields:
        return None
    params = dict(p.strip().split("=", 1) for p in re.split(r"[;,]", m["params"] or "")
                  if "=" in p)
    try:
        size = int(params.get("max", PAGE_DEFAULT))
    except ValueError:
        return None
    if not 0 < size <= PAGE_MAX:
        return None
    return {"field": m["field"], "start": m["start"].strip() or None,
            "exclusive": bool(m["excl"]), "max": size,
            "desc": params.get("order", "asc").strip() == "desc"}


def paged(items: list[dict[str, Any]], header: str | None,
          fields: tuple[str, ...] = ("id",)) -> httpx.Response:
    """One page of ``items`` in the order and from the point the ``Range`` header asks."""
    rng = parse_range(header, fields)
    if rng is None:
        return _error(416, "requested_range_not_satisfiable",
                      f"Requested Range {header!r} is not satisfiable: fields are "
                      f"{', '.join(fields)}, max is 1..{PAGE_MAX}")
    field = rng["field"]

    def key(item: dict[str, Any]) -> Any:
        return item[field]

    ordered = sorted(items, key=key, reverse=rng["desc"])
    if rng["start"] is not None:
        start: Any = int(rng["start"]) if isinstance(ordered[0][field] if ordered else "",
                                                     int) else rng["start"]

        def after(item: dict[str, Any]) -> bool:
            value = item[field]
            if rng["desc"]:
                return bool(value < start if rng["exclusive"] else value <= start)
            return bool(value > start if rng["exclusive"] else value >= start)

        ordered = [i for i in ordered if after(i)]
    page = ordered[:rng["max"]]
    headers = {"Accept-Ranges": ", ".join(fields)}
    if len(ordered) > len(page):
        order = ", order=desc" if rng["desc"] else ""
        headers["Next-Range"] = f"{field} ]{page[-1][field]}..; max={rng['max']}{order}"
        return json_response(206, page, headers)
    return json_response(200, page, headers)


# --- the API ----------------------------------------------------------------------------

class HerokuDouble(LoopbackServer):
    """The double's state and its request handler (served by :meth:`start`).

    Args:
        api_key: the only key it accepts (the test account's).
        dynos: a :class:`DockerDynos` or :class:`ProcessDynos` runner, or None for an
            API without dynos (every release succeeds, nothing runs).
        others: app names that other accounts own.
        release_delay: seconds a new release stays ``pending`` (its release phase).
    """

    label = "Heroku double"

    def __init__(self, api_key: str, dynos: DockerDynos | ProcessDynos | None = None,
                 others: set[str] | None = None, release_delay: float = 0.3) -> None:
        super().__init__()
        self.api_key = api_key
        self.runner = dynos
        self.others = set(others or ())
        self.release_delay = release_delay
        self.fail_releases = 0
        self.apps: dict[str, dict[str, Any]] = {}
        self.releases: dict[str, list[dict[str, Any]]] = {}
        self.config: dict[str, dict[str, str]] = {}  # app -> config vars
        self.dynos: dict[str, Dyno] = {}
        self.routers: dict[str, AppRouter] = {}
        self.calls: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.lock = threading.RLock()
        # one web-dyno restart at a time: two releases finishing together (a config-var
        # release and the image release after it) must leave the newer one running
        self.restart_lock = threading.Lock()
        self.timers: list[threading.Timer] = []
        self.stopped = False
        self.budget: float | None = None
        self.refill_per_second = 0.0
        self.most = 4500.0
        self._refilled_at = time.monotonic()

    # --- knobs ---------------------------------------------------------------------
    def rate_limit(self, remaining: int, refill_per_second: float,
                   most: int = 4500) -> None:
        """Give the account ``remaining`` requests, refilled at ``refill_per_second`` up
        to ``most`` (Heroku's bucket holds 4500)."""
        with self.lock:
            self.budget = float(remaining)
            self.refill_per_second = refill_per_second
            self.most = float(most)
            self._refilled_at = time.monotonic()

    def seed_app(self, name: str, releases: int = 0) -> dict[str, Any]:
        """An app of the test account that exists already, with ``releases`` old releases."""
        with self.lock:
            app = self._create(name, "us", "container")
            for i in range(releases):
                self._release(name, f"sha256:{i:064x}", f"Deploy {i + 1}", status="succeeded")
            return app

    def called(self, method: str, path: str) -> int:
        """How often ``method path`` was called."""
        return sum(1 for _, m, p, _ in self.calls if (m, p) == (method, path))

    def served_hash(self, app: str) -> str | None:
        """The ``model_hash`` the app's web dyno reports on ``/health`` right now."""
        dyno = self.dynos.get(app)
        if dyno is None:
            return None
        r = dyno.request("GET", "/health", {}, b"", timeout=10)
        return str(r.json()["model_hash"]) if r.status_code == 200 else None

    # --- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving, and stop every dyno the double ever started.

        Pending releases are cancelled, a restart under way is waited for, and the
        runner then removes every container (or process) it started, not only each app's
        current dyno: one that a restart replaced or that outlived its app goes too."""
        with self.lock:
            self.stopped = True
            timers = list(self.timers)
        for timer in timers:
            timer.cancel()
        for timer in timers:
            if timer is not threading.current_thread():
                timer.join(BOOT_TIMEOUT)
        with self.lock:
            for app in list(self.apps):
                self._drop(app)
        if self.runner is not None:
            self.runner.stop()
        self.stop_server()

    def _drop(self, app: str) -> None:
        dyno = self.dynos.pop(app, None)
        if dyno is not None:
            dyno.stop()
        router = self.routers.pop(app, None)
        if router is not None:
            router.stop_server()
        self.releases.pop(app, None)
        self.config.pop(app, None)
        self.apps.pop(app, None)

    # --- state changes -----------------------------------------------------------------
    def _create(self, name: str, region: str, stack: str) -> dict[str, Any]:
        router = AppRouter(self, name)
        url = router.start()
        self.routers[name] = router
        self.apps[name] = {
            "id": str(uuid.uuid4()), "name": name, "created_at": _now(), "updated_at": _now(),
            "region": {"name": region}, "stack": {"name": stack},
            "build_stack": {"name": stack}, "web_url": url + "/",
            "owner": {"email": "test@example.com"}}
        self.releases[name] = []
        self.config[name] = {}
        return self.apps[name]

    def _release(self, app: str, image: str | None, description: str,
                 status: str = "pending", config: dict[str, str] | None = None
                 ) -> dict[str, Any]:
        rels = self.releases[app]
        if config is not None:
            self.config[app] = dict(config)
        release = {"id": str(uuid.uuid4()), "version": len(rels) + 1, "status": status,
                   "description": description, "current": status == "succeeded",
                   "created_at": _now(), "updated_at": _now(), "docker_image": image,
                   "config": dict(self.config[app]), "user": {"email": "test@example.com"}}
        if status == "succeeded":
            for r in rels:
                r["current"] = False
        rels.append(release)
        if status == "pending" and not self.stopped:
            timer = threading.Timer(self.release_delay, self._finish_release, (app, release))
            timer.daemon = True
            self.timers.append(timer)
            timer.start()
        return release

    def _finish_release(self, app: str, release: dict[str, Any]) -> None:
        """The release phase is over: succeed (restart the web dyno on it) or fail.

        A release that finishes after a newer one succeeded does not replace it, as on
        Heroku, where the latest release is the one that runs."""
        with self.restart_lock:
            with self.lock:
                if app not in self.apps or self.stopped:
                    return
                info = self.apps[app]
                release["updated_at"] = _now()
                if self.fail_releases > 0:
                    self.fail_releases -= 1
                    release["status"] = "failed"
                    return
                release["status"] = "succeeded"
                if any(r["version"] > release["version"] and r["status"] == "succeeded"
                       for r in self.releases[app]):
                    return
                for r in self.releases[app]:
                    r["current"] = r is release
                old = self.dynos.pop(app, None)
            if old is not None:
                old.stop()
            if self.runner is not None and release["docker_image"] is not None:
                dyno = self.runner.start(app, release)
                with self.lock:
                    # the app was deleted (or the double stopped) while the dyno started
                    orphan = self.stopped or self.apps.get(app) is not info
                    if not orphan:
                        self.dynos[app] = dyno
                if orphan:
                    dyno.stop()

    # --- the handler ---------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self._handle(request)
        with self.lock:
            if self.budget is not None:
                response.headers["RateLimit-Remaining"] = str(int(self.budget))
            else:
                response.headers["RateLimit-Remaining"] = "4499"
            self.calls.append((time.monotonic(), request.method, request.url.path,
                               response.status_code))
        return response

    def _spend(self) -> bool:
        """Take one request from the budget; False when it is spent."""
        with self.lock:
            if self.budget is None:
                return True
            now = time.monotonic()
            self.budget = min(self.most, self.budget + (now - self._refilled_at)
                              * self.refill_per_second)
            self._refilled_at = now
            if self.budget < 1:
                return False
            self.budget -= 1
            return True

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "Invalid credentials provided.")
        accept = request.headers.get("accept", "")
        if accept not in (ACCEPT, ACCEPT_DOCKER):
            return _error(400, "bad_request",
                          "Please specify a version along with Heroku's API MIME type.")
        if not self._spend():
            return _error(429, "rate_limit", "Your account reached the API rate limit\n"
                                             "Please wait a few minutes before making new "
                                             "requests")
        parts = [p for p in request.url.path.split("/") if p]
        method = request.method
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                return _error(400, "bad_request", "Invalid JSON.")
        if parts == ["apps"] and method == "POST":
            return self._create_app(body or {})
        if parts == ["apps"] and method == "GET":
            return paged(list(self.apps.values()), request.headers.get("range"),
                         ("id", "name"))
        if len(parts) < 2 or parts[0] != "apps":
            return _error(404, "not_found", "The requested API endpoint was not found.")
        app, rest = parts[1], parts[2:]
        if app in self.others:
            return _error(403, "forbidden", f"You do not have access to the app {app}.")
        if app not in self.apps:
            return _error(404, "not_found", "Couldn't find that app.", resource="app")
        routes: dict[tuple[str, tuple[str, ...]], Callable[[], httpx.Response]] = {
            ("GET", ()): lambda: json_response(200, self.apps[app]),
            ("DELETE", ()): lambda: self._delete_app(app),
            ("PATCH", ("formation",)): lambda: self._formation(app, body or {}, accept),
            ("POST", ("releases",)): lambda: self._rollback(app, body or {}),
            ("GET", ("releases",)): lambda: paged(
                [self._public(r) for r in self.releases[app]], request.headers.get("range"),
                ("id", "version")),
            ("GET", ("dynos",)): lambda: paged(self._dynos(app), request.headers.get("range"),
                                               ("id", "name")),
            ("GET", ("config-vars",)): lambda: json_response(200, self.config[app]),
            ("PATCH", ("config-vars",)): lambda: self._set_config(app, body or {}),
        }
        if method == "GET" and len(rest) == 2 and rest[0] == "releases":
            return self._one_release(app, rest[1])
        route = routes.get((method, tuple(rest)))
        if route is None:
            return _error(404, "not_found", "The requested API endpoint was not found.")
        return route()

    @staticmethod
    def _public(release: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in release.items() if k not in ("docker_image", "config")}

    def _set_config(self, app: str, body: dict[str, Any]) -> httpx.Response:
        """``PATCH /apps/{app}/config-vars``: ``null`` removes a var; a change is a release
        of the running image with the new config (the dynos restart with it)."""
        with self.lock:
            config = {**self.config[app], **{str(k): str(v) for k, v in body.items()
                                             if v is not None}}
            for key in (k for k, v in body.items() if v is None):
                config.pop(str(key), None)
            if config != self.config[app]:
                running = next((r for r in self.releases[app] if r["current"]), None)
                self._release(app, running["docker_image"] if running else None,
                              f"Set {', '.join(map(str, body))} config vars", config=config)
            return json_response(200, self.config[app])

    def _create_app(self, body: dict[str, Any]) -> httpx.Response:
        name = str(body.get("name") or f"app-{uuid.uuid4().hex[:8]}")
        with self.lock:
            if name in self.apps or name in self.others:
                return _error(422, "invalid_params", f"Name {name} is already taken")
            app = self._create(name, str(body.get("region", "us")),
                               str(body.get("stack", "heroku-24")))
        return json_response(201, app)

    def _delete_app(self, app: str) -> httpx.Response:
        with self.lock:
            info = self.apps[app]
            self._drop(app)
        return json_response(200, info)

    def _formation(self, app: str, body: dict[str, Any], accept: str) -> httpx.Response:
        web = [u for u in body.get("updates") or [] if u.get("type") == "web"]
        if not web or not web[0].get("docker_image"):
            return _error(422, "invalid_params", "updates need type web and docker_image")
        if accept != ACCEPT_DOCKER:
            return _error(422, "invalid_params",
                          f"docker_image needs the Accept header {ACCEPT_DOCKER}")
        if self.apps[app]["build_stack"]["name"] != "container":
            return _error(422, "invalid_params", "the app's stack is not container")
        image = str(web[0]["docker_image"])
        if self.runner is not None and not self.runner.image_pushed(app, image):
            return _error(422, "invalid_params", f"Invalid docker image: {image} is not the "
                                                 f"image pushed to registry.heroku.com/{app}/web")
        with self.lock:
            self._release(app, image, "Deployed web")
        return json_response(200, [{
            "id": str(uuid.uuid4()), "type": "web", "quantity": 1, "size": "basic",
            "command": "", "docker_image": {"id": image},
            "app": {"name": app, "id": self.apps[app]["id"]}}])

    def _rollback(self, app: str, body: dict[str, Any]) -> httpx.Response:
        target = str(body.get("release"))
        old = [r for r in self.releases[app] if target in (r["id"], str(r["version"]))]
        if not old:
            return _error(404, "not_found", "Couldn't find that release.", resource="release")
        if old[0]["status"] != "succeeded":
            return _error(422, "invalid_params",
                          f"Release v{old[0]['version']} did not succeed: cannot roll back to it")
        with self.lock:
            release = self._release(app, old[0]["docker_image"],
                                    f"Rollback to v{old[0]['version']}", config=old[0]["config"])
        return json_response(201, self._public(release))

    def _one_release(self, app: str, key: str) -> httpx.Response:
        found = [r for r in self.releases[app] if key in (r["id"], str(r["version"]))]
        if not found:
            return _error(404, "not_found", "Couldn't find that release.", resource="release")
        return json_response(200, self._public(found[0]))

    def _dynos(self, app: str) -> list[dict[str, Any]]:
        dyno = self.dynos.get(app)
        if dyno is None:
            return []
        with contextlib.suppress(KeyError):
            return [{"id": dyno.id, "name": "web.1", "type": "web", "size": "basic",
                     "state": dyno.state(), "created_at": dyno.created_at,
                     "release": {"id": dyno.release["id"],
                                 "version": dyno.release["version"]},
                     "app": {"name": app, "id": self.apps[app]["id"]}}]
        return []
