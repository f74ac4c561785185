"""Rolling models out to deployment targets: ``deploy``, ``status``, ``remove``, ``rollback``.

A declaration (``deployments/*.yaml``) says where; its ``type`` names a target in the
``targets`` plugin group, which validates the rest. A state file records what runs
there. Every change holds the deployment's lock, so two runs cannot interleave, and
the state is only written with what a target verb returned: a verb that raises
leaves the state as it was, unless the target put the previous version back, which
it reports with :class:`~mlem_lib.errors.RolledBackError` and whose state is recorded.

Credentials are one argument: ``None`` (the environment), a dict, a pydantic model or
any object with the right attributes (a Prefect block); the target validates it
into its own ``Credentials`` model.

Example:
    >>> from mlem_lib.deploy import deploy, status, rollback, remove
    >>> state = deploy("deployments/local.yaml", "models/rf")  # doctest: +SKIP
    >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
    True
    >>> rollback("deployments/local.yaml").model_hash  # doctest: +SKIP
    >>> remove("deployments/local.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlem_lib.deploy.base import ModelSource, Progress, Target
from mlem_lib.deploy.declaration import (
    BaseDeclaration,
    default_state_url,
    load_declaration,
    target_class,
)
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus, Rollout, StateStore
from mlem_lib.errors import DeploymentError, RolledBackError
from mlem_lib.events import ROLLED_BACK, ROLLED_OUT

__all__ = ["Deployment", "DeploymentState", "DeploymentStatus", "deploy", "open_deployment",
           "remove", "rollback", "status"]

Declaration = str | os.PathLike[str]


@dataclass
class Deployment:
    """A declaration opened for work: its model, state store and target.

    Attributes:
        declaration: the validated declaration.
        store: the state file (and its lock).
        target: the target object, with its credentials.
    """

    declaration: BaseDeclaration
    store: StateStore
    target: Target
    path: str = ""

    def history(self) -> list[Rollout]:
        """Who rolled out what, and when: newest first."""
        current = self.recorded()
        return list(reversed(current.history)) if current is not None else []

    def recorded(self) -> DeploymentState | None:
        """The recorded state: ours, else what MLEM recorded for a MLEM declaration."""
        current = self.store.load()
        if current is None and self.path.endswith(".mlem"):
            from mlem_lib.compat.deployments import mlem_state

            current = mlem_state(self.path, self.declaration)
        return current


def _with_stored(credentials: object, decl: BaseDeclaration) -> object:
    """The caller's credentials, completed by those a MLEM declaration stored."""
    stored = decl._stored_credentials
    if not stored or (credentials is not None and not isinstance(credentials, dict)):
        return credentials
    return {**stored, **(credentials or {})}


def open_deployment(declaration: Declaration, *, credentials: object = None,
                    state_url: str | None = None, progress: Progress = None,
                    overrides: Mapping[str, Any] | None = None) -> Deployment:
    """Read a declaration and make its target, validating the credentials for it.

    ``overrides`` replace fields of the declaration for this call (the file is unchanged).

    Raises:
        DeclarationError: the declaration is missing or invalid, or names no known target.
        CredentialsError: ``credentials`` do not fit the target's ``Credentials`` model.

    Example:
        >>> open_deployment("deployments/local.yaml").target  # doctest: +SKIP
        <mlem_lib.deploy.local.LocalTarget object at ...>
    """
    path = os.fspath(declaration)
    decl = load_declaration(path, overrides)
    cls = target_class(decl.type)
    url = state_url or default_state_url(path, decl)
    target = cls(decl, url, cls.Credentials.resolve(_with_stored(credentials, decl)),
                 progress=progress)
    return Deployment(declaration=decl, store=StateStore(url), target=target, path=path)


