"""The worker against a real nats-server: request-reply, queue group, drain on stop."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.aio.client import Client
from nats.errors import NoRespondersError
from shared.messages import GuardrailRequest, GuardrailVerdict

from services.guardrails.checks import Policy
from services.guardrails.handlers import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    REPLY_TOO_LARGE,
    serve,
    verdict_for,
)
from services.guardrails.rules import Rule
from services.guardrails.spans import Span
from shared.config import GuardrailsConfig
from shared.events import Principal
from shared.openai_types import ChatMessage
from shared.settings import Settings
from shared.subjects import GUARDRAILS_INPUT

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


def request(*texts: str) -> bytes:
    return GuardrailRequest(
        request_id=uuid.uuid4().hex, principal=Principal(key_id="k1"), model="m",
        messages=[ChatMessage(role="user", content=text) for text in texts],
    ).model_dump_json().encode()


async def ask(nc: Client, payload: bytes) -> GuardrailVerdict:
    reply = await nc.request(GUARDRAILS_INPUT, payload, timeout=5)
    return GuardrailVerdict.model_validate_json(reply.data)


async def wait_until_answered(nc: Client, deadline_s: float = 10.0) -> None:
    async with asyncio.timeout(deadline_s):
        while True:
            try:
                await nc.request(GUARDRAILS_INPUT, request("ping"), timeout=1)
                return
            except (NoRespondersError, TimeoutError):
                await asyncio.sleep(0.02)


@asynccontextmanager
async def running_worker(nats_url: str, config: Path) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Settings(config=config, nats_url=nats_url), stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


def test_verdict_for_rejects_malformed_requests() -> None:
    policy = Policy.from_config(GuardrailsConfig())
    for data in (b"not json", b"{}", b'{"request_id": "r", "messages": "x"}'):
        verdict = verdict_for(policy, data)
        assert (verdict.verdict, verdict.rule) == ("block", INVALID_REQUEST)


def test_verdict_for_fails_closed_when_a_check_raises() -> None:
    def broken(text: str) -> list[Span]:
        raise RuntimeError("bug")

    policy = Policy(enabled=True, rules=(Rule("broken", "block", broken, ""),))
    verdict = verdict_for(policy, request("hello"))
    assert (verdict.verdict, verdict.rule) == ("block", INTERNAL_ERROR)


async def test_worker_answers_allow_block_and_modify(nats_url: str, client: Client, tmp_path: Path) -> None:
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS)) as task:
        await wait_until_answered(client)

        allowed = await ask(client, request("hello there"))
        assert allowed.verdict == "allow" and allowed.messages is None

        blocked = await ask(client, request("fine", "my password is x"))
        assert (blocked.verdict, blocked.rule) == ("block", "no-passwords")
        assert blocked.message == "Request blocked by guardrail rule 'no-passwords'"

        card = await ask(client, request("pay with 4111-1111-1111-1111"))
        assert (card.verdict, card.rule) == ("block", "pii.card")

        modified = await ask(client, request("MARKER: mail me at jane@example.com"))
        assert modified.verdict == "modify"
        assert modified.messages is not None
        assert modified.messages[0].content == "[A]: mail me at [EMAIL]"
        assert {(f.rule, f.count) for f in modified.findings} == {("marker", 1), ("pii.email", 1)}

        invalid = await ask(client, b'{"broken": ')
        assert (invalid.verdict, invalid.rule) == ("block", INVALID_REQUEST)
        assert not task.done()

    assert task.exception() is None
    with pytest.raises(NoRespondersError):
        await client.request(GUARDRAILS_INPUT, request("hello"), timeout=2)


async def test_worker_answers_concurrent_requests(nats_url: str, client: Client, tmp_path: Path) -> None:
    async with running_worker(nats_url, write_config(tmp_path / "jetgate.yaml", GUARDRAILS)):
        await wait_until_answered(client)
        texts = [f"user{i}@example.com" if i % 2 else f"password {i}" for i in range(200)]
        verdicts = await asyncio.gather(*(ask(client, request(text)) for text in texts))
    for i, verdict in enumerate(verdicts):
        if i % 2:
            assert verdict.verdict == "modify"
            assert verdict.messages is not None and verdict.messages[0].content == "[EMAIL]"
        else:
            assert (verdict.verdict, verdict.rule) == ("block", "no-passwords")


async def test_queue_group_answers_each_request_exactly_once(nats_url: str, client: Client, tmp_path: Path) -> None:
    marker_b = {"name": "marker", "pattern": "MARKER", "action": "redact", "replacement": "[B]"}
    marked = {**GUARDRAILS, "rules": [marker_b]}
    config_a = write_config(tmp_path / "a.yaml", GUARDRAILS)
    config_b = write_config(tmp_path / "b.yaml", marked)
    async with running_worker(nats_url, config_a), running_worker(nats_url, config_b):
        # Each worker marks its replies with its own replacement; wait until both serve.
        await wait_until_answered(client)
        seen: set[object] = set()
        async with asyncio.timeout(10):
            while seen != {"[A]", "[B]"}:
                verdict = await ask(client, request("MARKER"))
                assert verdict.messages is not None
                seen.add(verdict.messages[0].content)

        prefix = f"_INBOX.guardrails-test.{uuid.uuid4().hex}"
        replies: dict[int, list[str]] = {}

        async def collect(msg: Any) -> None:
            verdict = GuardrailVerdict.model_validate_json(msg.data)
            assert verdict.messages is not None
            replies.setdefault(int(msg.subject.rsplit(".", 1)[1]), []).append(str(verdict.messages[0].content))

        sub = await client.subscribe(f"{prefix}.*", cb=collect)
        count = 60
        for i in range(count):
            await client.publish(GUARDRAILS_INPUT, request("MARKER"), reply=f"{prefix}.{i}")
        async with asyncio.timeout(10):
            while sum(len(r) for r in replies.values()) < count:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
        await sub.unsubscribe()

    assert sorted(replies) == list(range(count))
    assert all(len(answers) == 1 for answers in replies.values())
    answered_by = [answers[0] for answers in replies.values()]
    assert set(answered_by) == {"[A]", "[B]"}


async def test_verdict_too_large_for_the_server_is_still_answered(
    nats_url: str, client: Client, tmp_path: Path,
) -> None:
    grow = {"name": "grow", "pattern": "x", "action": "redact", "replacement": "y" * 1000}
    config = write_config(tmp_path / "jetgate.yaml", {"rules": [grow]})
    async with running_worker(nats_url, config):
        await wait_until_answered(client)
        assert (await ask(client, request("x"))).verdict == "modify"
        verdict = await ask(client, request("x" * (client.max_payload // 1000 + 1)))
    assert (verdict.verdict, verdict.rule) == ("block", REPLY_TOO_LARGE)
