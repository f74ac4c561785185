"""save/load round trips, the written YAML, integrity checks and atomic saves."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

import mlem_lib
import mlem_lib.api as mlem
from mlem_lib.errors import (
    ArtifactIntegrityError,
    MetadataError,
    ObjectNotFoundError,
    UnsafePathError,
    UnsupportedObjectError,
)
from tests.helpers.localmodels import Scaler, Unpicklable, add_one


def read_yaml(path: str) -> dict:
    return yaml.safe_load(Path(path + ".mlem").read_text())


def test_sklearn_roundtrip_and_yaml_content(tmp_path, iris, iris_lr):
    X, _ = iris
    path = str(tmp_path / "lr")
    mlem.save(iris_lr, path, sample_data=X, description="iris", labels=["demo"])
    loaded = mlem.load(path)
    np.testing.assert_array_equal(loaded.predict(X), iris_lr.predict(X))

    doc = read_yaml(path)
    assert doc["object_type"] == "model"
    assert doc["model_type"]["type"] == "sklearn"
    methods = doc["model_type"]["methods"]
    assert {"predict", "predict_proba"} <= set(methods)
    arg = methods["predict"]["args"][0]
    assert arg["name"] == "data"
    assert arg["type_"]["type"] == "dataframe"
    assert arg["type_"]["columns"] == list(X.columns)
    assert arg["type_"]["dtypes"] == ["float64"] * 4
    assert methods["predict_proba"]["returns"] == {"type": "ndarray", "shape": [None, 3],
                                                   "dtype": "float64"}
    reqs = {r["module"]: r for r in doc["requirements"]}
    import sklearn

    assert reqs["sklearn"]["package_name"] == "scikit-learn"
    assert reqs["sklearn"]["version"] == sklearn.__version__
    assert "pandas" in reqs and "numpy" in reqs
    art = doc["artifacts"]["data"]
    body = Path(path).read_bytes()
    assert art["uri"] == "lr"
    assert art["size"] == len(body)
    assert art["hash_algorithm"] == "sha256"
    assert art["hash"] == hashlib.sha256(body).hexdigest()
    assert doc["description"] == "iris" and doc["labels"] == ["demo"]


def test_pipeline_without_sample_uses_fitted_feature_names(tmp_path, iris):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    meta = mlem.save(pipe, str(tmp_path / "pipe"))
    assert meta.model_type.type == "sklearn_pipeline"
    sig = meta.model_type.methods["predict"]
    assert sig.args[0].type_.columns == list(X.columns)
    assert sig.returns.describe() == "ndarray[int64, (n)]"
    np.testing.assert_array_equal(mlem.apply(str(tmp_path / "pipe"), X), pipe.predict(X))


def test_ndarray_sample_and_transform_method(tmp_path, iris):
    from sklearn.preprocessing import StandardScaler

    X = iris[0].to_numpy()
    meta = mlem.save(StandardScaler().fit(X), str(tmp_path / "scaler"), sample_data=X)
    sig = meta.model_type.methods["transform"]
    assert sig.args[0].type_.shape == [None, 4]
    assert sig.returns.shape == [None, 4]


def test_function_and_callable_object_and_local_module(tmp_path, iris):
    meta = mlem.save(add_one, str(tmp_path / "f"), sample_data=[1, 2, 3])
    assert meta.model_type.type == "callable"
    assert list(meta.model_type.methods) == ["__call__"]
    assert meta.model_type.methods["__call__"].returns.describe() == "list[int]"
    custom = meta.custom_requirements()
    assert [c.name for c in custom] == ["tests"]
    assert mlem.apply(str(tmp_path / "f"), [1, 2], method="predict") == [2, 3]

    meta = mlem.save(Scaler(2.0), str(tmp_path / "scaler"), sample_data=iris[0])
    assert meta.model_type.type == "python_class"
    assert "predict" in meta.model_type.methods
    assert "numpy" in {r.module for r in meta.python_requirements()}


def test_local_code_is_shipped_and_loads_where_module_is_missing(tmp_path):
    """A model whose class lives in a local module loads in a process without that module."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "mymodel_pkg.py").write_text(textwrap.dedent("""
        class Doubler:
            def predict(self, xs):
                return [x * 2 for x in xs]
    """))
    save = f"""