def deploy(declaration: Declaration, model: str, *, credentials: object = None,
           repo: str | None = None, state_url: str | None = None, lock_timeout: float = 0.0,
           progress: Progress = None,
           overrides: Mapping[str, Any] | None = None) -> DeploymentState:
    """Create or update the deployment a declaration describes so it runs ``model``.

    Rerunning with the model that already runs (same ``model_hash``) and a healthy
    target does nothing and returns the recorded state.

    Args:
        declaration: path of the YAML declaration.
        model: the saved model's path / URL / registry reference (``rf@v1.2.0``, ``rf#prod``).
        credentials: the target's credentials (see the module docstring).
        repo: the git repository holding a registry reference.
        state_url: where the state file lives (default: next to the declaration).
        lock_timeout: seconds to wait for another run of the same deployment.
        progress: a callable for progress lines, ``None`` for stderr, ``False`` for none.
        overrides: declaration fields to replace for this run (``{"port": 9000,
            "smoke_data": "rows.csv"}``), validated like the file's.

    Raises:
        DeploymentLockedError: another run holds the lock.
        RolledBackError: the new version failed after the target was touched; the
            previous version runs again (``restored_state``), or the new deployment was
            removed (``restored_state`` is ``None``). A ``SmokeTestError`` too when the
            smoke test failed.
        DeploymentError: any other failure; the recorded state is unchanged.

    Example:
        >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
        'http://127.0.0.1:8080'
    """
    from mlem_lib.locate import open_object, require_model

    opened = open_deployment(declaration, credentials=credentials, state_url=state_url,
                             progress=progress, overrides=overrides)
    store, target = opened.store, opened.target
    with open_object(model, repo) as found:
        source = ModelSource(path=found.path, meta=require_model(found.meta, model),
                             reference=model, version=found.version)
        if target.smoke_data:  # a smoke data file that cannot be read fails before any change
            from mlem_lib.deploy.smoke import SmokeRequest

            SmokeRequest.for_model(source.meta, target.smoke_method, target.smoke_data)
        with store.lock(timeout=lock_timeout):
            current = opened.recorded()
            record = Rollout(model_hash=source.meta.model_hash, model=model,
                             version=source.version)
            if current is not None and current.model_hash == source.meta.model_hash:
                if target.status(current).healthy:
                    target.progress(f"model {source.meta.model_hash[:12]} already deployed "
                                    f"at {current.url}: nothing to do")
                    return current
                target.progress("recorded deployment is not healthy: rolling out again")
            try:
                new = target.rollout(source, current)
            except RolledBackError as exc:
                if exc.restored_state is not None:
                    # same version, new process/container ids; the attempt is on record
                    store.save(exc.restored_state.with_history(
                        current, record.model_copy(update={"action": "failed rollout"})))
                else:
                    store.delete()
                raise
            keep = current if current is None or current.model_hash != new.model_hash \
                else current.previous
            new = new.model_copy(update={"model_path": model}).with_previous(keep)
            new = new.with_history(current, record)
            store.save(new)
            target.progress(f"deployed {source.meta.model_hash[:12]} at {new.url}")
    _announce(ROLLED_OUT, new, model, (repo or ".") if source.version else None)
    return new


def _announce(event: str, state: DeploymentState, model: str | None,
              repo: str | None) -> None:
    """Emit a ``mlem.deployment.*`` event (after the lock is released)."""
    from mlem_lib import events

    previous = state.previous.model_hash if state.previous else None
    events.emit(lambda: events.deployment_event(
        event, deployment=state.name, target=state.type, model_hash=state.model_hash,
        url=state.url, model=model, repo=repo, previous_hash=previous))


def status(declaration: Declaration, *, credentials: object = None,
           state_url: str | None = None) -> DeploymentStatus:
    """What the deployment runs and whether it answers now.

    Example:
        >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
        True
    """
    opened = open_deployment(declaration, credentials=credentials, state_url=state_url,
                             progress=False)
    return opened.target.status(opened.recorded())


def remove(declaration: Declaration, *, credentials: object = None,
           state_url: str | None = None, lock_timeout: float = 0.0, force: bool = False,
           progress: Progress = None) -> None:
    """Tear the deployment down and forget its state; a no-op when already gone.

    Args:
        force: also delete what this tool did not create, where the target refuses to
            by default (a Heroku app someone else made).

    Example:
        >>> remove("deployments/local.yaml")  # doctest: +SKIP
    """
    opened = open_deployment(declaration, credentials=credentials, state_url=state_url,
                             progress=progress)
    with opened.store.lock(timeout=lock_timeout):
        opened.target.remove(opened.recorded(), force=force)
        opened.store.delete()
        if opened.path.endswith(".mlem"):
            from mlem_lib.compat.deployments import forget_mlem_state

            forget_mlem_state(opened.path)


def rollback(declaration: Declaration, *, credentials: object = None,
             state_url: str | None = None, lock_timeout: float = 0.0,
             progress: Progress = None) -> DeploymentState:
    """Run the previous version again (the one recorded as ``previous``).

    The version rolled back from becomes the new ``previous``, so a second rollback
    undoes the first.

    Raises:
        DeploymentError: nothing is deployed, or no previous version is recorded.
        RolledBackError: the previous version did not come up and the current one runs
            again (``restored_state``).

    Example:
        >>> rollback("deployments/local.yaml").model_hash  # doctest: +SKIP
        'ab12...'
    """
    opened = open_deployment(declaration, credentials=credentials, state_url=state_url,
                             progress=progress)
    store, target = opened.store, opened.target
    with store.lock(timeout=lock_timeout):
        current = store.load()
        if current is None:
            raise DeploymentError(f"{opened.declaration.name} is not deployed: nothing to "
                                  "roll back")
        if current.previous is None:
            raise DeploymentError(f"{opened.declaration.name} has no previous version "
                                  "recorded: nothing to roll back to")
        target.progress(f"rolling back from {current.model_hash[:12]} to "
                        f"{current.previous.model_hash[:12]}")
        record = Rollout(action="rollback", model_hash=current.previous.model_hash,
                         model=current.previous.model_path)
        try:
            restored = target.rollback(current)
        except RolledBackError as exc:
            if exc.restored_state is not None:
                store.save(exc.restored_state.with_history(
                    current, record.model_copy(update={"action": "failed rollback"})))
            raise
        restored = restored.with_previous(current).with_history(current, record)
        store.save(restored)
        target.progress(f"{restored.model_hash[:12]} runs again at {restored.url}")
    _announce(ROLLED_BACK, restored, restored.model_path, None)
    return restored
