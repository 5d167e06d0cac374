"""Relaying a streamed chat call as the Responses API's events, on the session's real
nats-server: `event:` lines, the response kept before the last event, errors mid-stream."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.audit import RequestAudit
from services.ingress.calls import PipelineClient
from services.ingress.responses_api.events import ResponseEvents
from services.ingress.responses_api.from_chat import skeleton
from services.ingress.responses_api.objects import ResponseObject
from services.ingress.responses_api.relay import response_events
from services.ingress.responses_api.request import ResponsesRequest
from services.router.providers.openai import payloads as p
from shared.bus import connect
from shared.errors import UpstreamError
from shared.events import Principal
from shared.pipeline import Stage
from shared.protocol import send_chunk, send_end, send_error
from shared.publisher import EventPublisher
from shared.settings import IngressSettings
from tests.services.ingress.conftest import make_call, stand_in
from tests.services.ingress.test_sse import audit_types


@pytest.fixture
async def worker_nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "responses-relay-tests-worker")
    yield client
    await client.close()


async def relay(nc: Client, worker_nc: Client, org_id: str, frames: list[tuple[str, bytes]],
                kept: list[ResponseObject]) -> list[tuple[str, dict[str, Any]]]:
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

    async def on_done(response: ResponseObject) -> None:
        kept.append(response)

    await stand_in(worker_nc, call.subject(), answer)
    events = EventPublisher(nc.jetstream())
    stream = await PipelineClient(nc, IngressSettings(stream_idle_timeout_s=2)).open_stream(call)
    audit = RequestAudit(events, principal, call.envelope.request_id, "/v1/responses", "m", True)
    translator = ResponseEvents(skeleton(ResponsesRequest(model="m", input="hi")))
    out = b"".join([piece async for piece in response_events(stream, translator, audit, on_done)])
    await events.flush()
    parsed = []
    for block in out.decode().split("\n\n"):
        if block:
            head, data = block.split("\n")
            assert head.startswith("event: ") and data.startswith("data: ")
            parsed.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return parsed


async def test_chunks_become_typed_events_and_the_response_is_kept(nc: Client, worker_nc: Client, org_id: str) -> None:
    cid, created, chunks = p.content_stream("up", ["Hi", " there"], True)
    chunks.append(p.usage_chunk(cid, created, "up", p.usage(3, 2)))
    kept: list[ResponseObject] = []
    events = await relay(nc, worker_nc, org_id, [*(("chunk", orjson.dumps(c)) for c in chunks), ("end", b"")], kept)
    assert all(name == data["type"] for name, data in events)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    (response,) = kept
    assert response.status == "completed" and response.id == events[-1][1]["response"]["id"]
    assert events[-1][1]["response"]["usage"]["total_tokens"] == 5
    (completed,) = await audit_types(nc, org_id)
    assert completed.type == "request.completed" and completed.data.path == "/v1/responses"


async def test_an_error_mid_stream_is_an_error_event_and_nothing_is_kept(nc: Client, worker_nc: Client,
                                                                         org_id: str) -> None:
    _, _, chunks = p.content_stream("up", ["Hi"], False)
    kept: list[ResponseObject] = []
    events = await relay(nc, worker_nc, org_id, [("chunk", orjson.dumps(chunks[0])), ("error", b"")], kept)
    name, error = events[-1]
    assert name == "error" and error["code"] == "upstream_error" and "mid-stream" in error["message"]
    assert error["sequence_number"] == events[-2][1]["sequence_number"] + 1
    assert "response.completed" not in [n for n, _ in events] and kept == []
    (failed,) = await audit_types(nc, org_id)
    assert failed.type == "request.failed" and failed.data.status_code == 502


async def test_a_chunk_that_is_not_a_completion_chunk_ends_the_stream_with_an_error(
        nc: Client, worker_nc: Client, org_id: str) -> None:
    kept: list[ResponseObject] = []
    events = await relay(nc, worker_nc, org_id, [("chunk", b'{"choices": "nope"}'), ("end", b"")], kept)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "upstream_error" and kept == []
