"""Calls whose worker dies, goes silent or is cut off, on the session's real nats-server:
what the client gets (503, 504, a call sent again) and what the ingress records of them
itself (an estimate, a `usage.corrected` with the status the client saw)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.calls import PipelineClient
from shared.bus import connect
from shared.control import CancelRequest
from shared.errors import BusUnavailable, ServiceUnavailable, UpstreamTimeout
from shared.events import UsageCorrection, UsageEvent
from shared.pipeline import Stage
from shared.protocol import Call, Lease, send_chunk, send_reply
from shared.settings import IngressSettings
from shared.subjects import ROUTER_CANCEL
from shared.tokens import estimate_text_tokens
from shared.usage import correction_id
from tests.services.ingress.conftest import make_call, stand_in

Watched = tuple[PipelineClient, list[UsageEvent | UsageCorrection]]

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


async def test_a_call_every_worker_takes_and_drops_without_a_word_is_a_503_in_seconds(worker_nc: Client,
                                                                                     watched: Watched) -> None:
    # a stalled worker (SIGSTOP) or nats-server: the call is taken, nothing is heard, ever
    pipeline, emitted = watched
    call = make_call([Stage.ROUTER])  # its deadline: worker_timeout_s, 5 s
    taken: list[float] = []

    async def stalled(msg: Msg) -> None:
        taken.append(asyncio.get_running_loop().time())

    await stand_in(worker_nc, call.subject(), stalled)
    cancels: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

    async def on_cancel(msg: Msg) -> None:
        if not cancels.done():
            cancels.set_result(msg)

    await stand_in(worker_nc, ROUTER_CANCEL, on_cancel)
    began = asyncio.get_running_loop().time()
    with pytest.raises(ServiceUnavailable) as refused:
        await pipeline.call(call)
    seconds = asyncio.get_running_loop().time() - began
    assert refused.value.status == 503 and "answered" in refused.value.message
    # a 503, not the 504 of its 5 s deadline, after no_responders_wait_s (2 s) of sending it again
    assert seconds >= 2.0 and len(taken) >= 3
    # should a thawed bus deliver it after all: cancelled at the routers, recorded as the client saw it
    (correction,) = emitted
    assert isinstance(correction, UsageCorrection)
    assert (correction.data.call_id, correction.data.status, correction.data.error_code) == (
        call.envelope.call_id, "error", "service_unavailable")
    cancel = await asyncio.wait_for(cancels, 5)
    assert CancelRequest.model_validate_json(cancel.data).call_id == call.envelope.call_id


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
