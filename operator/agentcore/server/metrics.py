"""Prometheus metrics of the API server, on a registry of its own (several apps can live in one
process, as in tests). Labels stay bounded: unknown method names are counted as ``unknown`` and
unmatched paths as ``other``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rpc_requests = Counter(
            "agentcore_api_rpc_requests",
            "JSON-RPC requests by method and outcome (ok or the JSON-RPC error code).",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_latency = Histogram(
            "agentcore_api_rpc_request_duration_seconds",
            "Time to answer one JSON-RPC request object, by method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "agentcore_api_http_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "agentcore_api_http_request_duration_seconds",
            "Time to answer one HTTP request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_jobs = Gauge(
            "agentcore_api_cached_trainingjobs", "TrainingJobs in the watch cache.", registry=self.registry
        )
        self.cache_ready = Gauge(
            "agentcore_api_cache_ready", "1 when the TrainingJob cache is synced.", registry=self.registry
        )
        # Labelled children by label values: labels() costs a lock and validation on every call.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self._child(self.rpc_requests, method, code).inc()
        self._child(self.rpc_latency, method).observe(seconds)

    def observe_http(self, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, route, str(status)).inc()
        self._child(self.http_latency, route).observe(seconds)

    def track_cache(self, size: Callable[[], int], ready: Callable[[], bool]) -> None:
        # Read at scrape time: nothing to update on the hot path.
        self.cache_jobs.set_function(lambda: float(size()))
        self.cache_ready.set_function(lambda: 1.0 if ready() else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