import sys; sys.path.insert(0, {str(src)!r})
import mlem_lib.api as mlem, mymodel_pkg
mlem.save(mymodel_pkg.Doubler(), {str(tmp_path / 'm')!r}, sample_data=[1, 2])
"""
    subprocess.run([sys.executable, "-c", save], check=True, cwd=tmp_path)
    shutil.rmtree(src)
    load = f"""
import mlem_lib.api as mlem
print(mlem.apply({str(tmp_path / 'm')!r}, [5, 6]))
"""
    out = subprocess.run([sys.executable, "-c", load], check=True, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "[10, 12]"


def test_xgboost_and_lightgbm(tmp_path, iris):
    import lightgbm
    import xgboost
    X, y = iris
    for name, model in {
        "xgb": xgboost.XGBClassifier(n_estimators=5).fit(X, y),
        "lgb": lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
    }.items():
        meta = mlem.save(model, str(tmp_path / name), sample_data=X)
        assert meta.model_type.type == {"xgb": "xgboost", "lgb": "lightgbm"}[name]
        assert "libgomp1" in [r.package_name for r in meta.unix_requirements()]
        np.testing.assert_array_equal(mlem.apply(str(tmp_path / name), X), model.predict(X))
    booster = xgboost.XGBClassifier(n_estimators=5).fit(X, y).get_booster()
    meta = mlem.save(booster, str(tmp_path / "booster"), sample_data=X)
    assert meta.model_type.io.type == "xgboost_json"
    assert Path(tmp_path / "booster").read_bytes().startswith(b"{")
    loaded = mlem.load(str(tmp_path / "booster"))
    np.testing.assert_allclose(loaded.predict(xgboost.DMatrix(X)),
                               booster.predict(xgboost.DMatrix(X)))


@pytest.mark.parametrize("value", [np.arange(12.0).reshape(3, 4), [1, 2, 3], {"a": 1}, 2.5])
def test_data_objects_roundtrip(tmp_path, value):
    meta = mlem.save(value, str(tmp_path / "d"))
    assert meta.object_type == "data"
    back = mlem.load(str(tmp_path / "d"))
    np.testing.assert_array_equal(np.asarray(back), np.asarray(value)) if not isinstance(
        value, dict) else None
    if isinstance(value, dict):
        assert back == value


def test_dataframe_data_object(tmp_path, iris):
    meta = mlem.save(iris[0], str(tmp_path / "df"))
    assert meta.format == "parquet"
    assert mlem.load(str(tmp_path / "df")).equals(iris[0])


def test_data_object_metadata_is_complete_and_true(tmp_path, iris):
    """What a data object's .mlem records: found by mutation testing (every field of
    save_data could be dropped without a test noticing)."""
    from mlem_lib.storage import get_fs, hash_file

    path = tmp_path / "df"
    meta = mlem.save(iris[0], str(path), description="iris features", labels=["iris", "v1"])
    again = mlem.load_meta(str(path))
    assert again == meta
    assert (meta.description, meta.labels, meta.format) == ("iris features", ["iris", "v1"],
                                                           "parquet")
    art = meta.artifacts["data"]
    assert art.uri == "df" and art.size == path.stat().st_size > 0
    fs, local = get_fs(str(path))
    assert (art.hash, art.size) == hash_file(fs, local, art.hash_algorithm)
    assert {"pandas", "pyarrow"} <= {getattr(r, "module", None) for r in meta.requirements}
    assert meta.mlem_lib_version == mlem_lib.__version__
    assert mlem.load(str(path)).equals(iris[0])


def test_load_meta_does_not_unpickle(tmp_path, saved_lr):
    shutil.copy(saved_lr + ".mlem", tmp_path / "lr.mlem")
    Path(tmp_path / "lr").write_bytes(b"not a pickle at all")
    meta = mlem.load_meta(str(tmp_path / "lr"))
    assert meta.model_type.type == "sklearn"
    assert mlem.load_meta(str(tmp_path / "lr.mlem")) == meta


def test_tampered_artifact_is_refused(tmp_path, saved_lr):
    for name in ("lr", "lr.mlem"):
        shutil.copy(Path(saved_lr).parent / name, tmp_path / name)
    body = bytearray(Path(tmp_path / "lr").read_bytes())
    body[len(body) // 2] ^= 0xFF
    Path(tmp_path / "lr").write_bytes(bytes(body))
    with pytest.raises(ArtifactIntegrityError, match="modified"):
        mlem.load(str(tmp_path / "lr"))
    Path(tmp_path / "lr").write_bytes(bytes(body[:-10]))
    with pytest.raises(ArtifactIntegrityError, match="truncated"):
        mlem.load(str(tmp_path / "lr"))
    os.remove(tmp_path / "lr")
    with pytest.raises(ObjectNotFoundError):
        mlem.load(str(tmp_path / "lr"))


@pytest.mark.parametrize("uri", ["../lr", "/etc/passwd", "sub/../../x", "s3://bucket/x"])
def test_artifact_uri_cannot_escape(tmp_path, saved_lr, uri):
    doc = read_yaml(saved_lr)
    doc["artifacts"]["data"]["uri"] = uri
    (tmp_path / "m.mlem").write_text(yaml.safe_dump(doc))
    with pytest.raises(UnsafePathError):
        mlem.load(str(tmp_path / "m"))


def test_yaml_is_read_safely(tmp_path):
    (tmp_path / "evil.mlem").write_text(
        "object_type: model\nmodel_type: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(MetadataError, match="not valid YAML"):
        mlem.load_meta(str(tmp_path / "evil"))


def test_bad_metadata_errors(tmp_path):
    (tmp_path / "a.mlem").write_text("- just\n- a list\n")
    with pytest.raises(MetadataError, match="mapping"):
        mlem.load_meta(str(tmp_path / "a"))
    (tmp_path / "b.mlem").write_text("object_type: banana\n")
    with pytest.raises(MetadataError, match="object_type"):
        mlem.load_meta(str(tmp_path / "b"))
    with pytest.raises(ObjectNotFoundError):
        mlem.load_meta(str(tmp_path / "missing"))


def test_unknown_fields_are_kept(tmp_path, saved_lr):
    doc = read_yaml(saved_lr)
    doc["owner"] = {"team": "ml"}
    doc["model_type"]["methods"]["predict"]["future_field"] = 1
    (tmp_path / "m.mlem").write_text(yaml.safe_dump(doc))
    meta = mlem.load_meta(str(tmp_path / "m"))
    dumped = meta.model_dump(mode="json")
    assert dumped["owner"] == {"team": "ml"}
    assert dumped["model_type"]["methods"]["predict"]["future_field"] == 1


def test_requirement_version_mismatch_warns(tmp_path, saved_lr):
    shutil.copy(saved_lr, tmp_path / "lr")
    doc = read_yaml(saved_lr)
    for req in doc["requirements"]:
        if req["module"] == "sklearn":
            req["version"] = "0.1.0"
    (tmp_path / "lr.mlem").write_text(yaml.safe_dump(doc))
    with pytest.warns(UserWarning, match="scikit-learn .* was saved with 0.1.0"):
        mlem.load(str(tmp_path / "lr"))


def test_unsupported_object(tmp_path):
    with pytest.raises(UnsupportedObjectError):
        mlem.save(object(), str(tmp_path / "x"))


def test_resave_replaces_previous_version(tmp_path):
    path = str(tmp_path / "m")
    mlem.save(add_one, path, sample_data=[1])
    mlem.save(lambda xs: [x * 3 for x in xs], path, sample_data=[1])
    assert mlem.apply(path, [1]) == [3]
    assert sorted(os.listdir(tmp_path)) == ["m", "m.mlem"]


def _interrupted_save(tmp_path: Path) -> Path:
    """The crash window of a save: the old pair of ``m`` (add_one) plus the new metadata
    (times ten) still pending; the new artifact is not moved yet."""
    mlem.save(add_one, str(tmp_path / "old"), sample_data=[1])
    mlem.save(lambda xs: [x * 10 for x in xs], str(tmp_path / "new"), sample_data=[1])
    target = tmp_path / "m"
    shutil.copy(tmp_path / "old", target)
    (tmp_path / "m.mlem").write_text((tmp_path / "old.mlem").read_text()
                                     .replace("uri: old", "uri: m"))
    for name in ("old", "old.mlem"):
        os.remove(tmp_path / name)
    new_meta = (tmp_path / "new.mlem").read_text().replace("uri: new", "uri: m")
    (tmp_path / "m.mlem.pending").write_text(new_meta)
    return target


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_interrupted_save_is_read_without_writing(tmp_path):
    """Issue 12 item 6: readers read the last complete pair and never write."""
    target = _interrupted_save(tmp_path)
    # crash before the artifact moved: the pending file is stale, the old model loads
    before = _snapshot(tmp_path)
    assert mlem.apply(str(target), [1]) == [2]
    assert _snapshot(tmp_path) == before
    # crash after the artifact moved: readers see the new pair, and leave the files alone
    shutil.copy(tmp_path / "new", target)
    before = _snapshot(tmp_path)
    assert mlem.apply(str(target), [1]) == [10]
    assert mlem.load_meta(str(target)).model_hash == mlem.load_meta(
        str(tmp_path / "new")).model_hash
    assert _snapshot(tmp_path) == before


def test_interrupted_save_reads_from_a_read_only_store(tmp_path):
    """The same interrupted save, read over plain HTTP (fsspec's read-only filesystem,
    served by a real http.server on 127.0.0.1)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    target = _interrupted_save(tmp_path)
    shutil.copy(tmp_path / "new", target)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/m"
        assert mlem.load(url)([1]) == [10]
        assert mlem.load_meta(url).model_type.type == "callable"
    finally:
        server.shutdown()
        server.server_close()


