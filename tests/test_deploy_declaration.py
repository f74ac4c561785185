"""Declarations: the shipped examples parse; bad input names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlem_lib.deploy.declaration import (
    DeclarationError,
    default_state_url,
    load_declaration,
    parse_declaration,
)
from mlem_lib.deploy.heroku import HerokuDeclaration
from mlem_lib.deploy.local import LocalDeclaration
from mlem_lib.deploy.sagemaker import SageMakerDeclaration
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(("file", "cls"), [("local.yaml", LocalDeclaration),
                                           ("heroku.yaml", HerokuDeclaration),
                                           ("sagemaker.yaml", SageMakerDeclaration)])
def test_shipped_examples_parse(file, cls):
    path = REPO_ROOT / "deployments" / file
    decl = load_declaration(str(path))
    assert isinstance(decl, cls)
    assert decl.name == Path(file).stem
    assert default_state_url(str(path), decl) == str(path.with_name(f"{decl.name}.state.json"))
    text = path.read_text().lower()
    assert "api_key:" not in text and "secret" not in text


def test_bad_field_is_named():
    with pytest.raises(DeclarationError, match="field 'port'"):
        parse_declaration({"type": "local", "port": 70000})
    with pytest.raises(DeclarationError, match="field 'role_arn'"):
        parse_declaration({"type": "sagemaker", "endpoint_name": "e", "bucket": "b"})
    with pytest.raises(DeclarationError, match=r"field 'api_key'.*[Ee]xtra"):
        parse_declaration({"type": "heroku", "app": "my-app", "api_key": "secret"})


def test_unknown_type_and_missing_file(tmp_path):
    with pytest.raises(DeclarationError,
                       match=r"field 'type': unknown deployment target 'kubernetes' "
                             r"\(known: heroku, local, sagemaker\)"):
        parse_declaration({"type": "kubernetes"})
    with pytest.raises(DeclarationError, match="field 'type' is required"):
        parse_declaration({"port": 8080})
    with pytest.raises(DeclarationError, match="no deployment declaration"):
        load_declaration(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: [local\n")
    with pytest.raises(DeclarationError, match="not valid YAML"):
        load_declaration(str(bad))


def test_name_and_state_url_from_the_file(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text("type: local\nname: iris-prod\nstate_url: memory://s/prod.json\n")
    decl = load_declaration(str(path))
    assert decl.name == "iris-prod"
    assert default_state_url(str(path), decl) == "memory://s/prod.json"
