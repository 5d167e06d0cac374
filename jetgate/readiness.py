"""Waiting until every worker answers on the bus and the ingress answers HTTP."""
from __future__ import annotations

import asyncio
import time

import httpx
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from shared.bus import connect
from shared.subjects import ACCOUNTING_USAGE_QUERY, GUARDRAILS_INPUT, ROUTER_CHAT

# each worker answers a malformed request with an error reply: proof it is subscribed
PROBES = {"guardrails": GUARDRAILS_INPUT, "router": ROUTER_CHAT, "accounting": ACCOUNTING_USAGE_QUERY}


async def wait_ready(nats_url: str, http_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    nc = await connect(nats_url, "jetgate-launcher")
    try:
        for name, subject in PROBES.items():
            while True:
                try:
                    await nc.request(subject, b"{}", timeout=2.0)
                    break
                except (NoRespondersError, NatsTimeout):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the {name} worker did not come up") from None
                    await asyncio.sleep(0.1)
    finally:
        await nc.close()
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(http_url + "/ready", timeout=2.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the ingress did not become ready")
            await asyncio.sleep(0.1)
