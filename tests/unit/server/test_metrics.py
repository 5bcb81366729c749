"""The request series are exposed exactly as prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from agentcore.server.metrics import LATENCY_BUCKETS, ApiMetrics

# Bucket edges themselves (le is inclusive), between them, below the first and above the last.
SECONDS = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.025, 0.5, 59.9, 60.0, 61.0, 3600.0]


def _samples(text: bytes, prefix: str) -> set[str]:
    return {line for line in text.decode().splitlines() if line.startswith(prefix) and "_created" not in line}


def test_request_series_match_prometheus_clients_own_metrics() -> None:
    ours = ApiMetrics()
    registry = CollectorRegistry()
    counter = Counter("agentcore_api_http_requests", "x", ["route", "status"], registry=registry)
    histogram = Histogram(
        "agentcore_api_http_request_duration_seconds", "x", ["route"], buckets=LATENCY_BUCKETS,
        registry=registry,
    )  # fmt: skip
    for i, seconds in enumerate(SECONDS):
        route, status = ("/a", 200) if i % 3 else ("/b", 404)
        ours.observe_http(route, status, seconds)
        counter.labels(route, str(status)).inc()
        histogram.labels(route).observe(seconds)
    theirs, mine = generate_latest(registry), ours.render()
    for prefix in ("agentcore_api_http_requests_total", "agentcore_api_http_request_duration_seconds"):
        expected = _samples(theirs, prefix)
        assert expected and _samples(mine, prefix) == expected, prefix
    # (the _created series, optional in the exposition format, are not kept)
    types = {
        line for line in theirs.decode().splitlines() if line.startswith("# TYPE") and "_created" not in line
    }
    assert len(types) == 2 and types <= set(mine.decode().splitlines())
