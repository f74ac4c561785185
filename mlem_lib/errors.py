"""The exception hierarchy of mlem_lib.

Every error raised on purpose by the library derives from :class:`MlemError`.
Each narrow subclass also inherits the builtin exception it is closest to, so
callers that already catch ``ValueError`` or ``FileNotFoundError`` keep working
(the same approach attrs takes). Failures that a retry may fix (the network, an
object store, a target that is not ready yet) all derive from
:class:`TransientError`; everything else fails the same way every time, which is
what Prefect's retry conditions check with one ``isinstance``.

The tree (a second parent in brackets)::

    MlemError
    ├── ObjectNotFoundError [FileNotFoundError]        (alias: ModelNotFoundError)
    ├── MetadataError [ValueError]
    │   └── MetadataTooLargeError
    ├── ArtifactIntegrityError [ValueError]
    ├── UnsafePathError [ValueError]
    ├── UnsupportedObjectError [TypeError]
    ├── MethodNotFoundError [AttributeError]
    ├── SchemaError [ValueError]
    ├── PluginError [ImportError]
    │   ├── UnknownPluginError [LookupError]
    │   └── MissingExtraError                         (names the pip extra to install)
    ├── StorageError [OSError]
    │   ├── ConcurrentWriteError                      (another writer holds the path)
    │   └── TransientStorageError [TransientError]
    ├── ServeError [RuntimeError]
    │   └── ServerUnreachableError [TransientError]
    ├── HTTPProblem                                   (a request the server refuses)
    ├── ApplyError [ValueError]
    ├── ModelCallError [RuntimeError]                 (the model raised in batch prediction)
    ├── BuildError [RuntimeError]
    │   ├── DockerUnavailableError
    │   └── ParityError                               (an export answers unlike the model)
    ├── DeploymentError [RuntimeError]
    │   ├── DeclarationError [ValueError]
    │   ├── DeploymentLockedError
    │   ├── SmokeTestError
    │   ├── TargetFailedError                         (the platform says the new version failed)
    │   │   └── UpdateRevertedError                   (... and it put the old version back)
    │   ├── RolledBackError                           (carries restored_state)
    │   ├── CredentialsError [PermissionError]
    │   ├── AppNameTakenError [ValueError]
    │   ├── TargetNotReadyError [TransientError]
    │   └── TargetUnreachableError [NetworkError]     (a cloud API could not be reached)
    ├── RegistryError [ValueError]
    │   ├── VersionNotFoundError [LookupError]
    │   │   └── UnknownModelError
    │   ├── VersionExistsError
    │   ├── DirtyWorkingTreeError
    │   └── NoDvcRemoteError
    └── TransientError                                (worth retrying)
        └── NetworkError [ConnectionError]

Example:
    >>> from mlem_lib import errors
    >>> issubclass(errors.ModelNotFoundError, FileNotFoundError)
    True
    >>> retryable = errors.TransientError
    >>> isinstance(errors.NetworkError("reset"), retryable), issubclass(
    ...     errors.SmokeTestError, retryable)
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlem_lib.deploy.state import DeploymentState


class MlemError(Exception):
    """Root of every mlem_lib error."""


class TransientError(MlemError):
    """A failure a retry may fix: the network, an object store, a target not ready yet."""


class NetworkError(TransientError, ConnectionError):
    """A remote service could not be reached or dropped the connection."""


class ObjectNotFoundError(MlemError, FileNotFoundError):
    """A model, data object or artifact does not exist at the given location."""


ModelNotFoundError = ObjectNotFoundError


class MetadataError(MlemError, ValueError):
    """A ``.mlem`` file cannot be parsed or does not follow any known layout."""


class MetadataTooLargeError(MetadataError):
    """A ``.mlem`` file is larger, or expands to more, than a metadata file can be."""


class ArtifactIntegrityError(MlemError, ValueError):
    """An artifact's size or hash differs from what its ``.mlem`` file records."""


class UnsafePathError(MlemError, ValueError):
    """An artifact URI points outside the model's folder."""


class UnsupportedObjectError(MlemError, TypeError):
    """No model or data handler knows this kind of object."""


class MethodNotFoundError(MlemError, AttributeError):
    """The model has no method of that name."""


