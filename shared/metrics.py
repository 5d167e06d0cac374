"""Prometheus metrics shared by the services (each process exposes its own registry)."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_PUBLISHED = Counter("jetgate_events_published_total", "Events published to JetStream",
                           ["type", "outcome"])
HTTP_REQUESTS = Counter("jetgate_http_requests_total", "HTTP requests answered by the ingress",
                        ["route", "status"])
HTTP_LATENCY = Histogram("jetgate_http_request_seconds", "Time to the response head in the ingress",
                         ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
UPSTREAM_REQUESTS = Counter("jetgate_upstream_requests_total", "Calls from the router to upstreams",
                            ["provider", "outcome"])
EVENTS_CONSUMED = Counter("jetgate_events_consumed_total", "Events written by the accounting consumers",
                          ["consumer", "outcome"])
DEAD_LETTERS = Counter("jetgate_dead_letters_total", "Events sent to the dead-letter stream", ["consumer"])
