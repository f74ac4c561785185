"""MLEM's command lines, as its documentation (mlem.ai, 0.2 to 0.4) gives them, against our
CLI in a MLEM project made by real MLEM 0.4.14; plus import, ls and checkenv."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml

import mlem_lib.api as mlem
from mlem_lib.compat.cli import translate
from tests.conftest import free_port


def _csv_predictions(objects: dict) -> list[int]:
    return list(objects["expected_predict"])


# --- apply -----------------------------------------------------------------------------

def test_apply_with_mlem_import_flags_and_a_data_object_output(mlem_project, mlem_objects,
                                                               cli):
    # mlem.ai: mlem apply models/rf new_data.csv -i --it pandas[csv] -o prediction
    result = cli("apply", "models/rf", "data/new_data.csv", "-i", "--it", "pandas[csv]",
                 "-o", "prediction")
    assert result.code == 0, result.err
    assert mlem.load("prediction").tolist() == _csv_predictions(mlem_objects)
    assert yaml.safe_load((mlem_project / "prediction.mlem").read_text())["object_type"] \
        == "data"


def test_apply_json_method_and_batch_size_spellings(mlem_project, mlem_objects, cli):
    # mlem.ai: mlem apply mymodel data.csv --method predict --import --import-type pandas[csv]
    result = cli("apply", "latest", "data/new_data.csv", "--method", "predict", "--import",
                 "--import-type", "pandas[csv]", "--json", "-b", "2")
    assert result.code == 0, result.err
    assert json.loads(result.out) == _csv_predictions(mlem_objects)


def test_apply_with_a_project(mlem_project, mlem_objects, cli, tmp_path, monkeypatch):
    # mlem.ai: mlem apply rf --project https://github.com/... --rev main (a local one here)
    monkeypatch.chdir(tmp_path)
    result = cli("apply", "models/rf", str(mlem_project / "data/new_data.csv"), "--project",
                 str(mlem_project))
    assert result.code == 0, result.err
    assert json.loads(result.out) == _csv_predictions(mlem_objects)


# --- build -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    # 0.4: mlem build pip --package_name example_mlem_get_started --target build/ --model ...
    ["build", "pip", "--package_name", "example_mlem_get_started", "--target", "build/",
     "--model", "models/rf"],
    # 0.2: mlem build rf pip -c target=build/ -c package_name=example_mlem_get_started
    ["build", "models/rf", "pip", "-c", "target=build/", "-c",
     "package_name=example_mlem_get_started"],
    # 0.4: mlem build --load my_pip_config --model rf (with -c overriding the file)
    ["build", "--load", "build_pip", "--model", "models/rf", "-c", "target=build/",
     "-c", "package_name=example_mlem_get_started"],
])
def test_build_pip_in_mlem_spellings(mlem_project, cli, argv):
    result = cli(*argv)
    assert result.code == 0, result.err
    assert len(list((mlem_project / "build").glob("example_mlem_get_started-*.whl"))) == 1


def test_build_docker_dir_with_mlem_server_option(mlem_project, cli):
    # mlem.ai: mlem build docker_dir --model models/rf --server fastapi --target build
    result = cli("build", "docker_dir", "--model", "models/rf", "--server", "fastapi",
                 "--target", "build")
    assert result.code == 0, result.err
    assert (mlem_project / "build" / "Dockerfile").is_file()


def test_build_refuses_what_it_cannot_build_in_one_line(mlem_project, cli):
    streamlit = cli("build", "docker_dir", "--model", "models/rf", "--server", "streamlit",
                    "--target", "build")
    assert streamlit.code == 1 and "streamlit" in streamlit.err
    assert streamlit.err.count("\n") == 1
    conda = cli("build", "conda", "--model", "models/rf", "--target", "newenv")
    assert conda.code == 1 and "conda builder is not supported" in conda.err
    typo = cli("build", "models/rf", "pip", "-c", "packge_name=x")
    assert typo.code == 1 and "packge_name" in typo.err


def test_docker_build_options_map_from_mlem_names():
    from mlem_lib.compat.builders import to_build_options

    # mlem.ai: mlem build mymodel docker --conf server.type=fastapi --conf image.name=myimage
    assert to_build_options("docker", {"server.type": "fastapi", "image.name": "myimage"}) \
        == ("docker", {"image": "myimage:latest"}, [])
    _kind, options, ignored = to_build_options("docker", {
        "image.name": "iris", "image.tag": "1", "registry.host": "127.0.0.1:5000",
        "args.python_version": "3.11", "args.run_cmd": "x"})
    assert options == {"image": "iris:1", "push": "127.0.0.1:5000", "python_version": "3.11"}
    assert ignored == ["args.run_cmd"]


# --- serve -----------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["0.2", "0.4"])
def test_serve_in_mlem_spellings(mlem_project, mlem_objects, start_server, style):
    import httpx

    port = free_port()
    argv = {"0.2": ["serve", str(mlem_project / "latest"), "fastapi", "-c", "host=127.0.0.1",
                    "-c", f"port={port}"],
            "0.4": ["serve", "fastapi", "--model", str(mlem_project / "models/rf"), "--host",
                    "127.0.0.1", "--port", str(port)]}[style]
    server = start_server(argv=[str(Path(sys.executable).parent / "mlem"), *argv], port=port)
    rows = json.loads(_frame_json(mlem_project / "data/new_data.csv"))
    r = httpx.post(f"{server.url}/predict", json={"data": {"values": rows}}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == _csv_predictions(mlem_objects)
    assert "predict" in httpx.get(f"{server.url}/interface.json").json()["methods"]
    # mlem.ai: mlem apply-remote http test_x.csv --json --host="0.0.0.0" --port=8080
    from mlem_lib.cli import main

    assert main(["apply-remote", "http", str(mlem_project / "data/new_data.csv"), "--json",
                 "--host=127.0.0.1", f"--port={port}", "-o",
                 str(mlem_project / "remote.csv")]) == 0
    assert (mlem_project / "remote.csv").read_text().split()[1:] == [
        str(v) for v in _csv_predictions(mlem_objects)]


def _frame_json(path: Path) -> str:
    import pandas as pd

    return str(pd.read_csv(path).to_json(orient="records"))


def test_serve_refuses_other_mlem_servers(mlem_project, cli):
    result = cli("serve", "models/rf", "streamlit")
    assert result.code == 1 and "streamlit server is not supported" in result.err
    bad = cli("serve", "models/rf", "fastapi", "-c", "colour=blue")
    assert bad.code == 1 and "-c colour" in bad.err


# --- deployment ------------------------------------------------------------------------

def test_deployment_run_creates_the_declaration_as_mlem_does(mlem_project, cli):
    # MLEM 0.2: mlem deployment run NAME -m MODEL -t ENV -c app_name=...; nowhere to deploy
    # to here (no Heroku), so the rollout fails after the declaration is written
    result = cli("deployment", "run", "myservice", "-m", "models/rf", "-t", "staging", "-c",
                 "app_name=example-mlem-get-started", "-c", "api_url=http://127.0.0.1:9")
    created = yaml.safe_load((mlem_project / "myservice.mlem").read_text())
    assert created == {"object_type": "deployment", "type": "heroku", "env": "staging",
                       "app_name": "example-mlem-get-started",
                       "api_url": "http://127.0.0.1:9"}
    assert result.code == 1 and "127.0.0.1:9" in result.err  # tried the declared API
    # a rerun with other fields refuses to change the file silently
    again = cli("deployment", "run", "myservice", "-m", "models/rf", "-c", "app_name=other")
    assert again.code == 1 and "--force" in again.err


def test_deployment_run_type_name_with_field_options(mlem_project, cli):
    # 0.4: mlem deployment run heroku app --model models/rf --app_name=example-mlem-...-app
    cli("deployment", "run", "heroku", "app", "--model", "models/rf",
        "--app_name=example-mlem-get-started-app", "--api_url", "http://127.0.0.1:9")
    created = yaml.safe_load((mlem_project / "app.mlem").read_text())
    assert created["type"] == "heroku" and created["app_name"] == \
        "example-mlem-get-started-app"


@pytest.mark.parametrize("argv, expected", [
    (["deploy", "create", "service_name", "-m", "model", "-t", "staging", "-c",
      "name=my_service"], ["deployment", "run", "service_name", "-m", "model", "-t",
                           "staging", "-c", "name=my_service"]),
    (["deploy", "teardown", "myservice"], ["deployment", "remove", "myservice"]),
    (["deploy", "status", "service_name"], ["deployment", "status", "service_name"]),
    (["pprint", "rf"], ["show", "rf"]),
    (["create", "env", "heroku", "staging", "-c", "api_key=..."],
     ["declare", "env", "heroku", "staging", "-c", "api_key=..."]),
    (["apply-remote", "http", "-d", "test_x.csv",
      "--host=http://example-mlem-get-started-app.herokuapp.com", "--port=80", "--json"],
     ["apply-remote", "http://example-mlem-get-started-app.herokuapp.com", "test_x.csv"]),
    (["apply-remote", "http", "mydataset", "--conf", "host=127.0.0.1", "--conf", "port=3000",
      "--output", "myprediction"],
     ["apply-remote", "http://127.0.0.1:3000", "mydataset", "--output", "myprediction"]),
])
def test_mlem_command_names_and_client_options(argv, expected):
    assert translate(argv) == expected


def test_deployment_status_and_remove_take_a_name_without_mlem(mlem_project, cli):
    result = cli("deployment", "status", "k8s_app")  # NAME means NAME.mlem
    assert result.code == 1 and "not supported yet" in result.err
    missing = cli("deployment", "status", "--load", "no_such_app")
    assert missing.code == 1 and "no deployment declaration at no_such_app" in missing.err


# --- declare, link, pprint -------------------------------------------------------------

def test_declare_writes_files_mlem_and_we_read(mlem_project, cli):
    # mlem.ai: mlem declare env heroku staging --api_key=...
    assert cli("declare", "env", "heroku", "prod", "--api_key=xyz").code == 0
    # mlem.ai: mlem declare deployment heroku app --app_name=... --env=staging
    assert cli("declare", "deployment", "heroku", "svc", "--app_name=my-svc-app",
               "--env=prod").code == 0
    # mlem.ai: mlem declare builder pip build-to-pip --package_name=mypackagename --target=package
    assert cli("declare", "builder", "pip", "build-to-pip", "--package_name=mypackagename",
               "--target=package").code == 0
    # mlem.ai: mlem declare builder docker docker_builder.mlem --image.name mlem-model
    #          --daemon.host "" --server fastapi
    assert cli("declare", "builder", "docker", "docker_builder.mlem", "--image.name",
               "mlem-model", "--daemon.host", "", "--server", "fastapi").code == 0
    assert yaml.safe_load(Path("prod.mlem").read_text()) == {
        "object_type": "env", "type": "heroku", "api_key": "xyz"}
    assert yaml.safe_load(Path("docker_builder.mlem").read_text())["image"] == {
        "name": "mlem-model"}
    from mlem_lib.compat.builders import read_builder
    from mlem_lib.deploy.declaration import load_declaration

    with pytest.warns(UserWarning, match="api_key"):
        assert load_declaration("svc.mlem").app == "my-svc-app"
    assert read_builder("build-to-pip") == ("pip", {"package_name": "mypackagename",
                                                    "target": "package"}, [])
    assert read_builder("docker_builder")[:2] == ("docker", {"image": "mlem-model:latest"})


def test_pprint_is_show(mlem_project, cli):
    result = cli("pprint", "latest")
    assert result.code == 0 and "sklearn" in result.out and "predict_proba" in result.out


# --- import ----------------------------------------------------------------------------

def test_import_a_pickle_with_a_sample(mlem_project, cli, iris_rf, iris, tmp_path):
    X, _ = iris
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(iris_rf))
    X.head(20).to_csv(tmp_path / "sample.csv", index=False)
    # mlem.ai: mlem import data/model.pkl data/imported_model
    result = cli("import", str(tmp_path / "model.pkl"), "imported/rf", "--sample",
                 str(tmp_path / "sample.csv"))
    assert result.code == 0, result.err
    meta = mlem.load_meta("imported/rf")
    assert meta.model_type.type == "sklearn"
    assert list(meta.method("predict").args[0].type_.columns) == list(X.columns)
    assert mlem.apply("imported/rf", X.head(5)).tolist() == iris_rf.predict(X.head(5)).tolist()


def test_import_joblib_and_mlem_type_pickle(mlem_project, cli, iris_lr, iris, tmp_path):
    import joblib

    X, _ = iris
    joblib.dump(iris_lr, tmp_path / "lr.joblib")
    assert cli("import", str(tmp_path / "lr.joblib"), "imported/lr").code == 0
    assert mlem.load("imported/lr").predict(X.head(3)).tolist() == \
        iris_lr.predict(X.head(3)).tolist()
    (tmp_path / "blob").write_bytes(pickle.dumps(iris_lr))  # no suffix: --type pickle
    assert cli("import", str(tmp_path / "blob"), "imported/lr2", "--type", "pickle").code == 0
    assert mlem.load_meta("imported/lr2").model_type.type == "sklearn"


def test_import_data_and_native_booster_files(mlem_project, cli, iris, tmp_path):
    import lightgbm
    import numpy as np

    X, y = iris
    # mlem.ai: mlem import data/data.csv data/imported_data --type pandas[csv]
    assert cli("import", "data/new_data.csv", "data/imported_data", "--type",
               "pandas[csv]").code == 0
    assert mlem.load("data/imported_data").shape == (4, 4)
    booster = lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                             lightgbm.Dataset(X.to_numpy(), y.to_numpy()), num_boost_round=3)
    booster.save_model(str(tmp_path / "model.txt"))
    np.save(tmp_path / "sample.npy", X.to_numpy()[:10])
    result = cli("import", str(tmp_path / "model.txt"), "imported/gbm", "--type", "lightgbm",
                 "--sample", str(tmp_path / "sample.npy"))
    assert result.code == 0, result.err
    assert np.allclose(mlem.apply("imported/gbm", X.to_numpy()[:5]),
                       booster.predict(X.to_numpy()[:5]))


def test_import_errors_are_one_line(mlem_project, cli, tmp_path):
    (tmp_path / "x.weird").write_bytes(b"?")
    unknown = cli("import", str(tmp_path / "x.weird"), "out")
    assert unknown.code == 1 and "cannot tell how to read" in unknown.err
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    not_model = cli("import", str(tmp_path / "list.pkl"), "out")
    assert not_model.code == 1 and "holds a list" in not_model.err
    assert cli("import", str(tmp_path / "none.pkl"), "out").code == 1
    listed = cli("import", "--list")
    assert ".pkl\tpickle" in listed.out and ".ubj\txgboost" in listed.out


# --- ls, search, checkenv ----------------------------------------------------------------

def test_ls_lists_models_and_data_with_search(mlem_project, cli, saved_lr):
    mlem.save(mlem.load(saved_lr), "models/tagged", description="a churn model",
              labels=["churn", "prod"])
    listed = json.loads(cli("ls", "--json").out)
    assert [(e["name"], e["object_type"], e["framework"]) for e in listed] == [
        ("data/iris_sample", "data", "dataframe"), ("models/rf", "model", "sklearn"),
        ("models/tagged", "model", "sklearn")]
    assert listed[1]["methods"] == ["predict", "predict_proba"]
    by_label = json.loads(cli("ls", "--label", "churn", "--label", "prod", "--json").out)
    assert [e["name"] for e in by_label] == ["models/tagged"]
    assert json.loads(cli("ls", "--label", "churn", "--label", "dev", "--json").out) == []
    assert [e["name"] for e in json.loads(cli("ls", "--query", "CHURN", "--json").out)] == [
        "models/tagged"]
    assert [e["name"] for e in json.loads(cli("ls", "--framework", "dataframe",
                                              "--json").out)] == ["data/iris_sample"]
    everything = json.loads(cli("ls", "--type", "all", "--json").out)
    kinds = {e["name"]: e["object_type"] for e in everything}
    assert kinds["latest"] == "link" and kinds["heroku_app"] == "deployment"
    assert kinds["staging"] == "env" and kinds["build_docker"] == "builder"
    table = cli("ls", "models").out
    assert "rf" in table and "predict, predict_proba" in table


def test_checkenv_exits_1_on_a_mismatch_and_0_when_it_matches(mlem_project, cli, saved_lr):
    # mlem.ai: mlem checkenv rf (MLEM saved it with scikit-learn 1.3.2, numpy 1.26.4)
    old = cli("checkenv", "models/rf")
    assert old.code == 1
    assert "scikit-learn" in old.err and "1.3.2" in old.err
    ours = cli("checkenv", saved_lr)
    assert ours.code == 0, ours.err
    report = json.loads(cli("checkenv", "models/rf", "--json").out)
    assert {m["distribution"] for m in report["mismatches"]} >= {"scikit-learn", "numpy"}


def test_import_onnx_and_catboost_files(mlem_project, cli, iris, tmp_path):
    import catboost
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    X, y = iris
    # an .onnx graph made elsewhere: y = x + 1
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "plus_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "plus_one.onnx"))
    result = cli("import", str(tmp_path / "plus_one.onnx"), "imported/plus_one")
    assert result.code == 0, result.err
    rows = X.to_numpy(dtype=np.float32)[:3]
    assert mlem.load_meta("imported/plus_one").model_type.type == "onnx"
    assert np.allclose(np.asarray(mlem.apply("imported/plus_one", rows)), rows + 1)

    model = catboost.CatBoostClassifier(iterations=5, verbose=False).fit(X, y)
    model.save_model(str(tmp_path / "model.cbm"))
    X.head(10).to_csv(tmp_path / "sample.csv", index=False)
    result = cli("import", str(tmp_path / "model.cbm"), "imported/cb", "--sample",
                 str(tmp_path / "sample.csv"))
    assert result.code == 0, result.err
    assert "predict_proba" in mlem.load_meta("imported/cb").model_type.methods
    assert np.allclose(mlem.apply("imported/cb", X.head(5), method="predict_proba"),
                       model.predict_proba(X.head(5)))
    listed = cli("import", "--list")
    assert ".onnx\tonnx" in listed.out and ".cbm\tcatboost" in listed.out


def test_import_torchscript_and_torch_save_files(mlem_project, cli, tmp_path):
    import numpy as np
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()
    rows = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    np.save(tmp_path / "sample.npy", rows)
    expected = net(torch.from_numpy(rows)).detach().numpy()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "net.pt"))
    torch.save(net, str(tmp_path / "whole.pth"))
    torch.save(net.state_dict(), str(tmp_path / "weights.pth"))
    for src, out in (("net.pt", "imported/script"), ("whole.pth", "imported/whole")):
        result = cli("import", str(tmp_path / src), out, "--sample",
                     str(tmp_path / "sample.npy"))
        assert result.code == 0, result.err
        assert mlem.load_meta(out).model_type.type == "torch"
        assert np.allclose(np.asarray(mlem.apply(out, rows)), expected, atol=1e-6)
    weights = cli("import", str(tmp_path / "weights.pth"), "imported/w")
    assert weights.code == 1 and "state_dict needs its model class" in weights.err
