"""Tasks that roll a model out to a declared target, check it, roll it back, tear it down.

Every task takes one ``credentials`` parameter, whatever the target: a block
(``prefect_aws.AwsCredentials``, :class:`~mlem_lib.prefect.blocks.HerokuCredentials`,
a plugin target's block) or a saved block's name such as ``"heroku-credentials/prod"``.
The target checks it against the credentials it declares, so a new target needs no
change here.

Example:
    >>> from prefect import flow
    >>> @flow
    ... def rollout():
    ...     state = deploy_model("deployments/heroku.yaml", "models/rf",
    ...                          credentials="heroku-credentials/prod")  # doctest: +SKIP
    ...     smoke_test(state.url, X.head(3), model_hash=state.model_hash)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE

from mlem_lib.prefect.blocks import load_credentials
from mlem_lib.prefect.logs import run_logger
from mlem_lib.prefect.retry import retry_if_transient

if TYPE_CHECKING:
    from mlem_lib.deploy.state import DeploymentState, DeploymentStatus

Credentials = Block | str | None


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE, task_run_name="deploy-{model}")
def deploy_model(declaration: str, model: str, credentials: Credentials = None,
                 repo: str | None = None, state_url: str | None = None) -> DeploymentState:
    """Create or update the deployment a declaration describes so it runs ``model``.

    The library smoke-tests the new version and puts the previous one back when it
    fails; rerunning with the model already deployed does nothing (it compares hashes).

    Args:
        declaration: a YAML declaration (``type: local|heroku|sagemaker`` or a plugin's).
        model: the saved model's path, or a registry reference (``rf@v1.2.0``, ``rf#prod``).
        credentials: a block or a saved block's name (``"heroku-credentials/prod"``);
            ``None``: the target reads the environment.
        repo: the git repository holding a registry reference.
        state_url: where the deployment's state file lives (default: next to the declaration).

    Returns:
        The recorded ``DeploymentState`` (``url``, ``model_hash``, ``previous``...).

    Raises:
        RolledBackError: the new version failed (``reason``) and the previous one runs again.

    Example:
        >>> deploy_model.fn("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
        'http://127.0.0.1:8080'
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    logger.info("deploying %s with %s", model, declaration)
    state = mlem.deploy(declaration, model, credentials=load_credentials(credentials),
                        repo=repo, state_url=state_url, progress=logger.info)
    logger.info("%s (%s) runs model %s at %s", state.name, state.type, state.model_hash[:12],
                state.url)
    return state


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE)
def deployment_status(declaration: str, credentials: Credentials = None,
                      state_url: str | None = None) -> DeploymentStatus:
    """What a deployment runs now (its model hash) and whether it answers.

    Example:
        >>> deployment_status.fn("deployments/local.yaml").healthy  # doctest: +SKIP
        True
    """
    import mlem_lib.api as mlem

    status = mlem.status(declaration, credentials=load_credentials(credentials),
                         state_url=state_url)
    run_logger().info("%s: deployed=%s healthy=%s model %s", status.name, status.deployed,
                      status.healthy, (status.model_hash or "-")[:12])
    return status


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE)
def rollback_deployment(declaration: str, credentials: Credentials = None,
                        state_url: str | None = None) -> DeploymentState:
    """Run the deployment's previous version again (a second rollback undoes the first).

    Raises:
        DeploymentError: nothing is deployed, or no previous version is recorded.

    Example:
        >>> rollback_deployment.fn("deployments/local.yaml").model_hash  # doctest: +SKIP
        'ab12...'
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    state = mlem.rollback(declaration, credentials=load_credentials(credentials),
                          state_url=state_url, progress=logger.info)
    logger.info("%s runs model %s again at %s", state.name, state.model_hash[:12], state.url)
    return state


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=retry_if_transient,
      cache_policy=NO_CACHE)
def remove_deployment(declaration: str, credentials: Credentials = None,
                      state_url: str | None = None) -> None:
    """Tear a deployment down (nothing happens when it is already gone).

    Example:
        >>> remove_deployment.fn("deployments/local.yaml")  # doctest: +SKIP
    """
    import mlem_lib.api as mlem

    logger = run_logger()
    mlem.remove(declaration, credentials=load_credentials(credentials), state_url=state_url,
                progress=logger.info)
    logger.info("removed the deployment of %s", declaration)


# No Prefect retries: the smoke test already waits for readiness, and a wrong answer stays
# wrong.
@task(cache_policy=NO_CACHE, task_run_name="smoke-test-{url}")
def smoke_test(url: str, data: Any = None, method: str = "predict",
               model_hash: str | None = None, auth_token: str | None = None,
               timeout: float = 60.0) -> Any:
    """Wait until ``url`` serves the model, then call ``method`` on ``data``.

    The library's one smoke test (:func:`mlem_lib.deploy.smoke.smoke_test`).

    Args:
        url: the deployment's base URL.
        data: sample input (a DataFrame, an array or JSON); ``None`` only checks health.
        method: the model method to call.
        model_hash: the hash ``/health`` must report (``None``: any model).
        auth_token: bearer token when the server requires one.
        timeout: seconds to wait for ``/health``.

    Returns:
        The decoded JSON answer (``None`` when no data was sent).

    Raises:
        SmokeTestError: the server did not become healthy, serves another model, or the
            call did not answer 200 with a non-empty answer; the message says which.

    Example:
        >>> smoke_test.fn("http://127.0.0.1:8080", [[5.1, 3.5, 1.4, 0.2]])  # doctest: +SKIP
        [0]
    """
    from mlem_lib.deploy.smoke import smoke_test as check

    answer = check(url, model_hash=model_hash, data=data, method=method,
                   auth_token=auth_token, timeout=timeout)
    if data is None:
        run_logger().info("%s is healthy", url)
    else:
        run_logger().info("smoke test passed: %s/%s answered %s", url, method,
                          str(answer)[:200])
    return answer
