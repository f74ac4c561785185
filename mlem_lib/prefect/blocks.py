"""Credential blocks, and reading the ``credentials`` parameter of tasks and flows.

AWS uses the ecosystem's block, ``prefect_aws.AwsCredentials``; Heroku has none, so
this module defines :class:`HerokuCredentials`. Prefect learns about it through the
``prefect.collections`` entry point (this module), so the server, workers and the UI
know the block type, and ``prefect block register -m mlem_lib.prefect.blocks``
registers it on a server started elsewhere.

Tasks and flows take one ``credentials`` parameter, whatever the target: a block, or
the name of a saved block as ``"<block-type-slug>/<block-name>"`` (what a deployment
parameter can hold); :func:`load_credentials` turns it into the block.

Example:
    >>> from pydantic import SecretStr
    >>> creds = HerokuCredentials(api_key=SecretStr("hrku-123"))
    >>> creds.api_key.get_secret_value()
    'hrku-123'
    >>> load_credentials(creds) is creds, load_credentials(None)
    (True, None)
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from mlem_lib.errors import CredentialsError


class HerokuCredentials(Block):
    """An API key for Heroku's Platform API and its container registry.

    The key is stored encrypted by Prefect and masked in the UI and in logs. Get one
    with ``heroku auth:token`` (short-lived) or ``heroku authorizations:create``.

    Example:
        Load stored Heroku credentials:
        ```python
        from mlem_lib.prefect.blocks import HerokuCredentials

        heroku_credentials_block = HerokuCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name: ClassVar[str] = "Heroku Credentials"
    _block_type_slug: ClassVar[str] = "heroku-credentials"
    _description: ClassVar[str] = (
        "An API key for Heroku's Platform API and container registry, used by mlem_lib to "
        "deploy models to Heroku.")
    _documentation_url: ClassVar[HttpUrl] = HttpUrl(
        "https://devcenter.heroku.com/articles/authentication")

    api_key: SecretStr = Field(
        description="The Heroku API key (`heroku auth:token` or `heroku authorizations:create`).")


def load_credentials(credentials: Block | str | None) -> Block | None:
    """The block ``credentials`` names: a block stays as it is, a name is loaded.

    Args:
        credentials: a block, ``"<block-type-slug>/<block-name>"`` of a saved block
            (``"heroku-credentials/prod"``, ``"aws-credentials/prod"``), or ``None``/``""``
            for none (the target then reads the environment).

    Raises:
        CredentialsError: the name has no block type, or no such block is saved.

    Example:
        >>> from mlem_lib.errors import CredentialsError
        >>> try:
        ...     load_credentials("prod")
        ... except CredentialsError as exc:
        ...     print(str(exc).split(":")[1])
         name a saved block as '<block-type-slug>/<block-name>', e.g. 'heroku-credentials/prod'
    """
    if credentials is None or credentials == "":
        return None
    if not isinstance(credentials, str):
        return credentials
    if "/" not in credentials:
        raise CredentialsError(f"credentials {credentials!r}: name a saved block as "
                               "'<block-type-slug>/<block-name>', e.g. 'heroku-credentials/prod'")
    try:
        block: Block = Block.load(credentials)  # type: ignore[assignment]  # sync here
    except (ValueError, KeyError) as exc:
        raise CredentialsError(f"credentials {credentials!r}: no such saved block ({exc}); "
                               "save one first, e.g. HerokuCredentials(api_key=...)"
                               ".save('prod')") from exc
    return block

