"""The official openai SDK through the whole gateway (ingress, guardrails, router processes)
to a model served by the `anthropic` provider type, against the fake Anthropic upstream:
the client sees OpenAI's shapes, the upstream sees the native Messages API."""
from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from services.router.providers.anthropic import payloads
from tests.e2e.conftest import UPSTREAM_KEY
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.anthropic_upstream import FakeAnthropic

SYSTEM = "You answer in one sentence."
QUESTION = "What is the weather like in Paris today?"
MESSAGES: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
PROMPT_WORDS = len(SYSTEM.split()) + len(QUESTION.split())
WEATHER: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> openai.OpenAI:
    key, _ = gateway.create_key("anthropic-provider-tests")
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def _sent(fake: FakeAnthropic, question: str = QUESTION) -> dict[str, Any]:
    """The last Messages API request whose last user turn carries `question`."""
    def matches(body: Any) -> bool:
        turns = body.get("messages") if isinstance(body, dict) else None
        if not turns:
            return False
        content = turns[-1]["content"]  # a string where another test called /v1/messages itself
        blocks = [{"text": content}] if isinstance(content, str) else content
        return any(isinstance(b, dict) and b.get("text") == question for b in blocks)
    return [r for r in fake.requests if matches(r.json)][-1].json  # type: ignore[no-any-return]


def test_plain_chat(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    completion = client.chat.completions.create(model="claude-sonnet", messages=MESSAGES)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-msg_01")
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (PROMPT_WORDS, payloads.COMPLETION_TOKENS)
    sent = _sent(fake_anthropic)
    assert sent["model"] == "claude-sonnet-4-5" and sent["max_tokens"] == 1024
    assert sent["system"] == [{"type": "text", "text": SYSTEM}]
    request = [r for r in fake_anthropic.requests if r.json == sent][-1]
    assert request.headers["x-api-key"] == UPSTREAM_KEY and request.headers["anthropic-version"] == "2023-06-01"


def test_stream_with_include_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="claude-sonnet", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == payloads.REPLY_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == PROMPT_WORDS
    assert chunks[-1].usage.completion_tokens == payloads.COMPLETION_TOKENS
    assert len({c.id for c in chunks}) == 1


def test_tool_call_and_its_result(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    completion = client.chat.completions.create(model="claude-sonnet", messages=MESSAGES, tools=[WEATHER],
                                                tool_choice="required")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert _sent(fake_anthropic)["tool_choice"] == {"type": "any"}

    follow_up = "And is that warm?"
    answer = client.chat.completions.create(model="claude-sonnet", tools=[WEATHER], messages=[
        *MESSAGES, choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
        {"role": "user", "content": follow_up}], tool_choice="none")
    assert answer.choices[0].message.content == payloads.REPLY_TEXT  # the fake accepted the tool_result turn
    turns = _sent(fake_anthropic, follow_up)["messages"]
    assert turns[1]["content"][-1] == {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}
    assert turns[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="claude-sonnet", messages=MESSAGES, tools=[WEATHER], stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [t for d in deltas for t in d.tool_calls or ()]
    assert calls[0].id and calls[0].function and calls[0].function.name == "get_weather"
    assert json.loads("".join(t.function.arguments or "" for t in calls if t.function)) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_image_parts_reach_anthropic_as_image_blocks(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    question = "What is in this picture?"
    content: Any = [{"type": "text", "text": question},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}}]
    completion = client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    assert _sent(fake_anthropic, question)["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}}


def test_prompt_cache_counts_and_usage_row(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("anthropic-cache")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(model="claude-cached", messages=MESSAGES)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens == PROMPT_WORDS + payloads.CACHE_READ_TOKENS + payloads.CACHE_CREATION_TOKENS
    assert usage.prompt_tokens_details.cached_tokens == payloads.CACHE_READ_TOKENS
    row = wait_for(lambda: (gateway.usage(key_id=key_id, group_by="key_id") or [None])[0])
    assert row["requests"] == 1 and row["prompt_tokens"] == usage.prompt_tokens


def test_errors_in_openai_shapes(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="claude-too-long", messages=MESSAGES)
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="claude-sonnet", messages=MESSAGES, n=2)
    assert refused.value.param == "n" and "claude" in refused.value.message
    with pytest.raises(openai.BadRequestError) as no_embeddings:
        client.embeddings.create(model="claude-embeddings", input="x")
    assert no_embeddings.value.code == "unsupported_endpoint" and "claude" in no_embeddings.value.message


def test_overloaded_anthropic_fails_over_to_the_next_deployment(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="claude-overloaded", messages=MESSAGES)
    assert completion.choices[0].message.content  # answered by the OpenAI deployment after the 529
    assert not completion.id.startswith("chatcmpl-msg_")
