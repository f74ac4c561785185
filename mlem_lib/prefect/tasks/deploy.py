"""Tasks that roll a model out to a declared target, check it and tear it down.

Credentials come as Prefect blocks: :class:`prefect_aws.AwsCredentials` for
SageMaker and :class:`mlem_lib.prefect.blocks.HerokuCredentials` for Heroku.

Example:
    >>> from prefect import flow
    >>> @flow
    ... def rollout():
    ...     state = deploy_model("deployments/local.yaml", "models/rf")  # doctest: +SKIP
    ...     smoke_test(state.url, X.head(3))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.blocks import HerokuCredentials
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.retry import retry_if_transient

if TYPE_CHECKING:
    from mlem_lib.deploy.state import DeploymentState, DeploymentStatus


def _credentials(declaration: str, aws_credentials: Any,
                 heroku_credentials: HerokuCredentials | None) -> Any:
    """The one ``credentials`` argument of the library: the block the target needs."""
    if aws_credentials is None or heroku_credentials is None:
        return aws_credentials if aws_credentials is not None else heroku_credentials
    from mlem_lib.deploy.declaration import load_declaration

    return heroku_credentials if load_declaration(declaration).type == "heroku" \
        else aws_credentials


def _options(declaration: str, aws_credentials: Any,
             heroku_credentials: HerokuCredentials | None, state_url: str | None,
             options: dict[str, Any] | None, progress: bool = True) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "credentials": _credentials(declaration, aws_credentials, heroku_credentials)}
    if progress:
        opts["progress"] = run_logger().info  # the target's steps go to the run log
    if state_url is not None:
        opts["state_url"] = state_url
    opts.update(options or {})
    return opts


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE, task_run_name="deploy-{model}")
def deploy_model(declaration: str, model: str, aws_credentials: Any = None,
                 heroku_credentials: HerokuCredentials | None = None,
                 state_url: str | None = None,
                 options: dict[str, Any] | None = None) -> DeploymentState:
    """Create or update the deployment a declaration describes so it runs ``model``.

    Rerunning with the model already deployed does nothing (the library compares hashes).

    Args:
        declaration: a YAML file in ``deployments/`` (``type: local|heroku|sagemaker``).
        model: the saved model's path.
        aws_credentials: a ``prefect_aws.AwsCredentials`` block (SageMaker).
        heroku_credentials: a :class:`HerokuCredentials` block (Heroku).
        state_url: where the deployment's state file lives (default: next to the declaration).
        options: more options of ``mlem_lib.api.deploy``.

    Returns:
        The recorded ``DeploymentState`` (``url``, ``model_hash``, ``previous``...).

    Example:
        >>> deploy_model.fn("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
        'http://127.0.0.1:8080'
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    logger.info("deploying %s with %s", model, declaration)
    state = mlem.deploy(declaration, model, **_options(
        declaration, aws_credentials, heroku_credentials, state_url, options))
    logger.info("%s (%s) runs model %s at %s", state.name, state.type, state.model_hash[:12],
                state.url)
    return state


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE)
def deployment_status(declaration: str, aws_credentials: Any = None,
                      heroku_credentials: HerokuCredentials | None = None,
                      state_url: str | None = None,
                      options: dict[str, Any] | None = None) -> DeploymentStatus:
    """What a deployment runs now (its model hash) and whether it answers.

    Example:
        >>> deployment_status.fn("deployments/local.yaml").healthy  # doctest: +SKIP
        True
    """
    import mlem_lib.api as mlem

    status = mlem.status(declaration, **_options(
        declaration, aws_credentials, heroku_credentials, state_url, options, progress=False))
    run_logger().info("%s: deployed=%s healthy=%s model %s", status.name, status.deployed,
                          status.healthy, (status.model_hash or "-")[:12])
    return status


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE)
def remove_deployment(declaration: str, aws_credentials: Any = None,
                      heroku_credentials: HerokuCredentials | None = None,
                      state_url: str | None = None,
                      options: dict[str, Any] | None = None) -> None:
    """Tear a deployment down (nothing happens when it is already gone).

    Example:
        >>> remove_deployment.fn("deployments/local.yaml")  # doctest: +SKIP
    """
    import mlem_lib.api as mlem

    mlem.remove(declaration, **_options(declaration, aws_credentials, heroku_credentials,
                                        state_url, options))
    run_logger().info("removed the deployment of %s", declaration)


def _payload(data: Any) -> Any:
    """JSON values go as they are; DataFrames, arrays... in the server's wire format."""
    if data is None or isinstance(data, (dict, list, str, int, float, bool)):
        return data
    from mlem_lib.data.base import infer_data_type

    return infer_data_type(data).to_json(data)


def _wait_healthy(url: str, timeout: float) -> None:
    """The library's readiness poll, its failure reported as a failed smoke test."""
    from mlem_lib.deploy.smoke import wait_healthy
    from mlem_lib.errors import DeploymentError, SmokeTestError

    try:
        wait_healthy(url, timeout, poll=0.5)
    except DeploymentError as exc:
        raise SmokeTestError(str(exc)) from exc


# No Prefect retries: the task already waits for readiness, and a wrong answer stays wrong.
@task(cache_policy=NO_CACHE, task_run_name="smoke-test-{url}")
def smoke_test(url: str, data: Any = None, method: str = "predict",
               auth_token: str | None = None, timeout: float = 60.0) -> Any:
    """Wait for ``url`` to be healthy, then call ``method`` on ``data`` and check the answer.

    Args:
        url: the deployment's base URL.
        data: sample input (a DataFrame, an array or JSON); ``None`` only checks health.
        method: the model method to call.
        auth_token: bearer token when the server requires one.
        timeout: seconds to wait for ``/health``.

    Returns:
        The decoded JSON answer (``None`` when no data was sent).

    Raises:
        SmokeTestError: the server did not become healthy or the call did not return 200
            with a non-empty answer; the message says which and why.

    Example:
        >>> smoke_test.fn("http://127.0.0.1:8080", [[5.1, 3.5, 1.4, 0.2]])  # doctest: +SKIP
        [0]
    """
    import httpx

    from mlem_lib.errors import SmokeTestError

    logger = run_logger()
    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
    with httpx.Client(headers=headers, timeout=30.0, trust_env=False) as client:
        _wait_healthy(url, timeout)
        if data is None:
            logger.info("%s is healthy", url)
            return None
        try:
            response = client.post(f"{url}/{method}", json={"data": _payload(data)})
        except httpx.HTTPError as exc:
            raise SmokeTestError(f"POST {url}/{method} failed: {type(exc).__name__}: {exc}"
                                 ) from exc
    if response.status_code != 200:
        raise SmokeTestError(f"POST {url}/{method} answered HTTP {response.status_code}: "
                             f"{response.text[:500]}")
    try:
        answer = response.json()
    except ValueError as exc:
        raise SmokeTestError(f"POST {url}/{method} answered non-JSON: {response.text[:200]}"
                             ) from exc
    if answer is None or answer == [] or answer == {}:
        raise SmokeTestError(f"POST {url}/{method} answered an empty result: {answer!r}")
    logger.info("smoke test passed: %s/%s answered %s", url, method, str(answer)[:200])
    return answer
