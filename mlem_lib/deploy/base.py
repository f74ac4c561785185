"""The interface every deployment target implements, and what a target declares.

A target is a :class:`Target` subclass registered in the ``targets`` plugin group
(:mod:`mlem_lib.plugins`). It carries three things:

* ``Declaration``: the pydantic model of its ``deployments/*.yaml`` files (a subclass
  of :class:`BaseDeclaration` with ``type: Literal[...]``; read by
  :mod:`mlem_lib.deploy.declaration`);
* ``Credentials``: the pydantic model of the secrets it needs (a subclass of
  :class:`TargetCredentials`); a dict, a pydantic model, a Prefect block or any object
  with those attribute names validates into it, and ``None`` means "from the
  environment";
* the verbs ``rollout``, ``status``, ``remove`` and ``rollback``.

A target never writes the state file: :mod:`mlem_lib.deploy` does, with what the
verbs return, so a verb that raises leaves the recorded state as it was.

Example:
    >>> class EchoCredentials(TargetCredentials):
    ...     token: str | None = None
    ...     @classmethod
    ...     def from_env(cls, env=None):
    ...         return cls(token="from-the-environment")
    >>> EchoCredentials.resolve({"token": "t0k"}).token
    't0k'
    >>> EchoCredentials.resolve(None).token
    'from-the-environment'
    >>> try:
    ...     EchoCredentials.resolve({"tokn": "typo"})
    ... except CredentialsError as exc:
    ...     print(exc)
    EchoCredentials: field 'tokn': Extra inputs are not permitted (fields: token)
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.errors import CredentialsError
from mlem_lib.meta import ModelMeta

__all__ = ["BaseDeclaration", "ModelSource", "NoCredentials", "Progress", "Target",
           "TargetCredentials", "report_progress"]

# a callable that receives progress lines; None prints them to stderr, False drops them
Progress = Callable[[str], None] | bool | None


class BaseDeclaration(BaseModel):
    """The fields every declaration has; a target's ``Declaration`` extends it.

    Subclasses set ``type: Literal["<name>"] = "<name>"``. Unknown fields are errors,
    so a misspelt setting (or a secret pasted into the file) is refused.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(..., description="the target: a name of the targets plugin group")
    name: str = Field("", description="deployment name (default: the file's stem)")
    state_url: str | None = Field(
        None, description="where the state lives (default: <name>.state.json next to the file)")
    smoke_method: str | None = Field(
        None, description="model method the smoke request calls (default: predict)")
    smoke_data: str | None = Field(
        None, description="data file (CSV, JSON Lines, Parquet, .npy; path or URL) whose "
                          "first rows the smoke request sends (default: the example saved "
                          "with the model)")
    wait_timeout: float = Field(120.0, gt=0, description="seconds to wait for the target")
    poll_interval: float = Field(0.5, gt=0, description="seconds between readiness polls")
    batch_max_size: int = Field(
        0, ge=0, description="merge concurrent requests into model calls of up to this many "
                             "rows, each caller getting its own rows back (0: off)")
    batch_max_latency_ms: float = Field(
        5.0, ge=0, description="longest wait, in ms, for requests to join a batch (a lone "
                               "request never waits)")
    model_runtime: Literal["native", "onnx", "auto"] = Field(
        "native", description="what answers the model's methods: native, onnx (its ONNX "
                              "export, checked for parity on the saved sample) or auto (onnx "
                              "when the export passes, else native); the local target's "
                              "`runtime` (process/container) is another setting")
    # set when the file was a MLEM declaration (mlem_lib.compat.deployments): the
    # credentials it stored (used when the caller gives none) and the model it names
    _stored_credentials: dict[str, Any] = PrivateAttr(default_factory=dict)
    _model: str | None = PrivateAttr(default=None)

    def server_env(self) -> dict[str, str]:
        """Environment variables that carry the declaration's server settings.

        Example:
            >>> BaseDeclaration(type="local", batch_max_size=32).server_env()
            {'MLEM_BATCH_MAX_SIZE': '32', 'MLEM_BATCH_MAX_LATENCY_MS': '5'}
        """
        from mlem_lib.serve.settings import ENV_MODEL_RUNTIME, batching_env

        env: dict[str, str] = {}
        if self.model_runtime != "native":
            env[ENV_MODEL_RUNTIME] = self.model_runtime
        if not self.batch_max_size:
            return env
        return {**batching_env(self.batch_max_size, self.batch_max_latency_ms), **env}

    def image_requirements(self, meta: ModelMeta) -> list[str]:
        """Extra pip requirements a model image needs for these settings (ONNX Runtime and
        the model's converter for ``model_runtime: onnx|auto``).

        Example:
            >>> from mlem_lib.meta import ModelMeta, ModelType
            >>> BaseDeclaration(type="local").image_requirements(
            ...     ModelMeta(model_type=ModelType(type="sklearn")))
            []
        """
        if self.model_runtime == "native":
            return []
        from mlem_lib.serve.model_runtime import runtime_requirements

        return runtime_requirements(meta)