def test_next_save_finishes_an_interrupted_save(tmp_path):
    """The next writer completes the interrupted pair, so even a failed save after it
    leaves a plain, complete pair behind."""
    target = _interrupted_save(tmp_path)
    shutil.copy(tmp_path / "new", target)

    with pytest.raises(TypeError):
        mlem.save(Unpicklable(), str(target), sample_data=[1])
    assert not (tmp_path / "m.mlem.pending").exists()
    assert mlem.apply(str(target), [1]) == [10]
    mlem.save(add_one, str(target), sample_data=[1])
    assert mlem.apply(str(target), [1]) == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.mlem", "new", "new.mlem"]


SAVER = """
import sys, numpy as np, mlem_lib.api as mlem
sys.path.insert(0, {root!r})
from tests.helpers.localmodels import Scaler
model = Scaler(float(sys.argv[1]))
model.weights = np.random.default_rng(0).random(6_000_000)  # ~48 MB artifact
print("start", flush=True)
mlem.save(model, {path!r}, sample_data=[[1.0]])
print("done", flush=True)
"""


def test_killed_save_leaves_a_loadable_model(tmp_path):
    """Kill the saving process at different moments; the model always loads, old or new."""
    from tests.conftest import REPO_ROOT

    path = str(tmp_path / "big")
    script = SAVER.format(root=str(REPO_ROOT), path=path)
    first = subprocess.run([sys.executable, "-c", script, "1"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    seen = set()
    for i, delay in enumerate([0.05, 0.2, 0.4, 0.6, 0.9, 1.3, 2.0]):
        proc = subprocess.Popen([sys.executable, "-c", script, str(i + 2)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "start"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        factor = mlem.load(path).factor
        seen.add(factor)
        leftovers = [n for n in os.listdir(tmp_path) if n not in ("big", "big.mlem")]
        assert all(n.startswith(".big.tmp-") or n in ("big.mlem.pending", ".big.mlem.lock")
                   for n in leftovers)
    assert seen, "the model must load after every kill"


def test_killed_saves_leave_no_temp_files_after_the_next_save(tmp_path):
    """Issue 12 item 7: temp files of killed writers (same host, PID gone) are deleted by
    the next save, however young they are; a live writer's file is kept."""
    import time

    from tests.conftest import REPO_ROOT

    path = str(tmp_path / "big")
    script = SAVER.format(root=str(REPO_ROOT), path=path)
    for i in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script, str(i + 1)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.tmp-*")) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    leaked = list(tmp_path.glob(".big.tmp-*"))
    assert leaked, "the kills should have left temp files behind"
    mlem.save(add_one, path, sample_data=[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "big.mlem"]


def test_next_save_keeps_the_temp_file_of_a_live_writer(tmp_path):
    from mlem_lib.savelock import owner_tag

    path = str(tmp_path / "m")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = owner_tag().rsplit("-", 1)[0]
    live = tmp_path / f".m.tmp-{host}-{sleeper.pid}-0a0b0c0d"
    try:
        live.write_bytes(b"a save running right now")
        mlem.save(add_one, path, sample_data=[1])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", "m.mlem", live.name])
    finally:
        sleeper.kill()
        sleeper.wait()
    mlem.save(add_one, path, sample_data=[1])  # now that writer is gone too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.mlem"]
