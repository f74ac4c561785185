"""Passing the server's bearer token safely, and protecting the docs (issue 12, item 4)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

TOKEN = "file-s3cret-7f3a"


def rows(iris, n=2):
    return {"data": {"values": iris[0].head(n).to_dict("records")}}


def _token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def _argv_and_environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()


def test_token_file_keeps_the_token_out_of_ps(start_server, saved_lr, iris, tmp_path):
    server = start_server(saved_lr, "--auth-token-file", str(_token_file(tmp_path)))
    assert TOKEN.encode() not in _argv_and_environ(server.pid)
    assert httpx.post(f"{server.url}/predict", json=rows(iris)).status_code == 401
    r = httpx.post(f"{server.url}/predict", json=rows(iris),
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert "warning" not in server.output()


def test_token_file_named_by_the_environment(start_server, saved_lr, iris, tmp_path):
    server = start_server(saved_lr, env={"MLEM_AUTH_TOKEN_FILE": str(_token_file(tmp_path))})
    assert httpx.post(f"{server.url}/predict", json=rows(iris)).status_code == 401
    assert httpx.post(f"{server.url}/predict", json=rows(iris),
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_token_on_the_command_line_warns_that_ps_shows_it(start_server, saved_lr):
    server = start_server(saved_lr, "--auth-token", "visible")
    assert "ps" in server.output() and "--auth-token-file" in server.output()


def test_auth_docs_requires_the_token_on_docs_openapi_and_interface(start_server, saved_lr,
                                                                    iris, tmp_path):
    from mlem_lib.client import HTTPClient
    from mlem_lib.errors import ServeError

    server = start_server(saved_lr, "--auth-docs",
                          env={"MLEM_AUTH_TOKEN_FILE": str(_token_file(tmp_path))})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/docs", "/openapi.json", "/interface.json"):
        r = httpx.get(f"{server.url}{path}")
        assert r.status_code == 401, path
        assert r.json()["field"] == "Authorization"
        assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{server.url}{path}", headers={"Authorization": "Bearer wrong"}
                         ).status_code == 401
        assert httpx.get(f"{server.url}{path}", headers=auth).status_code == 200, path
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/ping").status_code == 200
    with HTTPClient(server.url, auth_token=TOKEN) as client:
        assert len(client.predict(iris[0].head(2))) == 2
    with pytest.raises(ServeError):
        HTTPClient(server.url)


def test_docs_stay_open_without_auth_docs(start_server, saved_lr):
    server = start_server(saved_lr, env={"MLEM_AUTH_TOKEN": TOKEN})
    for path in ("/docs", "/openapi.json", "/interface.json"):
        assert httpx.get(f"{server.url}{path}").status_code == 200


@pytest.mark.parametrize("content,message", [("", "is empty"), (None, "cannot read")])
def test_bad_token_file_is_one_line_error(saved_lr, tmp_path, content, message):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "serve", saved_lr, "--port",
                          "0", "--auth-token-file", str(path)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_local_deployment_server_gets_a_minimal_environment(declare, removed_after, saved_lr,
                                                            monkeypatch):
    """The deployer's secrets stay out of the server's /proc/<pid>/environ; variables
    the declaration names are passed."""
    from mlem_lib.deploy import deploy
    from tests.conftest import free_port

    monkeypatch.setenv("HEROKU_API_KEY", "heroku-secret-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-2")
    monkeypatch.setenv("MODEL_FEATURE_FLAG", "on")
    decl = removed_after(declare("envtest", type="local", runtime="process", port=free_port(),
                                 environment=["MODEL_FEATURE_FLAG"]))
    state = deploy(decl, saved_lr, progress=False)
    env = _environ(int(state.target["pid"]))
    assert "HEROKU_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert not {v for v in env.values() if "secret" in v}
    assert env["MODEL_FEATURE_FLAG"] == "on"
    assert env["PATH"] == os.environ["PATH"]


def test_declared_variable_that_is_not_set_is_a_clear_error(declare, saved_lr, monkeypatch):
    from mlem_lib.deploy import deploy
    from mlem_lib.errors import MlemError
    from tests.conftest import free_port

    monkeypatch.delenv("NOT_SET_ANYWHERE_H12", raising=False)
    decl = declare("envmissing", type="local", runtime="process", port=free_port(),
                   environment=["NOT_SET_ANYWHERE_H12"])
    with pytest.raises(MlemError, match="NOT_SET_ANYWHERE_H12"):
        deploy(decl, saved_lr, progress=False)
