"""Registry operations with a bare remote and two clones: --push, unassign, deregister,
deprecate, versions lower than the latest, repo= as a bare path or URL, and who did what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import mlem_lib.api as mlem
from mlem_lib.cli import main
from mlem_lib.errors import RegistryError, VersionNotFoundError
from mlem_lib.registry import resolve_version
from tests._fixtures.registry import git


@pytest.fixture
def shared(registry_repo, tmp_path) -> dict[str, Path]:
    """``origin`` (bare), ``one`` (the registry_repo work tree, pushing to origin) and
    ``two`` (a second clone, by another person)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(registry_repo, "remote", "add", "origin", str(origin))
    git(registry_repo, "push", "-q", "-u", "origin", "main")
    two = tmp_path / "two"
    git(tmp_path, "clone", "-q", str(origin), str(two))
    git(two, "config", "user.name", "Second Person")
    git(two, "config", "user.email", "second@example.com")
    return {"origin": origin, "one": registry_repo, "two": two}


def _lr(iris, c: float) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(C=c, max_iter=300).fit(X, y)


def _remote_tags(origin: Path) -> list[str]:
    return sorted(git(origin, "tag").split())


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_and_assign_push_to_the_remote_and_a_second_clone_loads_it(
        shared, save_model, iris, capsys):
    one, two, origin = shared["one"], shared["two"], shared["origin"]
    save_model(_lr(iris, 1.0))
    code, out, err = _cli(capsys, "registry", "register", "models/rf", "--version", "v1.0.0",
                          "--push", "--repo", str(one))
    assert code == 0, err
    assert "pushed" in out
    assert _remote_tags(origin) == ["rf@v1.0.0"]
    assert git(origin, "rev-parse", "main").strip() == git(one, "rev-parse", "HEAD").strip()

    # without --push the stage stays local; with it, it reaches the remote
    assert _cli(capsys, "registry", "assign", "rf", "--stage", "staging", "--repo",
                str(one))[0] == 0
    assert _remote_tags(origin) == ["rf@v1.0.0"]
    code, _, err = _cli(capsys, "registry", "assign", "rf", "--stage", "prod", "--push",
                        "--repo", str(one))
    assert code == 0, err
    assert _remote_tags(origin) == ["rf#prod#2", "rf@v1.0.0"]

    # the second clone pulls and loads the version (binary from the DVC remote)
    git(two, "pull", "-q", "--tags", "origin", "main")
    assert mlem.find_stage_version("rf", "prod", repo=str(two)) == "v1.0.0"
    X, _ = iris
    model = mlem.load("rf#prod", repo=str(two))
    assert model.predict(X.head(3)).tolist() == _lr(iris, 1.0).predict(X.head(3)).tolist()


def test_repo_may_be_a_bare_repository_or_a_file_url(shared, save_model, iris, capsys):
    one, origin = shared["one"], shared["origin"]
    save_model(_lr(iris, 1.0))
    mlem.register("models/rf", version="v1.0.0", repo=str(one), push_git=True)
    for repo in (str(origin), origin.as_uri()):
        assert [m.name for m in mlem.list_models(repo)] == ["rf"]
        assert mlem.find_latest_version("rf", repo=repo) == "v1.0.0"
    code, out, err = _cli(capsys, "registry", "show", "--repo", str(origin), "--json")
    assert code == 0, err
    assert json.loads(out)[0]["latest"] == "v1.0.0"
    # a write through a bare repository is made in a clone and pushed there
    found = mlem.assign("rf", "prod", repo=str(origin))
    assert found.tag in _remote_tags(origin)
    assert mlem.find_stage_version("rf", "prod", repo=str(origin)) == "v1.0.0"
    # load through a bare repository: .mlem from git, binary from the DVC remote
    X, _ = iris
    assert mlem.load("rf#prod", repo=str(origin)).predict(X.head(2)).shape == (2,)


def test_push_without_a_remote_fails_before_anything_is_committed(registry_repo, save_model,
                                                                  iris, capsys):
    save_model(_lr(iris, 1.0))
    head = git(registry_repo, "rev-parse", "HEAD")
    code, _, err = _cli(capsys, "registry", "register", "models/rf", "--push", "--repo",
                        str(registry_repo))
    assert code == 1
    assert "no git remote 'origin'" in err and err.count("\n") == 1
    assert git(registry_repo, "rev-parse", "HEAD") == head
    assert git(registry_repo, "tag") == ""


