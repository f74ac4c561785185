"""The demo project's own tasks: train the iris forest, write its local declaration, call it.

They sit next to mlem_lib's tasks without clashing: ours are imported as
``mlem_lib.prefect.tasks``, these as the project's ``tasks``.

Example:
    >>> docker_answers() in (True, False)
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.logs import run_logger


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


def write_local_declaration(root: str, name: str, port: int, runtime: str,
                            base: str | None = None) -> str:
    """Write ``.deploy/<name>-local.yaml`` (a ``type: local`` declaration); return its path.

    Example:
        >>> import tempfile
        >>> path = write_local_declaration(tempfile.mkdtemp(), "iris", 8080, "process")
        >>> print(Path(path).read_text().strip())
        type: local
        name: iris-local
        runtime: process
        host: 127.0.0.1
        port: 8080
    """
    import yaml

    folder = os.path.join(root, ".deploy")
    os.makedirs(folder, exist_ok=True)
    decl: dict[str, object] = {"type": "local", "name": f"{name.lower()}-local",
                               "runtime": runtime, "host": "127.0.0.1", "port": port}
    if base:
        decl["base"] = base
    path = os.path.join(folder, f"{name.lower()}-local.yaml")
    body = yaml.safe_dump(decl, sort_keys=False)
    if not os.path.exists(path) or Path(path).read_text() != body:
        with open(path, "w") as f:
            f.write(body)
    return path
