"""A client of the Heroku Platform API calls the ``heroku`` target needs.

It follows the documented behaviour where rollouts break in production
(https://devcenter.heroku.com/articles/platform-api-reference):

* **Ranges.** List calls answer at most 200 items (1000 on request) with
  ``206 Partial Content`` and a ``Next-Range`` header while more remain;
  :meth:`HerokuAPI.list_items` follows it to the end. The newest releases come from one
  ``Range: version ..; max=N, order=desc`` page (:meth:`HerokuAPI.latest_releases`).
* **Rate limit.** Heroku answers 429 when the account's budget (4500 requests an
  hour, refilled gradually) is spent. A 429 is retried after growing pauses for up to
  ``rate_limit_wait`` seconds, then becomes a
  :class:`~mlem_lib.errors.TargetNotReadyError`. :attr:`HerokuAPI.remaining` keeps
  the last ``RateLimit-Remaining`` seen.
* **Errors.** 401 (and 403 other than "forbidden" on an app) is a
  :class:`~mlem_lib.errors.CredentialsError`; 403 ``forbidden`` on an app means the
  app exists and belongs to an account the key has no access to:
  :class:`~mlem_lib.errors.AppNameTakenError`, as is 422 "already taken" on
  create. A connection that fails is a one-line
  :class:`~mlem_lib.errors.TargetUnreachableError`.

Example:
    >>> import httpx
    >>> def handler(request):
    ...     return httpx.Response(404, json={"id": "not_found", "message": "nope"})
    >>> api = HerokuAPI("https://api.heroku.com", "key", transport=httpx.MockTransport(handler))
    >>> api.get_app("iris-staging") is None
    True
    >>> api.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlem_lib.deploy.wait import Backoff
from mlem_lib.errors import (
    AppNameTakenError,
    CredentialsError,
    DeploymentError,
    TargetNotReadyError,
    TargetUnreachableError,
)

if TYPE_CHECKING:
    import httpx

ACCEPT = "application/vnd.heroku+json; version=3"
ACCEPT_DOCKER = "application/vnd.heroku+json; version=3.docker-releases"
PAGE_MAX = 1000  # the largest page Heroku serves
RATE_LIMIT_WAIT = 600.0  # seconds a call waits out 429s before giving up


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
        backoff: the first pause after a 429, in seconds (pauses double up to a minute).
        rate_limit_wait: how long one call waits out 429s before giving up.
        progress: receives a line when a call waits for the rate limit.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0, *,
                 client: httpx.Client | None = None,
                 transport: httpx.BaseTransport | None = None, backoff: float = 1.0,
                 rate_limit_wait: float = RATE_LIMIT_WAIT,
                 progress: Callable[[str], None] | None = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": ACCEPT}
        self._owned = client is None
        self.client = client if client is not None else httpx.Client(
            timeout=timeout, transport=transport)
        self.backoff = backoff
        self.rate_limit_wait = rate_limit_wait
        self.progress = progress or (lambda message: None)
        #: the last ``RateLimit-Remaining`` Heroku sent (None before the first answer)
        self.remaining: int | None = None
        self._pace: Backoff | None = None  # set after a 429, until the budget has room
        self._pace_seconds = 0.0

    def close(self) -> None:
        """Close the client this object made (a client passed in stays open)."""
        if self._owned:
            self.client.close()

    # --- sending ---------------------------------------------------------------------
    def _send(self, method: str, path: str, *, accept: str = ACCEPT, json: Any = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        """One call, retried while Heroku answers 429 (rate limit).

        Pauses after a 429 double (from ``backoff`` up to a minute). While the budget
        stays spent (``RateLimit-Remaining: 0``), the next call first waits as long as
        the last pause, so a wait at the limit polls less often instead of hitting 429
        again; the pace resets once the budget has room.
        """
        import httpx

        deadline = time.monotonic() + self.rate_limit_wait
        # a new call at a spent budget first waits the last pause; a retry below has just
        # waited its own pause (waiting both made every retry pause twice)
        if self._pace is not None and self.remaining == 0:
            time.sleep(min(self._pace_seconds, max(0.0, deadline - time.monotonic())))
        while True:
            try:
                r = self.client.request(method, self.base_url + path, json=json,
                                        headers={**self.headers, "Accept": accept,
                                                 **(headers or {})})
            except httpx.HTTPError as exc:
                detail = str(exc).splitlines()[0] if str(exc) else ""
                raise TargetUnreachableError(
                    f"Heroku API {method} {path} failed: {type(exc).__name__}"
                    f"{': ' + detail if detail else ''} ({self.base_url})") from None
            remaining = r.headers.get("RateLimit-Remaining")
            if remaining is not None and remaining.strip().isdigit():
                self.remaining = int(remaining)
            if r.status_code != 429:
                if self.remaining != 0:
                    self._pace = None
                return r
            if time.monotonic() >= deadline:
                raise TargetNotReadyError(
                    f"Heroku API rate limit: {method} {path} still answered 429 after "
                    f"{self.rate_limit_wait:g}s (the account's budget of 4500 requests an "
                    "hour is spent); try again later")
            if self._pace is None:
                self._pace = Backoff(self.backoff, 60.0, 2.0)
            self.remaining = 0
            self._pace_seconds = self._pace.pause(deadline)
            self.progress(f"Heroku API rate limit reached (429): waiting "
                          f"{self._pace_seconds:.3g}s")

    def _check(self, r: httpx.Response, method: str, path: str) -> None:
        """Raise the error an answer of 400 or more means."""
        if r.status_code < 400:
            return
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "message" not in body:
            body = {"id": "unknown", "message": r.text[:200]}
        message = f"Heroku API {method} {path}: HTTP {r.status_code} {body.get('id')}: " \
                  f"{str(body.get('message')).splitlines()[0] if body.get('message') else ''}"
        if r.status_code == 403 and body.get("id") == "forbidden" and path.startswith("/apps/"):
            app = path.split("/")[2]
            raise AppNameTakenError(
                f"Heroku app name '{app}' is taken: the app exists and belongs to an account "
                "this API key has no access to; choose another name (field 'app' of the "
                "declaration) or use a key with access to it")
        if r.status_code in (401, 403):
            raise CredentialsError(message + " (check HEROKU_API_KEY or the api_key "
                                             "credential)")
        raise DeploymentError(message)

    def request(self, method: str, path: str, *, accept: str = ACCEPT,
                json: Any = None, allow_404: bool = False) -> Any:
        """Send one call; return the decoded body (``None`` for an allowed 404)."""
        r = self._send(method, path, accept=accept, json=json)
        if r.status_code == 404 and allow_404:
            return None
        self._check(r, method, path)
        return r.json() if r.content else None

    def list_items(self, path: str, field: str = "id", *, limit: int | None = None,
             descending: bool = False) -> list[dict[str, Any]]:
        """Every item of a list call, following ``Next-Range`` (or the first ``limit``).

        Args:
            field: the field the list is ordered by (one of its ``Accept-Ranges``).
            limit: stop after this many items (one page when at most 1000).
            descending: newest first (``order=desc``).
        """
        size = min(PAGE_MAX, limit) if limit else PAGE_MAX
        order = ", order=desc" if descending else ""
        rng: str | None = f"{field} ..; max={size}{order}"
        items: list[dict[str, Any]] = []
        while rng is not None:
            r = self._send("GET", path, headers={"Range": rng})
            self._check(r, "GET", path)
            items.extend(r.json() or [])
            if limit is not None and len(items) >= limit:
                return items[:limit]
            rng = r.headers.get("Next-Range") if r.status_code == 206 else None
        return items

    # --- calls -------------------------------------------------------------------------
    def get_app(self, app: str) -> dict[str, Any] | None:
        """The app, or None when there is no app of that name."""
        return self.request("GET", f"/apps/{app}", allow_404=True)  # type: ignore[no-any-return]

    def create_app(self, app: str, region: str) -> dict[str, Any]:
        """``POST /apps`` with ``stack: container``.

        Raises:
            AppNameTakenError: another account has an app of that name.
        """
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
        """Run the image pushed to ``APP/web`` as the web process (creates a release)."""
        return self.request("PATCH", f"/apps/{app}/formation", accept=ACCEPT_DOCKER,
                            json={"updates": [{"type": "web", "docker_image": image_id}]})

    def config_vars(self, app: str) -> dict[str, str]:
        """The app's config vars (the environment its dynos run with)."""
        return self.request("GET", f"/apps/{app}/config-vars")  # type: ignore[no-any-return]

    def set_config_vars(self, app: str, changes: dict[str, str | None]) -> dict[str, str]:
        """Set config vars (``None`` removes one); Heroku makes a release of the change."""
        return self.request("PATCH", f"/apps/{app}/config-vars",  # type: ignore[no-any-return]
                            json=changes)

    def rollback(self, app: str, release_id: str) -> dict[str, Any]:
        """Create a release that runs what release ``release_id`` ran."""
        return self.request("POST", f"/apps/{app}/releases",  # type: ignore[no-any-return]
                            json={"release": release_id})

    def dynos(self, app: str) -> list[dict[str, Any]]:
        return self.list_items(f"/apps/{app}/dynos")

    def releases(self, app: str) -> list[dict[str, Any]]:
        """All releases, oldest first (every page)."""
        return sorted(self.list_items(f"/apps/{app}/releases", "version"),
                      key=lambda rel: int(rel.get("version", 0)))

    def latest_releases(self, app: str, count: int = 1) -> list[dict[str, Any]]:
        """The ``count`` newest releases, newest first (one request)."""
        return self.list_items(f"/apps/{app}/releases", "version", limit=count, descending=True)

    def release(self, app: str, release: str) -> dict[str, Any]:
        """One release by id or version."""
        return self.request("GET", f"/apps/{app}/releases/{release}")  # type: ignore[no-any-return]
