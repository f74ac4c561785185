"""MLEM's other objects, as real MLEM 0.4.14 wrote them (tests/fixtures/mlem/project/):
links, deployments with their envs and state, builders."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

import mlem_lib.api as mlem
from mlem_lib.compat.links import write_link
from mlem_lib.deploy.declaration import load_declaration
from mlem_lib.errors import (
    DeclarationError,
    DeclarationWarning,
    MetadataError,
    ObjectNotFoundError,
)
from tests._fixtures.registry import git


def _rows(objects: dict) -> object:
    import pandas as pd

    return pd.read_csv(objects["new_data"])


# --- links ----------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["latest", "links/rf_link", "links/chain"])
def test_links_made_by_mlem_resolve_wherever_a_path_is_taken(mlem_project, mlem_objects,
                                                            link):
    expected = mlem_objects["links"][link]["predict_via_mlem"]
    model = mlem.load(link)
    assert model.predict(_rows(mlem_objects)).tolist() == expected
    assert mlem.load_meta(link).model_hash == mlem.load_meta("models/rf").model_hash
    assert mlem.apply(link, _rows(mlem_objects)).tolist() == expected
    assert mlem.apply(link, "data/new_data.csv").tolist() == expected  # file input too


def test_a_link_resolves_from_another_working_directory(mlem_project, mlem_objects,
                                                        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # project-relative paths, not cwd-relative
    assert mlem.load(str(mlem_project / "links" / "chain")).predict(
        _rows({"new_data": str(mlem_project / "data/new_data.csv")})).tolist() == \
        mlem_objects["expected_predict"]


def test_mlem_link_writes_what_real_mlem_reads(mlem_project, mlem_objects, cli, mlem_python):
    result = cli("link", "models/rf", "links/ours")
    assert result.code == 0, result.err
    written = yaml.safe_load((mlem_project / "links" / "ours.mlem").read_text())
    assert written == {"object_type": "link", "link_type": "model", "path": "models/rf.mlem"}
    code = ("import mlem.api, pandas as pd, json; "
            "m = mlem.api.load('links/ours'); "
            "print(json.dumps(m.predict(pd.read_csv('data/new_data.csv')).tolist()))")
    proc = subprocess.run([str(mlem_python), "-c", code], capture_output=True, text=True,
                          cwd=mlem_project, env={"MLEM_NO_ANALYTICS": "true",
                                                 "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == mlem_objects["expected_predict"]
    assert mlem.load("links/ours").predict(_rows(mlem_objects)).tolist() == \
        mlem_objects["expected_predict"]


def test_a_link_outside_a_project_is_relative_to_its_folder(tmp_path, saved_lr):
    link_path, link = write_link(saved_lr, str(tmp_path / "elsewhere" / "current"))
    assert not Path(link.path).is_absolute() and link.path.startswith("../")
    assert mlem.load_meta(str(tmp_path / "elsewhere" / "current")).model_hash == \
        mlem.load_meta(saved_lr).model_hash
    assert Path(link_path).name == "current.mlem"


def test_a_link_to_a_link_follows_it_unless_told_not_to(mlem_project):
    _, followed = write_link("latest", "again")
    _, kept = write_link("latest", "again_link", follow=False)
    assert followed.path == "models/rf.mlem" and kept.path == "latest.mlem"
    assert mlem.load_meta("again_link").model_hash == mlem.load_meta("models/rf").model_hash


def test_a_cycle_of_links_is_an_error_not_a_hang(tmp_path):
    (tmp_path / "a.mlem").write_text("object_type: link\npath: b.mlem\n")
    (tmp_path / "b.mlem").write_text("object_type: link\npath: a.mlem\n")
    with pytest.raises(MetadataError, match="cycle"):
        mlem.load_meta(str(tmp_path / "a"))


def test_a_broken_link_names_what_is_missing(tmp_path):
    (tmp_path / "gone.mlem").write_text("object_type: link\npath: models/nothing.mlem\n")
    with pytest.raises(ObjectNotFoundError, match="nothing"):
        mlem.load(str(tmp_path / "gone"))


def test_a_link_with_a_rev_reads_that_revision(hermetic_git, tmp_path, iris, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    X, y = iris
    mlem.save(LogisticRegression(max_iter=300, C=0.01).fit(X, y), str(repo / "models/lr"),
              sample_data=X)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    old = mlem.load_meta(str(repo / "models/lr")).model_hash
    mlem.save(LogisticRegression(max_iter=300, C=10).fit(X, y), str(repo / "models/lr"),
              sample_data=X)
    git(repo, "commit", "-q", "-am", "v2")
    (repo / "first.mlem").write_text("object_type: link\nlink_type: model\n"
                                     "path: models/lr.mlem\nrev: HEAD~1\n")
    (repo / "other.mlem").write_text(f"object_type: link\npath: models/lr.mlem\n"
                                     f"project: {repo}\nrev: HEAD~1\n")
    monkeypatch.chdir(tmp_path)
    assert mlem.load_meta(str(repo / "first")).model_hash == old
    assert mlem.load_meta(str(repo / "other")).model_hash == old
    assert mlem.load_meta(str(repo / "models/lr")).model_hash != old
    assert mlem.load(str(repo / "first")).predict(X.head(3)).shape == (3,)


# --- deployments and envs ----------------------------------------------------------------

def test_heroku_declaration_and_env_map_onto_the_heroku_target(mlem_project, mlem_objects):
    with pytest.warns(DeclarationWarning, match=r"stores an api_key \(in its env .*staging"):
        decl = load_declaration("heroku_app.mlem")
    assert decl.type == "heroku" and decl.name == "heroku_app"
    assert decl.app == mlem_objects["deployments"]["heroku_app"]["fields"]["app_name"]
    assert decl._stored_credentials == {
        "api_key": mlem_objects["deployments"]["heroku_app"]["env"]["api_key"]}
    with pytest.warns(DeclarationWarning, match="stores an api_key: it is used"):
        inline = load_declaration("heroku_inline.mlem")
    assert (inline.app, inline.region) == ("mlem-inline-app", "eu")


def test_a_stored_api_key_is_used_when_no_credentials_are_given(mlem_project, monkeypatch):
    from mlem_lib.deploy import open_deployment

    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    with pytest.warns(DeclarationWarning):
        opened = open_deployment("heroku_app.mlem", progress=False)
    assert opened.target.credentials.api_key.get_secret_value() == "mlem-test-pass"
    with pytest.warns(DeclarationWarning):
        explicit = open_deployment("heroku_app.mlem", credentials={"api_key": "from-block"},
                                   progress=False)
    assert explicit.target.credentials.api_key.get_secret_value() == "from-block"


def test_sagemaker_declaration_takes_region_role_and_profile_from_its_env(mlem_project,
                                                                          mlem_objects):
    from mlem_lib.deploy import open_deployment

    env = mlem_objects["deployments"]["sm_app"]["env"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing ignored, no secret stored
        opened = open_deployment("sm_app.mlem", progress=False)
    decl = opened.declaration
    assert decl.type == "sagemaker"
    assert (decl.region, decl.role_arn, decl.bucket, decl.ecr_repository) == (
        env["region"], env["role"], env["bucket"], env["ecr_repository"])
    assert decl.endpoint_name == "mlem-migrate-endpoint"
    assert decl.instance_type == "ml.m5.large"
    assert opened.target.credentials.profile_name == env["profile"]


def test_docker_container_declaration_maps_onto_a_local_container(mlem_project):
    with pytest.warns(DeclarationWarning, match="container_name"):
        decl = load_declaration("dc_app.mlem")
    assert (decl.type, decl.runtime, decl.port, decl.image) == (
        "local", "container", 8093, "mlem-migrate-img:v1")


def test_kubernetes_is_not_supported_yet_in_one_line(mlem_project, cli):
    with pytest.raises(DeclarationError, match="kubernetes deployments are not supported yet"):
        load_declaration("k8s_app.mlem")
    result = cli("deployment", "run", "k8s_app.mlem", "-m", "models/rf")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "not supported yet" in result.err


def test_mlem_objects_are_not_models(mlem_project):
    with pytest.raises(MetadataError, match=r"heroku_app\.mlem: this is a MLEM deployment"):
        mlem.load_meta("heroku_app")
    with pytest.raises(MetadataError, match=r"MLEM builder.*--load"):
        mlem.load_meta("build_pip")


def test_status_reads_the_state_mlem_left(mlem_project, mlem_objects, heroku_api, cli):
    heroku_api.seed_app(mlem_objects["app_name"], releases=1)  # the app MLEM deployed
    with open("heroku_app.mlem", "a") as f:  # where Heroku is, for the test double
        f.write(f"api_url: {heroku_api.url}\n")
    with pytest.warns(DeclarationWarning, match="heroku_app.mlem stores an api_key"):
        result = cli("deployment", "status", "heroku_app", "--json")
    status = json.loads(result.out)
    assert status["deployed"] is True  # from heroku_app.mlem.state
    assert status["model_hash"] == mlem.load_meta("models/rf").model_hash
    assert status["healthy"] is False and result.code == 1  # no dyno runs in the double
    (mlem_project / "heroku_app.mlem.state").unlink()
    with pytest.warns(DeclarationWarning):
        assert json.loads(cli("deployment", "status", "heroku_app", "--json").out
                          )["deployed"] is False


# --- builders ----------------------------------------------------------------------------

def test_build_load_runs_a_mlem_pip_builder(mlem_project, cli):
    result = cli("build", "--load", "build_pip.mlem", "models/rf")
    assert result.code == 0, result.err
    wheels = list((mlem_project / "build" / "pip").glob("iris_rf-*.whl"))
    assert len(wheels) == 1
    assert list((mlem_project / "build" / "pip").glob("iris_rf-*.tar.gz"))


def test_build_load_whl_builds_no_sdist_and_keeps_the_version(mlem_project, cli):
    result = cli("build", "-l", "build_whl", "--model", "models/rf")
    assert result.code == 0, result.err
    assert [p.name for p in (mlem_project / "build" / "whl").glob("iris_rf_whl-*")] == [
        "iris_rf_whl-1.0.0-py3-none-any.whl"]


def test_build_load_docker_dir_writes_the_context(mlem_project, cli):
    result = cli("build", "--load", "build_dir.mlem", "latest")  # through the link too
    assert result.code == 0, result.err
    assert (mlem_project / "build" / "docker" / "Dockerfile").is_file()


def test_a_builder_file_maps_image_name_and_tag(mlem_project):
    from mlem_lib.compat.builders import read_builder

    assert read_builder("build_docker.mlem") == ("docker", {"image": "mlem-migrate-img:v1"},
                                                 [])
    assert read_builder("build_dir.mlem") == ("docker-dir", {"target": "build/docker"}, [])
