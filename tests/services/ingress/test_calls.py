"""Calls from the ingress into the pipeline, on the session's real nats-server, answered
by a stand-in last stage that speaks the bus protocol (shared/protocol.py)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.calls import PipelineClient
from shared.bus import connect
from shared.control import CancelRequest
from shared.errors import ClientClosed, GatewayError, RateLimited, ServiceUnavailable, UpstreamTimeout
from shared.pipeline import Stage
from shared.protocol import Call, CallUsage, Lease, frame_of, send_chunk, send_end, send_error, send_reply
from shared.settings import IngressSettings
from shared.subjects import ROUTER_CANCEL
from shared.tokens import estimate_text_tokens
from tests.services.ingress.conftest import make_call, stand_in

SHORT = IngressSettings(worker_timeout_s=1.0, stream_idle_timeout_s=0.5, no_responders_wait_s=0.4)


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


async def test_a_worker_that_never_answers_is_a_504_at_the_calls_deadline(worker_nc: Client,
                                                                          pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], timeout_s=1.0)

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


async def test_a_models_own_idle_timeout_lets_a_stream_pause_longer(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER], stream=True)
    call.envelope.route.stream_idle_timeout_s = 3.0  # SHORT's default would end it after 0.5 s

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_chunk(worker_nc, msg.reply, b'{"n": 0}')
        await asyncio.sleep(0.9)
        await send_chunk(worker_nc, msg.reply, b'{"n": 1}')
        await send_end(worker_nc, msg.reply)

    await stand_in(worker_nc, call.subject(), answer)
    stream = await pipeline.open_stream(call)
    frames = [msg async for msg in stream]
    stream.close()
    assert [m.headers["Jetgate-Frame"] for m in frames if m.headers] == ["chunk", "chunk", "end"]


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


# large replies, clients that leave --------------------------------------------------------

async def test_a_reply_in_parts_is_joined_whole(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])
    big = orjson.dumps({"data": [{"embedding": [0.125] * 3072, "index": i} for i in range(30)]})

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_reply(worker_nc, msg.reply, big, frame_bytes=64 * 1024)

    await stand_in(worker_nc, call.subject(), answer)
    reply = await pipeline.call(call)
    assert len(big) > 4 * 64 * 1024 and reply.body == big and reply.status == 200


async def test_a_client_that_leaves_cancels_its_call_at_the_routers(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])
    cancels: asyncio.Queue[CancelRequest] = asyncio.Queue()
    gone = asyncio.Event()

    async def working(msg: Msg) -> None:
        assert msg.reply
        await Lease(worker_nc, msg.reply).reaching(0)
        gone.set()  # the client leaves while the upstream works

    async def on_cancel(msg: Msg) -> None:
        cancels.put_nowait(CancelRequest.model_validate_json(msg.data))

    await stand_in(worker_nc, call.subject(), working)
    await stand_in(worker_nc, ROUTER_CANCEL, on_cancel)
    with pytest.raises(ClientClosed):
        await pipeline.call(call, gone.wait)
    cancel = await asyncio.wait_for(cancels.get(), 5)
    assert cancel.call_id == call.envelope.call_id


async def test_calls_made_together_share_one_subscription_and_get_their_own_answers(
        worker_nc: Client, nats_url: str) -> None:
    client = await connect(nats_url, "ingress-tests-together")
    pipeline = PipelineClient(client, SHORT)
    call = make_call([Stage.ROUTER])

    async def echo(msg: Msg) -> None:
        assert msg.reply
        # in parts: a frame delivered twice (two subscriptions) would show in the joined body
        await send_reply(worker_nc, msg.reply, Call.decode(msg.data).envelope.request_id.encode() * 20,
                         frame_bytes=100)

    await stand_in(worker_nc, call.subject(), echo)
    calls = [make_call([Stage.ROUTER]) for _ in range(20)]
    replies = await asyncio.gather(*(pipeline.call(c) for c in calls))  # the first ones race to subscribe
    assert [r.body.decode() for r in replies] == [c.envelope.request_id * 20 for c in calls]
    await client.close()


# settlement: what the final frame says reaches the call's limits, once ------------------------

Settled = list[tuple[CallUsage | None, int]]


def settler() -> tuple[Settled, Callable[[CallUsage | None, int], None]]:
    seen: Settled = []
    return seen, lambda usage, relayed: seen.append((usage, relayed))


async def test_a_reply_settles_with_the_usage_it_carries(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])
    used = CallUsage(prompt_tokens=5, completion_tokens=7, cost=Decimal("0.0000123"))

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_reply(worker_nc, msg.reply, b'{"ok": true}', usage=used)

    await stand_in(worker_nc, call.subject(), answer)
    seen, settle = settler()
    await pipeline.call(call, settle=settle)
    assert seen[0] == (used, 0)


async def test_an_error_frame_settles_with_nothing_used(worker_nc: Client, pipeline: PipelineClient) -> None:
    call = make_call([Stage.ROUTER])

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_error(worker_nc, msg.reply, RateLimited("upstream busy"))

    await stand_in(worker_nc, call.subject(), answer)
    seen, settle = settler()
    with pytest.raises(GatewayError):
        await pipeline.call(call, settle=settle)
    assert seen[0] == (CallUsage(), 0)


async def test_a_stream_settles_at_its_end_and_a_cut_one_with_what_was_relayed(
        worker_nc: Client, pipeline: PipelineClient) -> None:
    text = "twelve chars"
    chunk = orjson.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
    used = CallUsage(prompt_tokens=3, completion_tokens=4, cost=Decimal("0.5"))
    complete, cut = make_call([Stage.ROUTER], stream=True), make_call([Stage.ROUTER], stream=True)

    async def answer(msg: Msg) -> None:
        assert msg.reply
        await send_chunk(worker_nc, msg.reply, chunk)
        if Call.decode(msg.data).envelope.call_id == complete.envelope.call_id:
            await send_end(worker_nc, msg.reply, used)

    await stand_in(worker_nc, complete.subject(), answer)
    seen, settle = settler()
    stream = await pipeline.open_stream(complete, settle)
    assert [frame_of(m) async for m in stream] == ["chunk", "end"]
    stream.close()
    assert seen == [(used, 0)]

    seen_cut, settle_cut = settler()
    stream = await pipeline.open_stream(cut, settle_cut)
    async for _ in stream:
        break  # the client leaves after the first chunk
    stream.close()
    assert seen_cut == [(None, estimate_text_tokens(text))]
