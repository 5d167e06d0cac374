"""The one readiness poller: until every pipeline stage and accounting answer on the bus and
the ingress answers `/ready`. Used by `jetgate up`, the end-to-end tests and the benchmark."""
from __future__ import annotations

import asyncio
import time

import httpx
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from shared.bus import connect
from shared.pipeline import Stage, served_by, stage_subject
from shared.settings import BusSettings
from shared.subjects import ACCOUNTING_USAGE_QUERY


def probes() -> dict[str, str]:
    """Subject → what answers it. A stage answers a message that is not a call with an error
    frame, and accounting answers an empty usage query: either proves a subscriber."""
    found = {stage_subject(stage, endpoint): f"the {stage} worker ({endpoint})"
             for stage in Stage for endpoint in served_by(stage)}
    found[ACCOUNTING_USAGE_QUERY] = "the accounting worker"
    return found


async def wait_bus_ready(nats_url: str, deadline: float, probe_timeout_s: float = 1.0,
                         bus: BusSettings | None = None) -> None:
    nc = await connect(nats_url, "jetgate-readiness", bus)
    try:
        for subject, what in probes().items():
            while True:
                try:
                    await nc.request(subject, b"{}", timeout=probe_timeout_s)
                    break
                except (NoRespondersError, NatsTimeout):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{what} did not come up") from None
                    await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def wait_http_ready(url: str, deadline: float, probe_timeout_s: float = 1.0) -> None:
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url + "/ready", timeout=probe_timeout_s)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ingress at {url} did not become ready")
            await asyncio.sleep(0.1)


async def wait_ready(*, http_url: str | None = None, nats_url: str | None = None, timeout: float = 120.0,
                     probe_timeout_s: float = 1.0, bus: BusSettings | None = None) -> None:
    """Wait for what is given: the workers on `nats_url` (connecting with `bus`), then the
    ingress at `http_url`."""
    deadline = time.monotonic() + timeout
    if nats_url:
        await wait_bus_ready(nats_url, deadline, probe_timeout_s, bus)
    if http_url:
        await wait_http_ready(http_url, deadline, probe_timeout_s)
