"""The router process as it runs: serve() on the session's real nats-server, upstreams on a
real fake-OpenAI server, called over NATS the way the ingress calls it. Every test works in
its own organisation and reads its usage events back from the JETGATE_USAGE stream."""
from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats.errors
import orjson
import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.ingress.policy import route_of
from services.router.handlers import serve
from services.router.providers.openai import payloads
from shared.bus import connect
from shared.config import load_config
from shared.control import CancelRequest, ReplyAgain
from shared.events import Principal, UsageEvent, parse_event
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.protocol import (
    FRAME_HEADER,
    STATUS_HEADER,
    Call,
    CallEnvelope,
    CallUsage,
    Route,
    error_of,
    joined,
    upstream_of,
    usage_of,
)
from shared.settings import BusSettings, RouterSettings, Settings
from shared.subjects import ROUTER_CANCEL, ROUTER_RESEND, usage_subject
from tests.fakes.openai_upstream import SLOW_STREAM_CHUNKS, FakeOpenAI

ROUTER_CHAT = stage_subject(Stage.ROUTER, Endpoint.CHAT)
ROUTER_EMBEDDINGS = stage_subject(Stage.ROUTER, Endpoint.EMBEDDINGS)
ROUTES: dict[str, Route] = {}  # as the ingress decides them, from the same config
PROMPT = "Tell me a short story please"  # 6 words: 6 prompt tokens at the fake
MESSAGES = [{"role": "user", "content": PROMPT}]
IN_PRICE, OUT_PRICE = Decimal("0.15"), Decimal("0.6")
HEARTBEAT_S = 0.1
FRAME_BYTES = 256 * 1024  # small frames: a reply of a few hundred KiB already travels in parts


def cost(prompt: int, completion: int) -> Decimal:
    return (IN_PRICE * prompt + OUT_PRICE * completion) / Decimal(1_000_000)


def write_config(path: Path, fake: FakeOpenAI) -> Path:
    def model(name: str, *deployments: str) -> dict[str, Any]:
        return {"name": name, "deployments": [{"provider": "fake", "model": d} for d in deployments],
                "pricing": {"input_per_million": 0.15, "output_per_million": 0.6}}  # floats, as people write YAML
    path.write_text(yaml.safe_dump({
        "providers": [{"name": "fake", "type": "openai", "base_url": fake.base_url, "timeout_s": 10}],
        "models": [model("gw-chat", "fail-500", "gpt-4o-mini"), model("gw-slow", "slow-stream"),
                   model("gw-stall", "stall-stream"),
                   model("gw-no-usage", "stream-no-usage"), model("gw-broken", "fail-500", "fail-503"),
                   model("gw-hang", "hang"),
                   {**model("gw-embed", "text-embedding-3-small"), "mode": "embedding"}],
    }))
    return path


@pytest.fixture(scope="module")
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "router-tests")
    yield client
    await client.drain()


@pytest.fixture(scope="module", autouse=True)
async def router(nats_url: str, nc: Client, fake: FakeOpenAI,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncio.Task[None]]:
    config = write_config(tmp_path_factory.mktemp("router") / "jetgate.yaml", fake)
    ROUTES.update({model.name: route_of(model) for model in load_config(config).models})
    stop = asyncio.Event()
    # deployment health off: these tests call failing deployments again and again, expecting them tried
    router = RouterSettings(metrics_port=0, drain_timeout_s=5, unhealthy_after_failures=0)
    settings = Settings(config=config, nats_url=nats_url, router=router,
                        bus=BusSettings(heartbeat_interval_s=HEARTBEAT_S, frame_bytes=FRAME_BYTES))
    task = asyncio.create_task(serve(settings, stop))
    async with asyncio.timeout(30):
        while True:  # ready once it answers (what is not a call is answered without an upstream)
            assert not task.done(), task.exception()
            try:
                await nc.request(ROUTER_CHAT, b"{}", timeout=0.5)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.05)
    yield task
    stop.set()
    await asyncio.wait_for(task, 30)


def principal() -> Principal:
    return Principal(key_id="key_router_test", org_id="org-" + uuid.uuid4().hex[:12], team_id="team-a")


def request(who: Principal, endpoint: Endpoint, route: Route, body: dict[str, Any]) -> Call:
    envelope = CallEnvelope(
        call_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, principal=who, endpoint=endpoint,
        stream=bool(body.get("stream")), include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        deadline=time.time() + 30, route=route, stages=[Stage.ROUTER])
    return Call(envelope, orjson.dumps(body))


