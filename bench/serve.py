"""Benchmark ``mlem serve`` against the raw in-process ``predict`` (and real MLEM 0.4.14).

For an iris LogisticRegression and RandomForest: requests/s and p50/p99 latency of a
one-row and a 1000-row ``POST /predict`` with 1 client and 8 concurrent clients, all on
127.0.0.1, next to the in-process ``model.predict`` time measured in the same run. When
the MLEM side venv exists (``scripts/mlem-side-venv.sh``; env ``MLEM_SIDE_VENV``), MLEM's
own server is measured the same way with the same request bodies.

    .venv/bin/python bench/serve.py            # prints a markdown table
    .venv/bin/python bench/serve.py --quick    # fewer requests

Every loop is bounded by a request count and a time budget; every server is a child
process stopped by its PID.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CELL_BUDGET_S = 20.0

MLEM_TRAIN = f"""
import sys
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
import mlem.api
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = {COLUMNS!r}
mlem.api.save(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1] + "/lr", sample_data=X)
mlem.api.save(RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y),
              sys.argv[1] + "/rf", sample_data=X)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server child process; ready when ``ready_path`` answers 200."""

    def __init__(self, argv: list[str], port: int, ready_path: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO_ROOT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{argv[:3]} did not come up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@dataclass
class Result:
    requests: int
    rps: float
    p50: float
    p99: float


def load(url: str, body: bytes, headers: dict[str, str], clients: int, per_client: int
         ) -> Result:
    """``clients`` threads, each with its own keep-alive connection, ``per_client`` requests."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    deadline = time.monotonic() + CELL_BUDGET_S

    def worker() -> None:
        mine: list[float] = []
        with httpx.Client(timeout=60) as http:
            http.post(url, content=body, headers=headers)  # warm the connection
            for _ in range(per_client):
                if time.monotonic() > deadline:
                    break
                t = time.perf_counter()
                r = http.post(url, content=body, headers=headers)
                mine.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    break
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{url}: {errors[0]}")
    latencies.sort()
    return Result(len(latencies), len(latencies) / wall,
                  1000 * latencies[len(latencies) // 2],
                  1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])


def raw_ms(model: object, X: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(X)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def side_venv() -> Path | None:
    root = Path(os.environ.get("MLEM_SIDE_VENV") or REPO_ROOT / ".venv-mlem")
    return root if (root / "bin" / "mlem").exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--no-mlem", action="store_true", help="skip real MLEM's server")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0

    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import mlem_lib.api as mlem

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    models = {"LogisticRegression": LogisticRegression(max_iter=500).fit(X, y),
              "RandomForest(100)": RandomForestClassifier(n_estimators=100,
                                                          random_state=0).fit(X, y)}
    one = X.head(1)
    big = pd.concat([X] * 7, ignore_index=True).head(1000)
    bodies = {
        "1 row": orjson.dumps({"data": {"values": one.to_dict("records")}}),
        "1000 rows": orjson.dumps({"data": {"values": big.to_dict("records")}}),
    }
    buf = io.BytesIO()
    big.to_parquet(buf, index=False)
    parquet = buf.getvalue()
    json_headers = {"Content-Type": "application/json"}
    # (requests for 1 client, requests shared by 8 clients)
    counts = {"1 row": (int(2000 * scale), int(800 * scale)),
              "1000 rows": (int(300 * scale), int(160 * scale))}

    tmp = Path(tempfile.mkdtemp(prefix="mlem-bench-"))
    venv = None if args.no_mlem else side_venv()
    if venv is not None:
        subprocess.run([str(venv / "bin" / "python"), "-c", MLEM_TRAIN, str(tmp / "mlem")],
                       check=True, env={**os.environ, "MLEM_NO_ANALYTICS": "true"},
                       capture_output=True)

    rows: list[str] = []
    for key, (name, model) in zip(("lr", "rf"), models.items(), strict=True):
        path = str(tmp / key)
        mlem.save(model, path, sample_data=X)
        raw = {"1 row": raw_ms(model, one, 300), "1000 rows": raw_ms(model, big, 50)}
        servers: list[tuple[str, list[str], str, dict[str, str]]] = []
        port = free_port()
        servers.append(("mlem_lib", [sys.executable, "-m", "mlem_lib.cli", "serve", path,
                                     "--port", str(port)], "/health", {}))
        if venv is not None:
            mport = free_port()
            servers.append(("MLEM 0.4.14", [str(venv / "bin" / "mlem"), "serve", "fastapi",
                                            "--model", str(tmp / "mlem" / key), "--host",
                                            "127.0.0.1", "--port", str(mport)],
                            "/interface.json", {"MLEM_NO_ANALYTICS": "true"}))
        for label, argv, ready, env in servers:
            port_ = int(argv[argv.index("--port") + 1])
            server = Server(argv, port_, ready, tmp / f"{key}-{port_}.log", env)
            try:
                cases = [(payload, bodies[payload], json_headers) for payload in bodies]
                if label == "mlem_lib":
                    cases.append(("1000 rows parquet->npy", parquet,
                                  {"Content-Type": "application/x-parquet",
                                   "Accept": "application/x-npy"}))
                for payload, body, headers in cases:
                    single, multi = counts["1 row" if payload == "1 row" else "1000 rows"]
                    for clients, per_client in ((1, single), (8, max(1, multi // 8))):
                        res = load(server.url + "/predict", body, headers, clients,
                                   per_client)
                        base = raw["1 row" if payload == "1 row" else "1000 rows"]
                        rows.append(f"| {label} | {name} | {payload} | {clients} | "
                                    f"{res.requests} | {res.rps:.0f} | {res.p50:.2f} | "
                                    f"{res.p99:.2f} | {base:.2f} | {res.p50 - base:+.2f} |")
                        print(rows[-1], file=sys.stderr, flush=True)
            finally:
                server.stop()

    print("| server | model | payload | clients | requests | req/s | p50 ms | p99 ms | "
          "raw predict ms | p50 - raw ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          "client threads and server share the machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
