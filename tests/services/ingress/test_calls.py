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
from shared.errors import BusUnavailable, ClientClosed, GatewayError, RateLimited, ServiceUnavailable, UpstreamTimeout
from shared.events import UsageCorrection, UsageEvent
from shared.pipeline import Stage
from shared.protocol import (
    Call,
    CallUsage,
    CancelRequest,
    Lease,
    frame_of,
    send_chunk,
    send_end,
    send_error,
    send_reply,
)
from shared.settings import IngressSettings
from shared.subjects import ROUTER_CANCEL
from shared.tokens import estimate_text_tokens
from shared.usage import correction_id
from tests.services.ingress.conftest import make_call, stand_in

Watched = tuple[PipelineClient, list[UsageEvent | UsageCorrection]]
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


# dead workers, large replies, clients that leave ------------------------------------------

BEATING = IngressSettings(worker_timeout_s=5.0, stream_idle_timeout_s=5.0, no_responders_wait_s=2.0,
                          heartbeat_timeout_s=0.4)


@pytest.fixture
async def watched(nats_url: str) -> AsyncIterator[Watched]:
    """A pipeline client that notices silence quickly, and the usage events it emits itself."""
    client = await connect(nats_url, "ingress-tests-watched")
    emitted: list[UsageEvent | UsageCorrection] = []
    yield PipelineClient(client, BEATING, emitted.append), emitted
    await client.close()


async def test_heartbeats_keep_a_long_call_alive_past_the_silence_limit(worker_nc: Client, watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER])

    async def slow(msg: Msg) -> None:
        assert msg.reply
        lease = Lease(worker_nc, msg.reply)
        await lease.reaching(0)
        for _ in range(6):  # 0.6 s of work: longer than heartbeat_timeout_s, heard all along
            await asyncio.sleep(0.1)
            await lease.beat()
        await send_reply(worker_nc, msg.reply, b'{"done": true}')

    await stand_in(worker_nc, call.subject(), slow)
    reply = await pipeline.call(call)
    assert reply.body == b'{"done": true}' and emitted == []


async def test_a_call_whose_worker_died_before_any_upstream_is_sent_again(worker_nc: Client,
                                                                          watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.GUARDRAILS, Stage.ROUTER])
    taken: list[bytes] = []

    async def dies_once(msg: Msg) -> None:
        taken.append(msg.data)
        if len(taken) == 1:
            return  # took it and died: no heartbeat, no answer
        assert msg.reply
        await send_reply(worker_nc, msg.reply, b'{"second": true}')

    await stand_in(worker_nc, call.subject(), dies_once)
    reply = await pipeline.call(call)
    assert reply.body == b'{"second": true}'
    assert taken == [call.encode()] * 2 and emitted == []  # the same call, nothing charged twice


async def test_a_worker_dead_after_the_call_reached_an_upstream_is_a_503_charged_once(worker_nc: Client,
                                                                                     watched: Watched) -> None:
    pipeline, emitted = watched
    body = b'{"model": "m", "messages": [{"role": "user", "content": "four words long here"}]}'
    call = make_call([Stage.ROUTER], body=body)
    taken: list[bytes] = []

    async def dies_upstream(msg: Msg) -> None:
        assert msg.reply
        taken.append(msg.data)
        await Lease(worker_nc, msg.reply).reaching(0)  # then it dies

    await stand_in(worker_nc, call.subject(), dies_upstream)
    with pytest.raises(ServiceUnavailable) as caught:
        await pipeline.call(call)
    assert caught.value.code == "worker_lost" and len(taken) == 1  # never sent again
    event, correction = emitted
    assert isinstance(event, UsageEvent)
    assert_corrects(correction, call, "worker_lost")
    assert (event.id, event.source, event.request_id) == (call.envelope.call_id, "ingress", call.envelope.request_id)
    assert (event.data.status, event.data.usage_source, event.data.provider) == ("error", "estimated", "p")
    assert event.data.prompt_tokens > 0 and event.data.completion_tokens == 0


