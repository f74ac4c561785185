"""MLEM deployment and env files (``object_type: deployment`` / ``env``) on our targets.

A MLEM 0.4 declaration such as ``heroku_app.mlem``::

    object_type: deployment
    type: heroku
    app_name: iris-app
    env: staging            # staging.mlem: object_type: env, type: heroku, api_key: ...

is translated into the declaration of the matching target and validated by it, so
``mlem deployment run|status|remove heroku_app.mlem`` work on it unchanged:

==================  ==========  ================================================
MLEM type           our target  fields
==================  ==========  ================================================
``heroku``          heroku      ``app_name`` -> ``app``, ``region``; env ``api_key``
``sagemaker``       sagemaker   ``endpoint_name``, ``instance_type``,
                                ``initial_instance_count``, ``method`` (smoke);
                                env ``region``, ``role``, ``bucket``,
                                ``ecr_repository``, ``profile``
``docker_container``  local     runtime ``container``, ``ports`` (host port),
                                ``image`` (``name:tag``)
``kubernetes``      --          "not supported yet" (one line)
==================  ==========  ================================================

Fields of our target's own declaration (``api_url``, ``base``, ``wait_timeout``...)
may be added to a MLEM file and are used as they are. Fields that have no counterpart
are reported (a :class:`~mlem_lib.errors.DeclarationWarning` each), never silently
dropped. An env or inline ``api_key`` is *used* as the credentials when the caller
gives none, with a warning: secrets belong in the environment (``HEROKU_API_KEY``) or a
Prefect block. An env's ``profile`` becomes the AWS profile of the credentials.

MLEM kept what it deployed in ``<declaration>.state`` (``heroku_app.mlem.state``);
:func:`mlem_state` reads it, so ``status`` and the first ``run`` after the switch know
the app MLEM created.

Example:
    >>> t = translate({"object_type": "deployment", "type": "heroku", "app_name": "iris-app",
    ...                "env": {"object_type": "env", "type": "heroku", "api_key": "k"},
    ...                "stack": "container"}, "app.mlem")
    >>> t.declaration, t.credentials["api_key"], t.secrets
    ({'type': 'heroku', 'app': 'iris-app'}, 'k', ['api_key'])
"""

from __future__ import annotations

import os
import posixpath
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlem_lib.errors import DeclarationError, DeclarationWarning, MetadataError

if TYPE_CHECKING:
    from mlem_lib.deploy.declaration import BaseDeclaration
    from mlem_lib.deploy.state import DeploymentState

__all__ = ["MLEM_DEPLOYMENT_TYPES", "Translated", "declare", "find_declaration",
           "forget_mlem_state", "load_mlem_declaration", "mlem_state", "mlem_state_path",
           "prepare_run", "translate"]

UNSUPPORTED = {
    "kubernetes": "MLEM kubernetes deployments are not supported yet: deploy the image of "
                  "`mlem build MODEL docker` with your own manifests, or use heroku, "
                  "sagemaker or docker_container (local)",
    "flyio": "MLEM flyio deployments are not supported yet: use heroku, sagemaker or "
             "docker_container (local)",
}
MLEM_DEPLOYMENT_TYPES = ("heroku", "sagemaker", "docker_container", *UNSUPPORTED)
_TARGETS = {"heroku": "heroku", "sagemaker": "sagemaker", "docker_container": "local"}
_ENV_TYPES = {"docker_container": "docker"}  # deployment type -> its env's type
# fields every MLEM deployment has, which mean nothing to us
_COMMON = {"object_type", "type", "env", "state_manager", "model", "state", "description",
           "labels", "params"}


@dataclass
class Translated:
    """A MLEM declaration in our terms.

    Attributes:
        declaration: the mapping our target's ``Declaration`` validates.
        credentials: credential fields the MLEM files stored (secrets and defaults).
        secrets: which of those are secrets (warned about).
        source: the declaration's path.
        model: the model a MLEM 0.2 declaration names (``model: rf``), if any.
        ignored: MLEM fields without a counterpart here.
    """

    declaration: dict[str, Any]
    credentials: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    source: str = ""
    model: str | None = None
    ignored: list[str] = field(default_factory=list)