class TargetCredentials(BaseModel):
    """The secrets a target needs: never part of a declaration or a state file.

    Subclasses list their fields (secrets as ``SecretStr``) and may override
    :meth:`from_env`. :meth:`resolve` accepts whatever a caller has: ``None``, a
    dict, an instance, another pydantic model or any object with attributes of
    those names (a Prefect block such as prefect-aws's ``AwsCredentials``); fields it
    leaves empty fall back to the environment.
    """

    model_config = ConfigDict(extra="forbid", from_attributes=True, frozen=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The credentials the environment holds (default: none)."""
        return cls()

    @classmethod
    def resolve(cls, value: object = None) -> Self:
        """Validate ``value`` into this model; empty fields come from :meth:`from_env`.

        Raises:
            CredentialsError: a field has the wrong type, or a dict has an unknown key.
                The message names the field, never the value.
        """
        if value is None:
            return cls.from_env()
        if isinstance(value, cls):
            given = value
        else:
            try:
                given = cls.model_validate(value, from_attributes=True)
            except ValidationError as exc:
                first = exc.errors(include_input=False)[0]
                where = ".".join(str(p) for p in first["loc"]) or "credentials"
                raise CredentialsError(
                    f"{cls.__name__}: field {where!r}: {first['msg']} (fields: "
                    f"{', '.join(cls.model_fields) or 'none'})") from None
        env = cls.from_env()
        missing = {name: getattr(env, name) for name in cls.model_fields
                   if getattr(given, name) is None and getattr(env, name) is not None}
        return given.model_copy(update=missing) if missing else given


@dataclass(frozen=True)
class ModelSource:
    """The model a rollout deploys, read once by :func:`mlem_lib.deploy.deploy`.

    Attributes:
        path: a local path of the saved model (without ``.mlem``); registry references
            are already checked out, so targets never resolve anything themselves.
        meta: its metadata.
        reference: what the caller named (a path, URL or ``name@vX.Y.Z``); recorded in
            the state as ``model_path``.
        version: the registry version when ``reference`` is one (image labels use it).
    """

    path: str
    meta: ModelMeta
    reference: str
    version: str | None = None


class NoCredentials(TargetCredentials):
    """For targets that need no secrets (the local one)."""


def report_progress(progress: Progress, prefix: str) -> Callable[[str], None]:
    """A function that reports a progress line the way ``progress`` asks.

    Example:
        >>> lines = []
        >>> report_progress(lines.append, "demo")("step 1")
        >>> lines
        ['step 1']
        >>> report_progress(False, "demo")("dropped")
    """
    if callable(progress):
        return progress
    if progress is False:
        return lambda message: None

    def to_stderr(message: str) -> None:
        print(f"[{prefix}] {message}", file=sys.stderr, flush=True)

    return to_stderr


class Target(ABC):
    """One kind of place a model can run (local, Heroku, SageMaker, or a plugin's).

    Args:
        decl: the validated declaration (an instance of ``Declaration``).
        state_url: where the deployment's state file lives (targets keep their own
            files next to it).
        credentials: an instance of ``Credentials`` (see :meth:`TargetCredentials.resolve`).
        progress: where progress lines go (callable, ``None`` for stderr, ``False``).

    A rollout that fails after touching the target puts the previous version back
    (or removes what it created) and raises
    :class:`~mlem_lib.errors.RolledBackError` with the state of what runs now.
    """

    #: the pydantic model of this target's declarations
    Declaration: ClassVar[type[BaseDeclaration]]
    #: the pydantic model of the credentials this target needs
    Credentials: ClassVar[type[TargetCredentials]] = NoCredentials

    def __init__(self, decl: Any, state_url: str, credentials: TargetCredentials,
                 *, progress: Progress = None) -> None:
        self.decl = decl
        self.state_url = state_url
        self.credentials = credentials
        self.progress = report_progress(progress, decl.name)

    @abstractmethod
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        """Create or update the deployment so it runs ``source``; smoke-test it.

        Args:
            source: the model (a local path, its metadata, the caller's reference).
            current: the recorded state (``None`` on a first rollout).

        Returns:
            The new state; its ``previous`` is set by the caller.
        """

    @abstractmethod
    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        """Ask the target what runs and whether it answers."""

    @abstractmethod
    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        """Tear everything down; succeed quietly when it is already gone.

        Args:
            force: also delete what this tool did not create (where a target refuses
                that by default).
        """

    @abstractmethod
    def rollback(self, current: DeploymentState) -> DeploymentState:
        """Run ``current.previous`` again and return its state (with fresh ids).

        The caller checks that ``current.previous`` exists and records the result with
        ``current`` as its previous version, so a second rollback undoes the first.
        """

    @property
    def smoke_method(self) -> str | None:
        """The method the smoke request calls (the declaration's ``smoke_method``)."""
        return getattr(self.decl, "smoke_method", None)

    @property
    def smoke_data(self) -> str | None:
        """The data file whose first rows the smoke request sends (``smoke_data``)."""
        return getattr(self.decl, "smoke_data", None)
