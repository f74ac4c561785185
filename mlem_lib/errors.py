"""The exception hierarchy of mlem_lib.

Every error raised on purpose by the library derives from :class:`MlemError`.
Each narrow subclass also inherits the builtin exception it is closest to, so
callers that already catch ``ValueError`` or ``FileNotFoundError`` keep working
(the same approach attrs takes).

Example:
    >>> from mlem_lib.errors import MlemError, ModelNotFoundError
    >>> issubclass(ModelNotFoundError, FileNotFoundError)
    True
"""

from __future__ import annotations


class MlemError(Exception):
    """Root of every mlem_lib error."""


class ObjectNotFoundError(MlemError, FileNotFoundError):
    """A model, data object or artifact does not exist at the given location."""


ModelNotFoundError = ObjectNotFoundError


class MetadataError(MlemError, ValueError):
    """A ``.mlem`` file cannot be parsed or does not follow any known layout."""


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
    """

    def __init__(self, message: str, *, field: str | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected
        self.got = got

    def to_dict(self) -> dict[str, str | None]:
        """The error as a JSON-friendly dict (what the server answers)."""
        return {"error": str(self), "field": self.field,
                "expected": self.expected, "got": self.got}


class StorageError(MlemError, OSError):
    """Reading or writing through fsspec failed."""


class RequirementsWarning(UserWarning):
    """Installed package versions differ from the recorded ones."""


class ServeError(MlemError, RuntimeError):
    """The model server could not be started or reached."""


class ApplyError(MlemError, ValueError):
    """Batch prediction failed for a reason other than a schema mismatch."""


class BuildError(MlemError, RuntimeError):
    """Building a pip package or a docker image failed."""


class DockerUnavailableError(BuildError):
    """No Docker engine answers at ``DOCKER_HOST`` (or the default socket)."""


class DeploymentError(MlemError, RuntimeError):
    """A rollout, status call or removal failed."""


class DeploymentLockedError(DeploymentError):
    """Another run holds the deployment's lock."""


class SmokeTestError(DeploymentError):
    """The request sent right after a rollout did not succeed."""


class CredentialsError(DeploymentError, PermissionError):
    """Credentials are missing or were refused."""


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