def _env_doc(env: Any, source: str) -> tuple[dict[str, Any], str]:
    """The env a deployment names (inline, a path with MLEM's link rules, or a link
    mapping) and where it was read."""
    from mlem_lib.compat import linkcheckout, links
    from mlem_lib.compat.objects import read_object

    if env is None:
        return {}, source
    if isinstance(env, dict) and env.get("object_type", "env") == "env" and "path" not in env:
        return env, source
    if isinstance(env, dict):  # a link: {path, project, rev}
        link = links.MlemLink.model_validate({**env, "object_type": "link"})
    elif isinstance(env, str):
        link = links.MlemLink(path=env)
    else:
        raise DeclarationError(f"{source}: field 'env': expected a path or an env, got "
                               f"{type(env).__name__}")
    with linkcheckout.followed_link(link, source) as path:
        doc, found = read_object(path, "env")
    return doc, found


def _pop_known(doc: dict[str, Any], target_fields: set[str], out: dict[str, Any]) -> None:
    """Copy fields our target's declaration knows, as they are."""
    for key in list(doc):
        if key in target_fields and key not in ("type",):
            out[key] = doc.pop(key)


def _heroku(doc: dict[str, Any], env: dict[str, Any], t: Translated) -> None:
    if "app_name" in doc:
        t.declaration["app"] = doc.pop("app_name")
    if "region" in doc:
        t.declaration["region"] = doc.pop("region")
    stack = doc.pop("stack", "container")
    if stack != "container":
        t.ignored.append(f"stack {stack!r} (the heroku target always uses stack: container)")
    _server(doc, t)
    key = env.get("api_key")
    if key:
        t.credentials["api_key"] = key
        t.secrets.append("api_key")


def _endpoint_name(t: Translated) -> str:
    """MLEM's endpoint (from its state), else one named after the declaration."""
    import re

    import yaml

    state = mlem_state_path(t.source)
    if os.path.isfile(state):
        try:
            with open(state) as f:
                recorded = (yaml.safe_load(f) or {}).get("endpoint_name")
        except (OSError, yaml.YAMLError, AttributeError):
            recorded = None
        if recorded:
            return str(recorded)
    stem = os.path.basename(t.source).removesuffix(".mlem")
    return re.sub(r"[^A-Za-z0-9]+", "-", f"mlem-{stem}").strip("-")[:63]


def _sagemaker(doc: dict[str, Any], env: dict[str, Any], t: Translated) -> None:
    d = t.declaration
    for mlem, ours in (("endpoint_name", "endpoint_name"), ("instance_type", "instance_type"),
                       ("initial_instance_count", "instance_count")):
        if doc.get(mlem) is not None:
            d[ours] = doc.pop(mlem)
        else:
            doc.pop(mlem, None)
    d.setdefault("endpoint_name", _endpoint_name(t))
    method = doc.pop("method", None)
    if method and method != "predict":
        d["smoke_method"] = method
    for mlem, ours in (("region", "region"), ("role", "role_arn"), ("bucket", "bucket"),
                       ("ecr_repository", "ecr_repository")):
        if env.get(mlem) and ours not in d:
            d[ours] = env[mlem]
    if env.get("profile"):
        t.credentials["profile_name"] = env["profile"]
    if env.get("account") and d.get("region"):
        d.setdefault("bucket", f"sagemaker-{d['region']}-{env['account']}")  # SageMaker's
        d.setdefault("registry", f"{env['account']}.dkr.ecr.{d['region']}.amazonaws.com")
    for key in ("image_tag", "use_prebuilt", "model_arch_location", "model_name",
                "accelerator_type"):
        if doc.pop(key, None) is not None:
            t.ignored.append(key)


def _docker_container(doc: dict[str, Any], env: dict[str, Any], t: Translated) -> None:
    d = t.declaration
    d.setdefault("runtime", "container")
    ports = doc.pop("ports", None) or []
    if ports:
        host = str(ports[0]).split(":")[0].split("/")[0]
        if host.isdigit():
            d["port"] = int(host)
        if len(ports) > 1:
            t.ignored.append(f"ports {ports[1:]} (one port is published)")
    image = doc.pop("image", None)
    if isinstance(image, dict) and image.get("name"):
        name = str(image["name"])
        if image.get("repository"):
            name = f"{image['repository']}/{name}"
        d["image"] = f"{name}:{image.get('tag') or 'latest'}"
    for key in ("container_name", "rm"):
        if key in doc:
            t.ignored.append(f"{key} (the local target names and removes its containers)")
            doc.pop(key)
    _server(doc, t)


def _server(doc: dict[str, Any], t: Translated) -> None:
    server = doc.pop("server", None)
    kind = server.get("type") if isinstance(server, dict) else server
    if kind not in (None, "fastapi"):
        t.ignored.append(f"server {kind!r} (models are served by mlem_lib's FastAPI server)")
    elif isinstance(server, dict) and set(server) - {"type"}:
        t.ignored.append(f"server options {sorted(set(server) - {'type'})}")


