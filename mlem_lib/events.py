"""Events about models and deployments, sent to whoever listens (Prefect's event bus).

``register``, ``assign``, ``deploy`` and ``rollback`` call :func:`emit` once they have
succeeded. An event names what it is about (``mlem.model.iris``), with labels for the
model, version, stage, repository and deployment, and related resources:

- ``mlem.model.registered`` about ``mlem.model.<name>``: labels ``mlem.model``,
  ``mlem.version``, ``mlem.repo``, ``mlem.tag``;
- ``mlem.model.stage-assigned`` about ``mlem.model.<name>``: the same plus ``mlem.stage``;
- ``mlem.deployment.rolled-out`` about ``mlem.deployment.<name>``: ``mlem.deployment``,
  ``mlem.target``, ``mlem.url``, ``mlem.model-hash`` and the model's ``mlem.model``,
  ``mlem.version``, ``mlem.stage``, ``mlem.repo`` when it was a registry reference;
- ``mlem.deployment.rolled-back``: the same, for the version that runs again.

The registry is a related resource (role ``registry``), and so is the model of a
deployment (role ``model``).

Listeners are plugins of the ``listeners`` group (entry points ``mlem_lib.listeners``):
an object with ``active() -> bool``, asked first and cheaply, and a call taking an
:class:`Event`. The core knows none of them; the Prefect layer registers one that is
active only when a Prefect API is configured (``PREFECT_API_URL``). With no active
listener, :func:`emit` returns at once without even building the event. An active one
runs in a thread for at most ``MLEM_EVENTS_TIMEOUT`` seconds (default 15); its failure
is one warning, never the operation's. ``MLEM_EVENTS=off`` turns events off.

Example:
    >>> event = model_event("mlem.model.stage-assigned", name="iris", version="v0.0.2",
    ...                     stage="prod", repo="/srv/registry", tag="iris#prod#1")
    >>> event.resource, event.labels["mlem.stage"], event.related[0].role
    ('mlem.model.iris', 'prod', 'registry')
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

logger = logging.getLogger("mlem_lib.events")

MODEL_REGISTERED = "mlem.model.registered"
STAGE_ASSIGNED = "mlem.model.stage-assigned"
ROLLED_OUT = "mlem.deployment.rolled-out"
ROLLED_BACK = "mlem.deployment.rolled-back"
DEFAULT_TIMEOUT = 15.0


class Related(BaseModel):
    """Another resource the event involves (the registry, the model of a deployment)."""

    id: str
    role: str
    labels: dict[str, str] = Field(default_factory=dict)


class Event(BaseModel):
    """One thing that happened to a model or a deployment.

    Attributes:
        event: the event's name (``mlem.model.stage-assigned``).
        resource: the id of what it is about (``mlem.model.iris``).
        name: a readable name of that resource (``iris``).
        labels: ``mlem.*`` labels of the resource (model, version, stage, repo...).
        related: other resources involved, each with its role.
        payload: details that are not labels (commit, previous model hash...).
        occurred: when it happened (UTC).
    """

    event: str
    resource: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    related: list[Related] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Listener(Protocol):
    """What a ``listeners`` plugin is."""

    def active(self) -> bool:
        """Whether to send anything at all; must be cheap (read settings, no imports)."""

    def __call__(self, event: Event) -> None:
        """Deliver one event."""


def repo_id(repo: str | None) -> str | None:
    """How events name a registry: a URL as it is, a local folder by its absolute path.

    Example:
        >>> repo_id("https://git.example.com/ml/registry.git")
        'https://git.example.com/ml/registry.git'
        >>> repo_id("/srv/registry/")
        '/srv/registry'
    """
    if not repo:
        return None
    if "://" in repo or repo.startswith("git@"):
        return repo
    return os.path.abspath(repo)


def _labels(**values: str | None) -> dict[str, str]:
    return {f"mlem.{k.replace('_', '-')}": v for k, v in values.items() if v}


def _registry(repo: str | None) -> list[Related]:
    return [Related(id=f"mlem.registry.{repo}", role="registry",
                    labels=_labels(repo=repo))] if repo else []


def model_event(event: str, *, name: str, version: str, repo: str | None,
                stage: str | None = None, tag: str | None = None,
                commit: str | None = None) -> Event:
    """A ``mlem.model.*`` event about version ``version`` of model ``name``."""
    repo = repo_id(repo)
    return Event(event=event, resource=f"mlem.model.{name}", name=name,
                 labels=_labels(model=name, version=version, stage=stage, repo=repo, tag=tag),
                 related=_registry(repo), payload={"tag": tag, "commit": commit})


def deployment_event(event: str, *, deployment: str, target: str, model_hash: str,
                     url: str | None, model: str | None, repo: str | None = None,
                     previous_hash: str | None = None) -> Event:
    """A ``mlem.deployment.*`` event; ``model`` is a path or a registry reference.

    Example:
        >>> e = deployment_event(ROLLED_OUT, deployment="iris-prod", target="local",
        ...                      model_hash="ab" * 32, url="http://127.0.0.1:8080",
        ...                      model="iris@v0.0.2", repo="/srv/registry")
        >>> e.labels["mlem.version"], [r.id for r in e.related]
        ('v0.0.2', ['mlem.model.iris', 'mlem.registry./srv/registry'])
    """
    from mlem_lib.locate import as_reference

    ref = as_reference(model) if model else None
    repo = repo_id(repo) if ref is not None else None
    name = ref.name if ref is not None else model
    version = ref.version if ref is not None and ref.version != "latest" else None
    stage = ref.stage if ref is not None else None
    model_labels = _labels(model=name, version=version, stage=stage, repo=repo)
    related = [Related(id=f"mlem.model.{name}", role="model", labels=model_labels)] \
        if name else []
    return Event(event=event, resource=f"mlem.deployment.{deployment}", name=deployment,
                 labels={**_labels(deployment=deployment, target=target, url=url,
                                   model_hash=model_hash), **model_labels},
                 related=related + _registry(repo),
                 payload={"model_hash": model_hash, "previous_model_hash": previous_hash,
                          "url": url, "model": model})


def _timeout() -> float:
    try:
        return float(os.environ.get("MLEM_EVENTS_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def active_listeners() -> list[tuple[str, Listener]]:
    """``(name, listener)`` of every listener that wants events now."""
    if os.environ.get("MLEM_EVENTS", "").strip().lower() in ("0", "off", "false", "no"):
        return []
    from mlem_lib import plugins

    found: list[tuple[str, Listener]] = []
    for plugin in plugins.plugins("listeners"):
        try:
            listener: Listener = plugins.get("listeners", plugin.name)
            if listener.active():
                found.append((plugin.name, listener))
        except Exception as exc:  # a broken listener never fails the operation
            logger.warning("event listener %r is unusable: %s", plugin.name, _one_line(exc))
    return found


def emit(build: Callable[[], Event]) -> int:
    """Send the event ``build()`` makes to every active listener; returns how many got it.

    ``build`` is only called when some listener is active, so an event that costs a
    look-up (the version a stage points at) costs nothing when nobody listens. Each
    delivery runs in a thread that carries the caller's context (a Prefect run's, for
    example) and is given up after ``MLEM_EVENTS_TIMEOUT`` seconds; a failure is logged
    as one warning and never raised.
    """
    listeners = active_listeners()
    if not listeners:
        return 0
    try:
        event = build()
    except Exception as exc:
        logger.warning("event not sent: %s", _one_line(exc))
        return 0
    delivered = 0
    for name, listener in listeners:
        if _deliver(name, listener, event):
            delivered += 1
    return delivered


def _deliver(name: str, listener: Listener, event: Event) -> bool:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            listener(event)
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(run,), daemon=True,
                              name=f"mlem-event-{name}")
    thread.start()
    timeout = _timeout()
    thread.join(timeout)
    if thread.is_alive():
        logger.warning("event %s not confirmed by %s within %.0f s (MLEM_EVENTS_TIMEOUT): "
                       "going on without it", event.event, name, timeout)
        return False
    if failure:
        logger.warning("event %s not sent to %s: %s", event.event, name,
                       _one_line(failure[0]))
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