def chat_request(who: Principal, model: str, **body: Any) -> tuple[str, bytes, str]:
    """(request id, the call as the ingress sends it, the call id cancels name)."""
    call = request(who, Endpoint.CHAT, ROUTES[model], {"model": model, "messages": MESSAGES, **body})
    return call.envelope.request_id, call.encode(), call.envelope.call_id


async def usage_events(nc: Client, org_id: str, expect: int = 1) -> list[UsageEvent]:
    """Exactly `expect` usage events of this organisation, read from JetStream."""
    sub = await nc.jetstream().subscribe(usage_subject(org_id), ordered_consumer=True)
    events: list[UsageEvent] = []
    try:
        while len(events) < expect:
            event = parse_event((await sub.next_msg(timeout=15)).data)
            assert isinstance(event, UsageEvent)
            events.append(event)
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)
    finally:
        await sub.unsubscribe()
    return events


async def whole_reply(nc: Client, subject: str, payload: bytes) -> tuple[Msg, bytes, list[Msg]]:
    """A call answered as the ingress reads it: heartbeats, `part` frames, then the final
    frame. Returns (the final frame, the whole reply data, the heartbeats)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    beats: list[Msg] = []
    parts: list[bytes] = []
    try:
        await nc.publish(subject, payload, reply=inbox)
        while True:
            msg = await sub.next_msg(timeout=10)
            kind = msg.headers[FRAME_HEADER] if msg.headers else None
            if kind == "heartbeat":
                beats.append(msg)
            elif kind == "part":
                parts.append(msg.data)
            else:
                return msg, joined(parts, msg.data), beats
    finally:
        await sub.unsubscribe()


async def stream_frames(nc: Client, payload: bytes, *, cancel_after: int | None = None,
                        call_id: str = "") -> list[Msg]:
    """Frames from the inbox until `end`/`error`; with cancel_after, cancel and read until silence."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    frames: list[Msg] = []
    try:
        await nc.publish(ROUTER_CHAT, payload, reply=inbox)
        while True:
            try:
                msg = await sub.next_msg(timeout=10 if cancel_after is None else 1)
            except nats.errors.TimeoutError:
                assert cancel_after is not None, "the router went silent before the end frame"
                return frames
            if msg.headers[FRAME_HEADER] == "heartbeat":
                continue
            frames.append(msg)
            if msg.headers[FRAME_HEADER] in ("end", "error"):
                return frames
            if cancel_after is not None and len(frames) == cancel_after:
                await nc.publish(ROUTER_CANCEL, CancelRequest(call_id=call_id).model_dump_json().encode())
    finally:
        await sub.unsubscribe()


def content_of(frames: list[Msg]) -> str:
    chunks = [orjson.loads(f.data) for f in frames if f.headers[FRAME_HEADER] == "chunk"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    return "".join(choice["delta"].get("content") or "" for c in chunks for choice in c["choices"])


async def test_chat_answers_after_failover_and_charges_exact_cost(nc: Client) -> None:
    who = principal()
    request_id, payload, call_id = chat_request(who, "gw-chat")
    reply, data, beats = await whole_reply(nc, ROUTER_CHAT, payload)
    assert reply.headers[STATUS_HEADER] == "200"
    body = orjson.loads(data)
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["content"] == payloads.REPLY_TEXT
    # the caller heard of each deployment before its request left: first, then the failover
    assert [upstream_of(beat) for beat in beats[:2]] == [0, 1]

    (event,) = await usage_events(nc, who.org_id)
    assert (event.id, event.source, event.org_id, event.key_id, event.team_id, event.request_id) == (
        call_id, "router", who.org_id, who.key_id, "team-a", request_id)
    data = event.data
    assert (data.model, data.provider, data.deployment_model) == ("gw-chat", "fake", "gpt-4o-mini")
    assert (data.endpoint, data.stream, data.status, data.usage_source) == ("chat", False, "ok", "upstream")
    assert (data.prompt_tokens, data.completion_tokens, data.total_tokens) == (6, 10, 16)
    assert data.attempts == 2
    assert data.cost == cost(6, 10) == Decimal("0.0000069")
    # the reply frame carries the same usage, for the ingress to settle limits with
    assert usage_of(reply) == CallUsage(prompt_tokens=6, completion_tokens=10, cost=data.cost)


async def test_stream_frames_in_order_with_end_and_usage(nc: Client) -> None:
    who = principal()
    _, payload, _ = chat_request(who, "gw-chat", stream=True, stream_options={"include_usage": True})
    frames = await stream_frames(nc, payload)
    kinds = [f.headers[FRAME_HEADER] for f in frames]
    assert kinds == ["chunk"] * (len(frames) - 1) + ["end"]
    assert content_of(frames) == payloads.REPLY_TEXT
    last_chunk = orjson.loads(frames[-2].data)
    assert last_chunk["choices"] == [] and last_chunk["usage"]["total_tokens"] == 16
    assert frames[-1].data == b""
    assert (last_chunk["usage"]["prompt_tokens"], last_chunk["usage"]["completion_tokens"]) == (6, 10)

    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.stream, event.data.status, event.data.usage_source) == (True, "ok", "upstream")
    assert (event.data.prompt_tokens, event.data.completion_tokens) == (6, 10)
    assert event.data.cost == cost(6, 10)
    assert usage_of(frames[-1]) == CallUsage(prompt_tokens=6, completion_tokens=10, cost=cost(6, 10))


