"""A call as the ingress makes it, and a stand-in last stage on the session's real nats-server."""
from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from shared.bus import connect
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import Call, CallEnvelope, Route, Target


def make_call(stages: list[Stage], *, stream: bool = False, body: bytes = b'{"model": "m", "messages": []}',
              principal: Principal | None = None, timeout_s: float = 30.0) -> Call:
    envelope = CallEnvelope(
        call_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, principal=principal or Principal(key_id="k"),
        endpoint=Endpoint.CHAT, stream=stream, deadline=time.time() + timeout_s,
        route=Route(model="m", targets=[Target(provider="p", model="up")]), stages=stages)
    return Call(envelope, body)


async def stand_in(nc: Client, subject: str, answer: Callable[[Msg], Awaitable[None]]) -> None:
    async def on_msg(msg: Msg) -> None:
        await answer(msg)

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()


@pytest.fixture
async def worker_nc(nats_url: str) -> AsyncIterator[Client]:
    """The stand-in stage's own connection: its subscriptions end with the test."""
    client = await connect(nats_url, "ingress-tests-worker")
    yield client
    await client.close()
