"""MLEM's command-line spellings, turned into ours before the arguments are parsed.

Scripts written for MLEM 0.2-0.4 run unchanged. Most of MLEM's syntax is accepted by
the commands themselves (``mlem serve MODEL fastapi``, ``mlem serve fastapi -m MODEL``,
``-c key=value``, ``--load``, ``-t ENV``, ``--project``/``--rev``); this module only does
what argparse cannot:

* MLEM's command names: ``deploy`` (0.3) is ``deployment``, ``deploy create`` (0.2)
  ``deployment run``, ``deploy teardown`` ``deployment remove``, ``pprint`` ``show``,
  ``create`` (0.2) ``declare``, ``list`` ``ls``;
* the options MLEM generated from each builder's, server's or deployment's fields
  (``--app_name x``, ``--image.name x``, ``--package_name=x``): on ``build``, ``serve``,
  ``deployment run`` and ``declare`` any long option the command does not define
  becomes ``-c app_name=x``, which those commands map onto their own options;
* ``apply-remote http DATA --host H --port P`` (MLEM names a client type, then its
  options) becomes ``apply-remote http://H:P DATA``.

Example:
    >>> translate(["deploy", "create", "svc", "-m", "rf", "-t", "staging"])
    ['deployment', 'run', 'svc', '-m', 'rf', '-t', 'staging']
    >>> translate(["apply-remote", "http", "test_x.csv", "-c", "host=0.0.0.0",
    ...            "-c", "port=8080", "--json"])
    ['apply-remote', 'http://0.0.0.0:8080', 'test_x.csv']
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["model_in_project", "translate"]

_ALIASES = {"pprint": ["show"], "create": ["declare"], "list": ["ls"]}
_DEPLOY = {"create": "run", "teardown": "remove"}
# commands whose unknown long options are MLEM fields: -c field=value
_FIELD_COMMANDS = {("build",), ("serve",), ("deployment", "run"), ("declare",)}
# MLEM options of these commands that take a value (so the value is not a positional)
_VALUE_FLAGS = {"-c", "--conf", "-m", "--model", "-l", "--load", "-t", "--env", "-p",
                "--project", "--rev", "--mp", "--model-project", "--mr", "--model-rev",
                "-f", "--file_conf", "-o", "--option", "--method", "--output"}


def _subcommand_parser(parser: argparse.ArgumentParser | None,
                       path: Sequence[str]) -> argparse.ArgumentParser | None:
    current = parser
    for name in path:
        if current is None:
            return None
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or name not in subs[0].choices:
            return None
        current = subs[0].choices[name]
    return current


def _known_options(parser: argparse.ArgumentParser | None) -> set[str]:
    if parser is None:
        return set(_VALUE_FLAGS) | {"-h", "--help"}
    return set(parser._option_string_actions)


def _fields_to_conf(args: list[str], known: set[str]) -> list[str]:
    """Unknown ``--name value`` / ``--name=value`` / ``--flag`` as ``-c name=value``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out += args[i - 1:]
            break
        if not arg.startswith("--") or arg.split("=", 1)[0] in known:
            out.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
        if not sep:
            if name.startswith("no-") or i >= len(args) or (
                    args[i].startswith("--") and args[i] != "--"):
                value = "false" if name.startswith("no-") else "true"
                name = name.removeprefix("no-")
            else:
                value = args[i]
                i += 1
        out += ["-c", f"{name}={value}"]
    return out


def _apply_remote(args: list[str]) -> list[str]:
    """``http DATA --host H --port P`` (or ``-c host=H``, ``--data D``) -> ``URL DATA``."""
    if not args or args[0] not in ("http", "rmq"):
        return args
    if args[0] == "rmq":
        from mlem_lib.errors import MlemError

        raise MlemError("MLEM's rmq client is not supported: serve the model with "
                        "`mlem serve` and use apply-remote with its URL")
    host, port, data = "127.0.0.1", "8080", None
    rest: list[str] = []
    i = 1
    while i < len(args):
        arg = args[i]
        i += 1
        name, sep, value = arg.partition("=")
        if name in ("-c", "--conf") and not sep and i < len(args):
            name, _, value = args[i].partition("=")
            i += 1
            name = "--" + name
        elif name in ("--host", "--port", "--data", "-d") and not sep and i < len(args):
            value = args[i]
            i += 1
        if name in ("--host",):
            host = value
        elif name == "--port":
            port = value
        elif name in ("--data", "-d"):
            data = value
        elif arg in ("--json", "-i", "--import"):
            continue
        elif arg in ("--it", "--import-type"):
            i += 1
        else:
            rest.append(arg)
    url = _url(host, port)
    positional = [data] if data else []
    return [url, *positional, *rest]


def _url(host: str, port: str) -> str:
    """``http://H:P`` from MLEM's host and port (80/443 left out, as MLEM did).

    Example:
        >>> _url("http://app.herokuapp.com", "80"), _url("0.0.0.0", "8080")
        ('http://app.herokuapp.com', 'http://0.0.0.0:8080')
    """
    from urllib.parse import urlsplit

    parts = urlsplit(host if "://" in host else f"http://{host}")
    netloc = parts.netloc
    default = {"http": "80", "https": "443"}.get(parts.scheme)
    if parts.port is None and port and str(port) != default:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def translate(argv: Sequence[str], parser: argparse.ArgumentParser | None = None
              ) -> list[str]:
    """MLEM's spelling of a command line, as ours (see the module docstring)."""
    args = list(argv)
    # the command is the first argument that is not a global option
    start = 0
    while start < len(args) and args[start].startswith("-"):
        start += 1
    if start >= len(args):
        return args
    head, cmd, rest = args[:start], args[start], args[start + 1:]
    if cmd in _ALIASES:
        cmd_path = _ALIASES[cmd]
    elif cmd == "deploy":
        sub = rest[0] if rest else ""
        cmd_path = ["deployment", _DEPLOY.get(sub, sub)] if rest else ["deployment"]
        rest = rest[1:]
    elif cmd == "deployment" and rest and not rest[0].startswith("-"):
        cmd_path = ["deployment", _DEPLOY.get(rest[0], rest[0])]
        rest = rest[1:]
    else:
        cmd_path = [cmd]
    if tuple(cmd_path) in _FIELD_COMMANDS:
        rest = _fields_to_conf(rest, _known_options(_subcommand_parser(parser, cmd_path)))
    elif cmd_path == ["apply-remote"]:
        rest = [a for a in _apply_remote(rest)]
        if "--json" in rest:
            rest.remove("--json")
    return [*head, *cmd_path, *rest]


@contextmanager
def model_in_project(model: str, project: str | None = None,
                     rev: str | None = None) -> Iterator[str]:
    """The local path of ``model`` inside MLEM's ``--project``/``--rev`` (a checkout when
    a git revision or repository is named); ``model`` itself without them.

    Example:
        >>> with model_in_project("models/rf") as path:
        ...     print(path)
        models/rf
    """
    if project is None and rev is None:
        yield model
        return
    import os

    from mlem_lib.compat.linkcheckout import followed_link
    from mlem_lib.compat.links import MlemLink

    path = model if model.endswith(".mlem") else model + ".mlem"
    link = MlemLink(path=path, project=project, rev=rev)
    with followed_link(link, os.path.join(os.getcwd(), "<command line>")) as found:
        yield found
