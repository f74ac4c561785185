"""Storage through fsspec: memory://, s3:// on moto, atomic writes, safe paths."""

from __future__ import annotations

import os

import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import UnsafePathError
from mlem_lib.storage import atomic_open, get_fs, hash_file, resolve_artifact
from tests.helpers.localmodels import add_one


def test_memory_filesystem_roundtrip(iris, iris_lr):
    mlem.save(iris_lr, "memory://storage-test/lr", sample_data=iris[0])
    assert mlem.load_meta("memory://storage-test/lr").model_type.type == "sklearn"
    np.testing.assert_array_equal(mlem.apply("memory://storage-test/lr", iris[0]),
                                  iris_lr.predict(iris[0]))


def test_s3_roundtrip_on_moto(s3_bucket, iris, iris_lr):
    url = f"s3://{s3_bucket}/models/lr"
    meta = mlem.save(iris_lr, url, sample_data=iris[0])
    fs, path = get_fs(url)
    assert fs.exists(path) and fs.exists(path + ".mlem")
    assert hash_file(fs, path)[0] == meta.artifacts["data"].hash
    assert not [p for p in fs.ls(f"{s3_bucket}/models") if ".tmp-" in p or "pending" in p]
    np.testing.assert_array_equal(mlem.load(url).predict(iris[0]), iris_lr.predict(iris[0]))


def test_atomic_open_failure_keeps_old_file(tmp_path):
    fs, path = get_fs(str(tmp_path / "f.txt"))
    with atomic_open(fs, path) as f:
        f.write(b"old")
    with pytest.raises(RuntimeError), atomic_open(fs, path) as f:
        f.write(b"half of the new")
        raise RuntimeError("crash")
    assert (tmp_path / "f.txt").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failed_save_leaves_previous_model(tmp_path):
    path = str(tmp_path / "m")
    mlem.save(add_one, path, sample_data=[1])

    class Unpicklable:
        def predict(self, xs):
            return xs

        def __reduce__(self):
            raise TypeError("cannot pickle this")

    with pytest.raises(TypeError):
        mlem.save(Unpicklable(), path, sample_data=[1])
    assert mlem.apply(path, [1]) == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.mlem"]


@pytest.mark.parametrize("uri,ok", [("model", True), ("sub/model", True), ("./model", True),
                                    ("../model", False), ("/abs", False), ("C:/x", False),
                                    ("a/../../b", False), ("file://x", False)])
def test_resolve_artifact(uri, ok):
    if ok:
        assert resolve_artifact("/m/x.mlem", uri).startswith("/m/")
    else:
        with pytest.raises(UnsafePathError):
            resolve_artifact("/m/x.mlem", uri)


def test_successful_save_sweeps_stale_temp_files_of_killed_saves(tmp_path):
    path = str(tmp_path / "m")
    stale = tmp_path / ".m.tmp-deadbeef0001"
    fresh = tmp_path / ".m.tmp-deadbeef0002"
    stale.write_bytes(b"half a model")
    fresh.write_bytes(b"a save running right now")
    old = os.path.getmtime(stale) - 2 * 3600
    os.utime(stale, (old, old))
    mlem.save(add_one, path, sample_data=[1])
    assert not stale.exists()
    assert fresh.exists()