def test_a_version_lower_than_the_latest_needs_force(registry_repo, save_model, iris, capsys):
    save_model(_lr(iris, 1.0))
    mlem.register("models/rf", version="v2.0.0", repo=str(registry_repo))
    save_model(_lr(iris, 0.5))
    with pytest.raises(RegistryError, match=r"lower than the latest, v2\.0\.0"):
        mlem.register("models/rf", version="v1.5.0", repo=str(registry_repo))
    assert git(registry_repo, "status", "--porcelain").strip()  # nothing was committed
    code, _, err = _cli(capsys, "registry", "register", "models/rf", "--version", "v1.5.0",
                        "--force", "--repo", str(registry_repo))
    assert code == 0, err
    assert mlem.find_latest_version("rf", repo=str(registry_repo)) == "v2.0.0"
    assert resolve_version("rf@v1.5.0", repo=str(registry_repo)).tag == "rf@v1.5.0"


def test_unassign_deregister_deprecate_and_who_did_it(shared, save_model, iris, capsys):
    one, two = shared["one"], shared["two"]
    save_model(_lr(iris, 1.0))
    mlem.register("models/rf", version="v1.0.0", repo=str(one), push_git=True)
    save_model(_lr(iris, 0.5))
    mlem.register("models/rf", version="v1.1.0", repo=str(one), push_git=True)
    mlem.assign("rf", "prod", version="v1.1.0", repo=str(one), push=True)

    # the second person works in their clone and pushes
    git(two, "pull", "-q", "--tags", "origin", "main")
    code, out, err = _cli(capsys, "registry", "unassign", "rf", "--stage", "prod", "--push",
                          "--repo", str(two))
    assert code == 0, err
    assert "left stage prod" in out
    assert mlem.find_stage_version("rf", "prod", repo=str(two)) is None
    with pytest.raises(VersionNotFoundError, match="nothing to unassign"):
        mlem.unassign("rf", "prod", repo=str(two))
    code, _, err = _cli(capsys, "registry", "deregister", "rf@v1.1.0", "--push", "--repo",
                        str(two))
    assert code == 0, err
    assert mlem.find_latest_version("rf", repo=str(two)) == "v1.0.0"
    assert resolve_version("rf@latest", repo=str(two)).version == "v1.0.0"
    with pytest.raises(VersionNotFoundError):
        mlem.deregister("rf", "v1.1.0", repo=str(two))

    # the first person fetches: the history names both, newest first
    git(one, "fetch", "-q", "--tags", "origin")
    events = mlem.history("rf", repo=str(one))
    assert [(e.event, e.version, e.author_email) for e in events] == [
        ("deregistration", "v1.1.0", "second@example.com"),
        ("unassignment", "v1.1.0", "second@example.com"),
        ("assignment", "v1.1.0", "tester@example.com"),
        ("registration", "v1.1.0", "tester@example.com"),
        ("registration", "v1.0.0", "tester@example.com")]
    code, out, _ = _cli(capsys, "registry", "history", "rf", "--repo", str(one))
    assert "Second Person <second@example.com>" in out
    assert "Registry Tester <tester@example.com>" in out

    code, out, err = _cli(capsys, "registry", "deprecate", "rf", "--repo", str(one))
    assert code == 0, err
    assert "rf is deprecated (tag rf@deprecated)" in out
    assert mlem.list_models(str(one)) == []
    assert mlem.history("rf", repo=str(one))[0].event == "deprecation"
    code, _, err = _cli(capsys, "registry", "deprecate", "rf", "--repo", str(one))
    assert code == 1 and "deprecated already" in err


def test_deregister_needs_a_version(registry_repo, capsys):
    code, _, err = _cli(capsys, "registry", "deregister", "rf", "--repo", str(registry_repo))
    assert code == 1 and "NAME@VERSION" in err


def test_history_lists_the_rollouts_deployments_recorded(registry_repo, save_model, iris,
                                                         removed_after, capsys):
    import getpass

    import yaml

    from tests.conftest import free_port

    save_model(_lr(iris, 1.0))
    mlem.register("models/rf", version="v1.0.0", repo=str(registry_repo))
    decl = registry_repo / "deployments" / "local.yaml"
    decl.parent.mkdir()
    decl.write_text(yaml.safe_dump({"type": "local", "runtime": "process",
                                    "port": free_port()}))
    removed_after(str(decl))
    state = mlem.deploy(str(decl), "rf@v1.0.0", repo=str(registry_repo))
    events = mlem.history("rf", repo=str(registry_repo))
    assert [(e.event, e.version) for e in events] == [("rollout", "v1.0.0"),
                                                      ("registration", "v1.0.0")]
    assert events[0].author and events[0].author.startswith(getpass.getuser() + "@")
    assert events[0].message and state.model_hash[:12] in events[0].message
    code, out, _ = _cli(capsys, "registry", "history", "rf", "--repo", str(registry_repo))
    assert code == 0 and "rollout" in out
