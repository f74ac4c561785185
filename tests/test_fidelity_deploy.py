"""Issue 13: ``mlem deployment run DECL --model M --port P --sample FILE`` overrides the
declaration for one run, and the smoke request sends the sample's rows."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import mlem_lib.api as mlem
from mlem_lib.cli import main
from tests._fixtures.fidelity import pipeline_frame
from tests.conftest import free_port


def _strict_model(tmp_path) -> str:
    """A model whose schema-built example fails: OneHotEncoder refuses the empty-string
    city the schema's example has, and no sample row is kept (``keep_example=False``)."""
    X, y = pipeline_frame()
    model = make_pipeline(ColumnTransformer([("onehot", OneHotEncoder(), ["city", "plan"])],
                                            remainder="passthrough"),
                          LogisticRegression()).fit(X, y)
    path = str(tmp_path / "models" / "strict")
    mlem.save(model, path, sample_data=X, keep_example=False)
    return path


def test_run_overrides_port_and_smoke_rows(declare, removed_after, tmp_path, capsys):
    model = _strict_model(tmp_path)
    X, _ = pipeline_frame()
    rows = tmp_path / "rows.csv"
    X.head(3).to_csv(rows, index=False)  # pandas' defaults, as a user writes it
    written_port = free_port()
    decl = removed_after(declare("fid", type="local", runtime="process", port=written_port))
    before = Path(decl).read_text()

    # the example built from the schema fails the smoke test: nothing is left deployed
    assert main(["deployment", "run", decl, "--model", model]) == 1
    assert "smoke" in capsys.readouterr().err.lower()

    port = free_port()
    assert main(["deployment", "run", decl, "--model", model, "--port", str(port),
                 "--sample", str(rows)]) == 0
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out
    r = httpx.post(f"http://127.0.0.1:{port}/predict", trust_env=False, timeout=30,
                   json={"data": {"values": X.head(3).to_dict(orient="records")}})
    assert r.status_code == 200, r.text
    assert Path(decl).read_text() == before  # the file is not changed
    assert yaml.safe_load(before)["port"] == written_port


def test_bad_overrides_are_one_line_errors(declare, tmp_path, capsys):
    model = _strict_model(tmp_path)
    decl = declare("bad", type="local", runtime="process", port=free_port())
    cases = [(["--set", "prot=9000"], "field 'prot'"),
             (["--port", "0"], "field 'port'"),
             (["--set", "novalue"], "--set FIELD=VALUE"),
             (["--sample", str(tmp_path / "missing.csv")], "missing.csv")]
    for extra, expected in cases:
        assert main(["deployment", "run", decl, "--model", model, *extra]) == 1, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and len(err.splitlines()) == 1, \
            (extra, err)


def test_api_overrides_smoke_data(declare, removed_after, tmp_path):
    model = _strict_model(tmp_path)
    X, _ = pipeline_frame()
    rows = tmp_path / "rows.jsonl"
    X.head(2).to_json(rows, orient="records", lines=True)
    decl = removed_after(declare("api", type="local", runtime="process", port=free_port()))
    state = mlem.deploy(decl, model, progress=False, overrides={"smoke_data": str(rows)})
    assert httpx.get(f"{state.url}/health", trust_env=False).status_code == 200
