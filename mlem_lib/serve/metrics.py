"""Prometheus metrics of a served model, at ``GET /metrics``.

=====================================  =========  ======================================
metric                                 type       labels
=====================================  =========  ======================================
``mlem_requests_total``                counter    ``method`` (the model's), ``status``
``mlem_request_errors_total``          counter    ``method``, ``status`` (4xx and 5xx)
``mlem_request_duration_seconds``      histogram  ``method``
``mlem_model_info``                    gauge (1)  ``model_hash``, ``model_type``,
                                                  ``version``
=====================================  =========  ======================================

Only model calls (``POST /<method>``, ``/invocations``) are counted; the duration is
the server's time from the route to the answer's bytes. Recording a request costs a
few microseconds: the labelled children are looked up once and kept.

With several uvicorn workers each process counts on its own, so the server runs
``prometheus-client``'s multiprocess mode: the supervisor gives every worker the same
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder), and ``/metrics``, answered by
whichever worker, adds up the files of all of them.

Example:
    >>> metrics = ServerMetrics(model_hash="ab12", model_type="sklearn", version="0.1.0")
    >>> metrics.observe("predict", 200, 0.0004)
    >>> metrics.observe("predict", 400, 0.0002)
    >>> text = metrics.render().decode()
    >>> 'mlem_requests_total{method="predict",status="200"} 1.0' in text
    True
    >>> 'mlem_request_errors_total{method="predict",status="400"} 1.0' in text
    True
    >>> 'mlem_model_info{model_hash="ab12",model_type="sklearn",version="0.1.0"} 1.0' in text
    True
"""

from __future__ import annotations

import os
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds: a one-row linear model answers in well under a millisecond, a batch in seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)


def multiprocess_dir() -> str | None:
    """The shared folder of a multi-worker server, or ``None`` in a single process."""
    return os.environ.get(MULTIPROC_ENV) or None


class ServerMetrics:
    """The counters and histogram of one served model (one per app, or per worker).

    Args:
        model_hash: the served model's hash (a label of ``mlem_model_info``).
        model_type: its framework.
        version: mlem_lib's version.
    """

    def __init__(self, *, model_hash: str, model_type: str, version: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = multiprocess_dir() is not None
        # in multiprocess mode the values live in the shared files, not in a registry
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.requests = Counter("mlem_requests", "Model requests answered, by method and "
                                "HTTP status.", ["method", "status"], registry=self.registry)
        self.errors = Counter("mlem_request_errors", "Model requests answered with a 4xx or "
                              "5xx status.", ["method", "status"], registry=self.registry)
        self.duration = Histogram("mlem_request_duration_seconds", "Time from the route to "
                                  "the answer, by method.", ["method"], buckets=BUCKETS,
                                  registry=self.registry)
        # the same in every worker: computed on each scrape, never kept in the shared files
        self.info_registry = _constant_info(model_hash, model_type, version)
        self._children: dict[tuple[str, int], tuple[Any, Any | None, Any]] = {}

    def observe(self, method: str, status: int, seconds: float) -> None:
        """Count one answered request (the hot path: a dict look-up and three updates)."""
        children = self._children.get((method, status))
        if children is None:
            children = self._children[(method, status)] = (
                self.requests.labels(method, str(status)),
                self.errors.labels(method, str(status)) if status >= 400 else None,
                self.duration.labels(method))
        requests, errors, duration = children
        requests.inc()
        if errors is not None:
            errors.inc()
        duration.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (all workers' when several)."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            assert self.registry is not None
            registry = self.registry
        return bytes(generate_latest(registry)) + bytes(generate_latest(self.info_registry))


def _constant_info(model_hash: str, model_type: str, version: str) -> Any:
    """A registry exposing ``mlem_model_info`` without touching the multiprocess files."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    class InfoCollector:
        def collect(self) -> Any:
            family = GaugeMetricFamily("mlem_model_info", "The served model (always 1).",
                                       labels=["model_hash", "model_type", "version"])
            family.add_metric([model_hash, model_type, version], 1.0)
            yield family

    registry = CollectorRegistry()
    registry.register(InfoCollector())  # type: ignore[arg-type]
    return registry
