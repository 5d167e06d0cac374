"""How every stage serves, on the session's real nats-server: errors always answered."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from shared.bus import connect
from shared.errors import RateLimited
from shared.events import Principal
from shared.pipeline import Endpoint, Stage, served_by
from shared.protocol import Call, CallEnvelope, Frame, Route, Target, error_of, frame_of, no_responders, send_reply, status_of
from shared.stage import StageServer


def call(call_id: str = "c") -> bytes:
    envelope = CallEnvelope(call_id=call_id, request_id="r", principal=Principal(key_id="k"), endpoint=Endpoint.EMBEDDINGS,
                            deadline=time.time() + 5, route=Route(model="m", targets=[Target(provider="p", model="u")]),
                            stages=[Stage.ROUTER])
    return Call(envelope, b"{}").encode()


async def ask(nc: Client, subject: str, data: bytes) -> Msg:
    """A request to a stage just started: the server may not route to a queue subscription
    made a moment ago on another connection yet (then it answers "no responders", which the
    ingress resends too)."""
    for _ in range(40):
        try:
            return await nc.request(subject, data, timeout=5)
        except NoRespondersError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nobody serves {subject}")


@pytest.fixture
async def stage_nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "stage-tests")
    yield client
    await client.close()


async def serve(nc: Client, handler: object, *, concurrent: bool = True) -> StageServer:
    server = StageServer(nc, Stage.ROUTER, {endpoint: handler for endpoint in served_by(Stage.ROUTER)},  # type: ignore[misc]
                         concurrent=concurrent)
    await server.start()
    return server


async def test_a_handlers_gateway_error_reaches_the_caller_whole(stage_nc: Client, nc: Client) -> None:
    async def refuse(msg: Msg, call: Call) -> None:
        raise RateLimited("slow down", param="model", retry_after="4")

    server = await serve(stage_nc, refuse)
    error = error_of(await ask(nc, "jetgate.rpc.router.embeddings", call()))
    await server.stop(1)
    assert error is not None and (error.status, error.code, error.param, error.retry_after) == (
        429, "rate_limit_exceeded", "model", "4")


async def test_an_unexpected_failure_is_a_500_not_a_hang(stage_nc: Client, nc: Client) -> None:
    async def crash(msg: Msg, call: Call) -> None:
        raise KeyError("bug")

    server = await serve(stage_nc, crash)
    error = error_of(await ask(nc, "jetgate.rpc.router.embeddings", call()))
    await server.stop(1)
    assert error is not None and error.status == 500 and error.code == "router_error" and "bug" not in error.message


async def test_what_is_not_a_call_is_answered(stage_nc: Client, nc: Client) -> None:
    async def never(msg: Msg, call: Call) -> None:
        raise AssertionError("not reached")

    server = await serve(stage_nc, never)
    error = error_of(await ask(nc, "jetgate.rpc.router.chat", b"{}"))
    await server.stop(1)
    assert error is not None and error.code == "invalid_call"


async def test_concurrent_calls_overlap_and_stop_waits_for_them(stage_nc: Client, nc: Client) -> None:
    running = 0
    most = 0

    async def slow(msg: Msg, call: Call) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.3)
        running -= 1
        assert msg.reply
        await send_reply(stage_nc, msg.reply, b"{}")

    server = await serve(stage_nc, slow)
    replies = await asyncio.gather(*(ask(nc, "jetgate.rpc.router.embeddings", call()) for _ in range(5)))
    assert most == 5 and all(status_of(r) == 200 for r in replies)
    pending = asyncio.ensure_future(ask(nc, "jetgate.rpc.router.embeddings", call()))
    await asyncio.sleep(0.1)
    await server.stop(5)  # the call in hand finishes before stop returns
    assert running == 0 and status_of(await pending) == 200


def test_a_stage_must_serve_every_endpoint_it_is_on() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        StageServer(None, Stage.ROUTER, {Endpoint.CHAT: None}, concurrent=True)  # type: ignore[arg-type,dict-item]


async def test_a_held_call_hears_heartbeats_and_a_quick_one_none(stage_nc: Client, nc: Client) -> None:
    release = asyncio.Event()

    async def held(msg: Msg, call: Call) -> None:
        assert msg.reply and call.lease is not None and call.lease.inbox == msg.reply
        if call.envelope.call_id == "slow":
            await release.wait()
        await send_reply(stage_nc, msg.reply, b"{}")

    server = StageServer(nc=stage_nc, stage=Stage.ROUTER, handlers=dict.fromkeys(served_by(Stage.ROUTER), held),
                         concurrent=True, heartbeat_s=0.05)
    await server.start()
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    while True:
        await nc.publish("jetgate.rpc.router.embeddings", call("slow"), reply=inbox)
        first = await sub.next_msg(timeout=5)
        if not no_responders(first):  # the race `ask` describes
            break
        await asyncio.sleep(0.05)
    beats = [first] + [await sub.next_msg(timeout=5) for _ in range(2)]
    assert {frame_of(b) for b in beats} == {Frame.HEARTBEAT} and server.held == 1
    release.set()
    while frame_of(last := await sub.next_msg(timeout=5)) == Frame.HEARTBEAT:
        pass
    assert frame_of(last) == Frame.REPLY
    await sub.unsubscribe()

    quick = await ask(nc, "jetgate.rpc.router.embeddings", call("quick"))
    assert frame_of(quick) == Frame.REPLY  # answered within one interval: no heartbeat came first
    await server.stop(1)
    assert server.held == 0


async def test_a_call_waiting_its_turn_is_held_and_heard(stage_nc: Client, nc: Client) -> None:
    release = asyncio.Event()
    order: list[str] = []

    async def in_turn(msg: Msg, call: Call) -> None:
        order.append(call.envelope.call_id)
        if call.envelope.call_id == "first":
            await release.wait()
        assert msg.reply
        await send_reply(stage_nc, msg.reply, b"{}")

    server = StageServer(nc=stage_nc, stage=Stage.ROUTER, handlers=dict.fromkeys(served_by(Stage.ROUTER), in_turn),
                         concurrent=False, heartbeat_s=0.05)
    await server.start()
    await ask(nc, "jetgate.rpc.router.embeddings", call("warm-up"))  # routable from here on
    first = asyncio.ensure_future(ask(nc, "jetgate.rpc.router.embeddings", call("first")))
    async with asyncio.timeout(5):
        while order != ["warm-up", "first"]:  # "first" holds the turn
            await asyncio.sleep(0.01)
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("jetgate.rpc.router.embeddings", call("second"), reply=inbox)
    beats = [await sub.next_msg(timeout=5) for _ in range(3)]  # queued behind "first", yet heard
    assert {frame_of(b) for b in beats} == {Frame.HEARTBEAT} and order == ["warm-up", "first"]
    release.set()
    while frame_of(last := await sub.next_msg(timeout=5)) == Frame.HEARTBEAT:
        pass
    assert frame_of(last) == Frame.REPLY and order == ["warm-up", "first", "second"]
    await first
    await sub.unsubscribe()
    await server.stop(1)
