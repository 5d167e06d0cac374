"""ConverseStream on the wire (the fake sends real event-stream framing, messages split across
writes) and the translator fed raw frames: every chunk boundary, a corrupted checksum,
exceptions inside the stream."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, Chunk
from services.router.providers.bedrock import BedrockConfig, BedrockProvider, payloads
from services.router.providers.bedrock.stream import StreamTranslator
from shared.errors import GatewayError
from tests.fakes.bedrock_upstream import CREDENTIALS, REGION, FakeBedrock
from tests.fakes.event_stream import event, exception

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, upstream."}]
PROMPT_WORDS = 5
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


@pytest.fixture
def provider(fake: FakeBedrock, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> BedrockProvider:
    monkeypatch.setenv("JG_TEST_AWS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("JG_TEST_AWS_SECRET", CREDENTIALS.secret_access_key)
    fake.clear()
    config = BedrockConfig(name="bedrock-west", region=REGION, endpoint_url=fake.endpoint, timeout_s=10,
                           access_key_id="env:JG_TEST_AWS_KEY_ID", secret_access_key="env:JG_TEST_AWS_SECRET")
    return BedrockProvider(config, http)


async def _stream(provider: BedrockProvider, model: str = CLAUDE, **body: Any) -> list[Chunk]:
    return [c async for c in provider.chat_stream(ChatCall({"model": "gw", "messages": MESSAGES, **body}, model))]


async def test_a_stream_becomes_chat_completion_chunks(provider: BedrockProvider, fake: FakeBedrock) -> None:
    chunks = await _stream(provider)
    sent = fake.requests[-1]
    assert sent.path == f"/model/{CLAUDE}/converse-stream" and sent.headers["accept"] == "application/vnd.amazon.eventstream"
    parsed = [orjson.loads(c.raw) for c in chunks]
    assert all(p["object"] == "chat.completion.chunk" and p["model"] == CLAUDE for p in parsed)
    assert len({p["id"] for p in parsed}) == 1
    role, *content, finish, usage = parsed
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in content] == payloads.REPLY_PIECES
    assert "".join(c.text for c in chunks) == payloads.REPLY_TEXT
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == [] and chunks[-1].usage_only and not any(c.usage_only for c in chunks[:-1])
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (PROMPT_WORDS, payloads.COMPLETION_TOKENS)


async def test_streamed_tool_call_deltas(provider: BedrockProvider) -> None:
    chunks = await _stream(provider, tools=[WEATHER])
    deltas = [orjson.loads(c.raw)["choices"][0]["delta"] for c in chunks[:-1]]
    first, *fragments = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert first["index"] == 0 and first["id"].startswith("tooluse_") and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert len(fragments) > 1 and all(set(f) == {"index", "function"} and f["index"] == 0 for f in fragments)
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {"city": "Paris"}
    assert "".join(d.get("content") or "" for d in deltas) == payloads.TOOL_PREAMBLE
    assert orjson.loads(chunks[-2].raw)["choices"][0]["finish_reason"] == "tool_calls"


async def test_streamed_usage_matches_converse_and_keeps_cache_reads(provider: BedrockProvider) -> None:
    plain = await provider.chat(ChatCall({"messages": MESSAGES}, "cache-hit"))
    streamed = (await _stream(provider, "cache-hit"))[-1]
    assert plain.usage is not None and streamed.usage is not None
    assert (streamed.usage.prompt_tokens, streamed.usage.completion_tokens) == (plain.usage.prompt_tokens,
                                                                                plain.usage.completion_tokens)
    assert orjson.loads(streamed.raw)["usage"]["prompt_tokens_details"]["cached_tokens"] == payloads.CACHE_READ_TOKENS


async def test_stream_max_tokens_finishes_with_length(provider: BedrockProvider) -> None:
    chunks = await _stream(provider, max_tokens=2)
    assert orjson.loads(chunks[-2].raw)["choices"][0]["finish_reason"] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


async def test_an_exception_as_the_first_message_is_raised_retryable(provider: BedrockProvider) -> None:
    with pytest.raises(GatewayError) as caught:
        await anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-throttled")))
    assert (caught.value.status, caught.value.retryable, caught.value.code) == (429, True, "rate_limit_exceeded")


async def test_an_exception_mid_stream_ends_it_with_an_error(provider: BedrockProvider) -> None:
    seen: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-error-mid")):
            seen.append(chunk)
    assert "".join(c.text for c in seen) == "".join(payloads.REPLY_PIECES[:3])
    assert caught.value.status == 502 and "ModelStreamErrorException" in caught.value.message


async def test_a_stream_cut_before_metadata_is_an_error(provider: BedrockProvider) -> None:
    seen: list[Chunk] = []
    with pytest.raises(GatewayError) as caught:
        async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-cut")):
            seen.append(chunk)
    assert seen and not any(c.usage for c in seen)
    assert caught.value.status == 502 and "metadata" in caught.value.message


# -- the translator, fed frames directly -------------------------------------------------------
def _frames() -> bytes:
    use = payloads.usage(7, 2)
    events = payloads.text_stream(["Hi", " there"], "end_turn", use)
    return b"".join(event(*e) for e in events)


@pytest.mark.parametrize("size", [1, 2, 5, 16, 64, 10_000])
def test_every_chunk_boundary_gives_the_same_chunks(size: int) -> None:
    data = _frames()
    translator = StreamTranslator("bedrock-west", CLAUDE, "req-1")
    chunks = [c for i in range(0, len(data), size) for c in translator.feed(data[i:i + size])]
    assert translator.done and [c.text for c in chunks] == ["", "Hi", " there", "", ""]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 9
    assert orjson.loads(chunks[0].raw)["id"] == "chatcmpl-req-1"


def test_a_corrupted_frame_is_an_error_not_garbage() -> None:
    data = bytearray(_frames())
    data[40] ^= 0xFF  # inside the first message's headers: its CRC no longer matches
    translator = StreamTranslator("bedrock-west", CLAUDE, None)
    with pytest.raises(GatewayError) as caught:
        list(translator.feed(bytes(data)))
    assert caught.value.status == 502 and caught.value.retryable and "malformed event stream" in caught.value.message


@pytest.mark.parametrize(("exception_type", "status", "code"), [
    ("throttlingException", 429, "rate_limit_exceeded"),
    ("serviceUnavailableException", 503, "service_unavailable"),
    ("internalServerException", 502, "upstream_error"),
    ("validationException", 400, None),
])
def test_exceptions_inside_the_stream(exception_type: str, status: int, code: str | None) -> None:
    translator = StreamTranslator("bedrock-west", CLAUDE, None)
    assert len(list(translator.feed(event(*payloads.message_start())))) == 1
    with pytest.raises(GatewayError) as caught:
        list(translator.feed(exception(exception_type, "the reason")))
    assert (caught.value.status, caught.value.code) == (status, code) and "the reason" in caught.value.message
