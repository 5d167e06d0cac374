"""A worker's /metrics, on its own port; a taken port falls back to a free one."""
from __future__ import annotations

import httpx
from prometheus_client import Counter

from jetgate.embedded.ports import free_port
from shared.metrics_server import start_metrics_server

SCRAPED = Counter("jetgate_test_scraped_total", "A counter this test scrapes")


def test_metrics_are_served_and_a_second_server_gets_another_port() -> None:
    SCRAPED.inc(3)
    wanted = free_port()
    first = start_metrics_server("127.0.0.1", wanted, "test")
    second = start_metrics_server("127.0.0.1", wanted, "test-replica")
    assert first == wanted and second not in (0, wanted)
    for port in (first, second):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "jetgate_test_scraped_total 3.0" in text
