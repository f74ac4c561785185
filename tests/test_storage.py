"""Storage through fsspec: memory://, s3:// on moto, atomic writes, safe paths."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlem_lib.api as mlem
from mlem_lib.errors import UnsafePathError
from mlem_lib.storage import atomic_open, get_fs, hash_file, resolve_artifact
from tests.helpers.localmodels import Unpicklable, add_one


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


def _move_artifact_outside(saved: str, folder: Path, outside: Path, *, via_dir: bool) -> str:
    """Copy a saved model into ``folder`` with its artifact living in ``outside``, reached
    through a symlinked file or a symlinked directory. Returns the model path."""
    import shutil

    import yaml

    outside.mkdir(exist_ok=True)
    shutil.copy(saved, outside / "model-bytes")
    doc = yaml.safe_load(Path(saved + ".mlem").read_text())
    if via_dir:
        (folder / "sub").symlink_to(outside, target_is_directory=True)
        doc["artifacts"]["data"]["uri"] = "sub/model-bytes"
    else:
        (folder / "m").symlink_to(outside / "model-bytes")
        doc["artifacts"]["data"]["uri"] = "m"
    (folder / "m.mlem").write_text(yaml.safe_dump(doc))
    return str(folder / "m")


@pytest.mark.parametrize("via_dir", [False, True], ids=["symlinked-file", "symlinked-dir"])
def test_symlinked_artifact_outside_the_model_folder_is_refused(tmp_path, saved_lr, via_dir):
    """Issue 12 item 2: artifact URIs are checked on the real path, not only as text."""
    from mlem_lib.build.model_files import collect

    folder = tmp_path / "models"
    folder.mkdir()
    model = _move_artifact_outside(saved_lr, folder, tmp_path / "elsewhere", via_dir=via_dir)
    with pytest.raises(UnsafePathError, match="outside the model's folder"):
        mlem.load(model)
    with pytest.raises(UnsafePathError):
        collect(model)  # what `mlem build ... pip` copies
    assert mlem.load_meta(model).model_type.type == "sklearn"  # metadata is still readable


def test_symlinked_data_artifact_outside_the_folder_is_refused_by_apply(tmp_path, iris,
                                                                      saved_lr):
    data = str(tmp_path / "saved" / "df")
    mlem.save(iris[0], data)
    folder = tmp_path / "data"
    folder.mkdir()
    model = _move_artifact_outside(data, folder, tmp_path / "elsewhere", via_dir=False)
    with pytest.raises(UnsafePathError):
        mlem.apply(saved_lr, model)


def test_symlink_inside_the_model_folder_is_allowed(tmp_path, saved_lr):
    import shutil

    shutil.copy(saved_lr, tmp_path / "bytes")
    (tmp_path / "lr").symlink_to(tmp_path / "bytes")
    shutil.copy(saved_lr + ".mlem", tmp_path / "lr.mlem")
    assert mlem.load(str(tmp_path / "lr")).__class__.__name__ == "LogisticRegression"


RACER = """
import os, signal, sys
sys.path.insert(0, {root!r})
path, factor, pause = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "pause"

def pause_before_first_move(event, args):
    # a breakpoint on the OS call: stop right after the pending metadata was written,
    # before the artifact is moved into place
    global pause
    if pause and event == "os.rename" and ".tmp-" in str(args[0]):
        pause = False
        print("paused", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)

sys.addaudithook(pause_before_first_move)
import numpy as np
import mlem_lib.api as mlem
from mlem_lib.errors import MlemError
from tests.helpers.localmodels import Scaler
try:
    mlem.save(Scaler(factor), path, sample_data=np.ones((1, 2)))
except MlemError as exc:
    print(f"refused {{type(exc).__name__}}: {{exc}}", flush=True)
    sys.exit(3)
