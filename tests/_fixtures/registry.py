"""Fixtures for the registry tests (loaded by conftest.py).

Every git and DVC call is hermetic: a throw-away global git config (identity,
default branch), no system config, and DVC analytics off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def git(cwd: Path | str, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout (fails the test on errors)."""
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout


def dvc(cwd: Path | str, *args: str) -> str:
    """Run the venv's ``dvc`` command line in ``cwd``."""
    return subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def _hermetic_env(home: Path) -> dict[str, str]:
    config = home / ".gitconfig"
    config.write_text("[user]\n\tname = Registry Tester\n\temail = tester@example.com\n"
                      "[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n")
    return {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1",
            "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache")}


@pytest.fixture
def hermetic_git(tmp_path_factory, monkeypatch) -> Iterator[Path]:
    """A private global git config with an identity; no system config; no analytics."""
    if shutil.which("git") is None:
        pytest.fail("git is required for the registry tests")
    home = tmp_path_factory.mktemp("home")
    for var, value in _hermetic_env(home).items():
        monkeypatch.setenv(var, value)
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME",
                "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    # libgit2 (under GTO's tags) reads HOME once, when pygit2 is first imported: a test
    # that used the registry earlier in the session would leave its identity in place
    import pygit2

    paths, level = pygit2.settings.search_path, pygit2.enums.ConfigLevel.GLOBAL
    before = paths[level]
    paths[level] = str(home)
    yield home
    paths[level] = before


@pytest.fixture(scope="session")
def _template_repo(tmp_path_factory) -> Path:
    """``git init`` + ``dvc init`` + one commit, made once and copied by each test."""
    if shutil.which("git") is None:
        pytest.fail("git is required for the registry tests")
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    env = {**os.environ, **_hermetic_env(root.parent)}
    for args in (["git", "init", "-q"], [str(VENV_BIN / "dvc"), "init", "-q"]):
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True)
    (root / "README.md").write_text("models\n")
    for args in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "init"]):
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True)
    return root


@pytest.fixture
def bare_repo(tmp_path, hermetic_git, _template_repo) -> Path:
    """A git repository with one commit and DVC initialised, but no DVC remote."""
    root = tmp_path / "repo"
    shutil.copytree(_template_repo, root, symlinks=True)
    return root


@pytest.fixture
def registry_repo(bare_repo, tmp_path) -> Path:
    """A git + DVC repository with a local-directory default DVC remote, all committed."""
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    # what `dvc remote add -d local <remote>` writes, without a second-long dvc start-up
    (bare_repo / ".dvc" / "config").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {remote}\n")
    git(bare_repo, "add", "-A")
    git(bare_repo, "commit", "-q", "-m", "dvc remote")
    return bare_repo


@pytest.fixture
def save_model(iris, registry_repo):
    """Save a model into the registry repo: ``save_model(model, "models/rf", **kw)``."""
    import mlem_lib.api as mlem

    def _save(model, rel: str = "models/rf", **kwargs) -> str:
        path = registry_repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        mlem.save(model, str(path), sample_data=iris[0], **kwargs)
        return rel

    return _save


@pytest.fixture
def s3_registry_repo(bare_repo, monkeypatch, tmp_path) -> Iterator[tuple[Path, str]]:
    """(repository, S3 endpoint): the default DVC remote is ``s3://models/dvc`` on moto."""
    import boto3
    from moto.server import ThreadedMotoServer

    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")
                       }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
        (bare_repo / ".dvc" / "config").write_text(
            "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://models/dvc\n"
            f"    endpointurl = {endpoint}\n")
        git(bare_repo, "add", "-A")
        git(bare_repo, "commit", "-q", "-m", "s3 remote")
        yield bare_repo, endpoint
    finally:
        server.stop()
