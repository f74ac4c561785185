"""Run inside a fresh venv holding the built wheel (and maybe some extras): try each
feature and print, as JSON, ``{feature: outcome}``.

An outcome is ``"ok"``; ``"missing <extra>: <message>"`` when the feature raised
:class:`~mlem_lib.errors.MissingExtraError`; or ``"broken <type>: <message>"`` for any
other import error (an optional import that escaped its check). Other errors count as
``ok``: the feature got past its imports (a Docker engine or AWS is not needed here).

Usage: ``python extras_probe.py CONFIG.json`` with ``{"work": dir, "models": {framework:
saved model path}, "sample": [[...]]}``. Only the standard library and mlem_lib (with
the core's dependencies) may be imported at the top: this runs without pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any


def outcome(probe: Callable[[], Any]) -> str:
    from mlem_lib.errors import MissingExtraError

    try:
        probe()
    except MissingExtraError as exc:
        return f"missing {exc.extra}: {exc}"
    except ImportError as exc:
        return f"broken {type(exc).__name__}: {exc} " + traceback.format_exc(limit=-3)
    except Exception:
        return "ok"
    return "ok"


def core(work: str, sample: list[list[float]]) -> None:
    """save / load / apply / show / serve of a plain-Python model, for real."""
    import numpy as np

    import mlem_lib.api as mlem

    def total(x: np.ndarray) -> np.ndarray:
        return np.asarray(x).sum(axis=1)

    path = os.path.join(work, "total")
    mlem.save(total, path, sample_data=np.asarray(sample))
    assert list(mlem.load(path)(np.asarray(sample))) == [sum(r) for r in sample]
    np.save(os.path.join(work, "in.npy"), np.asarray(sample))
    out = os.path.join(work, "out.csv")
    mlem.apply(path, os.path.join(work, "in.npy"), "__call__", output=out)
    assert os.path.getsize(out) > 0
    mlem_cli = os.path.join(os.path.dirname(sys.executable), "mlem")
    shown = subprocess.run([mlem_cli, "show", path], capture_output=True, text=True,
                           timeout=120, check=True).stdout
    assert "total" in shown or "callable" in shown, shown
    serve(mlem_cli, path, sample)


def serve(mlem_cli: str, path: str, sample: list[list[float]]) -> None:
    import re
    import time

    import httpx

    server = subprocess.Popen([mlem_cli, "serve", path, "--port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        url = None
        assert server.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                raise AssertionError("mlem serve ended before listening")
            found = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
            url = found.group(1) if found else None
        assert url, "mlem serve did not report its address"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        answer = httpx.post(f"{url}/predict", json={"data": sample}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json() == [sum(r) for r in sample], answer.text
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    work, sample = config["work"], config["sample"]
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"

    import mlem_lib.api as mlem
    from mlem_lib import plugins, storage

    def prefect() -> None:
        import mlem_lib.prefect.flows
        import mlem_lib.prefect.tasks  # noqa: F401

    def registry() -> None:
        mlem.find_latest_version("total", repo=work)

    def docker() -> None:
        plugins.get("builders", "docker")
        from mlem_lib.build.docker import docker_client

        docker_client()

    def aws() -> None:
        storage.get_fs("s3://mlem-probe-bucket/x.csv")
        plugins.get("targets", "sagemaker")

    def dask() -> None:
        from mlem_lib.prefect.flows.batch_apply import on_dask

        on_dask("tcp://127.0.0.1:1")

    def framework(name: str) -> Callable[[], None]:
        def load_and_call() -> None:
            import numpy as np

            answer = mlem.apply(config["models"][name], np.asarray(sample), "predict")
            assert len(answer) == len(sample)
        return load_and_call

    core(work, sample)  # must work everywhere: an error here fails the probe
    from mlem_lib.extras import EXTRAS, available

    results = {"core": "ok", "available": [e for e, modules in EXTRAS.items()
                                           if all(available(m) for m in modules)]}
    for name, probe in (("prefect", prefect), ("registry", registry), ("docker", docker),
                        ("aws", aws), ("dask", dask)):
        results[name] = outcome(probe)
    for name in config["models"]:
        results[name] = outcome(framework(name))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