async def test_stream_without_include_usage_hides_usage_but_still_charges(nc: Client) -> None:
    who = principal()
    _, payload, _ = chat_request(who, "gw-chat", stream=True)
    frames = await stream_frames(nc, payload)
    assert all(orjson.loads(f.data)["choices"] for f in frames[:-1])  # no usage-only chunk relayed
    assert frames[-1].headers[FRAME_HEADER] == "end"
    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.completion_tokens, event.data.usage_source) == (10, "upstream")


async def test_stream_without_upstream_usage_is_estimated(nc: Client) -> None:
    who = principal()
    _, payload, _ = chat_request(who, "gw-no-usage", stream=True, stream_options={"include_usage": True})
    frames = await stream_frames(nc, payload)
    assert frames[-1].headers[FRAME_HEADER] == "end"
    assert content_of(frames) == payloads.REPLY_TEXT
    (event,) = await usage_events(nc, who.org_id)
    assert event.data.usage_source == "estimated"
    assert event.data.completion_tokens == math.ceil(len(payloads.REPLY_TEXT) / 4)
    assert event.data.prompt_tokens > 0
    assert event.data.cost == cost(event.data.prompt_tokens, event.data.completion_tokens)
    assert usage_of(frames[-1]) == CallUsage(prompt_tokens=event.data.prompt_tokens,
                                             completion_tokens=event.data.completion_tokens, cost=event.data.cost)


async def test_cancel_takes_effect_while_the_upstream_is_silent(nc: Client, fake: FakeOpenAI) -> None:
    """The upstream sends two chunks and then nothing for 30 s: a cancel must not wait for it."""
    who = principal()
    aborted_before = fake.streams_aborted
    _, payload, call_id = chat_request(who, "gw-stall", stream=True)
    async with asyncio.timeout(10):
        frames = await stream_frames(nc, payload, cancel_after=2, call_id=call_id)
        (event,) = await usage_events(nc, who.org_id)
    assert len(frames) == 2
    assert event.data.status == "cancelled" and event.data.completion_tokens > 0
    async with asyncio.timeout(5):
        while fake.streams_aborted == aborted_before:
            await asyncio.sleep(0.05)


async def test_cancel_stops_the_stream_and_charges_what_was_made(nc: Client, fake: FakeOpenAI) -> None:
    who = principal()
    aborted_before = fake.streams_aborted
    _, payload, call_id = chat_request(who, "gw-slow", stream=True)
    frames = await stream_frames(nc, payload, cancel_after=5, call_id=call_id)
    kinds = {f.headers[FRAME_HEADER] for f in frames}
    assert kinds == {"chunk"}  # no end frame after a cancel
    assert 5 <= len(frames) < 15 < SLOW_STREAM_CHUNKS

    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.status, event.data.usage_source) == ("cancelled", "estimated")
    assert event.data.completion_tokens > 0
    assert event.data.cost == cost(event.data.prompt_tokens, event.data.completion_tokens) > 0
    async with asyncio.timeout(5):  # the router hung up on the upstream too
        while fake.streams_aborted == aborted_before:
            await asyncio.sleep(0.05)


async def test_a_route_this_router_cannot_serve_gets_a_502_error_frame(nc: Client) -> None:
    who = principal()
    elsewhere = Route.model_validate({"model": "gw-chat", "targets": [{"provider": "elsewhere", "model": "x"}]})
    for stream in (True, False):
        call = request(who, Endpoint.CHAT, elsewhere, {"model": "gw-chat", "messages": MESSAGES, "stream": stream})
        (frame,) = await stream_frames(nc, call.encode())
        error = error_of(frame)
        assert error is not None and (error.status, error.code) == (502, "router_config_mismatch")
        assert "elsewhere" in error.message


async def test_all_deployments_failing_reply_502_and_record_the_error(nc: Client) -> None:
    who = principal()
    _, payload, _ = chat_request(who, "gw-broken")
    reply, _, _ = await whole_reply(nc, ROUTER_CHAT, payload)
    error = error_of(reply)
    assert error is not None and (error.status, error.code) == (502, "upstream_error")
    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.status, event.data.usage_source, event.data.attempts) == ("error", "none", 2)
    assert (event.data.deployment_model, event.data.cost) == ("fail-503", Decimal(0))


