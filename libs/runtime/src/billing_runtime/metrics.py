"""Prometheus metrics with one registry per application (no process-global state, so several
services can live in one process in the embedded mode)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """The service's registry plus the metrics every service has."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.outbox_published = Counter("outbox_published_total", "Events relayed to the bus", registry=self.registry)
        self.outbox_backlog = Gauge("outbox_backlog", "Events waiting in the outbox", registry=self.registry)
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_age_seconds",
            "Age of the oldest event waiting in the outbox (0 when none waits)",
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "events_consumed_total", "Events consumed", ["event_type", "outcome"], registry=self.registry
        )
        # Dead letters of the queues this process consumes (distributed: the broker's <queue>.dlq) or
        # whose events its outbox keeps marked (embedded mode).
        self.dead_letters = Gauge("dead_letters", "Dead-lettered messages per queue", ["queue"], registry=self.registry)
        self.dead_letters_oldest_age = Gauge(
            "dead_letters_oldest_age_seconds",
            "Age of the oldest dead letter per queue (0 when there is none)",
            ["queue"],
            registry=self.registry,
        )
        # Consumer lag, two ways: what waits in the queue (RabbitMQ: messages ready, a passive declare
        # every few seconds; not exported in the embedded mode, whose backlog is the outbox), and how
        # old each event is when its consumer takes it (now - occurred_at), whatever the bus.
        self.queue_ready = Gauge(
            "bus_queue_messages_ready",
            "Messages ready in the queue, waiting for its consumer (RabbitMQ)",
            ["queue"],
            registry=self.registry,
        )
        self.event_lag = Histogram(
            "bus_event_lag_seconds",
            "Age of an event when its consumer takes it (now - occurred_at), per queue",
            ["queue"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
        )
        self.consumer_paused = Gauge(
            "bus_consumer_paused",
            "1 while the queue's consumer waits out an outage of a dependency",
            ["queue"],
            registry=self.registry,
        )

        # The process's event loop (``billing_runtime.loop_watch``): how late a sampled timer fired,
        # and every pause of the cyclic garbage collector.
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late a timer sampled every second fired on the event loop",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.gc_pause = Histogram(
            "gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation",
            ["generation"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        )

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    async def handler(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
