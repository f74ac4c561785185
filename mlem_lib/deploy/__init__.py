"""Rolling models out to deployment targets: ``deploy``, ``status``, ``remove``.

A declaration (``deployments/*.yaml``) says where; a state file records what
runs there. Every operation holds the deployment's lock, so two runs cannot
interleave, and the state is only written after a rollout passed its smoke test.

Example:
    >>> from mlem_lib.deploy import deploy, status, remove
    >>> state = deploy("deployments/local.yaml", "models/rf")  # doctest: +SKIP
    >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
    True
    >>> remove("deployments/local.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from mlem_lib.deploy.base import Target
from mlem_lib.deploy.declaration import AnyDeclaration, default_state_url, load_declaration
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus, StateStore
from mlem_lib.errors import DeploymentError

__all__ = ["DeploymentState", "DeploymentStatus", "deploy", "remove", "status"]


def _open(declaration: str, options: dict[str, Any]
          ) -> tuple[AnyDeclaration, StateStore, Target]:
    decl = load_declaration(declaration)
    state_url = options.pop("state_url", None) or default_state_url(declaration, decl)
    target: Target
    if decl.type == "local":
        from mlem_lib.deploy.local import LocalTarget

        target = LocalTarget(decl, state_url, options)
    elif decl.type == "heroku":
        from mlem_lib.deploy.heroku import HerokuTarget

        target = HerokuTarget(decl, state_url, options)
    else:
        from mlem_lib.deploy.sagemaker import SageMakerTarget

        target = SageMakerTarget(decl, state_url, options)
    return decl, StateStore(state_url), target


def deploy(declaration: str, model: str, **options: Any) -> DeploymentState:
    """Create or update the deployment a declaration describes.

    Rerunning with the model that already runs (same ``model_hash``) and a
    healthy target does nothing and returns the recorded state.

    Args:
        declaration: path of the YAML declaration.
        model: the saved model's path / URL / registry reference.
        **options: ``state_url`` (override), ``lock_timeout`` (seconds, default 0),
            ``progress`` (callable or ``False``), ``repo`` (for registry
            references) and target options: ``api_key`` (Heroku, else
            ``HEROKU_API_KEY``), ``boto_session`` (SageMaker), ``registry_username``
            / ``registry_password`` (SageMaker registry, else the ECR token).

    Raises:
        DeploymentLockedError: another run holds the lock.
        SmokeTestError: the new version did not answer (the previous one runs again
            where the target allows).
        DeploymentError: any other failure; the recorded state is unchanged.

    Example:
        >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
        'http://127.0.0.1:8080'
    """
    from mlem_lib.deploy.package import read_model_meta

    lock_timeout = float(options.pop("lock_timeout", 0.0))
    _decl, store, target = _open(declaration, options)
    meta = read_model_meta(model, options.get("repo"))
    with store.lock(timeout=lock_timeout):
        current = store.load()
        if current is not None and current.model_hash == meta.model_hash:
            if target.status(current).healthy:
                target.progress(f"model {meta.model_hash[:12]} already deployed at "
                                f"{current.url}: nothing to do")
                return current
            target.progress("recorded deployment is not healthy: rolling out again")
        try:
            new = target.rollout(model, meta, current)
        except DeploymentError as exc:
            restored = getattr(exc, "restored_state", None)
            if isinstance(restored, DeploymentState):
                store.save(restored)  # same version, new process/container ids
            raise
        keep = current if current is None or current.model_hash != new.model_hash \
            else current.previous
        new = new.with_previous(keep)
        store.save(new)
        target.progress(f"deployed {meta.model_hash[:12]} at {new.url}")
        return new


def status(declaration: str, **options: Any) -> DeploymentStatus:
    """What the deployment runs and whether it answers now.

    Example:
        >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
        True
    """
    _decl, store, target = _open(declaration, options)
    return target.status(store.load())


def remove(declaration: str, **options: Any) -> None:
    """Tear the deployment down and forget its state; a no-op when already gone.

    Example:
        >>> remove("deployments/local.yaml")  # doctest: +SKIP
    """
    lock_timeout = float(options.pop("lock_timeout", 0.0))
    _decl, store, target = _open(declaration, options)
    with store.lock(timeout=lock_timeout):
        target.remove(store.load())
        store.delete()
