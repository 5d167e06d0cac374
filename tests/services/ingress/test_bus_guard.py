"""The ingress while NATS is away, on a real nats-server killed under it: new requests
are refused at once, a call under way gets its answer if the server is back within the
wait, and 503 when it is not, never the full call timeout."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from jetgate import supervisor as sup
from jetgate.embedded.children import nats_child
from jetgate.embedded.nats import EmbeddedNats
from jetgate.supervisor import Child, Supervisor
from services.ingress.bus_guard import BusWatch
from services.ingress.calls import PipelineClient, Reply
from shared.bus import connect
from shared.control import ReplyAgain
from shared.errors import BusUnavailable, GatewayError
from shared.events import UsageCorrection
from shared.pipeline import Stage
from shared.protocol import Call, Lease, send_reply
from shared.settings import BusSettings, IngressSettings
from shared.subjects import ROUTER_RESEND
from tests.process_tree import frozen
from tests.services.ingress.conftest import make_call, stand_in

CALL_TIMEOUT_S = 30.0  # what a call would wait without the guard
QUICK = BusSettings(reconnect_wait_s=0.05)


@dataclass
class Bus:
    server: EmbeddedNats
    supervisor: Supervisor
    child: Child

    def kill(self) -> None:
        self.child.kill()

    async def restart(self) -> None:
        while not self.child.alive():
            self.supervisor.check()
            await asyncio.sleep(0.02)
        await asyncio.to_thread(self.server.wait_ready)


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    monkeypatch.setattr(sup, "FIRST_BACKOFF_S", 0.05)
    server = EmbeddedNats(tmp_path / "nats")
    supervisor = Supervisor()
    child = supervisor.add(nats_child(server))
    server.wait_ready()
    yield Bus(server, supervisor, child)
    supervisor.stop_all(timeout=10)


async def watched(bus: Bus, wait_s: float, probe_s: float = 1.0) -> tuple[Client, BusWatch]:
    watch = BusWatch(wait_s, probe_s)
    nc = await connect(bus.server.url, "ingress-under-test", QUICK, on_disconnected=watch.disconnected,
                       on_reconnected=watch.reconnected)
    watch.watch(nc)
    return nc, watch


@pytest.fixture
async def worker(bus: Bus) -> AsyncIterator[list[Msg]]:
    """A worker on its own connection that holds every call it gets (the test answers them)."""
    held: list[Msg] = []
    nc = await connect(bus.server.url, "worker-under-test", QUICK)

    async def hold(msg: Msg) -> None:
        held.append(msg)

    await nc.subscribe("work", cb=hold)
    await nc.flush()
    yield held
    await nc.close()


async def disconnected(nc: Client) -> None:
    while nc.is_connected:
        await asyncio.sleep(0.01)


async def test_new_requests_are_refused_while_the_bus_is_away(bus: Bus) -> None:
    nc, watch = await watched(bus, 5.0)
    try:
        watch.require()  # connected: nothing happens
        bus.kill()
        await disconnected(nc)
        with pytest.raises(BusUnavailable) as refused:
            watch.require()
        assert refused.value.status == 503 and refused.value.code == "bus_unavailable"
        await bus.restart()
        while not nc.is_connected:
            await asyncio.sleep(0.02)
        watch.require()  # back: served again
    finally:
        await nc.close()


async def test_a_silence_is_the_links_while_it_is_away_and_for_a_window_after_it_returns(bus: Bus) -> None:
    nc, watch = await watched(bus, 5.0)
    try:
        assert not await watch.explains_silence(0.3)  # up all along: a silence is the worker's
        bus.kill()
        await disconnected(nc)
        assert await watch.explains_silence(0.3)
        await bus.restart()
        while not nc.is_connected:
            await asyncio.sleep(0.01)
        # back, but the workers' links may not be yet: their heartbeats get a window
        assert await watch.explains_silence(0.3)
        await asyncio.sleep(0.35)
        assert not await watch.explains_silence(0.3)
    finally:
        await nc.close()


async def test_a_silence_is_the_links_when_its_server_died_a_moment_before(bus: Bus) -> None:
    nc, watch = await watched(bus, 5.0, probe_s=2.0)
    try:
        assert not await watch.explains_silence(0.3)  # a live server answers the probe at once
        bus.kill()  # asked before this connection may have read the socket's end: the probe waits for it
        assert await watch.explains_silence(0.3)
    finally:
        await nc.close()


async def test_a_stalled_server_leaves_the_silence_to_the_worker(bus: Bus) -> None:
    # connections still open, nothing answered, nothing ended (SIGSTOP): the call must end in
    # seconds, as a lost worker's does, not wait for a bus that may never say it is gone
    nc, watch = await watched(bus, 5.0, probe_s=0.2)
    try:
        with frozen(bus.child.pid):
            began = asyncio.get_running_loop().time()
            assert not await watch.explains_silence(0.3)
            assert asyncio.get_running_loop().time() - began >= 0.2  # it asked first
            assert watch.up
    finally:
        await nc.close()


async def test_a_call_under_way_gets_its_answer_when_the_bus_returns_in_time(bus: Bus, worker: list[Msg]) -> None:
    nc, watch = await watched(bus, 10.0)
    try:
        async def call() -> bytes:
            with watch.call():
                return (await nc.request("work", b"question", timeout=CALL_TIMEOUT_S)).data

        task = asyncio.create_task(call())
        while not worker:
            await asyncio.sleep(0.01)
        bus.kill()
        await disconnected(nc)
        await bus.restart()
        await asyncio.sleep(0.3)  # both clients reconnect and subscribe again (reconnect wait 0.05 s)
        await worker[0].respond(b"answer")
        assert await asyncio.wait_for(task, 10) == b"answer"
    finally:
        await nc.close()


async def test_a_call_under_way_ends_with_503_when_the_bus_stays_away(bus: Bus, worker: list[Msg]) -> None:
    nc, watch = await watched(bus, 0.2)
    told: list[GatewayError] = []
    try:
        async def call() -> bytes:
            with watch.call(told.append):  # told first: the ingress records what the client saw
                return (await nc.request("work", b"question", timeout=CALL_TIMEOUT_S)).data

        task = asyncio.create_task(call())
        while not worker:
            await asyncio.sleep(0.01)
        bus.kill()
        with pytest.raises(BusUnavailable) as cut:
            await asyncio.wait_for(task, CALL_TIMEOUT_S / 2)  # well before the call's own timeout
        assert not task.cancelled()  # ended with the error, the task itself was not cancelled
        assert told == [cut.value]
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def stand_in_router(bus: Bus, *, beats: bool) -> AsyncIterator[tuple[Client, list[Msg]]]:
    """A stand-in router on its own connection that holds every call it gets (the test
    answers). `beats`: it first tells the caller the call reached the upstream; else the
    ingress hears nothing of it, as when an outage lost that heartbeat with the answer (both
    sent while the server was gone: a quick upstream answers at once)."""
    held: list[Msg] = []
    nc = await connect(bus.server.url, "router-under-test", QUICK)

    async def take(msg: Msg) -> None:
        assert msg.reply
        if beats:
            await Lease(nc, msg.reply).reaching(0)
        held.append(msg)

    await stand_in(nc, make_call([Stage.ROUTER]).subject(), take)
    try:
        yield nc, held
    finally:
        await nc.close()


@pytest.fixture
async def router(bus: Bus) -> AsyncIterator[tuple[Client, list[Msg]]]:
    async with stand_in_router(bus, beats=True) as taken:
        yield taken


@pytest.fixture
async def quiet_router(bus: Bus) -> AsyncIterator[tuple[Client, list[Msg]]]:
    async with stand_in_router(bus, beats=False) as taken:
        yield taken


@pytest.fixture(params=[True, False], ids=["its heartbeat heard", "its heartbeat lost too"])
async def any_router(bus: Bus, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Client, list[Msg]]]:
    async with stand_in_router(bus, beats=request.param) as taken:
        yield taken


async def guarded_pipeline(bus: Bus, wait_s: float) -> tuple[Client, PipelineClient, list[object]]:
    nc, watch = await watched(bus, wait_s)
    emitted: list[object] = []
    return nc, PipelineClient(nc, IngressSettings(heartbeat_timeout_s=0.3), emitted.append, watch), emitted


async def held_call(pipeline: PipelineClient, held: list[Msg]) -> tuple[Call, asyncio.Task[Reply]]:
    """A call under way: the stand-in router holds it, past the upstream."""
    call = make_call([Stage.ROUTER])
    task = asyncio.create_task(pipeline.call(call))
    while not held:
        await asyncio.sleep(0.01)
    return call, task


async def answer_lost_in_an_outage(bus: Bus, nc: Client, router_nc: Client) -> None:
    """nats-server dies and comes back; the router's answer, sent while it is gone, never
    arrives (nats-py drops it or resends it before the ingress's inbox is subscribed again)."""
    bus.kill()
    await disconnected(nc)
    await send_reply(router_nc, "_INBOX.nobody", b'{"answer": true}')
    await bus.restart()


async def test_silence_while_the_bus_is_away_is_not_a_lost_worker_and_the_answer_comes_after(
        bus: Bus, router: tuple[Client, list[Msg]]) -> None:
    router_nc, held = router
    nc, pipeline, emitted = await guarded_pipeline(bus, 10.0)
    try:
        _, task = await held_call(pipeline, held)
        bus.kill()
        await disconnected(nc)
        await asyncio.sleep(0.6)  # twice the heartbeat timeout, with no frame: the bus is away, not the router
        assert not task.done()
        await bus.restart()
        while not (nc.is_connected and router_nc.is_connected):
            await asyncio.sleep(0.01)
        await nc.flush()  # the inbox is subscribed again
        await send_reply(router_nc, held[0].reply, b'{"answer": true}')
        reply = await asyncio.wait_for(task, 10)
        assert (reply.status, reply.body) == (200, b'{"answer": true}') and len(held) == 1  # never sent again
        assert emitted == []  # the router records it, as it was answered
    finally:
        await nc.close()


async def test_a_call_cut_by_the_guard_records_the_status_the_client_saw_and_leaves_the_tokens_to_the_router(
        bus: Bus, router: tuple[Client, list[Msg]]) -> None:
    held = router[1]
    nc, pipeline, emitted = await guarded_pipeline(bus, 0.8)
    try:
        call, task = await held_call(pipeline, held)
        bus.kill()
        with pytest.raises(BusUnavailable):
            await asyncio.wait_for(task, CALL_TIMEOUT_S / 2)
        (correction,) = emitted  # no estimate of its own: the router, still working, publishes the usage
        assert isinstance(correction, UsageCorrection)
        assert (correction.data.call_id, correction.data.status, correction.data.error_code) == (
            call.envelope.call_id, "error", "bus_unavailable")
        await bus.restart()  # what waits in the buffer (the cancel for the routers) goes out
        while not nc.is_connected:
            await asyncio.sleep(0.01)
    finally:
        await nc.close()


async def test_a_call_whose_answer_the_outage_lost_ends_as_the_buses_not_as_a_lost_worker(
        bus: Bus, router: tuple[Client, list[Msg]]) -> None:
    router_nc, held = router
    nc, pipeline, emitted = await guarded_pipeline(bus, 10.0)
    try:
        _, task = await held_call(pipeline, held)
        await answer_lost_in_an_outage(bus, nc, router_nc)
        with pytest.raises(BusUnavailable) as ended:
            await asyncio.wait_for(task, 10)  # silent past the window after the link came back
        assert ended.value.status == 503 and ended.value.retry_after == "1"
        codes = [getattr(getattr(e, "data", None), "error_code", None) for e in emitted]
        assert "bus_unavailable" in codes  # the client's status wins over the router's, as for a lost worker
        assert len(held) == 1  # it had reached the upstream: never sent again
    finally:
        await nc.close()


async def test_a_call_whose_answer_the_outage_lost_gets_it_from_the_router_that_kept_it(
        bus: Bus, any_router: tuple[Client, list[Msg]]) -> None:
    # asked for, not sent again, whether or not a heartbeat told of its upstream: sent again,
    # it would reach the upstream twice
    router_nc, held = any_router
    asked: list[ReplyAgain] = []

    async def reply_again(msg: Msg) -> None:  # the router's side: services/router/kept_replies.py
        asked.append(ReplyAgain.model_validate_json(msg.data))
        await send_reply(router_nc, held[0].reply, b'{"answer": true}')

    await router_nc.subscribe(ROUTER_RESEND, cb=reply_again)
    nc, pipeline, emitted = await guarded_pipeline(bus, 10.0)
    try:
        call, task = await held_call(pipeline, held)
        await answer_lost_in_an_outage(bus, nc, router_nc)
        reply = await asyncio.wait_for(task, 10)
        assert (reply.status, reply.body) == (200, b'{"answer": true}')
        assert [a.call_id for a in asked] == [call.envelope.call_id] and len(held) == 1
        assert emitted == []  # answered: the router's usage stands
    finally:
        await nc.close()


async def test_a_call_the_outage_lost_before_any_router_kept_it_is_sent_again(
        bus: Bus, quiet_router: tuple[Client, list[Msg]]) -> None:
    router_nc, held = quiet_router
    asked: list[ReplyAgain] = []

    async def kept_nothing(msg: Msg) -> None:
        asked.append(ReplyAgain.model_validate_json(msg.data))

    await router_nc.subscribe(ROUTER_RESEND, cb=kept_nothing)
    nc, pipeline, _ = await guarded_pipeline(bus, 10.0)
    try:
        call, task = await held_call(pipeline, held)
        await answer_lost_in_an_outage(bus, nc, router_nc)
        while len(held) < 2:  # asked for first, then, as nobody had it, sent again
            await asyncio.sleep(0.01)
        assert [a.call_id for a in asked] == [call.envelope.call_id]
        assert held[1].data == held[0].data
        await send_reply(router_nc, held[1].reply, b'{"second": true}')
        reply = await asyncio.wait_for(task, 10)
        assert reply.body == b'{"second": true}'
    finally:
        await nc.close()
