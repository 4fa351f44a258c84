"""The server's Prometheus metrics (`GET /metrics`), kept in a registry of its own per app.

Labels are the served model's name (empty for a name the server does not hold, so a client cannot grow
the label set), the API (`v1_predict`, `v2_infer`, `v1_status`...) and the HTTP status code.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        labels = ("model", "api", "code")
        self.requests = Counter("serving_requests", "HTTP requests answered", labels, registry=self.registry)
        self.errors = Counter(
            "serving_errors", "requests answered with a 4xx or 5xx status", labels, registry=self.registry
        )
        self.latency = Histogram(
            "serving_request_latency_seconds",
            "time from a request's arrival to its answer",
            ("model", "api"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "serving_batch_size",
            "examples per model call (one request's, or a batch's when batching is on)",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queued = Gauge(
            "serving_queued_requests", "requests waiting in a batch queue", ("model",), registry=self.registry
        )
        self.in_flight = Gauge(
            "serving_in_flight_requests", "predict requests being answered", registry=self.registry
        )

    def observe(self, model: str, api: str, code: int, seconds: float) -> None:
        self.requests.labels(model, api, str(code)).inc()
        if code >= 400:
            self.errors.labels(model, api, str(code)).inc()
        self.latency.labels(model, api).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
