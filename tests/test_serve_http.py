"""``mlem serve`` as real uvicorn processes on 127.0.0.1: MLEM's own client, SageMaker and
Heroku variables, auth, workers, limits and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.slow


def rows(iris, n=3):
    return {"data": {"values": iris[0].head(n).to_dict("records")}}


def test_predict_errors_and_recovery_over_http(start_server, saved_lr, saved_kinds, iris,
                                               iris_lr):
    server = start_server(saved_lr)
    r = httpx.post(f"{server.url}/predict", json=rows(iris, 5))
    assert r.status_code == 200 and r.json() == iris_lr.predict(iris[0].head(5)).tolist()
    r = httpx.post(f"{server.url}/predict", content=b'{"data": {"values": [',
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = httpx.post(f"{server.url}/predict", content=b"",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert httpx.get(f"{server.url}/interface.json").json()["methods"]["predict"]["args"][0][
        "name"] == "data"
    boom = start_server(saved_kinds["boom"])
    r = httpx.post(f"{boom.url}/predict", json={"data": [-1.0]})
    assert r.status_code == 500 and r.json()["error"] == "ValueError: negative input"
    assert httpx.post(f"{boom.url}/predict", json={"data": [2.0]}).json() == [2.0]
    assert boom.proc.poll() is None


def test_mlem_own_http_client_works_against_our_server(start_server, saved_lr, mlem_python,
                                                       iris_lr, iris):
    server = start_server(saved_lr)
    out = subprocess.run(
        [str(mlem_python), str(REPO_ROOT / "scripts" / "mlem_client_call.py"), server.url],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "MLEM_NO_ANALYTICS": "true"})
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    X = iris[0].head(5)
    assert result["predict"] == iris_lr.predict(X).tolist()
    np.testing.assert_allclose(result["predict_proba"], iris_lr.predict_proba(X))


def test_body_limit_and_auth_from_env(start_server, saved_lr, iris):
    server = start_server(saved_lr, "--max-body-mb", "0.01", env={"MLEM_AUTH_TOKEN": "tok"})
    auth = {"Authorization": "Bearer tok"}
    assert httpx.post(f"{server.url}/predict", json=rows(iris, 1)).status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/ping").status_code == 200
    r = httpx.post(f"{server.url}/predict", json=rows(iris, 1), headers=auth)
    assert r.status_code == 200
    r = httpx.post(f"{server.url}/predict", json=rows(iris, 150), headers=auth)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert httpx.post(f"{server.url}/predict", json=rows(iris, 1), headers=auth).status_code \
        == 200


def test_heroku_port_variable(start_server, saved_lr, iris):
    port = free_port()
    argv = [sys.executable, "-m", "mlem_lib.cli", "serve", saved_lr]
    server = start_server(argv=argv, env={"PORT": str(port)}, port=port)
    assert httpx.post(f"{server.url}/predict", json=rows(iris, 1)).status_code == 200


def test_container_entrypoint_sagemaker_contract(start_server, saved_lr, iris, iris_lr):
    port = free_port()
    argv = [sys.executable, "-m", "mlem_lib.serve.container", "serve"]
    env = {"SAGEMAKER_BIND_TO_PORT": str(port), "PORT": str(free_port()),
           "MLEM_MODEL": saved_lr, "MLEM_HOST": "127.0.0.1",
           "MLEM_SAGEMAKER_METHOD": "predict_proba"}
    server = start_server(argv=argv, env=env, port=port)
    assert httpx.get(f"{server.url}/ping").status_code == 200
    X = iris[0].head(2)
    r = httpx.post(f"{server.url}/invocations", content=X.to_csv(header=False, index=False),
                   headers={"Content-Type": "text/csv", "Accept": "application/json"})
    np.testing.assert_allclose(r.json(), iris_lr.predict_proba(X))
    r = httpx.post(f"{server.url}/invocations", content=X.to_csv(header=False, index=False),
                   headers={"Content-Type": "text/csv", "Accept": "text/csv",
                            "X-Mlem-Method": "predict"})
    assert r.text.split() == [str(v) for v in iris_lr.predict(X)]
    bad = subprocess.run([sys.executable, "-m", "mlem_lib.serve.container", "train"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_sigterm_lets_inflight_request_finish(start_server, saved_kinds):
    server = start_server(saved_kinds["slow"])
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        result["r"] = httpx.post(f"{server.url}/predict", json={"data": [1.5]}, timeout=30)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.5)  # the request must be in flight when the signal arrives
    os.kill(server.pid, signal.SIGTERM)
    worker.join(timeout=30)
    assert result["r"].status_code == 200 and result["r"].json() == [1.5]
    assert server.proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)


def worker_pid(xs: list[float]) -> list[float]:
    """A model that answers with the PID of the process serving it, after ``xs[0]`` s."""
    import os as _os
    import time as _time

    _time.sleep(xs[0])
    return [float(_os.getpid())]


def test_multiple_workers(start_server, tmp_path):
    """``--workers 2`` means two processes answer: concurrent requests see two PIDs."""
    from concurrent.futures import ThreadPoolExecutor

    import mlem_lib.api as mlem

    mlem.save(worker_pid, str(tmp_path / "pid"), sample_data=[0.0])
    server = start_server(str(tmp_path / "pid"), "--workers", "2")

    def ask(_: int) -> int:  # a new connection per request, so any worker may accept it
        r = httpx.post(f"{server.url}/predict", json={"data": [0.2]}, timeout=30)
        assert r.status_code == 200, r.text
        return int(r.json()[0])

    pids: set[int] = set()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):  # until both workers answered; one batch almost always does
            pids.update(pool.map(ask, range(8)))
            if len(pids) >= 2:
                break
    assert len(pids) == 2, f"only the worker(s) {pids} answered 80 concurrent requests"
    assert server.pid not in pids  # the parent supervises; workers serve
    os.kill(server.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0


def test_cli_missing_model_is_one_line_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mlem_lib.cli", "serve", str(tmp_path / "nope"),
                          "--port", str(free_port())], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error:") and "Traceback" not in out.stderr
