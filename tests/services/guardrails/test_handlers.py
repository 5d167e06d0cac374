"""The guardrails worker on a real nats-server, in front of a stand-in router that echoes
what it was handed: checked calls go on with the caller's reply subject, refused ones are
answered at once, replicas share calls through the queue group."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from services.guardrails.handlers import serve
from shared.bus import ensure_streams
from shared.errors import GatewayError
from shared.events import Principal
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.protocol import Call, CallEnvelope, Frame, Route, Target, error_of, frame_of, send_reply
from shared.settings import GuardrailsSettings, Settings

GUARDRAILS_CHAT = stage_subject(Stage.GUARDRAILS, Endpoint.CHAT)
GUARDRAILS_EMBEDDINGS = stage_subject(Stage.GUARDRAILS, Endpoint.EMBEDDINGS)
ROUTER_CHAT = stage_subject(Stage.ROUTER, Endpoint.CHAT)
ROUTER_EMBEDDINGS = stage_subject(Stage.ROUTER, Endpoint.EMBEDDINGS)
GUARDRAILS = {
    "rules": [
        {"name": "no-passwords", "pattern": r"(?i)\bpassword\b", "action": "block"},
        {"name": "marker", "pattern": "MARKER", "action": "redact", "replacement": "[A]"},
    ],
    "pii": {"email": "redact", "card": "block"},
}


def write_config(path: Path, guardrails: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"guardrails": guardrails}))
    return path


def envelope(endpoint: Endpoint = Endpoint.CHAT) -> CallEnvelope:
    return CallEnvelope(call_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, principal=Principal(key_id="k1"),
                        endpoint=endpoint, deadline=time.time() + 10,
                        route=Route(model="m", targets=[Target(provider="p", model="u")]),
                        stages=[Stage.GUARDRAILS, Stage.ROUTER])


def call(*texts: str) -> Call:
    return Call(envelope(), orjson.dumps({"model": "m", "messages": [{"role": "user", "content": t} for t in texts]}))


def chat_call(messages: list[dict[str, Any]]) -> Call:
    return Call(envelope(), orjson.dumps({"model": "m", "messages": messages}))


def embeddings_call(input_: Any) -> Call:
    return Call(envelope(Endpoint.EMBEDDINGS), orjson.dumps({"model": "m", "input": input_}))


async def ask(nc: Client, c: Call, timeout: float = 15) -> Call:
    """The call as the router received it; raises the error frame's error when refused.
    Heartbeats (a call the worker held for a while) are skipped."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(c.subject(), c.encode(), reply=inbox)
        while frame_of(reply := await sub.next_msg(timeout=timeout)) == Frame.HEARTBEAT:
            continue
    finally:
        await sub.unsubscribe()
    error = error_of(reply)
    if error is not None:
        raise error
    return Call.decode(reply.data)


def contents(c: Call) -> list[str]:
    return [m["content"] for m in orjson.loads(c.body)["messages"]]


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


@pytest.fixture
async def router(nats_url: str) -> AsyncIterator[Client]:
    """A stand-in router: answers each call it is handed with that very call (envelope + body)."""
    nc = await nats.connect(nats_url)

    async def echo(msg: Msg) -> None:
        assert msg.reply
        await send_reply(nc, msg.reply, msg.data)

    await nc.subscribe(ROUTER_CHAT, queue="router", cb=echo)
    await nc.subscribe(ROUTER_EMBEDDINGS, queue="router", cb=echo)
    await nc.flush()
    yield nc
    await nc.close()


@asynccontextmanager
async def running_worker(nats_url: str, config: Path, client: Client) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    await ensure_streams(client.jetstream())  # the worker publishes `guardrail.finding` (jetgate up makes them)
    settings = Settings(config=config, nats_url=nats_url, guardrails=GuardrailsSettings(metrics_port=0))
    task = asyncio.create_task(serve(settings, stop))
    try:
        async with asyncio.timeout(10):
            while True:
                assert not task.done(), task
                try:
                    await client.request(GUARDRAILS_CHAT, b"{}", timeout=1)
                    break
                except (NoRespondersError, TimeoutError):
                    await asyncio.sleep(0.02)
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_findings_are_published_as_guardrail_finding_events(nats_url: str, client: Client, router: Client,
                                                                   tmp_path: Path) -> None:
    findings = await client.subscribe("jetgate.audit.default.guardrail.finding")
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS), client):
        await ask(client, call("hello there"))  # clean: no event
        redacted = call("MARKER twice MARKER, and a@example.com")
        await ask(client, redacted)
        event = orjson.loads((await findings.next_msg(timeout=5)).data)
        assert (event["type"], event["source"], event["key_id"], event["request_id"]) == (
            "guardrail.finding", "guardrails", "k1", redacted.envelope.request_id)
        assert event["data"] == {"endpoint": "chat", "model": "m", "verdict": "modify", "findings": [
            {"rule": "marker", "action": "redact", "count": 2}, {"rule": "pii.email", "action": "redact", "count": 1}]}
        with pytest.raises(nats.errors.TimeoutError):  # one event per call, none for the clean one
            await findings.next_msg(timeout=0.3)


