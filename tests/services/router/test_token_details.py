"""Cached, cache-write and reasoning tokens in the router's usage events, and their prices.

The router runs as it does (serve() on the session's nats-server) against every fake that
reports them, each on the wire: OpenAI chat (`prompt_tokens_details.cached_tokens`,
`completion_tokens_details.reasoning_tokens`), the Responses API served natively
(`input_tokens_details`, `output_tokens_details`), Anthropic (`cache_read_input_tokens`,
`cache_creation_input_tokens`), Gemini (`cachedContentTokenCount`, `thoughtsTokenCount`)
and Bedrock Converse (`cacheReadInputTokens`, `cacheWriteInputTokens`); each called plain
and streamed, where a stream's counts come in its last usage. Every fake counts the 6
words of the prompt, plus what its model says it read from or wrote to a cache.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats.errors
import orjson
import pytest
import yaml
from nats.aio.client import Client

from services.ingress.policy import route_of
from services.router.handlers import serve
from services.router.providers.anthropic import payloads as anthropic_payloads
from services.router.providers.bedrock import payloads as bedrock_payloads
from services.router.providers.gemini import payloads as gemini_payloads
from services.router.providers.openai import payloads as openai_payloads
from services.router.providers.openai import responses_payloads
from shared.bus import connect
from shared.config import load_config
from shared.events import Principal, UsageData, UsageEvent, parse_event
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.protocol import FRAME_HEADER, Call, CallEnvelope, Route, usage_of
from shared.settings import RouterSettings, Settings
from shared.subjects import usage_subject
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.bedrock_upstream import CREDENTIALS, REGION, FakeBedrock
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI

PROMPT = "Tell me a short story please"  # 6 words: 6 prompt tokens at every fake
WORDS = 6
IN, OUT, CACHED, WRITE = Decimal("3"), Decimal("15"), Decimal("0.30"), Decimal("3.75")  # Anthropic's 0.1× / 1.25×
PRICING = {"input_per_million": str(IN), "output_per_million": str(OUT),
           "cached_input_per_million": str(CACHED), "cache_write_per_million": str(WRITE)}
ROUTES: dict[str, Route] = {}


def expected_cost(prompt: int, completion: int, cached: int, written: int, *, cache_prices: bool = True) -> Decimal:
    cached_price, write_price = (CACHED, WRITE) if cache_prices else (IN, IN)
    return (IN * (prompt - cached - written) + cached_price * cached + write_price * written
            + OUT * completion) / Decimal(1_000_000)


def write_config(path: Path, openai: FakeOpenAI, anthropic: FakeAnthropic, gemini: FakeGemini,
                 bedrock: FakeBedrock) -> Path:
    def model(name: str, provider: str, deployment: str, pricing: dict[str, str] = PRICING) -> dict[str, Any]:
        return {"name": name, "deployments": [{"provider": provider, "model": deployment}], "pricing": pricing}
    path.write_text(yaml.safe_dump({
        "providers": [
            {"name": "openai", "type": "openai", "base_url": openai.base_url, "timeout_s": 10},
            {"name": "native", "type": "openai", "base_url": openai.base_url, "timeout_s": 10, "native_responses": True},
            {"name": "claude", "type": "anthropic", "base_url": anthropic.base_url, "timeout_s": 10},
            {"name": "gemini", "type": "gemini", "base_url": gemini.base_url, "timeout_s": 10},
            {"name": "bedrock", "type": "bedrock", "region": REGION, "endpoint_url": bedrock.endpoint, "timeout_s": 10,
             "access_key_id": "env:TOKEN_DETAILS_AWS_KEY_ID", "secret_access_key": "env:TOKEN_DETAILS_AWS_SECRET"},
        ],
        "models": [
            model("openai-cached", "openai", "cache-hit"),
            model("openai-reasoning", "openai", "o3-mini"),
            model("openai-cached-input-price", "openai", "cache-hit",  # no cache prices: a hit costs the input price
                  {"input_per_million": str(IN), "output_per_million": str(OUT)}),
            model("native-cached", "native", "cache-hit"),
            model("native-reasoning", "native", "o4-mini"),
            model("claude-cached", "claude", "cache-hit"),
            model("gemini-thinking", "gemini", "thinking"),
            model("bedrock-cached", "bedrock", "anthropic.claude-cache-hit-v1:0"),
        ],
    }))
    return path


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeOpenAI, FakeAnthropic, FakeGemini, FakeBedrock]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TOKEN_DETAILS_AWS_KEY_ID", CREDENTIALS.access_key_id)
        env.setenv("TOKEN_DETAILS_AWS_SECRET", CREDENTIALS.secret_access_key)
        with FakeOpenAI() as openai, FakeAnthropic() as anthropic, FakeGemini() as gemini, FakeBedrock() as bedrock:
            yield openai, anthropic, gemini, bedrock


@pytest.fixture(scope="module")
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(nats_url, "token-details-tests")
    yield client
    await client.drain()


@pytest.fixture(scope="module", autouse=True)
async def router(nats_url: str, nc: Client, upstreams: tuple[FakeOpenAI, FakeAnthropic, FakeGemini, FakeBedrock],
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    config = write_config(tmp_path_factory.mktemp("router") / "jetgate.yaml", *upstreams)
    ROUTES.update({model.name: route_of(model) for model in load_config(config).models})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(Settings(config=config, nats_url=nats_url,
                                              router=RouterSettings(metrics_port=0, drain_timeout_s=5)), stop))
    async with asyncio.timeout(30):
        while True:
            assert not task.done(), task.exception()
            try:
                await nc.request(stage_subject(Stage.ROUTER, Endpoint.CHAT), b"{}", timeout=0.5)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.05)
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


async def called(nc: Client, model: str, *, endpoint: Endpoint = Endpoint.CHAT, stream: bool = False) -> UsageData:
    """One call as the ingress makes it, answered whole (its frames read to the last); the
    usage event it left, whose cost the last frame carries too."""
    who = Principal(key_id="key_token_details", org_id="org-" + uuid.uuid4().hex[:12])
    body: dict[str, Any] = ({"model": model, "input": PROMPT} if endpoint is Endpoint.RESPONSES
                            else {"model": model, "messages": [{"role": "user", "content": PROMPT}]})
    if stream:
        body["stream"] = True
        if endpoint is Endpoint.CHAT:
            body["stream_options"] = {"include_usage": True}
    envelope = CallEnvelope(call_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, principal=who, endpoint=endpoint,
                            stream=stream, include_usage=stream, deadline=time.time() + 30, route=ROUTES[model],
                            stages=[Stage.ROUTER])
    events = await nc.jetstream().subscribe(usage_subject(who.org_id), ordered_consumer=True)
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    try:
        await nc.publish(stage_subject(Stage.ROUTER, endpoint), Call(envelope, orjson.dumps(body)).encode(), reply=inbox)
        while True:
            frame = await replies.next_msg(timeout=10)
            kind = frame.headers.get(FRAME_HEADER) if frame.headers else None
            if kind in ("reply", "end", "error"):
                break
        assert kind != "error", frame.data
        event = parse_event((await events.next_msg(timeout=15)).data)
    finally:
        await replies.unsubscribe()
        await events.unsubscribe()
    assert isinstance(event, UsageEvent) and event.data.usage_source == "upstream"
    carried = usage_of(frame)
    assert carried is not None and carried.cost == event.data.cost  # what the ingress settles the budget with
    return event.data


def counts(data: UsageData) -> tuple[int, int, int, int, int]:
    return data.prompt_tokens, data.completion_tokens, data.cached_tokens, data.cache_write_tokens, data.reasoning_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_openai_chat_cached_tokens_cost_the_cached_price(nc: Client, stream: bool) -> None:
    data = await called(nc, "openai-cached", stream=stream)
    cached = openai_payloads.CACHED_TOKENS
    assert counts(data) == (WORDS + cached, openai_payloads.COMPLETION_TOKENS, cached, 0, 0)
    assert data.cost == expected_cost(data.prompt_tokens, data.completion_tokens, cached, 0)
    assert data.cost < expected_cost(data.prompt_tokens, data.completion_tokens, 0, 0)  # cheaper than uncached


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_openai_chat_reasoning_tokens_are_completion_tokens(nc: Client, stream: bool) -> None:
    data = await called(nc, "openai-reasoning", stream=stream)
    reasoning = openai_payloads.REASONING_TOKENS
    assert counts(data) == (WORDS, openai_payloads.COMPLETION_TOKENS + reasoning, 0, 0, reasoning)
    assert data.total_tokens == data.prompt_tokens + data.completion_tokens
    assert data.cost == expected_cost(WORDS, openai_payloads.COMPLETION_TOKENS + reasoning, 0, 0)


async def test_a_model_without_cache_prices_charges_a_hit_at_the_input_price(nc: Client) -> None:
    data = await called(nc, "openai-cached-input-price")
    assert data.cached_tokens == openai_payloads.CACHED_TOKENS  # counted, not discounted
    assert data.cost == expected_cost(data.prompt_tokens, data.completion_tokens, 0, 0)
    assert data.cost == expected_cost(data.prompt_tokens, data.completion_tokens, data.cached_tokens, 0,
                                      cache_prices=False)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_responses_api_served_natively_reports_both(nc: Client, stream: bool) -> None:
    cached = await called(nc, "native-cached", endpoint=Endpoint.RESPONSES, stream=stream)
    hit = openai_payloads.CACHED_TOKENS
    assert counts(cached) == (WORDS + hit, responses_payloads.COMPLETION_TOKENS, hit, 0, 0)
    assert cached.endpoint == "responses"
    assert cached.cost == expected_cost(cached.prompt_tokens, cached.completion_tokens, hit, 0)
    reasoned = await called(nc, "native-reasoning", endpoint=Endpoint.RESPONSES, stream=stream)
    thought = responses_payloads.REASONING_TOKENS
    assert counts(reasoned) == (WORDS, responses_payloads.COMPLETION_TOKENS + thought, 0, 0, thought)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_anthropic_cache_reads_and_writes_at_their_prices(nc: Client, stream: bool) -> None:
    data = await called(nc, "claude-cached", stream=stream)
    read, written = anthropic_payloads.CACHE_READ_TOKENS, anthropic_payloads.CACHE_CREATION_TOKENS
    assert counts(data)[0] == WORDS + read + written  # OpenAI's prompt_tokens: every input token
    assert counts(data)[2:] == (read, written, 0)
    assert data.cost == expected_cost(data.prompt_tokens, data.completion_tokens, read, written)
    # exactly: 6 fresh at $3, 1,800 read at $0.30, 200 written at $3.75, the output at $15 (per million)
    assert data.cost == (Decimal(18) + Decimal(540) + Decimal(750) + 15 * Decimal(data.completion_tokens)) / 10**6


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_gemini_thoughts_and_cached_content(nc: Client, stream: bool) -> None:
    data = await called(nc, "gemini-thinking", stream=stream)
    thoughts, cached = gemini_payloads.THOUGHTS_TOKENS, gemini_payloads.CACHED_TOKENS
    # candidatesTokenCount leaves the thoughts out; OpenAI's completion_tokens count them
    assert counts(data) == (WORDS, gemini_payloads.CANDIDATES_TOKENS + thoughts, cached, 0, thoughts)
    assert data.cost == expected_cost(WORDS, data.completion_tokens, cached, 0)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_bedrock_cache_reads_and_writes_at_their_prices(nc: Client, stream: bool) -> None:
    data = await called(nc, "bedrock-cached", stream=stream)
    read, written = bedrock_payloads.CACHE_READ_TOKENS, bedrock_payloads.CACHE_WRITE_TOKENS
    assert counts(data)[0] == WORDS + read + written and counts(data)[2:] == (read, written, 0)
    assert data.cost == expected_cost(data.prompt_tokens, data.completion_tokens, read, written)
