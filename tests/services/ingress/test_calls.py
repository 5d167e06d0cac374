"""Calls from the ingress into the pipeline, on the session's real nats-server, answered
by a stand-in last stage that speaks the bus protocol (shared/protocol.py)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.calls import PipelineClient
from shared.bus import connect
from shared.errors import GatewayError, RateLimited, ServiceUnavailable, UpstreamTimeout
from shared.pipeline import Stage
from shared.protocol import CancelRequest, send_chunk, send_end, send_error, send_reply
from shared.settings import IngressSettings
from shared.subjects import ROUTER_CANCEL
from tests.services.ingress.conftest import make_call, stand_in

SHORT = IngressSettings(worker_timeout_s=1.0, stream_idle_timeout_s=0.5, no_responders_wait_s=0.4)


@pytest.fixture
async def worker_nc(nats_url: str) -> AsyncIterator[Client]:
    """The stand-in stage's own connection: its subscriptions end with the test."""
    client = await connect(nats_url, "ingress-tests-worker")
    yield client
    await client.close()


@pytest.fixture
async def pipeline(nats_url: str) -> AsyncIterator[PipelineClient]:
    client = await connect(nats_url, "ingress-tests")
    yield PipelineClient(client, SHORT)
    await client.close()


async def test_a_reply_frame_comes_back_with_its_status_and_body(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], body=b'{"model": "m", "x": 1}')
    seen: list[bytes] = []

    async def answer(msg: Msg) -> None:
        seen.append(msg.data)
        assert msg.reply
        await send_reply(worker_nc, msg.reply, b'{"ok": true}', status=201)

    await stand_in(worker_nc, call.subject(), answer)
    reply = await pipeline.call(call)
    assert (reply.status, reply.body) == (201, b'{"ok": true}')
    assert seen == [call.encode()] and seen[0].endswith(b'{"model": "m", "x": 1}')  # the body as the client sent it


async def test_an_error_frame_raises_the_error_with_every_field(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_error(worker_nc, msg.reply, RateLimited("upstream busy", param="model", retry_after="7"))

    await stand_in(worker_nc, call.subject(), answer)
    with pytest.raises(GatewayError) as caught:
        await pipeline.call(call)
    error = caught.value
    assert (error.status, error.type, error.code, error.param, error.retry_after, error.message) == (
        429, "rate_limit_exceeded", "rate_limit_exceeded", "model", "7", "upstream busy")


async def test_nobody_serving_the_stage_is_a_503_after_the_wait(pipeline: PipelineClient) -> None:
    call = make_call([Stage.GUARDRAILS, Stage.ROUTER])
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ServiceUnavailable) as caught:
        await pipeline.call(call)
    assert SHORT.no_responders_wait_s - 0.2 <= loop.time() - began < SHORT.no_responders_wait_s + 1
    assert "guardrails" in caught.value.message and caught.value.retry_after


async def test_a_call_nobody_took_is_sent_again_once_a_worker_is_back(worker_nc: Client,
                                                                      pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_reply(worker_nc, msg.reply, b"{}")

    async def late_worker() -> None:
        await asyncio.sleep(0.15)
        await stand_in(worker_nc, call.subject(), answer)

    starting = asyncio.create_task(late_worker())
    assert (await pipeline.call(call)).status == 200
    await starting


async def test_a_worker_that_never_answers_is_a_504(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])

    async def silent(msg: Msg) -> None:
        return None

    await stand_in(worker_nc, call.subject(), silent)
    with pytest.raises(UpstreamTimeout):
        await pipeline.call(call)


async def test_stream_frames_arrive_in_order_until_the_end(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], stream=True)

    async def answer(msg: Msg) -> None:
        assert msg.reply
        for n in range(3):
            await send_chunk(worker_nc, msg.reply, orjson.dumps({"n": n}))
        await send_end(worker_nc, msg.reply)

    await stand_in(worker_nc, call.subject(), answer)
    stream = await pipeline.open_stream(call)
    frames = [msg async for msg in stream]
    stream.close()
    assert [m.headers["Jetgate-Frame"] for m in frames if m.headers] == ["chunk", "chunk", "chunk", "end"]
    assert [orjson.loads(m.data)["n"] for m in frames[:3]] == [0, 1, 2]


async def test_an_error_before_the_first_chunk_raises_at_open(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], stream=True)

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_error(worker_nc, msg.reply, GatewayError("no deployment answered", status=502, code="upstream_error"))

    await stand_in(worker_nc, call.subject(), answer)
    with pytest.raises(GatewayError) as caught:
        await pipeline.open_stream(call)
    assert caught.value.status == 502 and caught.value.code == "upstream_error"


async def test_a_stream_left_early_is_cancelled_by_call_id(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], stream=True)
    cancels: asyncio.Queue[CancelRequest] = asyncio.Queue()

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_chunk(worker_nc, msg.reply, b"{}")  # then silence: the client leaves

    async def on_cancel(msg: Msg) -> None:
        cancels.put_nowait(CancelRequest.model_validate_json(msg.data))

    await stand_in(worker_nc, call.subject(), answer)
    await stand_in(worker_nc, ROUTER_CANCEL, on_cancel)
    stream = await pipeline.open_stream(call)
    stream.close()
    cancel = await asyncio.wait_for(cancels.get(), 5)
    assert cancel.call_id == call.envelope.call_id != call.envelope.request_id


async def test_silence_mid_stream_ends_it_with_a_504_after_the_idle_timeout(worker_nc: Client,
                                                                            pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], stream=True)

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_chunk(worker_nc, msg.reply, b"{}")

    await stand_in(worker_nc, call.subject(), answer)
    stream = await pipeline.open_stream(call)
    received = []
    with pytest.raises(UpstreamTimeout):
        async for msg in stream:
            received.append(msg)
    stream.close()
    assert len(received) == 1
