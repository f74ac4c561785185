"""The interface of a build kind: a :class:`Builder` with an options model and a result model.

Builders are registered in the ``builders`` plugin group (:mod:`mlem_lib.plugins`):
``pip``, ``docker`` and ``docker-dir`` are the objects ``BUILDER`` of
:mod:`mlem_lib.build.pip`, :mod:`mlem_lib.build.docker` and
:mod:`mlem_lib.build.dockerfile`; a plugin adds its own object through the
``mlem_lib.builders`` entry point group. :func:`mlem_lib.api.build` and ``mlem build``
validate options with the builder's ``Options`` model, so a wrong or unknown option is
one clear error naming it, whatever the kind.

Example:
    >>> from pydantic import BaseModel
    >>> class EchoOptions(BuildOptions):
    ...     text: str = "hi"
    >>> class Echo(BaseModel):
    ...     said: str
    >>> class EchoBuilder(Builder[EchoOptions, Echo]):
    ...     name, Options, Result = "echo", EchoOptions, Echo
    ...     description = "say something (a demo)"
    ...     def build(self, model, options, *, repo=None, progress=None):
    ...         return Echo(said=f"{options.text} {model}")
    >>> EchoBuilder().run("models/rf", {"text": "hello"}).said
    'hello models/rf'
    >>> try:
    ...     EchoBuilder().options({"txt": "typo"})
    ... except BuildError as exc:
    ...     print(exc)
    build kind 'echo': option 'txt': Extra inputs are not permitted (options: text)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mlem_lib.errors import BuildError

__all__ = ["BuildOptions", "BuildProgress", "Builder", "builder"]

# receives the build's output lines (None: the ``mlem_lib.build`` logger)
BuildProgress = Callable[[str], None] | None

O = TypeVar("O", bound="BuildOptions")  # noqa: E741 - the conventional name
R = TypeVar("R", bound=BaseModel)


class BuildOptions(BaseModel):
    """Base of a builder's options: unknown options are errors."""

    model_config = ConfigDict(extra="forbid")


class Builder(ABC, Generic[O, R]):
    """One build kind.

    Class attributes:
        name: the kind's name (``pip``).
        description: one line for ``mlem build --help``.
        Options: the pydantic model of its options.
        Result: the pydantic model of what it returns.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: type[O]
    Result: type[R]

    def options(self, values: O | Mapping[str, object] | None = None) -> O:
        """Validate ``values`` into :attr:`Options`.

        Raises:
            BuildError: an unknown option or a bad value; the message names the option.
        """
        if isinstance(values, self.Options):
            return values
        if isinstance(values, BuildOptions):
            values = values.model_dump(exclude_unset=True)
        try:
            return self.Options.model_validate(dict(values or {}))
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            raise BuildError(f"build kind {self.name!r}: option {where!r}: {first['msg']} "
                             f"(options: {', '.join(self.Options.model_fields)})") from None

    @abstractmethod
    def build(self, model: str, options: O, *, repo: str | None = None,
              progress: BuildProgress = None) -> R:
        """Build ``model`` (a path, URL or registry reference) with validated options."""

    def run(self, model: str, options: O | Mapping[str, object] | None = None, *,
            repo: str | None = None, progress: BuildProgress = None) -> R:
        """Validate the options, then build."""
        return self.build(model, self.options(options), repo=repo, progress=progress)

    def summary(self, result: R) -> list[str]:
        """Lines ``mlem build`` prints for a result (default: its JSON)."""
        return [result.model_dump_json(indent=2)]


def builder(kind: str) -> Builder[Any, Any]:
    """The builder registered as ``kind``.

    Raises:
        BuildError: no such kind (the message lists the known ones), or the registration
            is not a :class:`Builder`.

    Example:
        >>> builder("pip").Options.__name__
        'PipOptions'
    """
    from mlem_lib import plugins
    from mlem_lib.errors import PluginError, UnknownPluginError

    try:
        found = plugins.get("builders", kind)
    except UnknownPluginError as exc:
        raise BuildError(str(exc)) from None
    except PluginError as exc:
        raise BuildError(str(exc)) from exc
    if not isinstance(found, Builder):
        raise BuildError(f"the build kind {kind!r} is registered as {found!r}, which is not "
                         "a mlem_lib.build.base.Builder")
    return found
