"""``mlem build MODEL docker``: build (and push) an image with the Docker SDK.

The context comes from :func:`mlem_lib.build.dockerfile.build_docker_dir`; the
engine is the one at ``DOCKER_HOST`` (or the default socket). Builds use the
host network so ``pip install`` reaches the package index wherever the engine
has no bridge network. Progress lines are streamed to a callback (default: the
``mlem_lib.build`` logger).

Example:
    >>> img = build_docker("models/rf", image="iris-rf:1.0")  # doctest: +SKIP
    >>> img.image_id  # doctest: +SKIP
    'sha256:…'
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from mlem_lib.build.base import Builder, BuildProgress
from mlem_lib.build.dockerfile import DockerContext, ImageOptions, build_docker_dir
from mlem_lib.build.wheelhouse import CPU_INDEX
from mlem_lib.errors import BuildError, CredentialsError, DockerUnavailableError

__all__ = ["BUILDER", "DockerImage", "DockerOptions", "build_docker", "build_docker_dir",
           "docker_client", "push_image"]

logger = logging.getLogger("mlem_lib.build")
Progress = Callable[[str], None]

_TAG = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# how many output lines to search for the cause when a build fails
_TAIL = 15


class DockerImage(BaseModel):
    """A built (and maybe pushed) image.

    Attributes:
        image_id: the local image id (``sha256:...``); equals the pushed config digest.
        tags: the tags it was given.
        digest: the manifest digest in the registry, when pushed.
        repo_digest: ``registry/name@sha256:...``, when pushed.
        labels: the image's labels (model hash and version among them).
        size: the image size in bytes.
    """

    image_id: str
    tags: list[str]
    digest: str | None = None
    repo_digest: str | None = None
    labels: dict[str, str] = {}
    size: int | None = None


def docker_client() -> Any:
    """A ``docker.DockerClient`` for ``DOCKER_HOST`` that has answered a ping.

    Raises:
        MissingExtraError: the SDK is not installed (the ``docker`` extra).
        DockerUnavailableError: no engine answers.
    """
    from mlem_lib.extras import need

    need("docker", "docker images and containers")
    import docker
    import docker.errors
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerUnavailableError(
            f"no Docker engine answers at {where}: start one or set DOCKER_HOST "
            f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from exc
    return client


def _check_tag(image: str) -> str:
    if not image or not _TAG.match(image):
        raise BuildError(f"image {image!r} is not a valid image name (e.g. iris-rf:1.0, "
                         "lowercase name, optional :tag)")
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def _split_ref(ref: str) -> tuple[str, str]:
    repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    return repo, tag


def _emit(progress: Progress | None, line: str) -> None:
    line = line.rstrip()
    if not line:
        return
    if progress is not None:
        progress(line)
    else:
        logger.info(line)


def _last_output(tail: list[str]) -> str:
    """The most telling line of a failed step's output, for a one-line error."""
    for line in reversed(tail[-_TAIL:]):
        if line.lstrip().startswith(("ERROR", "E:", "error:", "Error")):
            return f" (last error output: {line.strip()[:300]})"
    for line in reversed(tail[-_TAIL:]):
        if not line.startswith((" ---> ", "Step ", "Removing intermediate")):
            return f" (last output: {line.strip()[:300]})"
    return ""


def run_build(client: Any, context: str, tag: str, *, progress: Progress | None = None,
              nocache: bool = False, buildargs: dict[str, str] | None = None) -> str:
    """Build ``context`` as ``tag`` with the classic builder; returns the image id.

    Raises:
        BuildError: a Dockerfile step failed (the message quotes the last error line; the
            full output went to ``progress``).
    """
    import docker.errors

    tail: list[str] = []
    image_id: str | None = None
    try:
        stream = client.api.build(path=context, tag=tag, rm=True, forcerm=True, pull=False,
                                  network_mode="host", decode=True, nocache=nocache,
                                  buildargs=buildargs or {})
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error", "")
                raise BuildError(f"docker build of {tag} failed: {' '.join(detail.split())}"
                                 + _last_output(tail))
            text = chunk.get("stream")
            if text:
                for line in text.splitlines():
                    plain = _ANSI.sub("", line).rstrip()
                    if plain.strip():
                        tail.append(plain)
                        _emit(progress, plain)
            elif "status" in chunk:
                _emit(progress, " ".join(str(chunk[k]) for k in ("id", "status", "progress")
                                         if chunk.get(k)))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        raise BuildError(f"docker build of {tag} failed: {exc.explanation or exc}") from exc
    if image_id is None:
        # old engines report only "Successfully built <short id>"
        image_id = str(client.images.get(tag).id)
    return image_id


