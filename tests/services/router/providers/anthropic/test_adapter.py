"""The `anthropic` adapter on the wire, against a real fake Anthropic server that checks
requests as the Messages API does: what it sends, what it makes of the answers and the
stream events, and how each failure becomes a GatewayError (providers/anthropic/errors.py)."""
from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.anthropic import AnthropicConfig, AnthropicProvider, payloads
from services.router.providers.base import ChatCall, Chunk, EmbeddingsCall
from shared.errors import GatewayError
from tests.fakes.anthropic_upstream import FakeAnthropic

KEY = "sk-ant-router-adapter-test-key-0123456789"
KEY_ENV = "JETGATE_TEST_ANTHROPIC_KEY"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, upstream."}]
PROMPT_WORDS = 2 + 3
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n not really a png").decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(expected_api_key=KEY, retry_after_s=7) as server:
        yield server


@pytest.fixture
def provider(fake: FakeAnthropic, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> AnthropicProvider:
    monkeypatch.setenv(KEY_ENV, KEY)
    fake.clear()
    config = AnthropicConfig(name="claude", base_url=fake.base_url, api_key=f"env:{KEY_ENV}", timeout_s=10,
                             default_max_tokens=321, headers={"anthropic-beta": "test-beta-2025"})
    return AnthropicProvider(config, http)


async def _chat(provider: AnthropicProvider, model: str = "claude-sonnet-4-5", **body: Any) -> dict[str, Any]:
    done = await provider.chat(ChatCall({"model": "gateway-name", "messages": MESSAGES, **body}, model))
    return orjson.loads(done.raw)  # type: ignore[no-any-return]


async def _stream(provider: AnthropicProvider, model: str = "claude-sonnet-4-5", **body: Any) -> list[Chunk]:
    call = ChatCall({"model": "gateway-name", "messages": MESSAGES, **body}, model)
    return [chunk async for chunk in provider.chat_stream(call)]


async def _error(call: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value


# -- what goes out ---------------------------------------------------------------------------
async def test_sends_the_messages_api_headers_and_the_system_prompt_on_top(provider, fake: FakeAnthropic) -> None:
    await _chat(provider)
    (sent,) = fake.requests
    assert sent.method == "POST" and sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY and "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["anthropic-beta"] == "test-beta-2025"
    assert sent.json == {"model": "claude-sonnet-4-5", "max_tokens": 321,  # the config's default
                         "system": [{"type": "text", "text": "Be brief."}],
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there, upstream."}]}]}


async def test_max_tokens_and_sampling_are_translated(provider, fake: FakeAnthropic) -> None:
    await _chat(provider, max_tokens=50, max_completion_tokens=60, temperature=0.2, top_p=0.9, stop="\n\n",
                user="user-42", presence_penalty=0.5, seed=7)
    sent = fake.requests[-1].json
    assert sent["max_tokens"] == 60  # max_completion_tokens wins, as for OpenAI's reasoning models
    assert (sent["temperature"], sent["top_p"], sent["stop_sequences"]) == (0.2, 0.9, ["\n\n"])
    assert sent["metadata"] == {"user_id": "user-42"}
    assert "presence_penalty" not in sent and "seed" not in sent and "stop" not in sent
    await _chat(provider, max_tokens=50, stop=["a", "b"])
    assert fake.requests[-1].json["max_tokens"] == 50 and fake.requests[-1].json["stop_sequences"] == ["a", "b"]


async def test_developer_and_later_system_messages_join_the_top_level_system(provider, fake: FakeAnthropic) -> None:
    messages = [{"role": "developer", "content": [{"type": "text", "text": "Rule one.",
                                                   "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "system", "content": "Rule two."}, {"role": "user", "content": "Again"}]
    await provider.chat(ChatCall({"messages": messages}, "claude-x"))
    sent = fake.requests[-1].json
    assert sent["system"] == [{"type": "text", "text": "Rule one.", "cache_control": {"type": "ephemeral"}},
                              {"type": "text", "text": "Rule two."}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


# -- answers ---------------------------------------------------------------------------------
async def test_a_message_becomes_a_chat_completion(provider) -> None:
    body = await _chat(provider)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-msg_01")
    assert body["model"] == "claude-sonnet-4-5"
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": payloads.REPLY_TEXT, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": PROMPT_WORDS, "completion_tokens": payloads.COMPLETION_TOKENS,
                             "total_tokens": PROMPT_WORDS + payloads.COMPLETION_TOKENS,
                             "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0}}


@pytest.mark.parametrize(("extra", "finish", "content"), [
    ({"max_tokens": 3}, "length", "Hello! This"),  # stop_reason max_tokens
    ({"stop": [" fake"]}, "stop", "Hello! This is the"),  # stop_reason stop_sequence
])
async def test_stop_reasons_become_finish_reasons(provider, extra: dict[str, Any], finish: str, content: str) -> None:
    choice = (await _chat(provider, **extra))["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == (finish, content)


async def test_prompt_cache_reads_and_writes_count_as_prompt_tokens(provider) -> None:
    done = await provider.chat(ChatCall({"messages": MESSAGES}, "cache-hit"))
    prompt = PROMPT_WORDS + payloads.CACHE_READ_TOKENS + payloads.CACHE_CREATION_TOKENS
    assert done.usage is not None and done.usage.prompt_tokens == prompt
    usage = orjson.loads(done.raw)["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": payloads.CACHE_READ_TOKENS,
                                              "cache_creation_tokens": payloads.CACHE_CREATION_TOKENS}
    assert usage["total_tokens"] == prompt + payloads.COMPLETION_TOKENS


# -- tools -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("choice", "sent_choice"), [
    (None, None), ("auto", {"type": "auto"}), ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
async def test_tool_use_becomes_tool_calls(provider, fake: FakeAnthropic, choice: Any, sent_choice: Any) -> None:
    extra = {"tool_choice": choice} if choice is not None else {}
    body = await _chat(provider, tools=[WEATHER], **extra)
    sent = fake.requests[-1].json
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": WEATHER["function"]["parameters"]}]  # type: ignore[index]
    assert sent.get("tool_choice") == sent_choice
    choice_out = body["choices"][0]
    assert choice_out["finish_reason"] == "tool_calls"
    assert choice_out["message"]["content"] == payloads.TOOL_PREAMBLE
    (call,) = choice_out["message"]["tool_calls"]
    assert call["id"].startswith("toolu_01") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_tool_choice_none_and_no_parallel_calls(provider, fake: FakeAnthropic) -> None:
    body = await _chat(provider, tools=[WEATHER], tool_choice="none")
    assert fake.requests[-1].json["tool_choice"] == {"type": "none"}
    assert body["choices"][0]["finish_reason"] == "stop" and "tool_calls" not in body["choices"][0]["message"]
    await _chat(provider, tools=[WEATHER], parallel_tool_calls=False)
    assert fake.requests[-1].json["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


async def test_tool_calls_and_results_go_back_as_tool_use_and_tool_result_blocks(provider, fake: FakeAnthropic) -> None:
    calls = [{"id": f"toolu_{city}", "type": "function",
              "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}} for city in ("Paris", "Rome")]
    messages = [{"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "tool", "tool_call_id": "toolu_Paris", "content": "18 C"},
                {"role": "tool", "tool_call_id": "toolu_Rome", "content": [{"type": "text", "text": "24 C"}]},
                {"role": "user", "content": "Which is warmer?"}]
    done = await provider.chat(ChatCall({"messages": messages, "tools": [WEATHER], "tool_choice": "none"}, "claude-x"))
    assert orjson.loads(done.raw)["choices"][0]["message"]["content"] == payloads.REPLY_TEXT  # the fake accepted it
    sent = fake.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": "toolu_Paris", "name": "get_weather", "input": {"city": "Paris"}},
                                  {"type": "tool_use", "id": "toolu_Rome", "name": "get_weather", "input": {"city": "Rome"}}]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_Paris", "content": "18 C"},
                                  {"type": "tool_result", "tool_use_id": "toolu_Rome",
                                   "content": [{"type": "text", "text": "24 C"}]},
                                  {"type": "text", "text": "Which is warmer?"}]


# -- images ----------------------------------------------------------------------------------
async def test_images_become_base64_and_url_image_blocks(provider, fake: FakeAnthropic) -> None:
    content = [{"type": "text", "text": "Compare"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]
    done = await provider.chat(ChatCall({"messages": [{"role": "user", "content": content}]}, "claude-x"))
    assert done.usage is not None and done.usage.prompt_tokens == 1
    (message,) = fake.requests[-1].json["messages"]
    assert message["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


# -- refused before anything is sent ---------------------------------------------------------
@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"temperature": 1.5}, "temperature"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]},
     "messages[0].content[0].image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
])
async def test_what_anthropic_cannot_express_is_a_clear_400(provider, fake: FakeAnthropic, extra: dict[str, Any],
                                                            param: str) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES, **extra}, "claude-x")))
    assert (error.status, error.type, error.param, error.retryable) == (400, "invalid_request_error", param, False)
    assert "claude" in error.message  # names the provider
    assert fake.requests == []


async def test_embeddings_are_a_clear_error_naming_the_provider(provider, fake: FakeAnthropic) -> None:
    error = await _error(provider.embeddings(EmbeddingsCall({"input": "x"}, "claude-x")))
    assert (error.status, error.code, error.retryable) == (400, "unsupported_endpoint", False)
    assert "claude" in error.message and "anthropic" in error.message and "embeddings" in error.message
    assert error.body().error.type == "invalid_request_error"
    assert fake.requests == []


# -- streams ---------------------------------------------------------------------------------
async def test_stream_becomes_chat_completion_chunks(provider, fake: FakeAnthropic) -> None:
    chunks = await _stream(provider)
    assert fake.requests[-1].json["stream"] is True
    parsed = [orjson.loads(c.raw) for c in chunks]
    assert all(p["object"] == "chat.completion.chunk" for p in parsed)
    assert len({p["id"] for p in parsed}) == 1 and parsed[0]["id"].startswith("chatcmpl-msg_01")
    role, *content, finish, usage = parsed
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in content] == payloads.REPLY_PIECES
    assert "".join(c.text for c in chunks) == payloads.REPLY_TEXT
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == [] and chunks[-1].usage_only and not any(c.usage_only for c in chunks[:-1])
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (PROMPT_WORDS, payloads.COMPLETION_TOKENS)


async def test_streamed_tool_call_deltas(provider) -> None:
    chunks = await _stream(provider, tools=[WEATHER])
    deltas = [orjson.loads(c.raw)["choices"][0]["delta"] for c in chunks[:-1]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    first, *fragments = calls
    assert first["index"] == 0 and first["id"].startswith("toolu_01") and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert len(fragments) > 1 and all(set(f) == {"index", "function"} and f["index"] == 0 for f in fragments)
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {"city": "Paris"}
    assert "".join(d.get("content") or "" for d in deltas) == payloads.TOOL_PREAMBLE
    assert orjson.loads(chunks[-2].raw)["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == PROMPT_WORDS


async def test_streamed_usage_merges_message_start_and_message_delta(provider) -> None:
    plain = await provider.chat(ChatCall({"messages": MESSAGES}, "cache-hit"))
    streamed = (await _stream(provider, "cache-hit"))[-1]
    assert plain.usage is not None and streamed.usage is not None
    assert streamed.usage.prompt_tokens == plain.usage.prompt_tokens  # from message_start
    assert streamed.usage.completion_tokens == payloads.COMPLETION_TOKENS  # message_delta's total, not message_start's 1
    assert orjson.loads(streamed.raw)["usage"]["prompt_tokens_details"]["cached_tokens"] == payloads.CACHE_READ_TOKENS


async def test_stream_max_tokens_finishes_with_length(provider) -> None:
    chunks = await _stream(provider, max_tokens=2)
    assert orjson.loads(chunks[-2].raw)["choices"][0]["finish_reason"] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


async def test_stream_failures_before_the_first_chunk_are_raised_retryable(provider) -> None:
    for model, status in (("fail-529", 503), ("stream-overloaded", 503), ("fail-500", 502)):
        error = await _error(anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, model))))
        assert (error.status, error.retryable) == (status, True), model


async def test_error_event_mid_stream_ends_the_stream_with_an_error(provider) -> None:
    seen: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-error-mid")):
            seen.append(chunk)
    assert "".join(c.text for c in seen) == "".join(payloads.REPLY_PIECES[:3])
    assert caught.value.status == 503 and "overloaded" in caught.value.message.lower()


async def test_stream_cut_before_message_stop_is_an_error(provider) -> None:
    seen: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-cut")):
            seen.append(chunk)
    assert seen and not any(c.usage for c in seen)
    assert caught.value.status == 502 and "message_stop" in caught.value.message


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "status", "retryable", "code"), [
    ("fail-529", 503, True, "service_unavailable"),
    ("fail-429", 429, True, "rate_limit_exceeded"),
    ("fail-401", 502, True, "upstream_auth_failed"),
    ("fail-403", 502, True, "upstream_auth_failed"),
    ("fail-404", 502, True, "upstream_model_not_found"),
    ("fail-500", 502, True, "upstream_error"),
    ("fail-400", 400, False, None),
    ("too-long", 400, False, "context_length_exceeded"),
])
async def test_upstream_errors_map_to_gateway_errors(provider, model: str, status: int, retryable: bool,
                                                     code: str | None) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, model)))
    assert (error.status, error.retryable, error.code) == (status, retryable, code)
    assert "claude" in error.message or status == 400


