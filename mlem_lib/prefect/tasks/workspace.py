"""The demo workspace: a git repository with DVC and a local DVC remote.

Creating it is idempotent: every step checks first, so ``ensure_workspace`` on an
existing workspace changes nothing.

Layout::

    demo-workspace/
        .git/  .dvc/  .gitignore
        .dvc-remote/   the local DVC remote (ignored by git)
        .deploy/       generated deployment declarations and their state (ignored)
        build/         pip packages (ignored)
        models/        saved models (metadata in git, binaries in DVC)

Example:
    >>> ensure_workspace.fn("/tmp/ws")  # doctest: +SKIP
    '/tmp/ws'
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.logs import run_logger

IGNORED = ["/.dvc-remote/", "/.deploy/", "/build/"]


def _run(cwd: str, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_TERMINAL_PROMPT="0")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        from mlem_lib.errors import RegistryError

        raise RegistryError(f"`{' '.join(args)}` failed in {cwd}: "
                            f"{(done.stderr or done.stdout).strip()[:500]}")
    return done.stdout.strip()


def _ensure_dvc(root: str, logger: Any) -> None:
    """``dvc init`` and a default local remote, through DVC's API (a CLI call costs ~1 s)."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    if not os.path.isdir(os.path.join(root, ".dvc")):
        Repo.init(root).close()
        logger.info("initialised DVC in %s", root)
    with Repo(root) as repo:
        config = repo.config.read("repo")
        if config.get("core", {}).get("remote"):
            return
        remote = os.path.join(root, ".dvc-remote")
        os.makedirs(remote, exist_ok=True)
        with repo.config.edit("repo") as conf:
            conf["core"]["remote"] = "local"
            conf["core"]["analytics"] = False
            conf["remote"]["local"] = {"url": remote}
    logger.info("DVC remote 'local' -> %s", remote)


def _git_identity(root: str) -> None:
    """Commits need an author; give the workspace one when git has none configured."""
    for key, value in (("user.email", "mlem-demo@localhost"), ("user.name", "mlem demo")):
        found = subprocess.run(["git", "config", key], cwd=root, capture_output=True,
                               text=True, check=False)
        if not found.stdout.strip():
            _run(root, "git", "config", key, value)


@task(cache_policy=NO_CACHE, task_run_name="ensure-workspace-{path}")
def ensure_workspace(path: str) -> str:
    """Create (or complete) a git + DVC workspace with a local DVC remote; return its path.

    Example:
        >>> ensure_workspace.fn("demo-workspace")  # doctest: +SKIP
        '/work/demo-workspace'
    """
    logger = run_logger()
    root = os.path.abspath(path)
    os.makedirs(root, exist_ok=True)
    if not os.path.isdir(os.path.join(root, ".git")):
        _run(root, "git", "init", "-q", "-b", "main")
        logger.info("created git repository %s", root)
    _git_identity(root)
    _ensure_dvc(root, logger)
    gitignore = os.path.join(root, ".gitignore")
    lines = Path(gitignore).read_text().splitlines() if os.path.exists(gitignore) else []
    missing = [entry for entry in IGNORED if entry not in lines]
    if missing:
        with open(gitignore, "a") as f:
            f.write("".join(f"{entry}\n" for entry in missing))
    tracked = [p for p in (".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvcignore")
               if os.path.exists(os.path.join(root, p))]
    _run(root, "git", "add", "--", *tracked)
    staged = _run(root, "git", "diff", "--cached", "--name-only")
    has_head = subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=root,
                              capture_output=True, check=False).returncode == 0
    if staged or not has_head:
        _run(root, "git", "commit", "-q", "--allow-empty", "-m", "Set up the model workspace")
        logger.info("committed the workspace set-up")
    return root