def push_image(image: str, registry: str, username: str | None = None,
               password: str | None = None, *, progress: Progress | None = None) -> str:
    """Tag ``image`` into ``registry`` (unless it already names it) and push it.

    Args:
        image: a local image name (``iris-rf:1.0``) or a full ``registry/name:tag``.
        registry: ``host[:port][/namespace]``, e.g. ``127.0.0.1:5055`` or ``ghcr.io/me``.
        username: registry user (default: env ``MLEM_REGISTRY_USERNAME``).
        password: registry password or token (default: env ``MLEM_REGISTRY_PASSWORD``).
        progress: callback for push progress lines.

    Returns:
        The manifest digest (``sha256:...``).

    Raises:
        CredentialsError: the registry refused the credentials.
        BuildError: the push failed for another reason.

    Example:
        >>> push_image("iris-rf:1.0", "127.0.0.1:5055", "mlem", "secret")  # doctest: +SKIP
        'sha256:…'
    """
    return _push(docker_client(), _check_tag(image), registry, username, password, progress)[1]


def _push(client: Any, local_ref: str, registry: str, username: str | None,
          password: str | None, progress: Progress | None) -> tuple[str, str]:
    import docker.errors

    registry = registry.strip().rstrip("/")
    if not registry or "://" in registry or " " in registry:
        raise BuildError(f"registry {registry!r} must look like host:port[/namespace] "
                         "(no scheme)")
    username = username or os.environ.get("MLEM_REGISTRY_USERNAME") or None
    password = password or os.environ.get("MLEM_REGISTRY_PASSWORD") or None
    if bool(username) != bool(password):
        raise CredentialsError("registry credentials need both username and password "
                               "(or MLEM_REGISTRY_USERNAME and MLEM_REGISTRY_PASSWORD)")
    remote = local_ref if local_ref.startswith(registry + "/") else \
        f"{registry}/{local_ref.split('/', 1)[-1] if _has_registry(local_ref) else local_ref}"
    repo, tag = _split_ref(remote)
    try:
        client.images.get(local_ref).tag(repo, tag)
    except docker.errors.ImageNotFound as exc:
        raise BuildError(f"image {local_ref} does not exist locally; build it first") from exc
    auth = {"username": username, "password": password} if username else None
    digest: str | None = None
    try:
        for chunk in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in chunk or "errorDetail" in chunk:
                detail = str(chunk.get("errorDetail", {}).get("message") or chunk.get("error"))
                if any(w in detail.lower() for w in ("unauthorized", "authentication",
                                                     "denied", "no basic auth")):
                    raise CredentialsError(f"registry {registry} refused the push of {remote}: "
                                           f"{detail.strip()}")
                raise BuildError(f"push of {remote} failed: {detail.strip()}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if chunk.get("status") and progress is not None:
                _emit(progress, " ".join(str(chunk[k]) for k in ("id", "status", "progress")
                                         if chunk.get(k)))
    except docker.errors.APIError as exc:
        raise BuildError(f"push of {remote} failed: {exc.explanation or exc}") from exc
    if digest is None:
        raise BuildError(f"push of {remote} reported no digest")
    return remote, digest


def _has_registry(ref: str) -> bool:
    first = ref.split("/", 1)[0]
    return "/" in ref and ("." in first or ":" in first or first == "localhost")


def build_docker(model: str, image: str, *, base: str | None = None,
                 python_version: str | None = None, apt: list[str] | None = None,
                 pip: list[str] | None = None, model_version: str | None = None,
                 strip_tests: bool = True, tags: list[str] | None = None, push: str | None = None,
                 username: str | None = None, password: str | None = None,
                 context_dir: str | None = None, nocache: bool = False,
                 progress: Progress | None = None, repo: str | None = None,
                 pin: str = "exact", wheelhouse: str | None = None,
                 torch_index: str | None = CPU_INDEX) -> DockerImage:
    """Build a Docker image that serves a saved model, optionally pushing it.

    Args:
        model: the saved model's path, URL or registry reference.
        image: the image name and tag (``iris-rf:1.0``; ``:latest`` when no tag).
        base, python_version, apt, pip, model_version, strip_tests, pin, wheelhouse,
            torch_index: see :func:`mlem_lib.build.dockerfile.build_docker_dir`.
        tags: more tags for the same image.
        push: a registry (``host:port[/namespace]``) to push to after the build.
        username, password: registry credentials (default: env ``MLEM_REGISTRY_USERNAME``
            / ``MLEM_REGISTRY_PASSWORD``).
        context_dir: keep the generated context there (default: a temporary folder).
        nocache: ignore Docker's layer cache.
        progress: callback for build output lines (default: the ``mlem_lib.build`` logger).
        repo: git repository for registry references.

    Returns:
        The image id, tags and (when pushed) the registry digest.

    Raises:
        DockerUnavailableError: no engine answers.
        BuildError: a build step or the push failed.

    Example:
        >>> build_docker("models/rf", "iris-rf:1.0", push="127.0.0.1:5055")  # doctest: +SKIP
    """
    ref = _check_tag(image)
    extra = [_check_tag(t) for t in tags or []]
    client = docker_client()
    tmp = None if context_dir else tempfile.mkdtemp(prefix="mlem-docker-")
    try:
        ctx: DockerContext = build_docker_dir(
            model, context_dir or os.path.join(str(tmp), "context"), base=base,
            python_version=python_version, apt=apt, pip=pip, model_version=model_version,
            strip_tests=strip_tests, repo=repo, pin=pin, wheelhouse=wheelhouse,
            torch_index=torch_index)
        _emit(progress, f"building {ref} from {ctx.base} (context {ctx.path})")
        image_id = run_build(client, ctx.path, ref, progress=progress, nocache=nocache)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    obj = client.images.get(image_id)
    for t in extra:
        obj.tag(*_split_ref(t))
    all_tags = [ref, *extra]
    digest = repo_digest = None
    if push:
        remote, digest = _push(client, ref, push, username, password, progress)
        repo_digest = f"{_split_ref(remote)[0]}@{digest}"
        all_tags.append(remote)
    labels = dict((obj.attrs.get("Config") or {}).get("Labels") or {})
    return DockerImage(image_id=image_id, tags=all_tags, digest=digest, repo_digest=repo_digest,
                       labels=labels, size=obj.attrs.get("Size"))


class DockerOptions(ImageOptions):
    """Options of ``build(model, "docker")`` (see :func:`build_docker`)."""

    image: str | None = Field(None, description="image name and tag (default: <model "
                                                "name>:latest)")
    tags: list[str] = Field(default_factory=list, description="more tags for the image")
    push: str | None = Field(None, description="registry (host:port[/namespace]) to push to")
    username: str | None = Field(None, description="registry user (default: "
                                                   "$MLEM_REGISTRY_USERNAME)")
    password: SecretStr | None = Field(None, description="registry password (default: "
                                                         "$MLEM_REGISTRY_PASSWORD)")
    context_dir: str | None = Field(None, description="keep the generated context there")
    nocache: bool = Field(False, description="ignore the engine's layer cache")


class DockerBuilder(Builder[DockerOptions, DockerImage]):
    """``docker``: the ``docker-dir`` context built by the engine at ``DOCKER_HOST``."""

    name = "docker"
    description = "that context built by the Docker engine at $DOCKER_HOST, optionally pushed"
    Options = DockerOptions
    Result = DockerImage

    def build(self, model: str, options: DockerOptions, *, repo: str | None = None,
              progress: BuildProgress = None) -> DockerImage:
        from mlem_lib.build.pip import default_package_name

        image = options.image or f"{default_package_name(model)}:latest"
        password = options.password.get_secret_value() if options.password else None
        return build_docker(model, image, base=options.base,
                            python_version=options.python_version, apt=options.apt,
                            pip=options.pip, model_version=options.model_version,
                            strip_tests=options.strip_tests, tags=options.tags,
                            push=options.push, username=options.username, password=password,
                            context_dir=options.context_dir, nocache=options.nocache,
                            progress=progress, repo=repo, pin=options.pin,
                            wheelhouse=options.wheelhouse, torch_index=options.torch_index)

    def summary(self, result: DockerImage) -> list[str]:
        lines = [f"built {', '.join(result.tags)} ({result.image_id})"]
        if result.repo_digest:
            lines.append(f"pushed {result.repo_digest}")
        return lines


BUILDER = DockerBuilder()