_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any], Translated], None]] = {
    "heroku": _heroku, "sagemaker": _sagemaker, "docker_container": _docker_container}


def translate(doc: dict[str, Any], source: str) -> Translated:
    """Translate a MLEM deployment mapping (read from ``source``) into our declaration.

    Raises:
        DeclarationError: an unsupported type (kubernetes...), an env of another type,
            or a field that cannot be read.
    """
    from mlem_lib.deploy.declaration import target_class

    doc = dict(doc)
    kind = doc.get("type")
    if kind in UNSUPPORTED:
        raise DeclarationError(f"{source}: {UNSUPPORTED[kind]}")
    if kind not in _MAPPERS:
        raise DeclarationError(f"{source}: MLEM deployment type {kind!r} is not supported "
                               f"(supported: {', '.join(_MAPPERS)})")
    try:
        env, env_source = _env_doc(doc.get("env"), source)
    except (MetadataError, FileNotFoundError) as exc:
        raise DeclarationError(f"{source}: field 'env': {exc}") from None
    env_kind = env.get("type")
    if env_kind is not None and env_kind != _ENV_TYPES.get(kind, kind):
        raise DeclarationError(f"{source}: field 'env': a {env_kind} env cannot be used by a "
                               f"{kind} deployment")
    target = _TARGETS[kind]
    t = Translated(declaration={"type": target}, model=doc.get("model"), source=source)
    fields = set(target_class(target).Declaration.model_fields)
    _MAPPERS[kind](doc, env, t)
    _pop_known(doc, fields - {"name"}, t.declaration)  # our own fields, added by hand
    t.secrets = [f"{secret}" + ("" if env_source == source else
                                f" (in its env {env_source})") for secret in t.secrets]
    extra_env = {k for k in env if k not in ("object_type", "type", "api_key", "region",
                                             "role", "bucket", "ecr_repository", "profile",
                                             "account")}
    t.ignored += [f"env field {k}" for k in sorted(extra_env)]
    t.ignored += [k for k in sorted(doc) if k not in _COMMON]
    if isinstance(doc.get("state_manager"), dict) and \
            doc["state_manager"].get("type") not in (None, "local"):
        t.ignored.append("state_manager (state is kept next to the declaration, or at "
                         "--state-url)")
    return t


def load_mlem_declaration(doc: dict[str, Any], path: str,
                          overrides: Mapping[str, Any] | None = None) -> BaseDeclaration:
    """Validate a MLEM declaration read from ``path`` with its target's model (``overrides``
    replace fields of the translated declaration for this run).

    Warns (:class:`~mlem_lib.errors.DeclarationWarning`) about a stored secret and about
    every field that has no counterpart. The declaration keeps the stored credentials
    (used when the caller gives none) and the model a MLEM 0.2 file names.
    """
    from mlem_lib.deploy.declaration import parse_declaration

    t = translate(doc, path)
    name = os.path.basename(path)
    name = name[: -len(".mlem")] if name.endswith(".mlem") else os.path.splitext(name)[0]
    source = path
    if overrides:
        source = f"{path} (with {', '.join(sorted(overrides))} overridden)"
    decl = parse_declaration({**t.declaration, **(overrides or {})}, name=name, source=source)
    for secret in t.secrets:
        warnings.warn(f"{path} stores an {secret}: it is used, but secrets belong in the "
                      "environment (HEROKU_API_KEY) or a Prefect block, not in a file in "
                      "git; remove it from the file", DeclarationWarning, stacklevel=2)
    for item in t.ignored:
        warnings.warn(f"{path}: MLEM field {item} is not used", DeclarationWarning,
                      stacklevel=2)
    decl._stored_credentials = dict(t.credentials)
    decl._model = t.model
    return decl


# --- MLEM's state files -----------------------------------------------------------

def mlem_state_path(declaration_path: str) -> str:
    """Where MLEM's local state manager kept the state: ``<declaration>.state``.

    Example:
        >>> mlem_state_path("deployments/heroku_app.mlem")
        'deployments/heroku_app.mlem.state'
    """
    path = declaration_path if declaration_path.endswith(".mlem") else declaration_path + ".mlem"
    return path + ".state"