async def test_a_stream_whose_router_died_mid_way_ends_in_503_charged_for_what_was_relayed(
        worker_nc: Client, watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER], stream=True)

    async def dies_mid_stream(msg: Msg) -> None:
        assert msg.reply
        await Lease(worker_nc, msg.reply).reaching(0)
        for word in ("hello", " there", " friend"):
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word}}]}
            await send_chunk(worker_nc, msg.reply, orjson.dumps(chunk))

    await stand_in(worker_nc, call.subject(), dies_mid_stream)
    stream = await pipeline.open_stream(call)
    relayed = []
    with pytest.raises(ServiceUnavailable) as caught:
        async for msg in stream:
            relayed.append(msg)
    stream.close()
    assert caught.value.code == "worker_lost" and len(relayed) == 3
    event, correction = emitted
    assert isinstance(event, UsageEvent)
    assert_corrects(correction, call, "worker_lost")  # a router only silent must not make it "ok"
    assert (event.id, event.data.stream, event.data.status, event.data.usage_source) == (
        call.envelope.call_id, True, "error", "estimated")
    assert event.data.completion_tokens == estimate_text_tokens("hello there friend") > 0


def assert_corrects(event: UsageEvent | UsageCorrection, call: Call, code: str) -> None:
    """`event` is the call's correction: the status the client saw, under an id of its own."""
    assert isinstance(event, UsageCorrection)
    assert (event.id, event.source, event.request_id) == (
        correction_id(call.envelope.call_id), "ingress", call.envelope.request_id)
    assert (event.data.call_id, event.data.status, event.data.error_code) == (call.envelope.call_id, "error", code)


async def test_a_call_cut_by_the_bus_guard_is_cancelled_at_the_routers_and_corrected(
        worker_nc: Client, watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER])
    cancels: asyncio.Queue[CancelRequest] = asyncio.Queue()

    async def on_cancel(msg: Msg) -> None:
        cancels.put_nowait(CancelRequest.model_validate_json(msg.data))

    await worker_nc.subscribe(ROUTER_CANCEL, cb=on_cancel)
    await worker_nc.flush()
    pipeline.cut(call, BusUnavailable("gone"))
    assert (await asyncio.wait_for(cancels.get(), 5)).call_id == call.envelope.call_id
    (correction,) = emitted
    assert_corrects(correction, call, "bus_unavailable")


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


async def test_a_call_past_its_deadline_is_a_504_and_recorded_as_the_client_saw_it(worker_nc: Client,
                                                                                  watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER], timeout_s=0.8)

    async def working(msg: Msg) -> None:  # alive and at the upstream, but never done in time
        assert msg.reply
        lease = Lease(worker_nc, msg.reply)
        await lease.reaching(0)
        for _ in range(15):
            await asyncio.sleep(0.1)
            await lease.beat()

    await stand_in(worker_nc, call.subject(), working)
    with pytest.raises(UpstreamTimeout):
        await pipeline.call(call)
    (correction,) = emitted  # the routers charge it `cancelled`; the record says what the client got
    assert_corrects(correction, call, "upstream_timeout")


async def test_a_stream_silent_past_its_idle_timeout_is_recorded_as_the_client_saw_it(worker_nc: Client,
                                                                                    watched: Watched) -> None:
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER], stream=True)
    call.envelope.route.stream_idle_timeout_s = 0.6

    async def stalls(msg: Msg) -> None:  # one chunk, then only heartbeats
        assert msg.reply
        lease = Lease(worker_nc, msg.reply)
        await lease.reaching(0)
        await send_chunk(worker_nc, msg.reply, b'{"n": 0}')
        for _ in range(15):
            await asyncio.sleep(0.1)
            await lease.beat()

    await stand_in(worker_nc, call.subject(), stalls)
    stream = await pipeline.open_stream(call)
    with pytest.raises(UpstreamTimeout):
        async for _ in stream:
            pass
    stream.close()
    (correction,) = emitted
    assert_corrects(correction, call, "upstream_timeout")
