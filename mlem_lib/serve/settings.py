"""Settings of the model server, from arguments or the environment.

Example:
    >>> ServerSettings(auth_token="s3cret").max_body_bytes
    104857600
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field

# environment variables the server (and its worker processes) read
ENV_MODEL = "MLEM_MODEL"
ENV_REPO = "MLEM_REPO"
ENV_AUTH_TOKEN = "MLEM_AUTH_TOKEN"
ENV_MAX_BODY_MB = "MLEM_MAX_BODY_MB"
ENV_SAGEMAKER_METHOD = "MLEM_SAGEMAKER_METHOD"

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_MB = 100.0


class ServerSettings(BaseModel):
    """How the app behaves: auth, body limit and the method ``/invocations`` calls.

    Attributes:
        auth_token: when set, model endpoints need ``Authorization: Bearer <token>``.
        max_body_mb: bodies larger than this get 413.
        sagemaker_method: the method ``POST /invocations`` calls unless a header says otherwise.
    """

    auth_token: str | None = None
    max_body_mb: float = Field(default=DEFAULT_MAX_BODY_MB, gt=0)
    sagemaker_method: str = "predict"

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object
                 ) -> ServerSettings:
        """Settings from ``MLEM_AUTH_TOKEN``, ``MLEM_MAX_BODY_MB`` and ``MLEM_SAGEMAKER_METHOD``.

        Keyword overrides that are not ``None`` win over the environment.

        Example:
            >>> ServerSettings.from_env({"MLEM_MAX_BODY_MB": "2"}).max_body_mb
            2.0
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get(ENV_AUTH_TOKEN):
            values["auth_token"] = env[ENV_AUTH_TOKEN]
        if env.get(ENV_MAX_BODY_MB):
            values["max_body_mb"] = env[ENV_MAX_BODY_MB]
        if env.get(ENV_SAGEMAKER_METHOD):
            values["sagemaker_method"] = env[ENV_SAGEMAKER_METHOD]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def default_port(env: Mapping[str, str] | None = None) -> int:
    """``SAGEMAKER_BIND_TO_PORT``, else Heroku's ``PORT``, else 8080.

    Example:
        >>> default_port({"PORT": "5000"})
        5000
    """
    env = os.environ if env is None else env
    for name in ("SAGEMAKER_BIND_TO_PORT", "PORT"):
        if env.get(name):
            return int(env[name])
    return DEFAULT_PORT
