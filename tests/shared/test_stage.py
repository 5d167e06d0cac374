"""How every stage serves, on the session's real nats-server: errors always answered."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from shared.bus import connect
from shared.errors import RateLimited
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import Call, CallEnvelope, Route, Target, error_of, send_reply, status_of
from shared.stage import StageServer


def call() -> bytes:
    envelope = CallEnvelope(call_id="c", request_id="r", principal=Principal(key_id="k"), endpoint=Endpoint.EMBEDDINGS,
                            deadline=time.time() + 5, route=Route(model="m", targets=[Target(provider="p", model="u")]),
                            stages=[Stage.ROUTER])
    return Call(envelope, b"{}").encode()


@pytest.fixture
async def stage_nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "stage-tests")
    yield client
    await client.close()


async def serve(nc: Client, handler: object, *, concurrent: bool = True) -> StageServer:
    server = StageServer(nc, Stage.ROUTER, {Endpoint.CHAT: handler, Endpoint.EMBEDDINGS: handler},  # type: ignore[dict-item]
                         concurrent=concurrent)
    await server.start()
    return server


async def test_a_handlers_gateway_error_reaches_the_caller_whole(stage_nc: Client, nc: Client) -> None:
    async def refuse(msg: Msg, call: Call) -> None:
        raise RateLimited("slow down", param="model", retry_after="4")

    server = await serve(stage_nc, refuse)
    error = error_of(await nc.request("jetgate.rpc.router.embeddings", call(), timeout=5))
    await server.stop(1)
    assert error is not None and (error.status, error.code, error.param, error.retry_after) == (
        429, "rate_limit_exceeded", "model", "4")


async def test_an_unexpected_failure_is_a_500_not_a_hang(stage_nc: Client, nc: Client) -> None:
    async def crash(msg: Msg, call: Call) -> None:
        raise KeyError("bug")

    server = await serve(stage_nc, crash)
    error = error_of(await nc.request("jetgate.rpc.router.embeddings", call(), timeout=5))
    await server.stop(1)
    assert error is not None and error.status == 500 and error.code == "router_error" and "bug" not in error.message


async def test_what_is_not_a_call_is_answered(stage_nc: Client, nc: Client) -> None:
    async def never(msg: Msg, call: Call) -> None:
        raise AssertionError("not reached")

    server = await serve(stage_nc, never)
    error = error_of(await nc.request("jetgate.rpc.router.chat", b"{}", timeout=5))
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
    replies = await asyncio.gather(*(nc.request("jetgate.rpc.router.embeddings", call(), timeout=5) for _ in range(5)))
    assert most == 5 and all(status_of(r) == 200 for r in replies)
    pending = asyncio.ensure_future(nc.request("jetgate.rpc.router.embeddings", call(), timeout=5))
    await asyncio.sleep(0.1)
    await server.stop(5)  # the call in hand finishes before stop returns
    assert running == 0 and status_of(await pending) == 200


def test_a_stage_must_serve_every_endpoint_it_is_on() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        StageServer(None, Stage.ROUTER, {Endpoint.CHAT: None}, concurrent=True)  # type: ignore[arg-type,dict-item]
