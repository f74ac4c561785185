"""``train_iris``: the demo job, from training to a model answering over HTTP.

Train a random forest on iris, register it in a git + DVC workspace (created if
missing), package it (a docker image when a Docker engine answers, else a pip
package), roll it out to the local target (a container with Docker, else a
background process), call it at its URL and print the URL.

Run it with Prefect's embedded server::

    python -m flows.train_iris                 # defaults: ./demo-workspace, port 8080
    python -m flows.train_iris --port 8090 --runtime process

Rerunning is cheap: the same seed trains the same model, which is already
registered, packaged (cached) and deployed (same hash: nothing to do).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from flows.package_model import package_model
from flows.params import PackageRequest, RegisterOptions, RolloutRequest, TrainIrisOptions
from flows.register_model import register_model
from flows.rollout_model import rollout_model
from flows.workspace import ensure_workspace, write_local_declaration
from tasks.logs import run_logger


class TrainIrisResult(BaseModel):
    """What the demo produced: the version, where it runs and a few predictions."""

    version: str
    tag: str
    accuracy: float
    url: str
    runtime: str
    package: str
    predictions: list[Any]


@task(cache_policy=NO_CACHE)
def train_model(n_estimators: int, seed: int) -> tuple[Any, Any, Any, dict[str, float]]:
    """Fit a random forest on 80 % of iris; return (model, X_train, X_test, metrics)."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2,
                                                        random_state=seed, stratify=y)
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed)
    model.fit(X_train, y_train)
    accuracy = float(accuracy_score(y_test, model.predict(X_test)))
    run_logger().info("trained a %d-tree random forest: test accuracy %.3f",
                          n_estimators, accuracy)
    return model, X_train, X_test, {"accuracy": accuracy}


def docker_answers() -> bool:
    """True when a Docker engine answers at ``DOCKER_HOST`` (or the default socket)."""
    from mlem_lib.errors import DockerUnavailableError

    try:
        from mlem_lib.build.docker import docker_client

        docker_client().close()
    except (DockerUnavailableError, ImportError):
        return False
    return True


@task(cache_policy=NO_CACHE, task_run_name="call-{url}")
def call_model(url: str, data: Any) -> list[Any]:
    """Call ``predict`` at ``url`` through the HTTP client, as a user of the service would."""
    from mlem_lib.client import HTTPClient

    with HTTPClient(url) as client:
        result = client.predict(data)
    predictions = result.tolist() if hasattr(result, "tolist") else list(result)
    run_logger().info("%s/predict answered %s", url, predictions)
    return predictions


@flow(name="train-iris", log_prints=True)
def train_iris(options: TrainIrisOptions | None = None) -> TrainIrisResult:
    """Train, register, package, roll out and call the iris model (the README's main job)."""
    options = options or TrainIrisOptions()
    logger = run_logger()
    workspace = ensure_workspace(options.workspace)
    model, X_train, X_test, metrics = train_model(options.n_estimators, options.seed)
    registered = register_model(
        model, RegisterOptions(name=options.name, repo=workspace,
                               description="Random forest on the iris data set (demo)",
                               labels=["demo", "iris"]),
        sample_data=X_train, metrics=metrics)
    docker = docker_answers() if "auto" in (options.runtime, options.package) else False
    runtime = options.runtime if options.runtime != "auto" else (
        "container" if docker else "process")
    package = options.package if options.package != "auto" else ("docker" if docker else "pip")
    logger.info("Docker engine %s: packaging as %s, running as a %s",
                "answers" if docker else "not found", package, runtime)
    ref = f"{registered.name}@{registered.version}"
    if package != "none":
        package_model(PackageRequest(model=ref, repo=workspace, pip=package == "pip",
                                     docker=package == "docker", base=options.base_image,
                                     target=os.path.join(workspace, "build")))
    declaration = write_local_declaration(workspace, options.name, options.port, runtime,
                                          base=options.base_image)
    sample = X_test.head(3).to_dict("records")
    rollout = rollout_model(RolloutRequest(model=ref, repo=workspace, declaration=declaration,
                                           sample=sample, stage=options.stage))
    url = rollout.url or ""
    predictions = call_model(url, X_test.head(5))
    body = json.dumps({"data": {"values": X_test.head(1).to_dict("records")}})
    print(f"iris model {ref} answers at {url}\n  try: curl -X POST {url}/predict "
          f"-H 'Content-Type: application/json' -d '{body}'")
    return TrainIrisResult(version=registered.version, tag=registered.tag,
                           accuracy=metrics["accuracy"], url=url, runtime=runtime,
                           package=package, predictions=predictions)


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.train_iris``: run the demo and print the URL and the runtime."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.train_iris",
        description="Train an iris model, register it in a git+DVC workspace, package it, "
                    "roll it out locally and call it (Prefect's embedded server is used "
                    "unless PREFECT_API_URL is set).")
    defaults = TrainIrisOptions()
    parser.add_argument("--workspace", default=defaults.workspace,
                        help="git+DVC workspace (created if missing; default: %(default)s)")
    parser.add_argument("--name", default=defaults.name, help="model name (%(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help="port of the local deployment (%(default)s)")
    parser.add_argument("--runtime", choices=["auto", "process", "container"],
                        default=defaults.runtime, help="how the model runs (%(default)s)")
    parser.add_argument("--package", choices=["auto", "pip", "docker", "none"],
                        default=defaults.package, help="what to build (%(default)s)")
    parser.add_argument("--base-image", default=None,
                        help="base image of docker builds (default: python:3.11-slim)")
    parser.add_argument("--stage", default=defaults.stage,
                        help="stage assigned after the rollout (%(default)s)")
    args = parser.parse_args(argv)
    options = TrainIrisOptions(workspace=args.workspace, name=args.name, port=args.port,
                               runtime=args.runtime, package=args.package,
                               base_image=args.base_image, stage=args.stage or None)
    started = time.monotonic()
    result = train_iris(options)
    print(f"\nmodel {result.tag} (accuracy {result.accuracy:.3f}) runs as a {result.runtime} "
          f"at {result.url}\npredictions for 5 test rows: {result.predictions}\n"
          f"done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(result.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
