"""The ``heroku`` target: the model's image on a Heroku app (``stack: container``).

Follows the documented Platform API and container registry (the API client is
:mod:`mlem_lib.deploy.heroku_api`: ranges, rate limits, errors):

1. ``GET /apps/{app}``; when it is missing (404) ``POST /apps`` with ``stack: container``;
   a 403 ``forbidden`` means another account owns the name (``AppNameTakenError``);
2. build the image as ``REGISTRY/APP/web`` and push it with user ``_`` and the API key;
   the declaration's server settings (``batch_max_size``, ``batch_max_latency_ms``,
   ``model_runtime``) become the app's config vars (``PATCH /apps/{app}/config-vars``);
3. ``PATCH /apps/{app}/formation`` with the image id and the ``docker-releases`` Accept
   version: this creates a release, ``pending`` while its release phase runs;
4. wait for the release to be ``succeeded`` (``failed`` fails the rollout: Heroku
   keeps the previous release running), for the web dynos to be ``up`` on it, and for
   the app's ``/health`` to report the new model hash; then send the smoke request.

Polls start every ``poll_interval`` seconds and slow down as a wait goes on; a 429
is waited out. When a rollout fails after an earlier good one, the previous release
is put back with ``POST /apps/{app}/releases`` (Heroku's rollback) unless it still
runs; an app the failed rollout created is deleted. ``remove`` deletes only an app
this tool created, unless forced. API base URL, registry host and app URL are
declaration fields so tests can point them at a double.

Credentials: :class:`HerokuCredentials` (``api_key``, else ``HEROKU_API_KEY``).

Example:
    >>> deploy("deployments/heroku.yaml", "models/rf",
    ...        credentials={"api_key": "..."})  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr

from mlem_lib.deploy.base import ModelSource, Progress, Target, TargetCredentials
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.heroku_api import ACCEPT, ACCEPT_DOCKER, HerokuAPI
from mlem_lib.deploy.smoke import SmokeRequest, smoke_test, wait_healthy
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.deploy.wait import wait_for
from mlem_lib.errors import (
    CredentialsError,
    DeploymentError,
    RolledBackError,
    TargetFailedError,
)
from mlem_lib.serve.settings import ENV_BATCH_MAX_LATENCY_MS, ENV_BATCH_MAX_SIZE, ENV_MODEL_RUNTIME

POLL_CAP = 10.0  # the longest pause between two polls of a release or the dynos
#: config vars a declaration's server settings own (set from it, removed when it drops them)
SERVER_CONFIG_VARS = (ENV_BATCH_MAX_SIZE, ENV_BATCH_MAX_LATENCY_MS, ENV_MODEL_RUNTIME)

if TYPE_CHECKING:
    import httpx

__all__ = ["ACCEPT", "ACCEPT_DOCKER", "HerokuAPI", "HerokuCredentials", "HerokuDeclaration",
           "HerokuTarget"]


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
        return HerokuAPI(self.decl.api_url, key, transport=self.transport,
                         backoff=self.decl.poll_interval, progress=self.progress), key

    def _url(self, app_info: dict[str, Any]) -> str:
        url = self.decl.app_url or app_info.get("web_url") or f"https://{self.decl.app}.herokuapp.com"
        return str(url).format(app=self.decl.app).rstrip("/")

    def _wait(self, check: Any, what: str) -> Any:
        """Poll ``check`` with growing pauses until it returns something (or time out)."""
        timeout = self.decl.wait_timeout
        return wait_for(check, timeout=timeout, first=self.decl.poll_interval, cap=POLL_CAP,
                        on_timeout=lambda: DeploymentError(
                            f"{what} within {timeout:g}s (field 'wait_timeout')"))

    # --- rollout ---------------------------------------------------------------------
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        api, key = self._api()
        try:
            return self._rollout(api, key, source, current)
        finally:
            api.close()

    def _rollout(self, api: HerokuAPI, key: str, source: ModelSource,
                 current: DeploymentState | None) -> DeploymentState:
        from mlem_lib.build.docker import build_docker, push_image

        meta = source.meta
        request = SmokeRequest.for_model(meta, self.smoke_method, self.smoke_data)
        app = self.decl.app
        info = api.get_app(app)
        created = info is None
        if info is None:
            self.progress(f"creating Heroku app {app} (stack: container)")
            info = api.create_app(app, self.decl.region)
        url = self._url(info)
        ref = f"{self.decl.registry}/{app}/web"
        running: dict[str, Any] | None = None
        released = False
        try:
            self.progress(f"building image {ref}")
            image = build_docker(source.path, f"{ref}:latest", base=self.decl.base,
                                 pip=self.decl.image_requirements(meta) or None,
                                 model_version=source.version)
            self.progress(f"pushing {ref} to {self.decl.registry}")
            push_image(f"{ref}:latest", self.decl.registry, self.decl.registry_user, key)
            latest = api.latest_releases(app, 10)
            running = next((r for r in latest if r.get("current")), None)
            released = True  # from here on the app may run something else
            if self._set_config_vars(api, app):  # (Heroku makes a release of the change)
                latest = api.latest_releases(app, 1)
            self.progress(f"releasing image {image.image_id[:19]}")
            api.release_image(app, image.image_id)
            release = self._new_release(api, int(latest[0]["version"]) if latest else 0)
            release = self._wait_release(api, release)
            self._wait_up(api, str(release["id"]))
            smoke_test(url, model_hash=meta.model_hash, request=request,
                       timeout=self.decl.wait_timeout, poll=self.decl.poll_interval)
        except Exception as exc:
            if created or released:
                self._recover(api, current, created, running, exc)
            raise
        return DeploymentState(
            name=self.decl.name, type="heroku", model_hash=meta.model_hash,
            model_path=source.reference, image=ref, image_id=image.image_id, url=url,
            smoke=request,
            target={"app": app, "release_id": release["id"],
                    "release_version": release.get("version"), "created_app": created
                    or bool(current and current.target.get("created_app"))})

    def _set_config_vars(self, api: HerokuAPI, app: str) -> bool:
        """The declaration's server settings (batching, model runtime) as the app's config
        vars, and those it no longer sets removed; True when something changed. A rollback
        to an earlier release brings that release's config vars back, as Heroku does."""
        wanted: dict[str, str | None] = {
            **dict.fromkeys(SERVER_CONFIG_VARS), **self.decl.server_env()}
        current = api.config_vars(app)
        changes = {k: v for k, v in wanted.items() if current.get(k) != v}
        if not changes:
            return False
        shown = ", ".join(f"{k}={v}" if v is not None else f"{k} unset"
                          for k, v in changes.items())
        self.progress(f"setting config vars of {app}: {shown}")
        api.set_config_vars(app, changes)
        return True

    def _new_release(self, api: HerokuAPI, known: int) -> dict[str, Any]:
        """The release the formation update created (the first with a version > ``known``)."""
        def check() -> dict[str, Any] | None:
            fresh = [r for r in api.latest_releases(self.decl.app, 5)
                     if int(r.get("version", 0)) > known]
            return fresh[-1] if fresh else None

        return self._wait(check, "the formation update created no release")  # type: ignore[no-any-return]

    def _wait_release(self, api: HerokuAPI, release: dict[str, Any]) -> dict[str, Any]:
        """Wait while the release is ``pending`` (its release phase runs).

        Raises:
            TargetFailedError: the release ``failed``; the previous release keeps running.
        """
        app, version = self.decl.app, release.get("version")

        def check() -> dict[str, Any] | None:
            now = api.release(app, str(release["id"]))
            status = str(now.get("status") or "succeeded")
            if status == "failed":
                raise TargetFailedError(
                    f"release v{version} of {app} failed (its release phase did not succeed: "
                    f"{now.get('description') or 'no description'}); Heroku keeps the "
                    "previous release running", reason=f"release v{version} failed")
            return now if status == "succeeded" else None

        if release.get("status", "succeeded") == "succeeded":
            return release
        self.progress(f"waiting for release v{version} (its release phase)")
        return self._wait(check, f"release v{version} of {app} did not succeed")  # type: ignore[no-any-return]

    def _wait_up(self, api: HerokuAPI, release_id: str) -> None:
        """Wait until the web dynos run ``release_id`` and are ``up``."""
        self.progress("waiting for the web dyno")
        seen: list[str] = []

        def check() -> bool | None:
            web = [d for d in api.dynos(self.decl.app) if d.get("type") == "web"]
            mine = [d for d in web if (d.get("release") or {}).get("id") == release_id]
            seen[:] = [str(d.get("state")) for d in mine]
            if "crashed" in seen:
                raise DeploymentError(f"the web dyno of {self.decl.app} crashed after the "
                                      "release")
            return True if mine and all(s == "up" for s in seen) else None

        self._wait(check, f"the web dyno of {self.decl.app} was not up")

    def _recover(self, api: HerokuAPI, current: DeploymentState | None, created: bool,
                 running: dict[str, Any] | None, error: Exception) -> None:
        """Put the previous release back, or delete an app this rollout created.

        Args:
            running: the release that ran before this rollout (None for a new app).

        Raises:
            RolledBackError: it did; ``restored_state`` is what runs now.
        """
        app = self.decl.app
        if created:
            self.progress(f"rollout failed ({error}); deleting the app it created")
            try:
                api.delete_app(app)
            except DeploymentError as exc:
                raise DeploymentError(f"rollout failed ({error}) and deleting the app it "
                                      f"created failed: {exc}") from error
            raise RolledBackError(f"{error} (the app this rollout created was deleted)",
                                  restored_state=None, reason=error) from error
        target = str(current.target.get("release_id")) if current is not None \
            and current.target.get("release_id") else (running or {}).get("id")
        if not target:
            return  # nothing ran before: nothing to put back
        version = current.target.get("release_version") if current is not None \
            and current.target.get("release_id") == target else (running or {}).get("version")
        try:
            now = next((r for r in api.latest_releases(app, 10) if r.get("current")), None)
            if now is not None and now.get("id") == target:
                self.progress(f"rollout failed ({error}); release v{version} still runs")
                rel: dict[str, Any] = now
            else:
                self.progress(f"rollout failed ({error}); rolling back to release v{version}")
                rel = self._wait_release(api, api.rollback(app, target))
            self._wait_up(api, str(rel["id"]))
            if current is not None and current.url:
                wait_healthy(current.url, self.decl.wait_timeout, self.decl.poll_interval,
                             model_hash=current.model_hash)
        except Exception as exc:
            raise DeploymentError(f"rollout failed ({error}) and the rollback failed: "
                                  f"{exc}") from error
        restored = None
        if current is not None and current.target.get("release_id") == target:
            restored = current.model_copy(update={"target": {
                **current.target, "release_id": rel["id"], "release_version": rel.get("version")}})
        what = f"release v{version} still runs" if rel.get("id") == target else \
            f"release v{version} runs again as v{rel.get('version')}"
        raise RolledBackError(f"{error} (rolled back: {what})", restored_state=restored,
                              reason=error) from error

    # --- rollback --------------------------------------------------------------------
    def rollback(self, current: DeploymentState) -> DeploymentState:
        previous = current.previous
        assert previous is not None
        release_id = previous.target.get("release_id")
        if not release_id:
            raise DeploymentError("the previous version has no recorded Heroku release")
        api, _ = self._api()
        try:
            self.progress(f"rolling back to release v{previous.target.get('release_version')}")
            rel = self._wait_release(api, api.rollback(self.decl.app, str(release_id)))
            self._wait_up(api, str(rel["id"]))
            smoke_test(current.url or "", model_hash=previous.model_hash,
                       request=previous.smoke, timeout=self.decl.wait_timeout,
                       poll=self.decl.poll_interval)
        finally:
            api.close()
        return previous.model_copy(update={
            "target": {**previous.target, "release_id": rel["id"],
                       "release_version": rel.get("version")}, "previous": None})

    # --- status / remove ---------------------------------------------------------------
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
            latest = api.latest_releases(self.decl.app, 1)
        finally:
            api.close()
        states = [str(d.get("state")) for d in dynos]
        release = latest[0] if latest else {}
        detail = f"release v{release.get('version', '?')} ({release.get('status', '?')}), " \
                 f"web dynos: {states or 'none'}"
        healthy = bool(states) and all(s == "up" for s in states)
        if healthy:
            try:
                wait_healthy(url, 0.0, model_hash=current.model_hash if current else None)
            except DeploymentError as exc:
                healthy, detail = False, f"{detail}; {exc}"
        return DeploymentStatus(**base, deployed=current is not None, healthy=healthy, url=url,
                                model_hash=current.model_hash if current else None,
                                detail=detail)

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        """Delete the app, when this tool created it (or ``force``).

        Raises:
            DeploymentError: the app existed before mlem_lib deployed to it (or no
                deployment is recorded) and ``force`` is not set; nothing is deleted.
        """
        app = self.decl.app
        api, _ = self._api()
        try:
            if api.get_app(app) is None:
                return
            ours = current is not None and bool(current.target.get("created_app")) \
                and current.target.get("app", app) == app
            if not ours and not force:
                why = "it existed before mlem_lib deployed to it" if current is not None \
                    else "no deployment of it is recorded here"
                raise DeploymentError(
                    f"Heroku app {app} was not created by mlem_lib ({why}): remove does not "
                    "delete it; pass force=True (CLI: --force) to delete it anyway")
            if api.delete_app(app):
                self.progress(f"deleted Heroku app {app}")
        finally:
            api.close()
