"""Waiting on a remote platform without hammering it: pauses that grow as a wait goes on.

Cloud APIs count requests (Heroku allows 4500 an hour, AWS throttles per account),
and a rollout that polls every half second for ten minutes spends a good part of
that on one wait. :class:`Backoff` gives the pauses: ``first``, then each one
``factor`` times longer, up to ``cap``. Waits poll often at first, when the
answer usually comes, and less often later.

Example:
    >>> b = Backoff(first=0.5, cap=4.0, factor=2.0)
    >>> [b.next() for _ in range(6)]
    [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Backoff:
    """Growing pauses: ``first``, ``first * factor``, ... never more than ``cap``.

    Args:
        first: the first pause in seconds.
        cap: the longest pause.
        factor: how much each pause grows.
        sleep: the function that pauses (``time.sleep``).
    """

    def __init__(self, first: float, cap: float, factor: float = 1.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.first = max(0.0, first)
        self.cap = max(self.first, cap)
        self.factor = max(1.0, factor)
        self.sleep = sleep
        self._next = self.first

    def next(self) -> float:
        """The next pause (without sleeping)."""
        pause = self._next
        self._next = min(self.cap, self._next * self.factor)
        return pause

    def pause(self, deadline: float | None = None) -> float:
        """Sleep the next pause, but never past ``deadline`` (a ``time.monotonic()``)."""
        seconds = self.next()
        if deadline is not None:
            seconds = max(0.0, min(seconds, deadline - time.monotonic()))
        self.sleep(seconds)
        return seconds


def wait_for(check: Callable[[], T | None], *, timeout: float, first: float, cap: float,
             on_timeout: Callable[[], BaseException], factor: float = 1.5) -> T:
    """Call ``check`` until it returns something other than ``None``; return that.

    ``check`` raises to stop the wait with an error. Pauses grow from ``first``
    to ``cap`` (see :class:`Backoff`); after ``timeout`` seconds ``on_timeout()``'s
    exception is raised.

    Example:
        >>> answers = iter([None, None, "ready"])
        >>> wait_for(lambda: next(answers), timeout=5, first=0.01, cap=0.01,
        ...          on_timeout=lambda: TimeoutError("never"))
        'ready'
    """
    deadline = time.monotonic() + timeout
    backoff = Backoff(first, cap, factor)
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise on_timeout()
        backoff.pause(deadline)
