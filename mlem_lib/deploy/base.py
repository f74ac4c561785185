"""The interface every deployment target implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.meta import ModelMeta


class Target(ABC):
    """One kind of place a model can run (local, Heroku, SageMaker).

    A target never writes the state file itself: :func:`mlem_lib.deploy.deploy`
    saves what :meth:`rollout` returns, so a rollout that raises leaves the
    previous state untouched. A rollout that fails after touching the target
    puts the previous version back where the target allows it.
    """

    def __init__(self, decl: Any, state_url: str, options: dict[str, Any]) -> None:
        self.decl = decl
        self.state_url = state_url
        self.options = options

    @abstractmethod
    def rollout(self, model: str, meta: ModelMeta,
                current: DeploymentState | None) -> DeploymentState:
        """Create or update the deployment; smoke-test it; return the new state."""

    @abstractmethod
    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        """Ask the target what runs and whether it answers."""

    @abstractmethod
    def remove(self, current: DeploymentState | None) -> None:
        """Tear everything down; succeed quietly when it is already gone."""

    def progress(self, message: str) -> None:
        """Report a step of a long rollout (to stderr, or the ``progress`` option)."""
        import sys

        report = self.options.get("progress")
        if callable(report):
            report(message)
        elif report is not False:
            print(f"[{self.decl.name}] {message}", file=sys.stderr, flush=True)
