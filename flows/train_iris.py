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
from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from mlem_lib.prefect.flows import (
    PackageRequest,
    RegisterOptions,
    RolloutRequest,
    package_model,
    register_model,
    rollout_model,
)
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.tasks import ensure_workspace
from tasks.iris import call_model, docker_answers, train_model, write_local_declaration

_NAME = r"^[A-Za-z0-9][\w.-]*$"
_STAGE = r"^[a-z][a-z0-9-]*$"


class TrainIrisOptions(BaseModel):
    """``train_iris``: the demo job's knobs."""

    model_config = ConfigDict(extra="forbid")

    workspace: str = Field(
        default="demo-workspace",
        description="git+DVC workspace that is the registry (created if missing)")
    name: str = Field(default="iris", pattern=_NAME, description="model name")
    n_estimators: int = Field(default=50, ge=1, le=1000, description="trees in the forest")
    seed: int = Field(default=0, ge=0, description="random seed for the split and the forest")
    port: int = Field(default=8080, gt=0, lt=65536, description="port of the local deployment")
    runtime: Literal["auto", "process", "container"] = Field(
        default="auto", description="container if a Docker engine answers (auto), else process")
    package: Literal["auto", "pip", "docker", "none"] = Field(
        default="auto", description="docker image if a Docker engine answers (auto), else pip")
    base_image: str | None = Field(
        default=None, description="base image of docker builds (default: python:3.11-slim)")
    stage: str | None = Field(default="prod", pattern=_STAGE,
                              description="stage assigned after a successful rollout")


class TrainIrisResult(BaseModel):
    """What the demo produced: the version, where it runs and a few predictions."""

    version: str
    tag: str
    accuracy: float
    url: str
    runtime: str
    package: str
    predictions: list[Any]


@flow(name="train-iris", log_prints=True)
def train_iris(options: TrainIrisOptions | None = None) -> TrainIrisResult:
    """Train, register, package, roll out and call the iris model (the README's main job).

    Args:
        options: the workspace (registry), model name, forest size, port, runtime and
            packaging of the demo, and the stage to promote the version to.
    """
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
    ref = registered.tag
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
