"""The ``heroku`` target: the model's image on a Heroku app (``stack: container``).

Follows the documented Platform API and container registry:

1. ``GET /apps/{app}``; when it is missing (404) ``POST /apps`` with ``stack: container``;
2. build the image as ``REGISTRY/APP/web`` and push it with user ``_`` and the API key;
3. ``PATCH /apps/{app}/formation`` with the image id and the ``docker-releases`` Accept
   version (this creates a release);
4. wait until the web dynos are ``up`` on that release and the app's ``/health``
   answers, then send the smoke request to the app's URL.

When step 4 fails after an earlier good rollout, the previous release is put
back with ``POST /apps/{app}/releases`` (Heroku's rollback). API base URL,
registry host and app URL are declaration fields so tests can point them at
a double.

Credentials: :class:`HerokuCredentials` (``api_key``, else ``HEROKU_API_KEY``).

Example:
    >>> deploy("deployments/heroku.yaml", "models/rf",
    ...        credentials={"api_key": "..."})  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr

from mlem_lib.deploy.base import ModelSource, Progress, Target, TargetCredentials
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.smoke import SmokeRequest, smoke_test, wait_healthy
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.errors import (
    AppNameTakenError,
    CredentialsError,
    DeploymentError,
    RolledBackError,
)

if TYPE_CHECKING:
    import httpx

ACCEPT = "application/vnd.heroku+json; version=3"
ACCEPT_DOCKER = "application/vnd.heroku+json; version=3.docker-releases"


class HerokuDeclaration(BaseDeclaration):
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


class HerokuCredentials(TargetCredentials):
    """A Heroku Platform API key (also the registry password, with user ``_``).

    Example:
        >>> HerokuCredentials.from_env({"HEROKU_API_KEY": "hrku-1"}).api_key
        SecretStr('**********')
    """

    api_key: SecretStr | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """``HEROKU_API_KEY``."""
        key = (os.environ if env is None else env).get("HEROKU_API_KEY")
        return cls(api_key=SecretStr(key) if key else None)


class HerokuAPI:
    """A thin client of the Platform API calls the target needs.

    Args:
        base_url: the API's base URL (``https://api.heroku.com``).
        api_key: the API key, sent as ``Authorization: Bearer``.
        timeout: seconds per call (for the client this class makes).
        client: an ``httpx.Client`` to send the calls with (the caller closes it);
            requests go to absolute URLs, so it needs no ``base_url``.
        transport: an httpx transport for the client this class makes, e.g.
            ``httpx.MockTransport(handler)`` in tests.

    Example:
        >>> import httpx
        >>> def handler(request):
        ...     return httpx.Response(404, json={"id": "not_found", "message": "nope"})
        >>> api = HerokuAPI("https://api.heroku.com", "key",
        ...                 transport=httpx.MockTransport(handler))
        >>> api.get_app("iris-staging") is None
        True
        >>> api.close()
    """

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0, *,
                 client: httpx.Client | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": ACCEPT}
        self._owned = client is None
        self.client = client if client is not None else httpx.Client(
            timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the client this object made (a client passed in stays open)."""
        if self._owned:
            self.client.close()

    def request(self, method: str, path: str, *, accept: str = ACCEPT,
                json: Any = None, allow_404: bool = False) -> Any:
        """Send one call; return the decoded body (``None`` for an allowed 404)."""
        import httpx

        try:
            r = self.client.request(method, self.base_url + path, json=json,
                                    headers={**self.headers, "Accept": accept})
        except httpx.HTTPError as exc:
            raise DeploymentError(f"Heroku API {method} {path} failed: {exc!r}") from exc
        if r.status_code == 404 and allow_404:
            return None
        if r.status_code < 400:
            return r.json() if r.content else None
        try:
            body = r.json()
        except ValueError:
            body = {"id": "unknown", "message": r.text[:200]}
        if not isinstance(body, dict) or "message" not in body:
            body = {"id": "unknown", "message": r.text[:200]}
        message = f"Heroku API {method} {path}: HTTP {r.status_code} {body.get('id')}: " \
                  f"{body.get('message')}"
        if r.status_code == 403 and body.get("id") == "forbidden" and path.startswith("/apps/"):
            # Heroku's answer for an app that exists but belongs to another account
            app = path.split("/")[2]
            raise AppNameTakenError(
                f"Heroku app name '{app}' is taken: the app exists and belongs to an account "
                "this API key has no access to; choose another name (field 'app' of the "
                "declaration) or use a key with access to it")
        if r.status_code in (401, 403):
            raise CredentialsError(message + " (check HEROKU_API_KEY or the api_key option)")
        raise DeploymentError(message)

    def get_app(self, app: str) -> dict[str, Any] | None:
        return self.request("GET", f"/apps/{app}", allow_404=True)  # type: ignore[no-any-return]

    def create_app(self, app: str, region: str) -> dict[str, Any]:
        try:
            return self.request("POST", "/apps", json={  # type: ignore[no-any-return]
                "name": app, "region": region, "stack": "container"})
        except CredentialsError:
            raise
        except DeploymentError as exc:
            if "422" in str(exc) and "taken" in str(exc).lower():
                raise AppNameTakenError(
                    f"Heroku app name '{app}' is taken by another account (field 'app' of the "
                    "declaration): choose another name") from None
            raise

    def delete_app(self, app: str) -> bool:
        """Delete the app; False when it did not exist."""
        return self.request("DELETE", f"/apps/{app}", allow_404=True) is not None

    def release_image(self, app: str, image_id: str) -> Any:
        return self.request("PATCH", f"/apps/{app}/formation", accept=ACCEPT_DOCKER,
                            json={"updates": [{"type": "web", "docker_image": image_id}]})

    def rollback(self, app: str, release_id: str) -> dict[str, Any]:
        return self.request("POST", f"/apps/{app}/releases",  # type: ignore[no-any-return]
                            json={"release": release_id})

    def dynos(self, app: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/apps/{app}/dynos") or [])

    def releases(self, app: str) -> list[dict[str, Any]]:
        return sorted(self.request("GET", f"/apps/{app}/releases") or [],
                      key=lambda rel: int(rel.get("version", 0)))


class HerokuTarget(Target):
    """Deploy to a Heroku app through the Platform API and its image registry.

    Args:
        transport: an httpx transport for the Platform API calls (tests use
            ``httpx.MockTransport``); default: the network.
    """

    Declaration = HerokuDeclaration
    Credentials = HerokuCredentials
    decl: HerokuDeclaration
    credentials: HerokuCredentials

    def __init__(self, decl: Any, state_url: str, credentials: TargetCredentials,
                 *, progress: Progress = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(decl, state_url, credentials, progress=progress)
        self.transport = transport

    def _api(self) -> tuple[HerokuAPI, str]:
        secret = self.credentials.api_key
        key = secret.get_secret_value() if secret is not None else ""
        if not key:
            raise CredentialsError("no Heroku API key: pass credentials={'api_key': ...} "
                                   "(or a HerokuCredentials block) or set HEROKU_API_KEY")
        return HerokuAPI(self.decl.api_url, key, transport=self.transport), key

    def _url(self, app_info: dict[str, Any]) -> str:
        url = self.decl.app_url or app_info.get("web_url") or f"https://{self.decl.app}.herokuapp.com"
        return str(url).format(app=self.decl.app).rstrip("/")

    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        api, key = self._api()
        try:
            return self._rollout(api, key, source, current)
        finally:
            api.close()

    def rollback(self, current: DeploymentState) -> DeploymentState:
        previous = current.previous
        assert previous is not None
        release_id = previous.target.get("release_id")
        if not release_id:
            raise DeploymentError("the previous version has no recorded Heroku release")
        api, _ = self._api()
        try:
            self.progress(f"rolling back to release v{previous.target.get('release_version')}")
            rel = api.rollback(self.decl.app, str(release_id))
            self._wait_up(api, str(rel["id"]), current.url or "")
            smoke_test(current.url or "", model_hash=previous.model_hash,
                       request=previous.smoke, timeout=self.decl.wait_timeout,
                       poll=self.decl.poll_interval)
        finally:
            api.close()
        return previous.model_copy(update={
            "target": {**previous.target, "release_id": rel["id"],
                       "release_version": rel.get("version")}, "previous": None})

    def _rollout(self, api: HerokuAPI, key: str, source: ModelSource,
                 current: DeploymentState | None) -> DeploymentState:
        from mlem_lib.build.docker import build_docker, push_image

        meta = source.meta
        request = SmokeRequest.for_model(meta, self.smoke_method)

        app = self.decl.app
        info = api.get_app(app)
        created = info is None
        if info is None:
            self.progress(f"creating Heroku app {app} (stack: container)")
            info = api.create_app(app, self.decl.region)
        url = self._url(info)
        ref = f"{self.decl.registry}/{app}/web"
        self.progress(f"building image {ref}")
        try:
            image = build_docker(source.path, f"{ref}:latest", base=self.decl.base,
                                 model_version=source.version)
            self.progress(f"pushing {ref} to {self.decl.registry}")
            push_image(f"{ref}:latest", self.decl.registry, self.decl.registry_user, key)
            previous = api.releases(app)
            self.progress(f"releasing image {image.image_id[:19]}")
            api.release_image(app, image.image_id)
            release = self._new_release(api, previous)
            self._wait_up(api, str(release["id"]), url)
            smoke_test(url, model_hash=meta.model_hash, request=request,
                       timeout=self.decl.wait_timeout, poll=self.decl.poll_interval)
        except Exception as exc:
            self._recover(api, current, created, exc)
            raise
        return DeploymentState(
            name=self.decl.name, type="heroku", model_hash=meta.model_hash,
            model_path=source.reference, image=ref, image_id=image.image_id, url=url,
            smoke=request,
            target={"app": app, "release_id": release["id"],
                    "release_version": release.get("version"), "created_app": created
                    or bool(current and current.target.get("created_app"))})

    def _new_release(self, api: HerokuAPI, before: list[dict[str, Any]]) -> dict[str, Any]:
        known = {r.get("id") for r in before}
        deadline = time.monotonic() + self.decl.wait_timeout
        while True:
            fresh = [r for r in api.releases(self.decl.app) if r.get("id") not in known]
            if fresh:
                return fresh[-1]
            if time.monotonic() >= deadline:
                raise DeploymentError("the formation update created no release")
            time.sleep(self.decl.poll_interval)

    def _wait_up(self, api: HerokuAPI, release_id: str, url: str) -> None:
        self.progress("waiting for the web dyno")
        deadline = time.monotonic() + self.decl.wait_timeout
        states: list[str] = []
        while True:
            web = [d for d in api.dynos(self.decl.app) if d.get("type") == "web"]
            mine = [d for d in web if (d.get("release") or {}).get("id") == release_id]
            states = [str(d.get("state")) for d in mine]
            if mine and all(s == "up" for s in states):
                break
            if "crashed" in states:
                raise DeploymentError(f"the web dyno of {self.decl.app} crashed after the release")
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"the web dyno of {self.decl.app} was not up within "
                    f"{self.decl.wait_timeout:g}s (states: {states or 'none'})")
            time.sleep(self.decl.poll_interval)
        wait_healthy(url, max(1.0, deadline - time.monotonic()), self.decl.poll_interval)

    def _recover(self, api: HerokuAPI, current: DeploymentState | None, created: bool,
                 error: Exception) -> None:
        """Put the previous release back (or delete an app this rollout created).

        Raises:
            RolledBackError: it did; ``restored_state`` is what runs now.
        """
        if current is not None and current.target.get("release_id"):
            self.progress(f"rollout failed ({error}); rolling back to release "
                          f"v{current.target.get('release_version')}")
            try:
                rel = api.rollback(self.decl.app, str(current.target["release_id"]))
                self._wait_up(api, str(rel["id"]), current.url or "")
            except DeploymentError as exc:
                raise DeploymentError(f"rollout failed ({error}) and the rollback failed: "
                                      f"{exc}") from error
            # same version as before, recorded under its new release id
            restored = current.model_copy(
                update={"target": {**current.target, "release_id": rel["id"],
                                   "release_version": rel.get("version")}})
            raise RolledBackError(f"{error} (rolled back: release "
                                  f"v{current.target.get('release_version')} runs again)",
                                  restored_state=restored, reason=error) from error
        if created:
            self.progress(f"rollout failed ({error}); deleting the app it created")
            api.delete_app(self.decl.app)
            raise RolledBackError(f"{error} (the app this rollout created was deleted)",
                                  restored_state=None, reason=error) from error

    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        base: dict[str, Any] = {"name": self.decl.name, "type": "heroku"}
        api, _ = self._api()
        try:
            info = api.get_app(self.decl.app)
            if info is None:
                return DeploymentStatus(**base, deployed=False, healthy=False,
                                        detail=f"app {self.decl.app} does not exist")
            url = self._url(info)
            dynos = [d for d in api.dynos(self.decl.app) if d.get("type") == "web"]
            releases = api.releases(self.decl.app)
        finally:
            api.close()
        states = [str(d.get("state")) for d in dynos]
        release = releases[-1] if releases else {}
        detail = f"release v{release.get('version', '?')}, web dynos: {states or 'none'}"
        healthy = bool(states) and all(s == "up" for s in states)
        if healthy:
            try:
                wait_healthy(url, 0.0)
            except DeploymentError as exc:
                healthy, detail = False, f"{detail}; {exc}"
        return DeploymentStatus(**base, deployed=current is not None, healthy=healthy, url=url,
                                model_hash=current.model_hash if current else None,
                                detail=detail)

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        api, _ = self._api()
        try:
            if api.delete_app(self.decl.app):
                self.progress(f"deleted Heroku app {self.decl.app}")
        finally:
            api.close()