async def test_rate_limit_and_overload_keep_retry_after(provider) -> None:
    for model in ("fail-429", "fail-529"):
        error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, model)))
        assert error.retry_after == "7"
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "fail-429")))
    assert error.type == "rate_limit_exceeded"


async def test_invalid_requests_keep_anthropics_message(provider) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "fail-400")))
    assert error.message == "messages: fake upstream refused this request" and error.type == "invalid_request_error"
    too_long = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "too-long")))
    assert too_long.message.startswith("prompt is too long:") and too_long.param == "messages"


async def test_refused_credentials_never_show_the_key(fake: FakeAnthropic, http: UpstreamHttp,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-ant-wrong-key-that-must-stay-private-42"
    monkeypatch.setenv(KEY_ENV, wrong)
    provider = AnthropicProvider(AnthropicConfig(name="claude", base_url=fake.base_url, api_key=f"env:{KEY_ENV}"), http)
    for call in (provider.chat(ChatCall({"messages": MESSAGES}, "claude-x")),
                 anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, "claude-x")))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (502, True, "upstream_auth_failed")
        assert "claude" in error.message
        for text in (error.message, str(error), repr(error)):
            assert wrong not in text and wrong[-6:] not in text and KEY not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_is_502_and_hanging_is_504(fake: FakeAnthropic, http: UpstreamHttp,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    down = AnthropicProvider(AnthropicConfig(name="down", base_url=f"http://127.0.0.1:{_closed_port()}"), http)
    error = await _error(down.chat(ChatCall({"messages": MESSAGES}, "claude-x")))
    assert (error.status, error.retryable, error.code) == (502, True, "upstream_unreachable")
    slow = AnthropicProvider(AnthropicConfig(name="slow", base_url=fake.base_url, api_key=f"env:{KEY_ENV}",
                                             timeout_s=0.3), http)
    for call in (slow.chat(ChatCall({"messages": MESSAGES}, "hang")),
                 anext(slow.chat_stream(ChatCall({"messages": MESSAGES}, "hang")))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (504, True, "upstream_timeout")
