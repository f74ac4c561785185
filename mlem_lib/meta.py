"""Pydantic models of the ``.mlem`` file.

The layout follows MLEM's launch post (``object_type``, ``model_type`` with
``methods``, ``requirements``, ``artifacts``) and keeps any field it does not
know, so a file written by a newer tool survives a round trip.

Example:
    >>> meta = ModelMeta(model_type=ModelType(type="callable", methods={}))
    >>> meta.object_type
    'model'
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from mlem_lib.data.base import AnyDataType, UnspecifiedType


class _Meta(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Artifact(_Meta):
    """A file that belongs to the object; ``uri`` is relative to the ``.mlem`` file."""

    uri: str
    size: int
    hash: str
    hash_algorithm: str = "md5"  # MLEM wrote md5 without saying so; we write sha256


def main_artifact(artifacts: dict[str, Artifact]) -> Artifact | None:
    """The artifact holding the object itself: ``data``, else the first one listed."""
    return artifacts.get("data") or next(iter(artifacts.values()), None)


def public_name(method: str) -> str:
    """The name a method is listed and served under: a callable's ``__call__`` is ``predict``
    (as MLEM's client calls it), everything else its own name.

    Example:
        >>> public_name("__call__"), public_name("predict_proba")
        ('predict', 'predict_proba')
    """
    return "predict" if method == "__call__" else method


class Argument(_Meta):
    """One argument of a model method.

    ``example`` is the first row of the sample given at save, in its JSON form: the request
    ``/docs`` shows and the deployment smoke test sends.
    """

    name: str
    type_: AnyDataType = Field(default_factory=UnspecifiedType)
    required: bool = True
    default: Any = None
    kw_only: bool = False
    example: Any = None


class Signature(_Meta):
    """A model method: its name, arguments and return schema.

    ``output_columns`` names the columns of a 2-D result in tables (``mlem apply``
    outputs): ``proba_<class label>`` for ``predict_proba``, for example.
    """

    name: str
    args: list[Argument] = []
    returns: AnyDataType = Field(default_factory=UnspecifiedType)
    varargs: str | None = None
    varkw: str | None = None
    output_columns: list[str] | None = None


class ModelIO(_Meta):
    """How the model object is written to its artifact (``pickle``, ``xgboost_json``...)."""

    type: str = "pickle"


class ModelType(_Meta):
    """The framework of a model and its methods."""

    type: str
    methods: dict[str, Signature] = {}
    io: ModelIO = Field(default_factory=ModelIO)


class PythonRequirement(_Meta):
    """A pip-installable package, recorded by its import name and distribution name.

    ``spec`` is a requirement line given at save (``extra_requirements=["scipy>=1.10"]``),
    written to packages as it is.
    """

    type: Literal["installable"] = "installable"
    module: str
    version: str | None = None
    package_name: str | None = None
    spec: str | None = None

    @property
    def distribution(self) -> str:
        return self.package_name or self.module

    def pip_line(self, pin: str = "exact") -> str:
        """The requirement for pip: ``name==1.2.3`` (``pin="exact"``) or ``name~=1.2.3``
        (``pin="compatible"``: any later patch release).

        Example:
            >>> req = PythonRequirement(module="numpy", version="2.4.6")
            >>> req.pip_line(), req.pip_line("compatible")
            ('numpy==2.4.6', 'numpy~=2.4.6')
        """
        if self.spec:
            return self.spec
        if not self.version:
            return self.distribution
        if pin == "compatible":
            release = compatible_release(self.version)
            if release is not None:
                return f"{self.distribution}~={release}"
        return f"{self.distribution}=={self.version}"


def compatible_release(version: str) -> str | None:
    """``X.Y.Z`` for a ``~=`` pin (same major.minor, any later patch), or ``None`` for
    versions a compatible pin would lose (local builds such as ``2.13.0+cpu``, pre-releases).

    Example:
        >>> compatible_release("1.9"), compatible_release("2.4.6.1"), compatible_release("2.1+cpu")
        ('1.9.0', '2.4.6', None)
    """
    import re

    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*", version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return f"{major}.{minor}.{patch or 0}"


class CustomRequirement(_Meta):
    """Local source code the model needs, shipped inside the ``.mlem`` file."""

    type: Literal["custom"] = "custom"
    name: str
    source64zip: str
    is_package: bool = False


class UnixRequirement(_Meta):
    """A system package (apt) the model needs, e.g. ``libgomp1`` for xgboost."""

    type: Literal["unix"] = "unix"
    package_name: str


def _req_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "installable"))
    return str(getattr(value, "type", "installable"))


Requirement = Annotated[
    Annotated[PythonRequirement, Tag("installable")]
    | Annotated[CustomRequirement, Tag("custom")]
    | Annotated[UnixRequirement, Tag("unix")],
    Discriminator(_req_kind),
]


class SavedSample(_Meta):
    """The first rows of the ``sample_data`` given to ``save``, kept in the ``.mlem`` file.

    Exports check their answers against the model's on these rows (``mlem build MODEL
    onnx``). ``values`` is the JSON of the rows as ``data_type`` writes them, on one line;
    at most :data:`mlem_lib.objects.SAMPLE_ROWS` rows and about
    :data:`mlem_lib.objects.SAMPLE_BYTES` bytes are kept.
    """

    rows: int | None = None
    data_type: AnyDataType = Field(default_factory=UnspecifiedType)
    values: str

    def read(self) -> Any:
        """The rows as the model's argument (validated by ``data_type``)."""
        import json

        return self.data_type.from_json(json.loads(self.values))


