"""Gemini's `streamGenerateContent?alt=sse` through the adapter: OpenAI chunks in order (role,
text deltas or tool calls, finish, usage), on the wire against the fake Gemini server."""
from __future__ import annotations

import json

import orjson
import pytest

from services.router.providers.base import ChatCall, Chunk
from services.router.providers.gemini import GeminiProvider, payloads
from shared.errors import GatewayError
from tests.fakes.gemini_upstream import FakeGemini

MESSAGES = [{"role": "user", "content": "Stream me a greeting please"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}


async def _collect(provider: GeminiProvider, body: dict[str, object], model: str) -> list[Chunk]:
    return [chunk async for chunk in provider.chat_stream(ChatCall(body, model))]


async def test_text_stream_is_role_deltas_finish_usage(studio: GeminiProvider, gemini: FakeGemini) -> None:
    chunks = await _collect(studio, {"messages": MESSAGES, "stream": True}, "gemini-2.5-flash")

    (sent,) = gemini.model_requests()
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and sent.query == "alt=sse"
    assert "stream" not in sent.json and "stream_options" not in sent.json  # not Gemini fields
    parsed = [orjson.loads(c.raw) for c in chunks]
    assert {p["object"] for p in parsed} == {"chat.completion.chunk"} and len({p["id"] for p in parsed}) == 1
    role, *deltas, finish, usage = parsed
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [d["choices"][0]["delta"]["content"] for d in deltas] == payloads.REPLY_PIECES
    assert all(d["choices"][0]["finish_reason"] is None for d in deltas)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == [] and chunks[-1].usage_only
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == payloads.CANDIDATES_TOKENS
    assert chunks[-1].usage.prompt_tokens == len(MESSAGES[0]["content"].split())
    assert "".join(c.text for c in chunks) == payloads.REPLY_TEXT
    assert not any(c.usage_only for c in chunks[:-1])


async def test_function_call_stream_gives_a_whole_tool_call(studio: GeminiProvider) -> None:
    chunks = await _collect(studio, {"messages": MESSAGES, "tools": [TOOL]}, "gemini-2.5-flash")
    role, call, finish, usage = (orjson.loads(c.raw) for c in chunks)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    (tool_call,) = call["choices"][0]["delta"]["tool_calls"]
    assert tool_call["index"] == 0 and tool_call["id"].startswith("call_") and tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "lookup"
    assert json.loads(tool_call["function"]["arguments"]) == {"query": "Paris"}
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert usage["usage"]["completion_tokens"] == payloads.CANDIDATES_TOKENS
    assert chunks[1].text == "lookup" + tool_call["function"]["arguments"]


async def test_blocked_prompt_streams_a_content_filter_finish(studio: GeminiProvider) -> None:
    chunks = await _collect(studio, {"messages": MESSAGES}, "blocked")
    role, finish, usage = (orjson.loads(c.raw) for c in chunks)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    assert finish["choices"][0]["finish_reason"] == "content_filter"
    assert usage["usage"]["completion_tokens"] == 0 and usage["usage"]["prompt_tokens"] > 0


async def test_stream_failure_raises_before_the_first_chunk(studio: GeminiProvider) -> None:
    with pytest.raises(GatewayError) as caught:
        await anext(studio.chat_stream(ChatCall({"messages": MESSAGES}, "fail-503")))
    assert (caught.value.status, caught.value.retryable) == (502, True)


async def test_error_event_mid_stream_raises_after_the_chunks_sent(studio: GeminiProvider) -> None:
    received: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in studio.chat_stream(ChatCall({"messages": MESSAGES}, "stream-error")):
            received.append(chunk)
    assert "".join(c.text for c in received) == "".join(payloads.REPLY_PIECES[:2])
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "unavailable", False)
    assert "overloaded" in caught.value.message
