"""Relaying a streamed call's frames as Anthropic's events, on the session's real
nats-server, with the audit trail."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.anthropic_api.relay import message_events
from services.ingress.anthropic_api.stream import StreamTranslator
from services.ingress.audit import RequestAudit
from services.ingress.calls import PipelineClient
from services.router.providers.openai import payloads as p
from shared.bus import connect
from shared.errors import RateLimited
from shared.events import Principal
from shared.pipeline import Stage
from shared.protocol import send_chunk, send_end, send_error
from shared.publisher import EventPublisher
from shared.settings import IngressSettings
from tests.services.ingress.conftest import make_call, stand_in
from tests.services.ingress.test_sse import audit_types


@pytest.fixture
async def worker_nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "anthropic-relay-tests-worker")
    yield client
    await client.close()


async def relay(nc: Client, worker_nc: Client, org_id: str, frames: list[tuple[str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
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
                await send_error(worker_nc, msg.reply, RateLimited("provider fake is rate limited", retry_after="7"))

    await stand_in(worker_nc, call.subject(), answer)
    events = EventPublisher(nc.jetstream())
    stream = await PipelineClient(nc, IngressSettings(stream_idle_timeout_s=2)).open_stream(call)
    audit = RequestAudit(events, principal, call.envelope.request_id, "/v1/messages", "m", True)
    out = b"".join([piece async for piece in message_events(stream, audit, StreamTranslator("m", 5))])
    await events.flush()
    parsed = []
    for event in out.decode().split("\n\n"):
        if event:
            name, data = event.split("\n")
            parsed.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return parsed


def _chunks(with_finish: bool = True) -> list[tuple[str, bytes]]:
    _, _, chunks = p.content_stream("up", ["Hel", "lo"], with_usage=True)
    return [("chunk", orjson.dumps(c)) for c in (chunks if with_finish else chunks[:-1])]


async def test_chunks_then_end_make_a_whole_message(nc: Client, worker_nc: Client, org_id: str) -> None:
    events = await relay(nc, worker_nc, org_id, [*_chunks(), ("end", b"")])
    assert [name for name, _ in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                            "content_block_delta", "content_block_stop", "message_delta",
                                            "message_stop"]
    (completed,) = await audit_types(nc, org_id)
    assert completed.type == "request.completed" and completed.data.path == "/v1/messages"


async def test_an_error_mid_stream_is_an_error_event_and_a_failed_request(nc: Client, worker_nc: Client,
                                                                          org_id: str) -> None:
    events = await relay(nc, worker_nc, org_id, [*_chunks(with_finish=False), ("error", b"")])
    name, error = events[-1]
    assert name == "error" and error["type"] == "error"
    assert error["error"] == {"type": "rate_limit_error", "message": "provider fake is rate limited"}
    assert "message_stop" not in [n for n, _ in events]
    (failed,) = await audit_types(nc, org_id)
    assert failed.type == "request.failed" and failed.data.status_code == 429


async def test_a_chunk_that_is_not_json_ends_the_stream_with_an_error(nc: Client, worker_nc: Client,
                                                                      org_id: str) -> None:
    events = await relay(nc, worker_nc, org_id, [("chunk", b"{not json"), ("end", b"")])
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
