"""The git-native registry: real git repositories, real DVC with a local remote, real gto."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import mlem_lib.api as mlem
from mlem_lib.errors import (
    DirtyWorkingTreeError,
    NoDvcRemoteError,
    RegistryError,
    UnknownModelError,
    VersionExistsError,
    VersionNotFoundError,
)
from mlem_lib.registry import parse_reference
from tests._fixtures.registry import VENV_BIN, dvc, git


def _lr(iris, c: float) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(C=c, max_iter=500).fit(X, y)


def _tags(repo: Path) -> list[str]:
    return git(repo, "tag", "--list").split()


def _gto(repo: Path, *args: str) -> str:
    return subprocess.run([str(VENV_BIN / "gto"), *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def test_register_commits_metadata_tracks_binary_with_dvc_and_tags(registry_repo, save_model,
                                                                   iris_lr, tmp_path):
    save_model(iris_lr, "models/rf", description="iris model", labels=["iris"])

    found = mlem.register("models/rf", repo=str(registry_repo))

    assert (found.name, found.version, found.tag) == ("rf", "v0.0.1", "rf@v0.0.1")
    assert found.commit == git(registry_repo, "rev-parse", "HEAD").strip()
    assert found.path == "models/rf"
    tracked = git(registry_repo, "ls-files").split()
    assert {"models/rf.mlem", "models/rf.dvc", "models/.gitignore"} <= set(tracked)
    assert "models/rf" not in tracked  # the binary is in DVC, not in git
    assert git(registry_repo, "cat-file", "-t", "rf@v0.0.1").strip() == "tag"  # annotated
    assert git(registry_repo, "status", "--porcelain").strip() == ""
    pushed = [p for p in (tmp_path / "dvc-remote").rglob("*") if p.is_file()]
    assert pushed, "the binary was not pushed to the DVC remote"
    # the result is plain data a Prefect flow can pass on
    assert json.loads(found.model_dump_json())["tag"] == "rf@v0.0.1"


def test_bumps_and_explicit_versions(registry_repo, save_model, iris):
    repo = str(registry_repo)
    versions = []
    for c, kwargs in [(1.0, {}), (0.5, {"bump": "minor"}), (0.25, {"bump": "major"}),
                      (0.1, {"bump": "patch"}), (0.05, {"version": "v2.3.4"}), (0.02, {})]:
        save_model(_lr(iris, c))
        versions.append(mlem.register("models/rf", repo=repo, **kwargs).version)
    assert versions == ["v0.0.1", "v0.1.0", "v1.0.0", "v1.0.1", "v2.3.4", "v2.3.5"]
    assert mlem.find_latest_version("rf", repo=repo) == "v2.3.5"
    assert {f"rf@{v}" for v in versions} <= set(_tags(registry_repo))


def test_first_registration_with_a_bump(registry_repo, save_model, iris_lr):
    save_model(iris_lr)
    assert mlem.register("models/rf", bump="minor", repo=str(registry_repo)).version == "v0.1.0"


def test_same_content_twice_is_already_registered(registry_repo, save_model, iris_lr, iris):
    repo = str(registry_repo)
    save_model(iris_lr)
    first = mlem.register("models/rf", version="v1.0.0", repo=repo)
    head = git(registry_repo, "rev-parse", "HEAD")

    with pytest.raises(VersionExistsError, match=r"already registered as v1\.0\.0"):
        mlem.register("models/rf", repo=repo)
    # rerunning the very same request is idempotent
    assert mlem.register("models/rf", version="v1.0.0", repo=repo) == first
    # the same content saved again (new file, same bytes) is still the same model
    save_model(iris_lr)
    with pytest.raises(VersionExistsError, match="already registered"):
        mlem.register("models/rf", bump="minor", repo=repo)
    # new content under an existing version number
    save_model(_lr(iris, 0.3))
    with pytest.raises(VersionExistsError, match=r"version v1\.0\.0 .* already registered"):
        mlem.register("models/rf", version="v1.0.0", repo=repo)
    assert git(registry_repo, "rev-parse", "HEAD") == head
    assert _tags(registry_repo) == ["rf@v1.0.0"]


def test_dirty_tree_is_refused_naming_the_files(registry_repo, save_model, iris_lr):
    save_model(iris_lr)
    (registry_repo / "README.md").write_text("changed\n")
    (registry_repo / "notes.txt").write_text("scratch\n")
    head = git(registry_repo, "rev-parse", "HEAD")

    with pytest.raises(DirtyWorkingTreeError) as err:
        mlem.register("models/rf", repo=str(registry_repo))

    listed = str(err.value).split(": ", 1)[1].split(";")[0].split(", ")
    assert sorted(listed) == ["README.md", "notes.txt"]  # the model's own files do not count
    assert git(registry_repo, "rev-parse", "HEAD") == head
    assert _tags(registry_repo) == []
    assert not (registry_repo / "models" / "rf.dvc").exists()


def test_no_dvc_remote_is_a_clear_error(bare_repo, iris, iris_lr):
    mlem.save(iris_lr, str(bare_repo / "rf"), sample_data=iris[0])
    head = git(bare_repo, "rev-parse", "HEAD")
    with pytest.raises(NoDvcRemoteError, match="dvc remote add"):
        mlem.register("rf", repo=str(bare_repo))
    assert git(bare_repo, "rev-parse", "HEAD") == head
    assert _tags(bare_repo) == []


def test_not_a_dvc_repository(tmp_path, hermetic_git, iris, iris_lr):
    root = tmp_path / "plain"
    root.mkdir()
    git(root, "init", "-q")
    mlem.save(iris_lr, str(root / "rf"), sample_data=iris[0])
    with pytest.raises(NoDvcRemoteError, match="dvc init"):
        mlem.register("rf", repo=str(root), push=False)


def test_not_a_git_repository(tmp_path, hermetic_git, iris, iris_lr):
    mlem.save(iris_lr, str(tmp_path / "rf"), sample_data=iris[0])
    with pytest.raises(RegistryError, match="not inside a git repository"):
        mlem.register("rf", repo=str(tmp_path))


def test_binary_already_in_git_moves_to_dvc(registry_repo, save_model, iris_lr):
    save_model(iris_lr)
    git(registry_repo, "add", "models")
    git(registry_repo, "commit", "-q", "-m", "model committed to git by hand")

    mlem.register("models/rf", repo=str(registry_repo))

    tracked = git(registry_repo, "ls-files").split()
    assert "models/rf" not in tracked and "models/rf.dvc" in tracked


def test_assign_reassign_and_rollback(registry_repo, save_model, iris):
    repo = str(registry_repo)
    save_model(_lr(iris, 1.0))
    mlem.register("models/rf", repo=repo)
    save_model(_lr(iris, 0.1))
    mlem.register("models/rf", repo=repo, bump="minor")
    assert mlem.find_stage_version("rf", "prod", repo=repo) is None

    first = mlem.assign("rf", "prod", version="v0.0.1", repo=repo)
    assert (first.version, first.stage, first.tag) == ("v0.0.1", "prod", "rf#prod#1")
    assert first.commit == git(registry_repo, "rev-list", "-n1", "rf@v0.0.1").strip()
    assert mlem.assign("rf", "prod", version="v0.0.1", repo=repo) == first  # idempotent
    assert len([t for t in _tags(registry_repo) if "#" in t]) == 1

    moved = mlem.assign("rf", "prod", repo=repo)  # default: the latest version
    assert moved.version == "v0.1.0"
    assert mlem.find_stage_version("rf", "prod", repo=repo) == "v0.1.0"

    back = mlem.assign("rf", "prod", version="v0.0.1", repo=repo)  # a rollback
    assert back.tag != first.tag
    assert mlem.find_stage_version("rf", "prod", repo=repo) == "v0.0.1"
    mlem.assign("rf", "staging", version="v0.1.0", repo=repo)
    # the gto CLI reads the same state
    state = json.loads(_gto(registry_repo, "show", "--json"))
    assert state["rf"]["version"] == "v0.1.0"
    assert state["rf"]["stage"] == {"prod": "v0.0.1", "staging": "v0.1.0"}


def test_list_models_and_history(registry_repo, save_model, iris):
    repo = str(registry_repo)
    save_model(_lr(iris, 1.0), "models/rf", description="iris classifier", labels=["iris"])
    mlem.register("models/rf", repo=repo)
    save_model(_lr(iris, 0.5), "other/lr")
    mlem.register("other/lr", repo=repo, version="v3.0.0")
    mlem.assign("rf", "prod", repo=repo)

    models = {m.name: m for m in mlem.list_models(repo)}

    assert set(models) == {"rf", "lr"}
    assert models["rf"].latest == "v0.0.1" and models["rf"].stages == {"prod": "v0.0.1"}
    assert models["rf"].description == "iris classifier" and models["rf"].labels == ["iris"]
    assert models["rf"].path == "models/rf"
    assert models["lr"].latest == "v3.0.0" and models["lr"].stages == {"prod": None}
    events = mlem.history("rf", repo)
    assert [(e.event, e.version, e.stage, e.tag) for e in events] == [
        ("assignment", "v0.0.1", "prod", "rf#prod#1"),
        ("registration", "v0.0.1", None, "rf@v0.0.1")]
    assert events[0].author == "Registry Tester"


@pytest.fixture
def two_versions(registry_repo, save_model, iris):
    """rf v0.0.1 (C=1, in prod) and v0.1.0 (C=0.01), then the working copy changed."""
    repo = str(registry_repo)
    old, new = _lr(iris, 1.0), _lr(iris, 0.01)
    save_model(old)
    mlem.register("models/rf", repo=repo)
    save_model(new)
    mlem.register("models/rf", repo=repo, bump="minor")
    mlem.assign("rf", "prod", version="v0.0.1", repo=repo)
    save_model(_lr(iris, 5.0))  # uncommitted work: loading by reference ignores it
    return old, new


def test_load_by_version_stage_and_latest(registry_repo, two_versions, iris):
    old, new = two_versions
    X = iris[0]
    repo = str(registry_repo)

    np.testing.assert_allclose(mlem.load("rf@v0.0.1", repo=repo).predict_proba(X),
                               old.predict_proba(X))
    np.testing.assert_allclose(mlem.load("rf#prod", repo=repo).predict_proba(X),
                               old.predict_proba(X))
    np.testing.assert_allclose(mlem.load("rf@latest", repo=repo).predict_proba(X),
                               new.predict_proba(X))
    assert mlem.load_meta("rf@latest", repo=repo).model_type.type.startswith("sklearn")


def test_load_from_a_fresh_clone_after_dvc_push(registry_repo, two_versions, iris, tmp_path):
    old, new = two_versions
    X = iris[0]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(registry_repo), str(clone))
    shutil.rmtree(registry_repo / ".dvc" / "cache")  # only the DVC remote has the binaries

    np.testing.assert_allclose(mlem.load("rf#prod", repo=str(clone)).predict_proba(X),
                               old.predict_proba(X))
    # a repository given as a URL is cloned on the fly
    np.testing.assert_allclose(
        mlem.load("rf@v0.1.0", repo=f"file://{registry_repo}").predict_proba(X),
        new.predict_proba(X))


def test_unknown_model_version_and_stage(registry_repo, two_versions):
    repo = str(registry_repo)
    with pytest.raises(UnknownModelError, match="'nope'"):
        mlem.load("nope@latest", repo=repo)
    with pytest.raises(UnknownModelError):
        mlem.assign("nope", "prod", repo=repo)
    with pytest.raises(UnknownModelError):
        mlem.history("nope", repo=repo)
    with pytest.raises(UnknownModelError):
        mlem.find_stage_version("nope", "prod", repo=repo)
    with pytest.raises(VersionNotFoundError, match=r"no version v9\.9\.9"):
        mlem.load("rf@v9.9.9", repo=repo)
    with pytest.raises(VersionNotFoundError, match=r"no version v9\.9\.9"):
        mlem.assign("rf", "prod", version="v9.9.9", repo=repo)
    with pytest.raises(VersionNotFoundError, match="stage 'dev'"):
        mlem.load("rf#dev", repo=repo)
    with pytest.raises(RegistryError, match="not valid"):
        mlem.register("models/rf", version="1.2", repo=repo)
    with pytest.raises(RegistryError, match="either version or bump"):
        mlem.register("models/rf", version="v5.0.0", bump="minor", repo=repo)
    assert issubclass(UnknownModelError, VersionNotFoundError)


def test_parse_reference():
    assert parse_reference("rf@v1.2.0") == ("rf", "v1.2.0", None)
    assert parse_reference("rf@latest") == ("rf", "latest", None)
    assert parse_reference("rf#prod") == ("rf", None, "prod")
    with pytest.raises(RegistryError, match="not a registry reference"):
        parse_reference("rf@")


def test_gto_cli_tags_are_read_and_ours_are_read_by_it(registry_repo, save_model, iris):
    repo = str(registry_repo)
    old = _lr(iris, 1.0)
    save_model(old)
    ours = mlem.register("models/rf", repo=repo)
    # a version and a stage made with the gto CLI on a commit made by hand
    save_model(_lr(iris, 0.2))
    dvc(registry_repo, "add", "-q", "models/rf")
    git(registry_repo, "add", "models")
    git(registry_repo, "commit", "-q", "-m", "retrain by hand")
    _gto(registry_repo, "register", "rf", "HEAD", "--version", "v0.5.0")
    _gto(registry_repo, "assign", "rf", "--version", "v0.5.0", "--stage", "staging")
    dvc(registry_repo, "push", "-q")

    assert mlem.find_latest_version("rf", repo=repo) == "v0.5.0"
    assert mlem.find_stage_version("rf", "staging", repo=repo) == "v0.5.0"
    staged = mlem.load("rf#staging", repo=repo)
    assert staged.predict(iris[0]).shape == (len(iris[0]),)

    # and gto reads ours
    mlem.assign("rf", "prod", version=ours.version, repo=repo)
    versions = json.loads(_gto(registry_repo, "show", "rf", "--json"))
    assert {v["version"] for v in versions} == {"v0.0.1", "v0.5.0"}
    assert "rf@v0.0.1" in _gto(registry_repo, "show", "rf#prod", "--ref")
    np.testing.assert_allclose(mlem.load("rf#prod", repo=repo).predict_proba(iris[0]),
                               old.predict_proba(iris[0]))


def test_s3_remote_register_and_load_from_a_fresh_clone(s3_registry_repo, iris, tmp_path):
    import boto3

    s3_registry_repo, endpoint = s3_registry_repo
    repo = str(s3_registry_repo)
    model = _lr(iris, 0.7)
    mlem.save(model, str(s3_registry_repo / "rf"), sample_data=iris[0])
    found = mlem.register("rf", repo=repo)
    mlem.assign("rf", "prod", repo=repo)

    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="models")
    assert listed.get("KeyCount", 0) >= 1  # the binary went to S3
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", repo, str(clone))
    shutil.rmtree(s3_registry_repo / ".dvc" / "cache")
    loaded = mlem.load("rf#prod", repo=str(clone))
    np.testing.assert_allclose(loaded.predict_proba(iris[0]), model.predict_proba(iris[0]))
    assert found.version == "v0.0.1"
