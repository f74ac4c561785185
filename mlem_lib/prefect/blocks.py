"""Credential blocks the deploy tasks accept.

AWS uses the ecosystem's block, :class:`prefect_aws.AwsCredentials`; Heroku has
none, so this module defines :class:`HerokuCredentials`.

Example:
    >>> from pydantic import SecretStr
    >>> creds = HerokuCredentials(api_key=SecretStr("hrku-123"))
    >>> creds.api_key.get_secret_value()
    'hrku-123'
    >>> # creds.save("heroku-prod"); HerokuCredentials.load("heroku-prod") in a flow
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class HerokuCredentials(Block):
    """A Heroku Platform API key, stored encrypted by Prefect and masked in the UI."""

    _block_type_name: ClassVar[str] = "Heroku Credentials"
    _block_type_slug: ClassVar[str] = "heroku-credentials"
    _description: ClassVar[str] = "An API key for Heroku's Platform API and container registry."

    api_key: SecretStr = Field(description="Heroku API key (`heroku auth:token`).")


def deploy_options(aws_credentials: Any = None,
                   heroku_credentials: HerokuCredentials | None = None) -> dict[str, Any]:
    """The ``mlem_lib.api.deploy`` options that carry credentials from blocks.

    Example:
        >>> deploy_options(heroku_credentials=HerokuCredentials(api_key=SecretStr("k")))
        {'api_key': 'k'}
    """
    options: dict[str, Any] = {}
    if aws_credentials is not None:
        options["boto_session"] = aws_credentials.get_boto3_session()
    if heroku_credentials is not None:
        options["api_key"] = heroku_credentials.api_key.get_secret_value()
    return options
