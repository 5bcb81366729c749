"""Prometheus metrics of the API server, on a registry of its own (several apps can live in one
process, as in tests). Labels stay bounded: unknown method names are counted as ``unknown`` and
unmatched paths as ``other``.

The per-request counters and latency histograms are plain numbers behind a custom collector
(prometheus_client's documented extension point), turned into metric families at scrape time.
Why not ``Counter``/``Histogram``: each ``inc``/``observe`` takes a lock and a histogram walks its
buckets in Python; measured with bench/rpc.py the four observations of every request cost more
CPU than the ``get_status`` handler itself. Every observation happens on the event loop's thread,
so a scrape (also on it) sees a consistent snapshot.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class CounterSeries:
    """A counter family: one count per tuple of label values."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.counts: dict[tuple[str, ...], int] = {}

    def inc(self, values: tuple[str, ...]) -> None:
        self.counts[values] = self.counts.get(values, 0) + 1

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, count in list(self.counts.items()):
            family.add_metric(list(values), float(count))
        return family


class HistogramSeries:
    """A histogram family: per tuple of label values, counts per bucket (``le`` inclusive) and a sum."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = tuple(float(b) for b in buckets)
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, values: tuple[str, ...], seconds: float) -> None:
        entry = self.series.get(values)
        if entry is None:
            entry = self.series[values] = ([0] * (len(self.bounds) + 1), [0.0])
        entry[0][bisect_left(self.bounds, seconds)] += 1  # the first bound >= seconds; last: +Inf
        entry[1][0] += seconds

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        edges = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for values, (counts, total) in list(self.series.items()):
            cumulative, running = [], 0
            for edge, count in zip(edges, counts, strict=True):
                running += count
                cumulative.append((edge, float(running)))
            family.add_metric(list(values), cumulative, total[0])
        return family


class RequestMetrics:
    """The collector of the request series."""

    def __init__(self, *series: CounterSeries | HistogramSeries) -> None:
        self.series = series

    def collect(self) -> Iterator[Metric]:
        for one in self.series:
            yield one.family()


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rpc_requests = CounterSeries(
            "agentcore_api_rpc_requests",
            "JSON-RPC requests by method and outcome (ok or the JSON-RPC error code).",
            ("method", "code"),
        )
        self.rpc_latency = HistogramSeries(
            "agentcore_api_rpc_request_duration_seconds",
            "Time to answer one JSON-RPC request object, by method.",
            ("method",),
            LATENCY_BUCKETS,
        )
        self.http_requests = CounterSeries(
            "agentcore_api_http_requests", "HTTP requests by route and status.", ("route", "status")
        )
        self.http_latency = HistogramSeries(
            "agentcore_api_http_request_duration_seconds",
            "Time to answer one HTTP request, by route.",
            ("route",),
            LATENCY_BUCKETS,
        )
        self.registry.register(
            RequestMetrics(self.rpc_requests, self.rpc_latency, self.http_requests, self.http_latency)
        )
        self.cache_jobs = Gauge(
            "agentcore_api_cached_trainingjobs", "TrainingJobs in the watch cache.", registry=self.registry
        )
        self.cache_ready = Gauge(
            "agentcore_api_cache_ready", "1 when the TrainingJob cache is synced.", registry=self.registry
        )

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self.rpc_requests.inc((method, code))
        self.rpc_latency.observe((method,), seconds)

    def observe_http(self, route: str, status: int, seconds: float) -> None:
        self.http_requests.inc((route, str(status)))
        self.http_latency.observe((route,), seconds)

    def track_cache(self, size: Callable[[], int], ready: Callable[[], bool]) -> None:
        # Read at scrape time: nothing to update on the hot path.
        self.cache_jobs.set_function(lambda: float(size()))
        self.cache_ready.set_function(lambda: 1.0 if ready() else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
