"""Benchmark ``mlem build``: pip package and Docker image for an iris RandomForest.

Measures, in one run: the raw in-process ``predict`` of one row (the reference),
building the pip package, generating the Docker context, a cold image build
(``nocache``, every requirement downloaded and installed), a warm rebuild of the
same model, a rebuild after the model changed (only the model layers), the image
size next to its base image, the time from ``docker run`` to ``/ping`` answering,
and the one-row ``POST /predict`` latency against the container.

    eval "$(scripts/docker-env.sh all)"
    .venv/bin/python bench/build.py [--base mlem-test-base:latest] [--no-cold]

Prints a markdown table. Containers and the bench's image tags are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IMAGE = "mlem-bench-iris"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=os.environ.get("MLEM_TEST_BASE_IMAGE",
                                                         "mlem-test-base:latest"),
                        help="base image (default: the test base with the host's pip config)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold (nocache) build")
    parser.add_argument("--requests", type=int, default=200, help="predict requests to time")
    args = parser.parse_args()

    if not os.environ.get("DOCKER_HOST") and os.path.exists("/tmp/mlem-docker/docker.sock"):
        os.environ["DOCKER_HOST"] = "unix:///tmp/mlem-docker/docker.sock"

    import httpx
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    import mlem_lib.api as mlem
    from mlem_lib.build.docker import docker_client
    from mlem_lib.build.dockerfile import build_docker_dir
    from mlem_lib.build.pip import build_pip

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    row = X.head(1)
    rows: list[tuple[str, str]] = []

    for _ in range(20):
        model.predict(row)
    raw = []
    for _ in range(200):
        t0 = time.perf_counter()
        model.predict(row)
        raw.append(time.perf_counter() - t0)
    raw_ms = statistics.median(raw) * 1000
    rows.append(("raw in-process `model.predict` (1 row, p50)", f"{raw_ms:.2f} ms"))

    client = docker_client()
    started: list = []
    with tempfile.TemporaryDirectory() as tmp:
        mlem.save(model, f"{tmp}/rf", sample_data=X)
        pkg, t = timed(build_pip, f"{tmp}/rf", f"{tmp}/pip", package_name="iris-rf")
        rows.append(("`build pip` (wheel + sdist + mlem_lib wheel)", f"{t:.2f} s"))
        rows.append(("model wheel size", f"{os.path.getsize(pkg.wheel) / 1e3:.0f} kB"))
        _, t = timed(build_docker_dir, f"{tmp}/rf", f"{tmp}/ctx")
        rows.append(("`build docker-dir` (context only)", f"{t:.2f} s"))

        def quiet(line: str) -> None:
            pass

        try:
            if not args.no_cold:
                _, t = timed(mlem.build, f"{tmp}/rf", "docker",
                             {"image": f"{IMAGE}:cold", "base": args.base, "nocache": True},
                             progress=quiet)
                rows.append(("cold image build (no cache: pip downloads and installs)",
                             f"{t:.1f} s"))
            _, t = timed(mlem.build, f"{tmp}/rf", "docker",
                         {"image": f"{IMAGE}:1", "base": args.base}, progress=quiet)
            rows.append(("warm rebuild, same model (all layers cached)", f"{t:.1f} s"))
            other = RandomForestClassifier(n_estimators=100, random_state=1).fit(X, y)
            mlem.save(other, f"{tmp}/rf", sample_data=X)
            img2, t = timed(mlem.build, f"{tmp}/rf", "docker",
                            {"image": f"{IMAGE}:2", "base": args.base}, progress=quiet)
            rows.append(("rebuild after a model change (model layers only)", f"{t:.1f} s"))
            base_size = client.images.get(args.base).attrs["Size"]
            rows.append((f"image size (base `{args.base}`: {mb(base_size)})",
                         f"{mb(img2.size or 0)}"))
            rows.append(("image size minus base", mb((img2.size or 0) - base_size)))

            port = free_port()
            url = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            container = client.containers.run(img2.image_id, detach=True, network_mode="host",
                                              environment={"PORT": str(port)})
            started.append(container)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/ping", timeout=1, trust_env=False).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            else:
                raise RuntimeError(container.logs().decode()[-2000:])
            rows.append(("`docker run` to `/ping` answering", f"{time.perf_counter() - t0:.1f} s"))
            body = {"data": {"values": row.to_dict(orient="records")}}
            lat = []
            with httpx.Client(trust_env=False, timeout=10) as http:
                for _ in range(10):
                    http.post(url + "/predict", json=body)
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    resp = http.post(url + "/predict", json=body)
                    lat.append(time.perf_counter() - t0)
                    resp.raise_for_status()
            p50 = statistics.median(lat) * 1000
            rows.append(("container `POST /predict` (1 row, p50)",
                         f"{p50:.2f} ms ({p50 / raw_ms:.1f}x raw)"))
        finally:
            for c in started:
                with contextlib.suppress(Exception):
                    c.remove(force=True)
            for tag in ("cold", "1", "2"):
                with contextlib.suppress(Exception):
                    client.images.remove(f"{IMAGE}:{tag}")

    print(f"\n### mlem build: iris RandomForest (100 trees), base `{args.base}`\n")
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