print("saved", flush=True)
"""


def _racer(path: str, factor: float, pause: bool) -> subprocess.Popen[str]:
    from tests.conftest import REPO_ROOT

    script = RACER.format(root=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-c", script, path, str(factor),
                             "pause" if pause else "go"], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_one_complete_pair(path: str, factors: set[float]) -> float:
    """The path holds exactly one writer's pair: it loads, and nothing else is left."""
    model = mlem.load(path)
    assert model.factor in factors
    folder = Path(path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["m", "m.mlem"]
    return float(model.factor)


def test_second_save_during_first_saves_move_never_mixes_pairs(tmp_path):
    """Issue 12 item 5: writer A stops between writing its metadata and moving its
    artifact; writer B saves meanwhile. Afterwards the path holds one writer's complete
    pair, every writer that reported success is the one there or was replaced by a
    later complete save, and nobody fails with a raw OSError."""
    path = str(tmp_path / "m")
    mlem.save(add_one, path, sample_data=[1])
    first = _racer(path, 1.0, pause=True)
    assert first.stdout.readline().strip() == "paused"
    second = _racer(path, 2.0, pause=False)
    with contextlib.suppress(subprocess.TimeoutExpired):
        second.wait(timeout=5)  # with a lock it waits for A
    os.kill(first.pid, signal.SIGCONT)
    out_a, err_a = first.communicate(timeout=120)
    out_b, err_b = second.communicate(timeout=120)
    for proc, _out, err in ((first, out_a, err_a), (second, out_b, err_b)):
        assert proc.returncode in (0, 3), err
        assert "Traceback" not in err, err
    winner = _assert_one_complete_pair(path, {1.0, 2.0})
    # the last writer to finish is the one whose pair is there
    assert (winner == 2.0) == (second.returncode == 0)


def test_many_saves_racing_on_one_path_leave_a_loadable_model(tmp_path):
    """Eight processes save to one path at once, twice over; then the model loads."""
    path = str(tmp_path / "m")
    for _round in range(2):
        procs = [_racer(path, float(i + 1), pause=False) for i in range(8)]
        results = [p.communicate(timeout=300) for p in procs]
        for proc, (_out, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err
        _assert_one_complete_pair(path, {float(i + 1) for i in range(8)})


def test_threads_saving_to_one_s3_path_leave_one_complete_pair(s3_bucket):
    """Object stores: the lock object is created exclusively (If-None-Match on moto)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers.localmodels import Scaler

    url = f"s3://{s3_bucket}/models/m"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda f: mlem.save(Scaler(f), url, sample_data=np.ones((1, 2))),
                      [1.0, 2.0, 3.0, 4.0]))
    assert mlem.load(url).factor in {1.0, 2.0, 3.0, 4.0}
    fs, folder = get_fs(f"s3://{s3_bucket}/models")
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(folder)) == ["m", "m.mlem"]


@pytest.mark.parametrize("algorithm", ["shake_128", "no-such-hash", ""])
def test_unknown_hash_algorithm_is_a_metadata_error(tmp_path, algorithm):
    """Issue 12 item 14: not a raw TypeError from hashlib."""
    import yaml

    from mlem_lib.errors import MetadataError

    mlem.save(add_one, str(tmp_path / "m"), sample_data=[1])
    doc = yaml.safe_load((tmp_path / "m.mlem").read_text())
    doc["artifacts"]["data"]["hash_algorithm"] = algorithm
    (tmp_path / "m.mlem").write_text(yaml.safe_dump(doc))
    with pytest.raises(MetadataError, match="unknown hash algorithm"):
        mlem.load(str(tmp_path / "m"))


def test_nul_in_a_path_or_artifact_uri_is_refused(tmp_path):
    """Issue 12 item 14: not a raw ValueError ("embedded null byte")."""
    import yaml

    mlem.save(add_one, str(tmp_path / "m"), sample_data=[1])
    for call in (mlem.load, mlem.load_meta):
        with pytest.raises(UnsafePathError, match="NUL"):
            call(str(tmp_path / "m\0x"))
    doc = yaml.safe_load((tmp_path / "m.mlem").read_text())
    doc["artifacts"]["data"]["uri"] = "m\0"
    (tmp_path / "n.mlem").write_text(yaml.safe_dump(doc))
    with pytest.raises(UnsafePathError, match="NUL"):
        mlem.load(str(tmp_path / "n"))


def test_a_save_finishing_between_a_loads_two_reads_gives_the_new_pair(tmp_path):
    """The reader read the .mlem, then another save replaced the pair, then the reader read
    the artifact: its hash no longer matches the metadata it holds. That is not tampering:
    the load takes the new pair (it raised ArtifactIntegrityError before)."""
    from mlem_lib.locate import load_found, open_object
    from tests.helpers.localmodels import Scaler

    path = str(tmp_path / "m")
    mlem.save(Scaler(1.0), path, sample_data=np.ones((1, 2)))
    with open_object(path) as found:
        mlem.save(Scaler(2.0), path, sample_data=np.ones((1, 2)))
        meta, model = load_found(found)
    assert model.factor == 2.0
    assert meta.artifacts == mlem.load_meta(path).artifacts


def test_loads_racing_with_saves_never_see_a_mixed_pair(tmp_path):
    """One thread saves 40 models in turn while another loads: every load succeeds."""
    import threading

    from tests.helpers.localmodels import Scaler

    path = str(tmp_path / "m")
    mlem.save(Scaler(1.0), path, sample_data=np.ones((1, 2)))
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_saving() -> None:
        try:
            for i in range(40):
                mlem.save(Scaler(float(i + 1)), path, sample_data=np.ones((1, 2)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=keep_saving)
    writer.start()
    loads = 0
    while not done.is_set():
        assert 1.0 <= mlem.load(path).factor <= 40.0
        loads += 1
    writer.join()
    assert not errors and loads > 0