async def test_worker_passes_on_refuses_and_redacts(nats_url: str, client: Client, router: Client,
                                                    tmp_path: Path) -> None:
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS), client) as task:
        clean = call("hello there")
        passed = await ask(client, clean)
        assert passed.body == clean.body  # byte for byte
        assert passed.envelope.stages == [Stage.ROUTER] and passed.envelope.call_id == clean.envelope.call_id

        with pytest.raises(GatewayError) as blocked:
            await ask(client, call("fine", "my password is x"))
        assert (blocked.value.status, blocked.value.code) == (400, "guardrail_blocked")
        assert "no-passwords" in blocked.value.message

        with pytest.raises(GatewayError) as card:
            await ask(client, call("pay with 4111-1111-1111-1111"))
        assert "pii.card" in card.value.message

        modified = await ask(client, call("MARKER: mail me at jane@example.com"))
        assert contents(modified) == ["[A]: mail me at [EMAIL]"]

        invalid = error_of(await client.request(GUARDRAILS_CHAT, b'{"broken": ', timeout=5))
        assert invalid is not None and invalid.code == "invalid_call"
        assert not task.done()

    assert task.exception() is None
    with pytest.raises(NoRespondersError):  # stopped: unsubscribed
        await client.request(GUARDRAILS_CHAT, call("hello").encode(), timeout=2)


async def test_worker_answers_concurrent_calls(nats_url: str, client: Client, router: Client, tmp_path: Path) -> None:
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS), client):
        texts = [f"user{i}@example.com" if i % 2 else f"password {i}" for i in range(200)]
        results = await asyncio.gather(*(ask(client, call(text)) for text in texts), return_exceptions=True)
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, Call) and contents(result) == ["[EMAIL]"]
        else:
            assert isinstance(result, GatewayError) and result.code == "guardrail_blocked"


async def test_queue_group_handles_each_call_exactly_once(nats_url: str, client: Client, router: Client,
                                                         tmp_path: Path) -> None:
    marker_b = {"name": "marker", "pattern": "MARKER", "action": "redact", "replacement": "[B]"}
    config_a = write_config(tmp_path / "a.yaml", GUARDRAILS)
    config_b = write_config(tmp_path / "b.yaml", {**GUARDRAILS, "rules": [marker_b]})
    async with running_worker(nats_url, config_a, client), running_worker(nats_url, config_b, client):
        seen: set[str] = set()  # each replica marks with its own replacement: wait until both serve
        async with asyncio.timeout(10):
            while seen != {"[A]", "[B]"}:
                seen.add(contents(await ask(client, call("MARKER")))[0])
        prefix = f"_INBOX.guardrails-test.{uuid.uuid4().hex}"
        replies: dict[int, list[str]] = {}

        async def collect(msg: Msg) -> None:
            replies.setdefault(int(msg.subject.rsplit(".", 1)[1]), []).append(contents(Call.decode(msg.data))[0])

        sub = await client.subscribe(f"{prefix}.*", cb=collect)
        count = 60
        for i in range(count):
            await client.publish(GUARDRAILS_CHAT, call("MARKER").encode(), reply=f"{prefix}.{i}")
        async with asyncio.timeout(10):
            while sum(len(r) for r in replies.values()) < count:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
        await sub.unsubscribe()

    assert sorted(replies) == list(range(count))
    assert all(len(answers) == 1 for answers in replies.values())
    assert {answers[0] for answers in replies.values()} == {"[A]", "[B]"}  # both replicas served


async def test_a_redaction_too_large_for_the_bus_is_still_answered(nats_url: str, client: Client, router: Client,
                                                                   tmp_path: Path) -> None:
    grow = {"name": "grow", "pattern": "x", "action": "redact", "replacement": "y" * 100_000}
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", {"rules": [grow]}), client):
        assert contents(await ask(client, call("x"))) == ["y" * 100_000]
        with pytest.raises(GatewayError) as caught:
            # ~50 MB of redacted body: seconds of CPU in the worker
            await ask(client, call("x" * (client.max_payload // 100_000 + 1)), timeout=120)
    assert (caught.value.status, caught.value.code) == (413, "request_too_large")


async def test_worker_checks_tool_calls_names_and_embeddings_input(nats_url: str, client: Client, router: Client,
                                                                 tmp_path: Path) -> None:
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS), client):
        arguments = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"q": "the password"}'}}]}
        for messages in ([{"role": "user", "content": "hi"}, arguments],
                         [{"role": "user", "name": "password", "content": "hi"}],
                         [{"role": "tool", "tool_call_id": "call_1", "content": "password: 42"}]):
            with pytest.raises(GatewayError) as blocked:
                await ask(client, chat_call(messages))
            assert (blocked.value.code, blocked.value.param) == ("guardrail_blocked", "messages")

        with pytest.raises(GatewayError) as refused:
            await ask(client, embeddings_call(["fine", "my password"]))
        assert (refused.value.status, refused.value.code, refused.value.param) == (400, "guardrail_blocked", "input")

        redacted = await ask(client, embeddings_call(["MARKER jane@example.com", "fine"]))
        assert redacted.envelope.endpoint is Endpoint.EMBEDDINGS and redacted.envelope.stages == [Stage.ROUTER]
        assert orjson.loads(redacted.body)["input"] == ["[A] [EMAIL]", "fine"]

        tokens = embeddings_call([[1, 2, 3]])
        assert (await ask(client, tokens)).body == tokens.body  # token arrays are not text: byte for byte
