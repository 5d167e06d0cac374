"""A Responses API call to one deployment, on the wire against the fake OpenAI: natively to
its `/v1/responses` where the provider serves it (the body as sent but the model, the
events as sent, usage with cached and reasoning tokens), else translated to chat."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers import parse_provider
from services.router.providers.openai import OpenAIConfig, OpenAIProvider
from services.router.providers.openai import responses_payloads as rp
from services.router.providers.openai.responses import event_chunk, responses_usage
from services.router.registry import Target
from services.router.responses.serve import events_from, response_from
from shared.config import ProviderEntry
from shared.errors import GatewayError
from tests.fakes.openai_upstream import FakeOpenAI

BODY: dict[str, Any] = {"model": "gateway-model", "input": "Say hello, serve test", "store": False,
                        "prompt_cache_key": "unknown-fields-pass", "include": ["reasoning.encrypted_content"]}


def target(fake: FakeOpenAI, http: UpstreamHttp, native: bool, model: str = "gpt-4o") -> Target:
    config = OpenAIConfig(name="up", base_url=fake.base_url, native_responses=native)
    return Target(OpenAIProvider(config, http), model)


async def test_a_native_deployment_gets_the_body_as_sent(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    fake.clear()
    done = await response_from(target(fake, http, True, "o4-mini"), BODY)
    answer = orjson.loads(done.raw)
    assert answer["object"] == "response" and answer["output"][-1]["content"][0]["text"] == rp.REPLY_TEXT
    assert answer["output"][0]["type"] == "reasoning"  # what chat completions could not carry
    (sent,) = fake.requests
    assert sent.path == "/v1/responses" and sent.json == {**BODY, "model": "o4-mini"}
    assert done.usage is not None and done.usage.completion_tokens == 10 + rp.REASONING_TOKENS
    assert done.usage.model_extra is not None
    assert done.usage.model_extra["completion_tokens_details"] == {"reasoning_tokens": rp.REASONING_TOKENS}


async def test_a_native_stream_is_the_upstreams_events(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    fake.clear()
    chunks = [chunk async for chunk in events_from(target(fake, http, True), {**BODY, "stream": True})]
    events = [orjson.loads(chunk.raw) for chunk in chunks]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert "".join(chunk.text for chunk in chunks) == rp.REPLY_TEXT  # what a count reads when usage is missing
    assert [chunk.usage is not None for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    assert fake.requests[-1].json["stream"] is True and fake.requests[-1].path == "/v1/responses"


async def test_a_failure_before_the_first_event_may_fail_over(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    with pytest.raises(GatewayError) as caught:
        await anext(events_from(target(fake, http, True, "fail-500"), {**BODY, "stream": True}))
    assert caught.value.retryable
    with pytest.raises(GatewayError) as caught:
        await response_from(target(fake, http, True, "fail-400"), BODY)
    assert not caught.value.retryable and caught.value.status == 400


async def test_an_error_event_mid_stream_is_the_gateways_error(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    seen: list[str] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in events_from(target(fake, http, True, "stream-error"), {**BODY, "stream": True}):
            seen.append(orjson.loads(chunk.raw)["type"])
    assert seen[0] == "response.created" and "broke off" in caught.value.message


async def test_a_deployment_without_the_api_is_translated_to_chat(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    fake.clear()
    done = await response_from(target(fake, http, False), {"model": "gateway-model", "input": "Hi translated"})
    answer = orjson.loads(done.raw)
    assert answer["object"] == "response" and answer["model"] == "gateway-model"
    assert fake.requests[-1].path == "/v1/chat/completions"
    assert fake.requests[-1].json["messages"] == [{"role": "user", "content": "Hi translated"}]
    with pytest.raises(GatewayError) as caught:  # what only the Responses API knows is refused, named
        await response_from(target(fake, http, False), {"model": "m", "input": [{"type": "item_reference", "id": "x"}]})
    assert caught.value.param == "input[0].type" and caught.value.status == 400


async def test_a_translated_stream_fails_before_its_first_event(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    with pytest.raises(GatewayError) as caught:
        await anext(events_from(target(fake, http, False, "fail-503"), {"model": "m", "input": "x", "stream": True}))
    assert caught.value.retryable
    chunks = [c async for c in events_from(target(fake, http, False), {"model": "m", "input": "x", "stream": True})]
    assert orjson.loads(chunks[-1].raw)["type"] == "response.completed" and chunks[-1].usage is not None


def test_usage_of_the_responses_api() -> None:
    usage = responses_usage(rp.usage(100, 40, cached=64, reasoning=30))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 40, 140)
    assert usage.model_extra is not None
    assert usage.model_extra["prompt_tokens_details"] == {"cached_tokens": 64}
    assert usage.model_extra["completion_tokens_details"] == {"reasoning_tokens": 30}
    final = rp.response_events({"input": "hi"}, "m")[-1]
    assert event_chunk("up", orjson.dumps(final).decode()).usage is not None


@pytest.mark.parametrize(("fields", "native"), [
    ({"type": "openai", "api_key": "env:OPENAI_API_KEY"}, True),  # api.openai.com has it
    ({"type": "openai", "base_url": "http://127.0.0.1:9/v1"}, False),  # an OpenAI-compatible server: unless said
    ({"type": "openai", "base_url": "http://127.0.0.1:9/v1", "native_responses": True}, True),
    ({"type": "openai", "api_key": "env:OPENAI_API_KEY", "native_responses": False}, False),
    ({"type": "groq", "api_key": "env:GROQ_API_KEY"}, False),
    ({"type": "ollama"}, False),
    ({"type": "vllm", "native_responses": True}, True),
])
def test_which_presets_serve_the_responses_api(fields: dict[str, Any], native: bool) -> None:
    config = parse_provider(ProviderEntry.model_validate({"name": "p", **fields}))
    assert isinstance(config, OpenAIConfig) and config.native_responses is native
