"""Deployment declarations (``deployments/*.yaml``): read, dispatched by ``type``, validated.

A declaration says *where* a model goes: ``type`` names a target registered in the
``targets`` plugin group (``local``, ``heroku``, ``sagemaker`` or a plugin's), and the
rest are that target's settings, validated by the target's own ``Declaration``
model. It never holds secrets: those are the target's ``Credentials``.

Example:
    >>> decl = parse_declaration({"type": "local", "port": 8081}, name="staging")
    >>> decl.name, decl.port, type(decl).__name__
    ('staging', 8081, 'LocalDeclaration')
    >>> try:
    ...     parse_declaration({"type": "kubernetes"}, source="k8s.yaml")
    ... except DeclarationError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    k8s.yaml: field 'type': unknown deployment target 'kubernetes'
    (known: heroku, local, sagemaker)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

# BaseDeclaration lives with Target (what a target declares), so that the two modules
# import in one direction only
from mlem_lib.deploy.base import BaseDeclaration, Target
from mlem_lib.errors import DeclarationError, PluginError, UnknownPluginError

__all__ = ["BaseDeclaration", "DeclarationError", "default_state_url", "load_declaration",
           "parse_declaration", "target_class"]


def target_class(kind: str) -> type[Target]:
    """The :class:`~mlem_lib.deploy.base.Target` subclass registered as ``kind``.

    Raises:
        DeclarationError: no target of that name (the message lists the known ones), or
            the registration is not a Target with a ``Declaration`` model.

    Example:
        >>> target_class("local").__name__
        'LocalTarget'
    """
    from mlem_lib import plugins

    try:
        cls = plugins.get("targets", kind)
    except UnknownPluginError as exc:
        raise DeclarationError(f"field 'type': {exc}") from None
    except PluginError as exc:
        raise DeclarationError(f"field 'type': {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise DeclarationError(f"field 'type': the target plugin {kind!r} is {cls!r}, "
                               "not a mlem_lib.deploy.base.Target subclass")
    declaration = getattr(cls, "Declaration", None)
    if not (isinstance(declaration, type) and issubclass(declaration, BaseDeclaration)):
        raise DeclarationError(f"field 'type': the target plugin {kind!r} has no Declaration "
                               "model (a BaseDeclaration subclass)")
    return cls


def parse_declaration(data: Any, *, name: str = "deployment",
                      source: str = "<declaration>") -> BaseDeclaration:
    """Validate a declaration mapping with its target's model; errors name the field.

    Raises:
        DeclarationError: not a mapping, an unknown ``type`` or an invalid field.
    """
    if not isinstance(data, dict):
        raise DeclarationError(f"{source}: a declaration must be a mapping")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        from mlem_lib import plugins

        raise DeclarationError(f"{source}: field 'type' is required: one of "
                               f"{', '.join(plugins.names('targets'))}")
    try:
        cls = target_class(kind)
    except DeclarationError as exc:
        raise DeclarationError(f"{source}: {exc}") from exc.__cause__
    try:
        decl = cls.Declaration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "type"
        raise DeclarationError(f"{source}: field '{where}': {first['msg']}") from None
    if not decl.name:
        decl.name = name
    return decl


FOREIGN_READERS: dict[str, str] = {
    "deployment": "mlem_lib.compat.deployments:load_mlem_declaration",
}
"""Readers of other tools' declaration files, by their ``object_type``, as
``"module:function"`` references (the compat layer builds on this module, so it is
named here rather than imported: no import cycle)."""


def _foreign_reader(ref: str) -> Any:
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_declaration(path: str, overrides: Mapping[str, Any] | None = None) -> BaseDeclaration:
    """Read and validate a declaration YAML file.

    Args:
        path: the YAML file.
        overrides: fields that replace the file's (``{"port": 9000}``), validated with it;
            the file is not changed.

    Raises:
        DeclarationError: the file is missing or invalid, or an override is (the message
            names the field).

    Example:
        >>> load_declaration("deployments/local.yaml").type  # doctest: +SKIP
        'local'
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise DeclarationError(f"no deployment declaration at {path}") from None
    except OSError as exc:
        raise DeclarationError(f"cannot read the deployment declaration {path}: "
                               f"{exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeclarationError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    reader = FOREIGN_READERS.get(str(data.get("object_type"))) if isinstance(data, dict) else None
    if reader is not None:  # MLEM's heroku_app.mlem & co
        return _foreign_reader(reader)(data, path, overrides)  # type: ignore[no-any-return]
    if overrides:
        if not isinstance(data, dict):
            raise DeclarationError(f"{path}: a declaration must be a mapping")
        data = {**data, **overrides}
        source = f"{path} (with {', '.join(sorted(overrides))} overridden)"
        return parse_declaration(data, name=p.stem, source=source)
    return parse_declaration(data, name=p.stem, source=path)


def default_state_url(path: str, decl: BaseDeclaration) -> str:
    """``<dir of the declaration>/<name>.state.json`` unless the declaration says otherwise."""
    if decl.state_url:
        return decl.state_url
    return str(Path(path).resolve().parent / f"{decl.name}.state.json")