async def test_embeddings_answer_and_charge_input_tokens(nc: Client) -> None:
    who = principal()
    call = request(who, Endpoint.EMBEDDINGS, ROUTES["gw-embed"], {"model": "gw-embed", "input": ["one two", "three"]})
    reply, data, _ = await whole_reply(nc, ROUTER_EMBEDDINGS, call.encode())
    body = orjson.loads(data)
    assert reply.headers[STATUS_HEADER] == "200" and body["object"] == "list" and len(body["data"]) == 2
    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.endpoint, event.data.prompt_tokens, event.data.completion_tokens) == ("embeddings", 3, 0)
    assert event.data.cost == cost(3, 0)


async def test_a_reply_larger_than_a_frame_travels_in_parts_and_arrives_whole(nc: Client) -> None:
    who = principal()
    inputs = [f"text {i}" for i in range(40)]
    call = request(who, Endpoint.EMBEDDINGS, ROUTES["gw-embed"],
                   {"model": "gw-embed", "input": inputs, "dimensions": 3072})
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(ROUTER_EMBEDDINGS, call.encode(), reply=inbox)
    kinds: list[str] = []
    parts: list[bytes] = []
    while not kinds or kinds[-1] != "reply":
        msg = await sub.next_msg(timeout=10)
        kinds.append(msg.headers[FRAME_HEADER])
        if kinds[-1] in ("part", "reply"):
            assert len(msg.data) <= FRAME_BYTES
            parts.append(msg.data)
    await sub.unsubscribe()
    body = orjson.loads(b"".join(parts))
    assert kinds.count("part") >= 2 and kinds[-1] == "reply" and "error" not in kinds
    assert len(body["data"]) == 40 and [len(item["embedding"]) for item in body["data"]] == [3072] * 40
    assert body["data"][39]["embedding"] == payloads.embedding_vector(39, 3072)
    (event,) = await usage_events(nc, who.org_id)
    assert (event.data.status, event.data.usage_source) == ("ok", "upstream")


async def test_a_long_call_sends_heartbeats_and_a_cancel_stops_it_and_charges_the_prompt(nc: Client,
                                                                                        fake: FakeOpenAI) -> None:
    who = principal()
    _, payload, call_id = chat_request(who, "gw-hang")
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(ROUTER_CHAT, payload, reply=inbox)
    beats = [await sub.next_msg(timeout=5) for _ in range(4)]  # the upstream is silent for HANG_S
    assert {b.headers[FRAME_HEADER] for b in beats} == {"heartbeat"}
    assert [upstream_of(b) for b in beats] == [0] * 4  # the call went to the route's first target
    await nc.publish(ROUTER_CANCEL, CancelRequest(call_id=call_id).model_dump_json().encode())

    (event,) = await usage_events(nc, who.org_id)
    assert (event.id, event.data.status, event.data.usage_source) == (call_id, "cancelled", "estimated")
    assert event.data.prompt_tokens > 0 and event.data.cost == cost(event.data.prompt_tokens, 0)
    with pytest.raises(nats.errors.TimeoutError):  # no answer, no more heartbeats: the call is over
        for _ in range(50):
            msg = await sub.next_msg(timeout=5 * HEARTBEAT_S)
            assert msg.headers[FRAME_HEADER] == "heartbeat"
    await sub.unsubscribe()


async def test_a_reply_is_sent_again_once_when_the_ingress_asks_after_an_outage(nc: Client) -> None:
    who = principal()
    _, payload, call_id = chat_request(who, "gw-chat")
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(ROUTER_CHAT, payload, reply=inbox)

        async def final() -> Msg:
            while (msg := await sub.next_msg(timeout=10)).headers[FRAME_HEADER] == "heartbeat":
                pass
            return msg

        first = await final()
        ask = ReplyAgain(call_id=call_id).model_dump_json().encode()
        await nc.publish(ROUTER_RESEND, ask)
        again = await final()  # the one kept (within kept_replies_window_s of its sending)
        assert (again.data, again.headers) == (first.data, first.headers)  # the same reply, its usage with it
        await nc.publish(ROUTER_RESEND, ask)
        await nc.publish(ROUTER_RESEND, ReplyAgain(call_id="never-seen").model_dump_json().encode())
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=0.5)  # asked for once: nothing more
    finally:
        await sub.unsubscribe()
    assert len(await usage_events(nc, who.org_id)) == 1  # sent twice, charged once
