"""mlem_lib's events on Prefect's event bus, when a Prefect API is configured.

The core emits :class:`mlem_lib.events.Event` objects and never imports Prefect; this
module is the ``prefect`` listener it finds through the ``mlem_lib.listeners`` entry
point (``pyproject.toml``). It is *active* only when a Prefect API is configured: the
``PREFECT_API_URL`` variable, or the same setting in the active Prefect profile. That
check reads the environment and ``profiles.toml`` only: Prefect itself is imported
only to send.

Inside a flow or task run the event goes through Prefect's own ``emit_event``, which
adds the run (flow run, task run, deployment...) as related resources and sends it in
the background. Anywhere else (``mlem registry assign`` from a laptop) it is sent at
once over one connection, with no reconnection attempts, so that an unreachable server
costs one warning and not a minute of retries.

An event's resource is ``{"prefect.resource.id": "mlem.model.iris",
"prefect.resource.name": "iris", "mlem.model": "iris", "mlem.version": "v0.0.2",
"mlem.stage": "prod", "mlem.repo": "/srv/registry", ...}``: a deployment trigger matches
on those labels (``prefect.yaml`` has one that rolls out what is assigned to ``prod``).

Example:
    >>> from mlem_lib.events import model_event
    >>> e = model_event("mlem.model.stage-assigned", name="iris", version="v0.0.2",
    ...                 stage="prod", repo="/srv/registry")
    >>> resource, related = prefect_resources(e)
    >>> resource["prefect.resource.id"], resource["mlem.stage"], related[0]["prefect.resource.role"]
    ('mlem.model.iris', 'prod', 'registry')
    >>> configured_api_url({"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    'http://127.0.0.1:4200/api'
"""

from __future__ import annotations

import asyncio
import logging
import os
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import NetworkError

if TYPE_CHECKING:
    from mlem_lib.events import Event


def configured_api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Prefect API URL that is set, from the environment or the active profile.

    Prefect's own rules, without importing it: ``PREFECT_API_URL`` wins; else the
    profile named by ``PREFECT_PROFILE`` (or the file's ``active`` one) in
    ``PREFECT_PROFILES_PATH`` (default ``$PREFECT_HOME/profiles.toml``, ``~/.prefect``).
    """
    env = os.environ if environ is None else environ
    if "PREFECT_API_URL" in env:
        return env["PREFECT_API_URL"].strip() or None
    home = env.get("PREFECT_HOME") or os.path.join(os.path.expanduser("~"), ".prefect")
    path = env.get("PREFECT_PROFILES_PATH") or os.path.join(home, "profiles.toml")
    try:
        with open(os.path.expanduser(path), "rb") as f:
            profiles = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = env.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = str(profiles.get("profiles", {}).get(name, {}).get("PREFECT_API_URL") or "")
    return url.strip() or None


def prefect_resources(event: Event) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The event's resource and related resources in Prefect's labelling."""
    resource = {"prefect.resource.id": event.resource, "prefect.resource.name": event.name,
                **event.labels}
    related = [{"prefect.resource.id": r.id, "prefect.resource.role": r.role, **r.labels}
               for r in event.related]
    return resource, related


class PrefectListener:
    """Sends mlem_lib's events to the configured Prefect API (see the module docstring)."""

    def active(self) -> bool:
        return configured_api_url() is not None

    def __call__(self, event: Event) -> None:
        from mlem_lib.extras import require

        require("prefect", extra="prefect", feature="sending events to Prefect "
                                                    "(PREFECT_API_URL is set)")
        from prefect.context import FlowRunContext, TaskRunContext

        resource, related = prefect_resources(event)
        payload = {k: v for k, v in event.payload.items() if v is not None}
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            from prefect.events import emit_event

            emit_event(event=event.event, resource=resource, related=related,
                       payload=payload, occurred=event.occurred)
            return
        from prefect.events import Event as PrefectEvent

        prefect_event = PrefectEvent.model_validate({
            "event": event.event, "resource": resource, "related": related,
            "payload": payload, "occurred": event.occurred})
        # Prefect's client logs its own warning on failure; the core's one line says it all
        clients_log = logging.getLogger("prefect.events.clients")
        level = clients_log.level
        clients_log.setLevel(logging.ERROR)
        try:
            asyncio.run(_send(prefect_event))
        except OSError as exc:
            raise NetworkError(f"Prefect API {configured_api_url()} unreachable: "
                               f"{exc}") from exc
        finally:
            clients_log.setLevel(level)


async def _send(event: Any) -> None:
    """One connection, no reconnection attempts, confirmed by a ping (checkpoint)."""
    from prefect.events.clients import get_events_client

    async with get_events_client(reconnection_attempts=0, checkpoint_every=1) as client:
        await client.emit(event)


LISTENER = PrefectListener()