class ModelMeta(_Meta):
    """The metadata of a saved model (the content of ``<path>.mlem``)."""

    object_type: Literal["model"] = "model"
    model_type: ModelType
    requirements: list[Requirement] = []
    artifacts: dict[str, Artifact] = {}
    description: str | None = None
    labels: list[str] = []
    mlem_lib_version: str | None = None
    sample: SavedSample | None = None

    def method(self, name: str) -> Signature:
        """The signature of ``name``; ``predict`` also finds a callable's ``__call__``.

        Raises:
            MethodNotFoundError: the model has no such method.
        """
        from mlem_lib.errors import MethodNotFoundError

        methods = self.model_type.methods
        if name in methods:
            return methods[name]
        if name == "predict" and "__call__" in methods:
            return methods["__call__"]
        if name == "__call__" and "predict" in methods:
            return methods["predict"]
        raise MethodNotFoundError(
            f"model has no method '{name}' (it has: {', '.join(methods) or 'none'})")

    def python_requirements(self) -> list[PythonRequirement]:
        return [r for r in self.requirements if isinstance(r, PythonRequirement)]

    def custom_requirements(self) -> list[CustomRequirement]:
        return [r for r in self.requirements if isinstance(r, CustomRequirement)]

    def unix_requirements(self) -> list[UnixRequirement]:
        return [r for r in self.requirements if isinstance(r, UnixRequirement)]

    @property
    def model_hash(self) -> str:
        """The hash of the main artifact (what deployments compare).

        A model saved as a folder of files (no ``data`` artifact, several files) gets one
        sha256 over every file's name and hash, so changing any file changes it.
        """
        if "data" in self.artifacts or len(self.artifacts) <= 1:
            art = main_artifact(self.artifacts)
            return art.hash if art else ""
        import hashlib

        h = hashlib.sha256()
        for name in sorted(self.artifacts):
            art = self.artifacts[name]
            h.update(f"{name}\0{art.hash_algorithm}:{art.hash}\n".encode())
        return h.hexdigest()


class DataMeta(_Meta):
    """The metadata of a saved data object (``object_type: data``)."""

    object_type: Literal["data"] = "data"
    data_type: AnyDataType = Field(default_factory=UnspecifiedType)
    format: str = "json"
    requirements: list[Requirement] = []
    artifacts: dict[str, Artifact] = {}
    description: str | None = None
    labels: list[str] = []
    mlem_lib_version: str | None = None


AnyMeta = ModelMeta | DataMeta
