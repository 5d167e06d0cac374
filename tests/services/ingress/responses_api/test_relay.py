"""Relaying a streamed Responses API call's events, on the session's real nats-server:
`event:` lines, the response as the client sees it, kept before the last event; errors
mid-stream and a stream without its last event as `error` events."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.audit import RequestAudit
from services.ingress.calls import PipelineClient
from services.ingress.responses_api.relay import response_events
from services.router.providers.openai import responses_payloads as rp
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
                kept: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
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

    async def on_done(response: dict[str, Any]) -> None:
        kept.append(response)

    await stand_in(worker_nc, call.subject(), answer)
    events = EventPublisher(nc.jetstream())
    stream = await PipelineClient(nc, IngressSettings(stream_idle_timeout_s=2)).open_stream(call)
    audit = RequestAudit(events, principal, call.envelope.request_id, "/v1/responses", "m", True)
    present = lambda response: {**response, "model": "gateway-model"}  # noqa: E731
    out = b"".join([piece async for piece in response_events(stream, audit, present, on_done)])
    await events.flush()
    parsed = []
    for block in out.decode().split("\n\n"):
        if block:
            head, data = block.split("\n")
            assert head.startswith("event: ") and data.startswith("data: ")
            parsed.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return parsed


def upstream_events() -> list[bytes]:
    return [orjson.dumps(event) for event in rp.response_events({"input": "hi"}, "upstream-model")]


async def test_events_are_relayed_and_the_response_is_kept(nc: Client, worker_nc: Client, org_id: str) -> None:
    sent = upstream_events()
    kept: list[dict[str, Any]] = []
    events = await relay(nc, worker_nc, org_id, [*(("chunk", data) for data in sent), ("end", b"")], kept)
    assert all(name == data["type"] for name, data in events)
    assert [orjson.loads(data) for data in sent if b'"response"' not in data] == \
        [data for _, data in events if "response" not in data]  # events without the response: as sent
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    assert {data["response"]["model"] for _, data in events if "response" in data} == {"gateway-model"}
    (response,) = kept
    assert response["status"] == "completed" and response == events[-1][1]["response"]
    assert response["usage"]["output_tokens"] == 10
    (completed,) = await audit_types(nc, org_id)
    assert completed.type == "request.completed" and completed.data.path == "/v1/responses"


async def test_an_error_mid_stream_is_an_error_event_and_nothing_is_kept(nc: Client, worker_nc: Client,
                                                                         org_id: str) -> None:
    kept: list[dict[str, Any]] = []
    events = await relay(nc, worker_nc, org_id, [("chunk", upstream_events()[0]), ("error", b"")], kept)
    name, error = events[-1]
    assert name == "error" and error["code"] == "upstream_error" and "mid-stream" in error["message"]
    assert error["sequence_number"] == events[-2][1]["sequence_number"] + 1
    assert "response.completed" not in [n for n, _ in events] and kept == []
    (failed,) = await audit_types(nc, org_id)
    assert failed.type == "request.failed" and failed.data.status_code == 502


async def test_a_stream_without_its_last_event_ends_with_an_error(nc: Client, worker_nc: Client, org_id: str) -> None:
    kept: list[dict[str, Any]] = []
    events = await relay(nc, worker_nc, org_id, [*(("chunk", data) for data in upstream_events()[:-1]),
                                                  ("end", b"")], kept)
    assert events[-1][0] == "error" and "before the response was complete" in events[-1][1]["message"]
    assert kept == []


async def test_a_chunk_that_is_not_an_event_ends_the_stream_with_an_error(
        nc: Client, worker_nc: Client, org_id: str) -> None:
    kept: list[dict[str, Any]] = []
    events = await relay(nc, worker_nc, org_id, [("chunk", b'{"choices": "nope"}'), ("end", b"")], kept)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "upstream_error" and kept == []
