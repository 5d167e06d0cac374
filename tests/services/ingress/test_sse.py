"""Relaying frames to the client as OpenAI's server-sent events, with the audit trail."""
from __future__ import annotations

from collections.abc import AsyncIterator

import nats.errors
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.audit import RequestAudit
from services.ingress.calls import PipelineClient
from services.ingress.sse import DONE, sse_events
from shared.bus import connect
from shared.errors import UpstreamError
from shared.events import Principal, RequestEvent, parse_event
from shared.pipeline import Stage
from shared.protocol import send_chunk, send_end, send_error
from shared.publisher import EventPublisher
from shared.settings import IngressSettings
from tests.services.ingress.conftest import make_call, stand_in


@pytest.fixture
async def worker_nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "sse-tests-worker")
    yield client
    await client.close()


async def audit_types(nc: Client, org_id: str) -> list[RequestEvent]:
    sub = await nc.jetstream().subscribe(f"jetgate.audit.{org_id}.>", ordered_consumer=True)
    found: list[RequestEvent] = []
    try:
        while True:
            try:
                event = parse_event((await sub.next_msg(timeout=1.0)).data)
            except nats.errors.TimeoutError:
                return found
            assert isinstance(event, RequestEvent)
            found.append(event)
    finally:
        await sub.unsubscribe()


async def relay(nc: Client, worker_nc: Client, org_id: str, frames: list[tuple[str, bytes]]) -> bytes:
    principal = Principal(key_id="k", org_id=org_id)
    call = make_call([Stage.ROUTER], stream=True, principal=principal)

    async def answer(msg: Msg) -> None:
        assert msg.reply
        for kind, data in frames:
            if kind == "chunk":
                await send_chunk(worker_nc, msg.reply, data)
            elif kind == "end":
                await send_end(worker_nc, msg.reply)
            else:
                await send_error(worker_nc, msg.reply, UpstreamError("provider fake failed mid-stream"))

    await stand_in(worker_nc, call.subject(), answer)
    events = EventPublisher(nc.jetstream())
    stream = await PipelineClient(nc, IngressSettings(stream_idle_timeout_s=2)).open_stream(call)
    audit = RequestAudit(events, principal, call.envelope.request_id, "/v1/chat/completions", "m", True)
    out = b"".join([piece async for piece in sse_events(stream, audit)])
    await events.flush()
    return out


async def test_chunks_become_data_events_then_done(nc: Client, worker_nc: Client, org_id: str) -> None:
    out = await relay(nc, worker_nc, org_id, [("chunk", b'{"a":1}'), ("chunk", b'{"a":2}'), ("end", b"")])
    assert out == b'data: {"a":1}\n\ndata: {"a":2}\n\n' + DONE
    (completed,) = await audit_types(nc, org_id)
    assert completed.type == "request.completed" and completed.data.status_code == 200


async def test_an_error_mid_stream_is_an_error_event_and_a_failed_request(nc: Client, worker_nc: Client,
                                                                          org_id: str) -> None:
    out = await relay(nc, worker_nc, org_id, [("chunk", b'{"a":1}'), ("error", b"")])
    first, second = out.split(b"\n\n")[:2]
    assert first == b'data: {"a":1}'
    error = orjson.loads(second.removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_error" and "mid-stream" in error["message"]
    assert b"[DONE]" not in out
    (failed,) = await audit_types(nc, org_id)
    assert failed.type == "request.failed" and failed.data.status_code == 502
