"""boto3 calls that fail the mlem_lib way: one line, an error from our tree, true state.

:class:`AwsCalls` wraps a target's boto3 clients:

* **throttling** (``ThrottlingException`` and its cousins) is retried with growing
  pauses (botocore's own retries are off, so every attempt is counted here); when
  AWS keeps throttling the call becomes a :class:`~mlem_lib.errors.TargetNotReadyError`;
* **network errors** (``EndpointConnectionError``, connect/read timeouts, dropped
  connections) become one-line :class:`~mlem_lib.errors.TargetUnreachableError`;
  read-only calls (``Describe*``, ``List*``, ``Get*``, ``Head*``) are tried again
  first, since a blip must not end a 30-minute wait;
* refused or missing **credentials** become :class:`~mlem_lib.errors.CredentialsError`;
* every other ``ClientError`` is raised as is, for the caller to say what it means
  (:func:`describe` gives its code and message on one line).

Example:
    >>> class Service:  # stands in for a boto3 client here
    ...     def describe_thing(self, Name):
    ...         return {"Name": Name, "Status": "InService"}
    >>> calls = AwsCalls(lambda service: Service())
    >>> calls("demo", "describe_thing", Name="iris")["Status"]
    'InService'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlem_lib.deploy.wait import Backoff
from mlem_lib.errors import CredentialsError, TargetNotReadyError, TargetUnreachableError

THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "SlowDown", "RequestThrottled", "BandwidthLimitExceeded"})
CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException", "ExpiredToken",
    "ExpiredTokenException", "MissingAuthenticationToken", "InvalidSignatureException"})
NOT_FOUND_CODES = frozenset({
    "ValidationException", "ResourceNotFound", "404", "NoSuchBucket", "NotFound",
    "RepositoryNotFoundException", "NoSuchKey"})
READ_ONLY = ("describe_", "list_", "get_", "head_")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ``ClientError`` (0 for anything else)."""
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {})
               .get("HTTPStatusCode", 0))


def describe(exc: BaseException) -> str:
    """``Code: message`` of a ``ClientError``, on one line.

    Example:
        >>> from botocore.exceptions import ClientError
        >>> describe(ClientError({"Error": {"Code": "ValidationException",
        ...     "Message": "Cannot update in-progress endpoint"}}, "UpdateEndpoint"))
        'ValidationException: Cannot update in-progress endpoint'
    """
    error = getattr(exc, "response", {}).get("Error", {})
    message = str(error.get("Message") or exc).splitlines()[0] if (error or str(exc)) else ""
    return f"{error.get('Code') or type(exc).__name__}: {message}"


class AwsCalls:
    """Call boto3 operations with retries for throttling and errors from our tree.

    Args:
        client: returns the boto3 client of a service name.
        progress: receives a line when a call waits for throttling to pass.
        first: the first pause in seconds after a throttled call (pauses double).
        attempts: tries per call while AWS throttles it.
        sleep: the function that pauses.
    """

    def __init__(self, client: Callable[[str], Any],
                 progress: Callable[[str], None] | None = None, *, first: float = 0.5,
                 attempts: int = 8, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.progress = progress or (lambda message: None)
        self.first = first
        self.attempts = max(1, attempts)
        self.sleep = sleep

    def __call__(self, service: str, op: str, **kwargs: Any) -> Any:
        """``client(service).op(**kwargs)``.

        Raises:
            CredentialsError: no credentials, or AWS refused them.
            TargetUnreachableError: the service could not be reached.
            TargetNotReadyError: AWS kept throttling the call.
            botocore.exceptions.ClientError: any other error AWS answered.
        """
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        pauses = Backoff(self.first, 30.0, 2.0, sleep=self.sleep)
        network_tries = 3 if op.startswith(READ_ONLY) else 1
        throttled = 0
        while True:
            try:
                return getattr(self.client(service), op)(**kwargs)
            except (NoCredentialsError, PartialCredentialsError) as exc:
                raise CredentialsError(
                    f"no AWS credentials for {service}.{op} ({type(exc).__name__}): set the "
                    "AWS_* variables or a profile, or pass credentials (an AwsCredentials "
                    "block or a dict of its fields)") from None
            except (ConnectionError, HTTPClientError) as exc:
                network_tries -= 1
                if network_tries <= 0:
                    raise TargetUnreachableError(
                        f"cannot reach AWS {service} for {op}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0]}") from None
                pauses.pause()
            except ClientError as exc:
                code = error_code(exc)
                if code in CREDENTIAL_CODES or (http_status(exc) == 403
                                                and code not in THROTTLING_CODES):
                    raise CredentialsError(f"AWS refused the credentials for {service}.{op}: "
                                           f"{describe(exc)}") from None
                if code not in THROTTLING_CODES:
                    raise
                throttled += 1
                if throttled >= self.attempts:
                    raise TargetNotReadyError(
                        f"AWS kept throttling {service}.{op} ({code}) after {throttled} "
                        "attempts: the account's request rate is spent; try again later"
                    ) from None
                pause = pauses.pause()
                self.progress(f"AWS throttled {service}.{op} ({code}): retrying in "
                              f"{pause:.3g}s")

    def find(self, service: str, op: str, **kwargs: Any) -> dict[str, Any] | None:
        """Like calling, but ``None`` when AWS says the resource does not exist."""
        from botocore.exceptions import ClientError

        try:
            return self(service, op, **kwargs)  # type: ignore[no-any-return]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                return None
            raise