class SchemaError(MlemError, ValueError):
    """Data does not match a saved schema.

    Attributes:
        field: the column, key or position that is wrong (``None`` for the whole value).
        expected: what the schema wanted, in words.
        got: what was found, in words.
        row: the position of the bad row in the batch that was checked, when known.
    """

    def __init__(self, message: str, *, field: str | None = None,
                 expected: str | None = None, got: str | None = None,
                 row: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected
        self.got = got
        self.row = row

    def to_dict(self) -> dict[str, str | None]:
        """The error as a JSON-friendly dict (what the server answers)."""
        return {"error": str(self), "field": self.field,
                "expected": self.expected, "got": self.got}


class PluginError(MlemError, ImportError):
    """A framework, data type, build kind or target plugin cannot be loaded."""


class UnknownPluginError(PluginError, LookupError):
    """No plugin of that name is registered in its group.

    Attributes:
        group: the plugin group (``models``, ``data``, ``builders``, ``targets``).
        name: the name that was asked for.
    """

    def __init__(self, message: str, *, group: str = "", name: str = "") -> None:
        super().__init__(message)
        self.group = group
        self.plugin_name = name


class MissingExtraError(PluginError):
    """A feature needs an optional dependency: the message names the pip extra.

    Attributes:
        extra: the extra to install, e.g. ``"onnx"`` for ``pip install 'mlem-lib[onnx]'``.
    """

    def __init__(self, feature: str, extra: str, missing: str | None = None) -> None:
        what = f" (missing module {missing!r})" if missing else ""
        super().__init__(f"{feature} needs the '{extra}' extra{what}: "
                         f"pip install 'mlem-lib[{extra}]'")
        self.extra = extra


class StorageError(MlemError, OSError):
    """Reading or writing through fsspec failed."""


class ConcurrentWriteError(StorageError):
    """Another writer is saving to the same path right now."""


class TransientStorageError(StorageError, TransientError):
    """An object store or network filesystem failed in a way a retry may fix."""


class RequirementsWarning(UserWarning):
    """Installed package versions differ from the recorded ones."""


class BuildWarning(UserWarning):
    """A build that works but may surprise (a package name already taken on the index)."""


class DeclarationWarning(UserWarning):
    """A declaration holds a secret, or MLEM fields that have no counterpart here."""


class ServeError(MlemError, RuntimeError):
    """The model server could not be started or reached."""


class ServerUnreachableError(ServeError, TransientError):
    """No model server answers at the URL (yet)."""


class HTTPProblem(MlemError):
    """A request that cannot be served; the server answers it as a JSON error.

    Attributes:
        status: the HTTP status code (4xx).
        body: the JSON body (always has ``error``; usually ``field``, ``expected``, ``got``).
    """

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"error": error, **extra}


class ApplyError(MlemError, ValueError):
    """Batch prediction failed for a reason other than a schema mismatch."""


class ModelCallError(MlemError, RuntimeError):
    """The model raised an exception during batch prediction; the message says on which
    rows, and the original exception is the ``__cause__``."""


class BuildError(MlemError, RuntimeError):
    """Building a pip package or a docker image failed."""


class DockerUnavailableError(BuildError):
    """No Docker engine answers at ``DOCKER_HOST`` (or the default socket)."""


class ParityError(BuildError):
    """An export (ONNX) answers differently from the native model on the sample.

    Attributes:
        parity: method -> its comparison (``max_abs_diff``, ``mismatches``, ``passed``...).
    """

    def __init__(self, message: str, *, parity: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.parity = parity or {}


class DeploymentError(MlemError, RuntimeError):
    """A rollout, status call or removal failed."""


class DeclarationError(DeploymentError, ValueError):
    """A declaration file is missing, not YAML, or has a wrong field."""


class DeploymentLockedError(DeploymentError):
    """Another run holds the deployment's lock."""


class SmokeTestError(DeploymentError):
    """The request sent right after a rollout did not succeed."""


class TargetFailedError(DeploymentError):
    """The platform reports that the new version failed (a SageMaker endpoint ``Failed``,
    a Heroku release ``failed``).

    Attributes:
        reason: the platform's own words (``FailureReason``, the release's status).
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class UpdateRevertedError(TargetFailedError):
    """An update failed and the platform itself put the previous version back (a SageMaker
    endpoint back ``InService`` on its old config).

    Attributes:
        restored: the platform's id of what runs again (the old endpoint config).
    """

    def __init__(self, message: str, *, reason: str = "", restored: str = "") -> None:
        super().__init__(message, reason=reason)
        self.restored = restored


class RolledBackError(DeploymentError):
    """A rollout failed and the previous version runs again.

    Attributes:
        restored_state: the state of what runs now (the previous version, possibly with
            new process or container ids), or ``None`` when nothing ran before and the
            new deployment was removed.
        reason: the failure that caused the rollback.
    """

    def __init__(self, message: str, *, restored_state: DeploymentState | None,
                 reason: BaseException | None = None) -> None:
        super().__init__(message)
        self.restored_state = restored_state
        self.reason = reason


class CredentialsError(DeploymentError, PermissionError):
    """Credentials are missing or were refused."""


class AppNameTakenError(DeploymentError, ValueError):
    """The app name a declaration asks for belongs to someone else."""


class TargetNotReadyError(DeploymentError, TransientError):
    """The target is busy (an update in progress, throttling): try again later."""


class TargetUnreachableError(DeploymentError, NetworkError):
    """A deployment target's API could not be reached (connection refused, timed out)."""


class RegistryError(MlemError, ValueError):
    """A registry operation failed (unknown model, version or stage, dirty tree...)."""


class VersionNotFoundError(RegistryError, LookupError):
    """No such version or stage in the registry."""


class UnknownModelError(VersionNotFoundError):
    """The registry has no model (GTO artifact) of that name."""


class VersionExistsError(RegistryError):
    """That version, or a version with the same model content, is already registered."""


class DirtyWorkingTreeError(RegistryError):
    """Files unrelated to the model being registered have uncommitted changes."""


class NoDvcRemoteError(RegistryError):
    """The repository is not a DVC repository or has no default DVC remote."""