def _linked_model_hash(link: Any, state_path: str) -> tuple[str | None, str | None]:
    """(our model hash, path) of the model a MLEM state's ``model_link`` names."""
    from mlem_lib import mlemfile
    from mlem_lib.compat import linkcheckout, links

    if not isinstance(link, dict) or not link.get("path"):
        return None, None
    parsed = links.MlemLink.model_validate({**link, "object_type": "link"})
    # MLEM wrote the project as an absolute file:// URL: in a moved or fresh clone the
    # path relative to the state file's project is the one that still exists
    tries = [parsed, parsed.model_copy(update={"project": None})] if parsed.project \
        and parsed.project.startswith("file://") and not parsed.rev else [parsed]
    for attempt in tries:
        try:
            with linkcheckout.followed_link(attempt, state_path) as path:
                meta, _, _ = mlemfile.read(path)
        except Exception:  # the model moved or is not readable: try the next way
            continue
        return getattr(meta, "model_hash", None) or None, parsed.path.removesuffix(".mlem")
    return None, parsed.path.removesuffix(".mlem")


def mlem_state(declaration_path: str, decl: BaseDeclaration) -> DeploymentState | None:
    """What MLEM recorded for this deployment, in our terms; ``None`` when nothing is.

    Raises:
        DeploymentError: the state file exists but cannot be read.
    """
    import yaml

    from mlem_lib.deploy.state import DeploymentState
    from mlem_lib.errors import DeploymentError

    path = mlem_state_path(declaration_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise DeploymentError(f"MLEM state file {path} cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise DeploymentError(f"MLEM state file {path} does not contain a mapping")
    model_hash, model_path = _linked_model_hash(doc.get("model_link"), path)
    when = datetime.fromtimestamp(os.path.getmtime(path), UTC).isoformat(timespec="seconds")
    image: dict[str, Any] = doc["image"] if isinstance(doc.get("image"), dict) else {}
    common: dict[str, Any] = {
        "name": decl.name, "type": decl.type, "deployed_at": when, "model_path": model_path,
        "model_hash": model_hash or f"mlem-meta:{doc.get('model_hash') or 'unknown'}",
        "image": image.get("name"), "image_id": image.get("image_id")}
    kind = doc.get("type")
    if kind == "heroku":
        app = doc.get("app") or {}
        release = doc.get("release_state")
        release = release[-1] if isinstance(release, list) and release else release
        if not app:
            return None  # MLEM never created the app
        return DeploymentState(**common, url=str(app.get("web_url") or "").rstrip("/") or None,
                               target={"app": app.get("name"), "created_app": True,
                                       "release_id": (release or {}).get("id"),
                                       "mlem_state": path})
    if kind == "sagemaker":
        endpoint = doc.get("endpoint_name")
        if not endpoint:
            return None
        return DeploymentState(**common, target={
            "endpoint": endpoint, "config": endpoint, "model_data_url": doc.get("model_location"),
            "mlem_state": path})
    if kind == "docker_container":
        if not doc.get("container_id"):
            return None
        return DeploymentState(**common, target={
            "runtime": "container", "container_id": doc.get("container_id"),
            "container_name": doc.get("container_name"), "mlem_state": path})
    return None


def forget_mlem_state(declaration_path: str) -> None:
    """Delete MLEM's state file after the deployment it describes was removed."""
    path = mlem_state_path(declaration_path)
    if os.path.isfile(path):
        os.remove(path)


# --- finding and writing declarations ------------------------------------------------

def find_declaration(name: str) -> str | None:
    """The declaration file ``name`` means: as given, or MLEM's ``name.mlem``; else ``None``.

    Example:
        >>> find_declaration("/no/such/app") is None
        True
    """
    for candidate in (name, name + ".mlem"):
        if os.path.isfile(candidate):
            return candidate
    return None


def declare(path: str, kind: str | None, *, env: str | None = None,
            options: dict[str, Any] | None = None) -> str:
    """Write a MLEM deployment declaration (what ``mlem deployment run NAME -t ENV -c ...``
    does when ``NAME.mlem`` does not exist).

    Args:
        path: the declaration (``.mlem`` added when missing).
        kind: the MLEM deployment type; default: the type of ``env``.
        env: the env's path, recorded as ``env:``.
        options: the deployment's fields (dotted keys nest: ``image.name=x``).

    Raises:
        DeclarationError: no type given and no env to take it from, or an unknown type.

    Example:
        >>> import tempfile, os
        >>> declare(os.path.join(tempfile.mkdtemp(), "app"), "heroku",
        ...         options={"app_name": "demo"}).endswith("app.mlem")
        True
    """
    from mlem_lib.compat.objects import read_object, write_object

    fields = dict(options or {})
    if env is not None:
        env_doc, env_file = read_object(env, "env")
        env_type = str(env_doc.get("type"))
        kind = kind or {v: k for k, v in _ENV_TYPES.items()}.get(env_type, env_type)
        if env_doc.get("type") != _ENV_TYPES.get(kind or "", kind):
            raise DeclarationError(f"env {env_file} is a {env_doc.get('type')} env, not {kind}")
        fields["env"] = posixpath.normpath(env.replace(os.sep, "/"))
    if kind is None:
        raise DeclarationError(f"cannot create {path}: give the deployment type (heroku, "
                               "sagemaker, docker_container) or an env with -t ENV")
    if kind in UNSUPPORTED:
        raise DeclarationError(UNSUPPORTED[kind])
    if kind not in _MAPPERS:
        raise DeclarationError(f"unknown MLEM deployment type {kind!r} (supported: "
                               f"{', '.join(_MAPPERS)})")
    return write_object(path, "deployment", kind, fields)


def prepare_run(positional: list[str], *, load: str | None = None, env: str | None = None,
                conf: list[str] | None = None, force: bool = False,
                model: str | None = None) -> tuple[str, str]:
    """The declaration and model of a ``mlem deployment run`` in any of MLEM's spellings.

    * ``run DECL --model M`` (ours), ``run --load DECL --model M`` (MLEM 0.4);
    * ``run TYPE NAME --model M --app_name X`` (0.4): ``NAME.mlem`` of that type is
      created with the fields when it does not exist;
    * ``run NAME -m M -t ENV -c app_name=X`` (0.2): the same, the type taken from the env.

    An existing MLEM declaration whose fields differ from the ones given is an error
    unless ``force`` (then it is rewritten, as MLEM's ``--force`` did). Without a model,
    the one a MLEM 0.2 declaration names (``model:``) is used.

    Raises:
        DeclarationError: nothing to deploy to, no model, or a conflicting declaration.
    """
    from mlem_lib.compat.objects import nest, parse_options, read_object, write_object
    from mlem_lib.deploy.declaration import load_declaration

    kind: str | None = None
    if len(positional) == 2:
        kind, name = positional
        if kind not in MLEM_DEPLOYMENT_TYPES:
            raise DeclarationError(f"unexpected argument {name!r}: `run TYPE NAME` takes a "
                                   f"MLEM deployment type ({', '.join(_MAPPERS)}), not "
                                   f"{kind!r}")
    elif load and positional:
        raise DeclarationError(f"unexpected argument {positional[0]!r} with --load")
    elif load or positional:
        name = load or positional[0]
    else:
        raise DeclarationError("no deployment declaration given: mlem deployment run DECL "
                               "--model MODEL")
    if kind in UNSUPPORTED:
        raise DeclarationError(UNSUPPORTED[kind])
    try:
        fields = parse_options(conf or [])
    except MetadataError as exc:
        raise DeclarationError(str(exc)) from None
    existing = find_declaration(name)
    if existing is None:
        if kind is None and env is None and not fields:
            raise DeclarationError(f"no deployment declaration at {name} (nor {name}.mlem): "
                                   "write one, or give its type and fields (mlem deployment "
                                   "run heroku NAME --app_name APP, or -t ENV -c app_name=APP)")
        path = declare(name, kind, env=env, options=fields)
        print(f"created {path}", file=sys.stderr)
    else:
        path = existing
        if kind is not None or env is not None or fields:
            doc, _ = read_object(path, "deployment")
            wanted = nest(fields)
            if env is not None:
                wanted["env"] = posixpath.normpath(env.replace(os.sep, "/"))
            if kind is not None:
                wanted["type"] = kind
            differ = sorted(k for k, v in wanted.items() if doc.get(k) != v)
            if differ and not force:
                raise DeclarationError(
                    f"{path} exists with other {', '.join(differ)}: edit it, or pass --force "
                    "to rewrite it with the fields given")
            if differ:
                merged = {k: v for k, v in doc.items() if k not in ("object_type", "type")}
                merged.update({k: v for k, v in wanted.items() if k != "type"})
                write_object(path, "deployment", str(wanted.get("type", doc.get("type"))),
                             merged)
    if model is None:
        model = load_declaration(path)._model
        if not model:
            raise DeclarationError(f"no model given: mlem deployment run {path} --model MODEL")
    return path, str(model)
