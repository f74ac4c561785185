"""One SageMaker endpoint's lifecycle, read the way SageMaker documents it.

``CreateEndpoint`` answers at once with the endpoint ``Creating``; it becomes
``InService`` once its container passes ``/ping``, or ``Failed`` with a
``FailureReason``. ``UpdateEndpoint`` needs an ``InService`` endpoint, sets it
``Updating`` and brings the new config up beside the old one, which keeps
serving. When the new config does not come up, SageMaker puts the endpoint back
``InService`` **on the old config** with ``FailureReason`` set: :meth:`Endpoint.wait`
sees that at once (the config name did not change while the endpoint was modified)
and raises :class:`~mlem_lib.errors.UpdateRevertedError` instead of waiting for a
state that never comes.

A live endpoint is never deleted to change it: only ``update_endpoint`` switches
configs. A ``Failed`` endpoint serves nothing, so it may be deleted and created
again.

Example:
    >>> ep = Endpoint(calls, "iris", poll=1.0, timeout=1800)  # doctest: +SKIP
    >>> before = ep.update("iris-3f2a")  # doctest: +SKIP
    >>> ep.wait("iris-3f2a", before)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlem_lib.deploy.aws import AwsCalls, describe, error_code
from mlem_lib.deploy.wait import wait_for
from mlem_lib.errors import (
    DeploymentError,
    TargetFailedError,
    TargetNotReadyError,
    UpdateRevertedError,
)

IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
POLL_CAP = 30.0  # the longest pause between two DescribeEndpoint calls


class Endpoint:
    """Create, update, wait for and delete one endpoint.

    Args:
        calls: the target's :class:`~mlem_lib.deploy.aws.AwsCalls`.
        name: the endpoint's name.
        poll: the first pause between status reads (they grow up to 30 s).
        timeout: how long a wait lasts (the declaration's ``wait_timeout``).
    """

    def __init__(self, calls: AwsCalls, name: str, *, poll: float, timeout: float,
                 progress: Callable[[str], None] | None = None) -> None:
        self.calls = calls
        self.name = name
        self.poll = poll
        self.timeout = timeout
        self.progress = progress or (lambda message: None)

    def describe(self) -> dict[str, Any] | None:
        """``DescribeEndpoint``'s answer, or None when there is no such endpoint."""
        return self.calls.find("sagemaker", "describe_endpoint", EndpointName=self.name)

    @staticmethod
    def summary(desc: dict[str, Any] | None) -> str:
        """``InService on config X`` (what a message says about the endpoint now)."""
        if desc is None:
            return "missing"
        return f"{desc.get('EndpointStatus')} on config {desc.get('EndpointConfigName')}"

    def create(self, config: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.calls("sagemaker", "create_endpoint", EndpointName=self.name,
                       EndpointConfigName=config)
        except ClientError as exc:
            raise DeploymentError(f"create_endpoint {self.name} with config {config} failed: "
                                  f"{describe(exc)}") from None

    def update(self, config: str) -> dict[str, Any]:
        """Switch the endpoint to ``config`` with ``UpdateEndpoint``; return its state before.

        Raises:
            TargetNotReadyError: another operation (an update, a creation) is in progress.
            DeploymentError: SageMaker refused the update; the message says what runs.
        """
        from botocore.exceptions import ClientError

        before = self.describe()
        if before is None:
            raise DeploymentError(f"endpoint {self.name} does not exist: nothing to update")
        status = str(before.get("EndpointStatus"))
        if status in IN_PROGRESS:
            raise self._busy(before)
        try:
            self.calls("sagemaker", "update_endpoint", EndpointName=self.name,
                       EndpointConfigName=config)
        except ClientError as exc:
            now = self.describe()
            if error_code(exc) == "ValidationException" and "in-progress" in str(exc):
                raise self._busy(now) from None
            raise DeploymentError(
                f"update_endpoint {self.name} to config {config} failed: {describe(exc)}; "
                f"the endpoint is {self.summary(now)}") from None
        return before

    def _busy(self, desc: dict[str, Any] | None) -> TargetNotReadyError:
        return TargetNotReadyError(
            f"endpoint {self.name} is {self.summary(desc)}: another operation is in "
            "progress; wait until it is InService and run again")

    def wait(self, config: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
        """Wait until the endpoint is ``InService`` on ``config``.

        Args:
            before: the state :meth:`update` returned (None after :meth:`create`).

        Raises:
            TargetFailedError: the endpoint went ``Failed``.
            UpdateRevertedError: the update failed and the old config serves again.
            DeploymentError: the endpoint vanished, or the wait timed out (the message
                says what the endpoint is doing).
        """
        seen: dict[str, Any] = {"progress": False, "last": None}

        def check() -> dict[str, Any] | None:
            desc = self.describe()
            seen["last"] = desc
            if desc is None:
                raise DeploymentError(f"endpoint {self.name} disappeared while waiting "
                                      f"for config {config}")
            status = str(desc.get("EndpointStatus"))
            reason = str(desc.get("FailureReason") or "")
            if status == "InService" and desc.get("EndpointConfigName") == config:
                return desc
            if status == "Failed":
                raise TargetFailedError(f"endpoint {self.name} failed: "
                                        f"{reason or 'no reason given'}", reason=reason)
            if status in IN_PROGRESS:
                seen["progress"] = True
                return None
            if before is not None and status == "InService" and self._reverted(
                    desc, before, bool(seen["progress"])):
                old = str(desc.get("EndpointConfigName"))
                raise UpdateRevertedError(
                    f"the update of endpoint {self.name} to config {config} failed and "
                    f"SageMaker put config {old} back: {reason or 'no reason given'}",
                    reason=reason or "no reason given", restored=old)
            return None  # the change has not started yet

        def timed_out() -> DeploymentError:
            return DeploymentError(
                f"endpoint {self.name} did not reach InService on config {config} within "
                f"{self.timeout:g}s (now {self.summary(seen['last'])}; field 'wait_timeout')")

        return wait_for(check, timeout=self.timeout, first=self.poll, cap=POLL_CAP,
                        on_timeout=timed_out)

    @staticmethod
    def _reverted(desc: dict[str, Any], before: dict[str, Any], progressed: bool) -> bool:
        """In service on another config after our update: did the update run and fail?"""
        if progressed:  # we saw it Updating, now it is back on another config
            return True
        if desc.get("LastModifiedTime") != before.get("LastModifiedTime"):
            return True
        return bool(desc.get("FailureReason")) and \
            desc.get("FailureReason") != before.get("FailureReason")

    def delete(self) -> bool:
        """Delete the endpoint; False when there was none."""
        from botocore.exceptions import ClientError

        try:
            self.calls("sagemaker", "delete_endpoint", EndpointName=self.name)
        except ClientError as exc:
            if error_code(exc) == "ValidationException" and "Could not find" in str(exc):
                return False
            raise DeploymentError(f"delete_endpoint {self.name} failed: {describe(exc)}") \
                from None
        return True

    def wait_gone(self) -> None:
        """Wait until ``DescribeEndpoint`` no longer finds the endpoint."""
        def check() -> bool | None:
            return True if self.describe() is None else None

        wait_for(check, timeout=self.timeout, first=self.poll, cap=POLL_CAP,
                 on_timeout=lambda: DeploymentError(
                     f"endpoint {self.name} was not deleted within {self.timeout:g}s"))
