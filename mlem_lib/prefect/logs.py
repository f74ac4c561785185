"""The logger tasks write to: Prefect's run logger in a run, a plain logger outside one.

Outside a flow or task run (calling ``some_task.fn(...)`` directly, in a unit test
or a script) ``get_run_logger()`` raises; the tasks log to ``mlem_lib.tasks`` then.

Example:
    >>> run_logger().name
    'mlem_lib.tasks'
"""

from __future__ import annotations

import logging
from typing import Any


def run_logger() -> Any:
    """``prefect.get_run_logger()`` when a run is active, else ``logging.getLogger``."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("mlem_lib.tasks")
