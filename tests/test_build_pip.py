"""``build(model, "pip")``: the package is installed in a fresh venv, imported, called, served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.build.pip import BUILDER, build_pip, default_distribution_name, default_package_name
from mlem_lib.errors import BuildError, BuildWarning
from tests._fixtures.build import wait_http
from tests.conftest import free_port
from tests.helpers.formats import check_every_format

HELPER_MODULE = "mlem_build_test_helpers"


def _install(venv: Path, *args: str) -> None:
    """Install into ``venv`` with uv (fast, uses its cache) or the venv's own pip."""
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *args]
    else:
        cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new, empty venv: nothing of this project's environment is visible in it."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    uv = shutil.which("uv")
    base_python = getattr(sys, "_base_executable", sys.executable)
    if uv:
        cmd = [uv, "venv", "-q", "--python", base_python, str(venv)]
    else:
        cmd = [base_python, "-m", "venv", str(venv)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return venv


def _run_in(venv: Path, code: str) -> str:
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, cwd=venv.parent,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def rf_package(saved_rf, tmp_path_factory):
    target = tmp_path_factory.mktemp("pip")
    return build_pip(saved_rf, str(target), package_name="iris-rf", version="1.2.0")


def test_wheel_contents_and_metadata(rf_package):
    assert rf_package.import_name == "iris_rf"
    assert os.path.basename(rf_package.wheel) == "iris_rf-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(rf_package.wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read("iris_rf-1.2.0.dist-info/METADATA").decode()
        entry_points = zf.read("iris_rf-1.2.0.dist-info/entry_points.txt").decode()
        record = zf.read("iris_rf-1.2.0.dist-info/RECORD").decode()
    assert {"iris_rf/__init__.py", "iris_rf/model/model.mlem", "iris_rf/model/rf"} <= names
    requires = [line.split(": ", 1)[1] for line in meta.splitlines()
                if line.startswith("Requires-Dist")]
    # the model's inferred requirements, pinned, plus the mlem_lib runtime
    assert any(r.startswith("scikit-learn==") for r in requires)
    assert any(r.startswith("numpy==") for r in requires)
    assert "mlem-lib>=0.1.0" in requires
    assert any(r.startswith("pyarrow") for r in requires)  # Parquet bodies and answers
    assert "iris-rf-serve = iris_rf:main" in entry_points
    assert len(record.splitlines()) == len(names)
    # the runtime wheel carries mlem_lib but none of the orchestration dependencies
    [runtime] = rf_package.dependency_wheels
    with zipfile.ZipFile(runtime) as zf:
        assert "mlem_lib/serve/container.py" in zf.namelist()
        runtime_meta = zf.read("mlem_lib-0.1.0.dist-info/METADATA").decode()
    assert "fastapi" in runtime_meta
    for heavy in ("prefect", "dvc", "boto3", "docker"):
        assert f"Requires-Dist: {heavy}" not in runtime_meta


def test_sdist_is_a_buildable_project(rf_package):
    with tarfile.open(rf_package.sdist) as tf:
        names = set(tf.getnames())
        pyproject = tf.extractfile("iris_rf-1.2.0/pyproject.toml").read().decode()
    assert {"iris_rf-1.2.0/PKG-INFO", "iris_rf-1.2.0/iris_rf/__init__.py",
            "iris_rf-1.2.0/iris_rf/model/rf"} <= names
    import tomllib

    project = tomllib.loads(pyproject)
    assert project["project"]["name"] == "iris-rf"
    assert project["project"]["scripts"] == {"iris-rf-serve": "iris_rf:main"}
    assert "mlem-lib>=0.1.0" in project["project"]["dependencies"]


def test_rebuild_is_byte_identical(saved_rf, rf_package, tmp_path):
    again = build_pip(saved_rf, str(tmp_path), package_name="iris-rf", version="1.2.0")
    assert Path(again.wheel).read_bytes() == Path(rf_package.wheel).read_bytes()


def test_fresh_venv_import_predict_and_serve(rf_package, fresh_venv, iris, iris_rf):
    X, _ = iris
    # installed the way `mlem build` says: the wheels by file name
    [install] = [line for line in BUILDER.summary(rf_package) if line.startswith("install:")]
    assert install.split()[1:3] == ["pip", "install"] and "--find-links" not in install
    _install(fresh_venv, *install.split()[3:])
    out = _run_in(fresh_venv, f"""
        import json, sys
        import pandas as pd
        import iris_rf
        assert "/work/main" not in iris_rf.__file__
        X = pd.DataFrame({json.dumps(X.to_dict(orient="list"))})
        print(json.dumps({{"predict": iris_rf.predict(X).tolist(),
                          "proba": iris_rf.predict_proba(X).tolist(),
                          "type": type(iris_rf.load()).__name__,
                          "version": iris_rf.__version__}}))
    """)
    result = json.loads(out)
    assert result["predict"] == iris_rf.predict(X).tolist()
    np.testing.assert_allclose(result["proba"], iris_rf.predict_proba(X))
    assert result["type"] == "RandomForestClassifier"
    assert result["version"] == "1.2.0"

    import httpx

    port = free_port()
    proc = subprocess.Popen([str(fresh_venv / "bin" / "iris-rf-serve"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        rows = X.head(5).to_dict(orient="records")
        resp = httpx.post(f"http://127.0.0.1:{port}/predict", json={"data": {"values": rows}},
                          trust_env=False, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json() == iris_rf.predict(X.head(5)).tolist()
        # every format it advertises, HTTPClient's Parquet path included
        check_every_format(f"http://127.0.0.1:{port}", X, iris_rf)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_local_code_is_shipped(tmp_path, fresh_venv, iris, monkeypatch):
    """A model whose code lives in a local module works where that module does not exist."""
    X, _ = iris
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{HELPER_MODULE}.py").write_text(textwrap.dedent("""
        def petal_area(df):
            return (df["petal_length"] * df["petal_width"]).round(3).tolist()
    """))
    monkeypatch.syspath_prepend(str(src))
    try:
        helpers = __import__(HELPER_MODULE)
        mlem.save(helpers.petal_area, str(tmp_path / "area"), sample_data=X)
    finally:
        sys.modules.pop(HELPER_MODULE, None)
    pkg = build_pip(str(tmp_path / "area"), str(tmp_path / "dist"), package_name="petal-area")
    with zipfile.ZipFile(pkg.wheel) as zf:
        assert f"petal_area/_local_code/{HELPER_MODULE}.py" in zf.namelist()
    _install(fresh_venv, "--find-links", str(tmp_path / "dist"), "petal-area")
    out = _run_in(fresh_venv, f"""
        import json
        import pandas as pd
        import petal_area
        X = pd.DataFrame({json.dumps(X.head(3).to_dict(orient="list"))})
        print(json.dumps(petal_area.predict(X)))
    """)
    assert json.loads(out) == (X.head(3)["petal_length"] * X.head(3)["petal_width"]).round(3) \
        .tolist()


@pytest.mark.parametrize("name", ["1abc", "has space", "import", "mlem-lib", ""])
def test_bad_package_name_is_a_clear_error(saved_rf, tmp_path, name):
    with pytest.raises(BuildError, match="package_name"):
        build_pip(saved_rf, str(tmp_path), package_name=name)
    assert list(tmp_path.iterdir()) == []


def test_bad_version_and_data_object(saved_rf, tmp_path, iris):
    with pytest.raises(BuildError, match="version"):
        build_pip(saved_rf, str(tmp_path), version="not a version")
    mlem.save(iris[0], str(tmp_path / "data"))
    with pytest.raises(BuildError, match="data object"):
        build_pip(str(tmp_path / "data"), str(tmp_path / "out"))


def test_default_package_name():
    # a pip package's default name cannot be another package of an index
    assert default_distribution_name("models/dt") == "mlem-model-dt"
    assert default_distribution_name("models/2024") == "mlem-model-2024"
    assert default_package_name("models/rf") == "rf"
    assert default_package_name("models/Iris_RF.mlem") == "iris-rf"
    assert default_package_name("rf@v1.2.0") == "rf"
    assert default_package_name("models/2024") == "model-2024"


def test_cli_builds_pip(saved_rf, tmp_path, capsys):
    from mlem_lib.cli import main

    assert main(["build", saved_rf, "pip", "--package-name", "cli-rf",
                 "--target", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    wheel = tmp_path / "cli_rf-0.1.0-py3-none-any.whl"
    runtime = tmp_path / "mlem_lib-0.1.0-py3-none-any.whl"
    assert f"install: pip install {wheel} {runtime}" in out
    assert wheel.exists() and runtime.exists()
    assert main(["build", saved_rf, "pip", "--target", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "mlem_model_rf-0.1.0-py3-none-any.whl").exists()
    assert main(["build", saved_rf, "pip", "--image", "x:1"]) == 1
    assert "--image cannot be used with `build pip`" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["pip", "docker-dir"])
def test_pin_compatible(saved_rf, tmp_path, kind, capsys):
    from mlem_lib.cli import main

    assert main(["build", saved_rf, kind, "--pin", "compatible", "--target",
                 str(tmp_path / "out")]) == 0
    if kind == "pip":
        [wheel] = (tmp_path / "out").glob("mlem_model_rf-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            meta = zf.read("mlem_model_rf-0.1.0.dist-info/METADATA").decode()
        requires = [line.split(": ", 1)[1] for line in meta.splitlines()
                    if line.startswith("Requires-Dist")]
    else:
        requires = (tmp_path / "out" / "requirements.txt").read_text().split()
    import sklearn

    major, minor, patch = sklearn.__version__.split(".")[:3]
    assert f"scikit-learn~={major}.{minor}.{patch}" in requires, requires
    assert not any("==" in r for r in requires), requires
    assert any(r.startswith("pyarrow") for r in requires), requires
    assert main(["build", saved_rf, kind, "--target", str(tmp_path / "exact")]) == 0
    capsys.readouterr()
    assert main(["build", saved_rf, kind, "-o", "pin=loose", "--target",
                 str(tmp_path / "bad")]) == 1
    assert "pin" in capsys.readouterr().err


@pytest.fixture
def loopback_index(monkeypatch):
    """A package index on 127.0.0.1 that lists one project, ``taken-name`` (PEP 503 pages:
    200 for a listed project, 404 otherwise), configured the way pip reads it."""
    import http.server
    import threading

    asked: list[str] = []

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            found = self.path == "/simple/taken-name/"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            if found:
                self.wfile.write(b'<a href="taken_name-1.0-py3-none-any.whl">x</a>')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setenv("MLEM_BUILD_CHECK_INDEX", "1")
    yield asked
    server.shutdown()
    server.server_close()


def test_a_name_taken_on_the_index_is_warned_about(saved_rf, tmp_path, loopback_index, capsys):
    with pytest.warns(BuildWarning, match="'Taken_Name' is taken on http://127.0.0.1"):
        build_pip(saved_rf, str(tmp_path / "a"), package_name="Taken_Name", sdist=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_pip(saved_rf, str(tmp_path / "b"), package_name="free-name", sdist=False)
    assert loopback_index == ["/simple/taken-name/", "/simple/free-name/"]
    from mlem_lib.cli import main

    assert main(["build", saved_rf, "pip", "--package-name", "taken-name", "--target",
                 str(tmp_path / "c")]) == 0
    assert "warning: package name 'taken-name' is taken" in capsys.readouterr().err
