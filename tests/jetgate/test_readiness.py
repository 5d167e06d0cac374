"""The one readiness poller: it waits for every stage and accounting, and gives up in time."""
from __future__ import annotations

import asyncio
import time

import pytest

from jetgate.embedded.ports import free_port
from jetgate.readiness import probes, wait_ready
from shared.pipeline import PIPELINES


def test_every_stage_of_every_pipeline_is_probed() -> None:
    subjects = probes()
    for endpoint, stages in PIPELINES.items():
        for stage in stages:
            assert f"jetgate.rpc.{stage}.{endpoint}" in subjects
    assert "jetgate.rpc.accounting.usage" in subjects


async def test_nothing_serving_gives_up_at_the_deadline(nats_url: str) -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="worker"):
        await wait_ready(nats_url=nats_url, timeout=0.5, probe_timeout_s=0.2)
    assert time.monotonic() - began < 3


async def test_an_ingress_that_never_answers_gives_up_at_the_deadline() -> None:
    with pytest.raises(TimeoutError, match="ingress"):
        await asyncio.wait_for(wait_ready(http_url=f"http://127.0.0.1:{free_port()}", timeout=0.5), 5)
