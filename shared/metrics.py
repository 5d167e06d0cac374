"""Prometheus metrics of the services, named once. Each process exposes its own registry:
the ingress on its HTTP port (`/metrics`), the workers on their metrics port
(shared/metrics_server.py; ports in docs/settings.md)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

EVENTS_PUBLISHED = Counter("jetgate_events_published_total", "Events published to JetStream",
                           ["type", "outcome"])

CONFIG_DIGEST_ERRORS = Counter("jetgate_config_digest_errors_total",
                               "Failed reads or writes of the last config.loaded digest (KV JETGATE_CONFIG)",
                               ["operation"])

# ingress
HTTP_REQUESTS = Counter("jetgate_http_requests_total", "HTTP requests answered by the ingress",
                        ["route", "status"])
HTTP_LATENCY = Histogram("jetgate_http_request_seconds", "Time to the response head in the ingress",
                         ["route"], buckets=_FAST)
HTTP_IN_FLIGHT = Gauge("jetgate_http_requests_in_flight", "HTTP requests the ingress is answering")
EVENT_SUBSCRIBERS = Gauge("jetgate_event_subscribers", "Open event feeds (GET /events/*) of this ingress", ["stream"])
FEED_EVENTS = Counter("jetgate_event_feed_sent_total", "Events sent to event feed subscribers", ["stream"])
FEED_DROPPED = Counter("jetgate_event_feed_dropped_total",
                       "Subscribers disconnected for taking nothing within the send timeout", ["stream"])

# pipeline stages (guardrails, router)
STAGE_CALLS = Counter("jetgate_stage_calls_total", "Calls handled by a pipeline stage",
                      ["stage", "endpoint", "outcome"])
STAGE_IN_FLIGHT = Gauge("jetgate_stage_calls_in_flight", "Calls a pipeline stage holds", ["stage"])
GUARDRAIL_FINDINGS = Counter("jetgate_guardrail_findings_total", "Guardrail rule matches", ["rule", "action"])

# router -> upstreams
UPSTREAM_REQUESTS = Counter("jetgate_upstream_requests_total", "Calls from the router to upstreams",
                            ["provider", "outcome"])
DEPLOYMENT_HEALTHY = Gauge("jetgate_deployment_healthy",
                           "1 while a deployment is healthy in this router replica, 0 while unhealthy (cooling down)",
                           ["provider", "model"])
UPSTREAM_LATENCY = Histogram("jetgate_upstream_seconds",
                             "Upstream time to the answer (streams: to the first chunk)",
                             ["provider", "endpoint"], buckets=_FAST)

# accounting
EVENTS_CONSUMED = Counter("jetgate_events_consumed_total", "Events written by the accounting consumers",
                          ["consumer", "outcome"])
DEAD_LETTERS = Counter("jetgate_dead_letters_total", "Events sent to the dead-letter stream", ["consumer"])
CONSUMER_LAG = Gauge("jetgate_consumer_pending_events", "Events in the stream not yet delivered to the consumer",
                     ["consumer"])
BATCH_SIZE = Histogram("jetgate_consumer_batch_events", "Events per batch written", ["consumer"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500))
CONSUMER_LAG_SECONDS = Gauge("jetgate_consumer_lag_seconds",
                             "Age of the newest event a consumer wrote, at the time it was written (stream time to durable)",
                             ["consumer"])
