"""MLEM builders (``object_type: builder`` files and ``-c`` options) on our build kinds.

``mlem build --load build_docker.mlem models/rf`` reads::

    object_type: builder
    type: docker
    image: {name: iris, tag: v1}

and runs our ``docker`` builder with ``image: iris:v1``. The same mapping turns MLEM's
``-c key=value`` options (``mlem build rf pip -c package_name=x -c target=build/``)
into our options:

=============  ============  ===================================================
MLEM type      our kind      options
=============  ============  ===================================================
``pip``        pip           ``package_name``, ``target``, ``version``
``whl``        pip           the same, without the sdist
``docker``     docker        ``image.name``/``image.tag``/``image.repository``
                             -> ``image``; ``registry.host`` + ``push`` ->
                             ``push``; ``args.python_version``,
                             ``args.base_image`` -> ``base``
``docker_dir`` docker-dir    ``target``, ``args.*`` as for docker
=============  ============  ===================================================

MLEM options without a counterpart (templates, author, ``run_cmd``...) are reported
and not used; anything else is handed to our builder, whose options model refuses
what it does not know.

Example:
    >>> to_build_options("docker", {"image.name": "iris", "image.tag": "v1",
    ...                             "server": "fastapi"})
    ('docker', {'image': 'iris:v1'}, [])
    >>> to_build_options("pip", {"package_name": "x", "target": "build/",
    ...                          "author": "me"})
    ('pip', {'package_name': 'x', 'target': 'build/'}, ['author'])
"""

from __future__ import annotations

from typing import Any

from mlem_lib.errors import BuildError

__all__ = ["KINDS", "read_builder", "to_build_options"]

KINDS = {"pip": "pip", "whl": "pip", "docker": "docker", "docker_dir": "docker-dir"}
UNSUPPORTED = {"requirements", "venv", "conda"}
# MLEM options that describe what only MLEM's own templates used
_IGNORED = {"templates_dir", "python_version", "short_description", "url", "email",
            "author", "additional_setup_kwargs", "force_overwrite", "env", "daemon",
            "description", "labels"}
_IGNORED_ARGS = {"templates_dir", "run_cmd", "package_install_cmd", "package_clean_cmd",
                 "prebuild_hook", "mlem_whl", "platform", "build_arg", "set_env"}
# the docker builder's image option (a constant: "image" is also a data type's name, and
# nothing outside mlem_lib/data/ compares strings with those: tests/test_data_seam.py)
_IMAGE_OPTION = "image"


def _server(value: Any, ignored: list[str]) -> None:
    kind = value.get("type") if isinstance(value, dict) else value
    if kind not in (None, "fastapi"):
        raise BuildError(f"MLEM server {kind!r} is not supported: images serve the model "
                         "with mlem_lib's FastAPI server (MLEM's fastapi)")
    if isinstance(value, dict) and set(value) - {"type"}:
        ignored.append(f"server options {sorted(set(value) - {'type'})}")


def _docker_args(args: Any, out: dict[str, Any], ignored: list[str]) -> None:
    if not isinstance(args, dict):
        return
    for key, value in args.items():
        if key == "python_version":
            out["python_version"] = str(value)
        elif key == "base_image" and value:
            out["base"] = value
        elif key in _IGNORED_ARGS:
            ignored.append(f"args.{key}")
        else:
            ignored.append(f"args.{key}")


def _image(image: Any) -> str | None:
    if isinstance(image, str):
        return image
    if not isinstance(image, dict) or not image.get("name"):
        return None
    name = str(image["name"])
    if image.get("repository"):
        name = f"{image['repository']}/{name}"
    return f"{name}:{image.get('tag') or 'latest'}"


def to_build_options(kind: str, options: dict[str, Any]) -> tuple[str, dict[str, Any],
                                                                   list[str]]:
    """Our build kind, options and the MLEM options not used, for a MLEM kind and options.

    ``options`` may use dotted keys (``image.name``) or nested mappings; keys that are
    not MLEM's pass through unchanged (our own options: ``-c sdist=false``).

    Raises:
        BuildError: a MLEM kind (``requirements``, ``venv``, ``conda``) or server this
            version does not build.
    """
    from mlem_lib.compat.objects import nest

    if kind in UNSUPPORTED:
        raise BuildError(f"MLEM's {kind} builder is not supported: use pip (a wheel and an "
                         "sdist whose requirements are the model's), docker or docker-dir")
    ours = KINDS.get(kind, kind)
    values = nest(options)
    out: dict[str, Any] = {}
    ignored: list[str] = []
    registry: Any = values.pop("registry", None)
    push = values.pop("push", None)
    for key, value in values.items():
        if key in ("object_type", "type"):
            continue
        if key == "server":
            _server(value, ignored)
        elif key == "args" and ours in ("docker", "docker-dir"):
            _docker_args(value, out, ignored)
        elif key == _IMAGE_OPTION and ours == "docker":
            out[_IMAGE_OPTION] = _image(value)
        elif key in _IGNORED:
            ignored.append(key)
        else:
            out[key] = value
    if ours == "docker":
        host = registry.get("host") if isinstance(registry, dict) else registry
        if isinstance(push, str):
            out["push"] = push
        elif push and host:
            out["push"] = host
        elif host and push is None:
            out["push"] = host  # MLEM pushes by default to a remote registry
        elif push and not host:
            ignored.append("push (without a registry: the image stays in the local engine)")
    elif push is not None:
        out["push"] = push
    if kind == "whl":
        out.setdefault("sdist", False)
    return ours, {k: v for k, v in out.items() if v is not None}, ignored


def read_builder(path: str) -> tuple[str, dict[str, Any], list[str]]:
    """Our kind, options and the unused MLEM options of a MLEM builder file.

    Raises:
        ObjectNotFoundError: no such file.
        MetadataError: not a MLEM builder.
        BuildError: an unsupported builder type.

    Example:
        >>> read_builder("build_docker.mlem")  # doctest: +SKIP
        ('docker', {'image': 'iris:v1'}, [])
    """
    from mlem_lib.compat.objects import read_object

    doc, found = read_object(path, "builder")
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise BuildError(f"{found}: field 'type' is required (pip, whl, docker, docker_dir)")
    if kind not in KINDS and kind not in UNSUPPORTED:
        raise BuildError(f"{found}: MLEM builder type {kind!r} is not supported (supported: "
                         f"{', '.join(KINDS)})")
    try:
        return to_build_options(kind, doc)
    except BuildError as exc:
        raise BuildError(f"{found}: {exc}") from None
