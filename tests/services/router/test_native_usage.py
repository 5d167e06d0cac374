"""Usage read from pass-through answers as they pass (services/router/native_usage.py)."""
from __future__ import annotations

import orjson

from services.router.native_url import native_url, without_version
from services.router.native_usage import WHOLE_BODY_BYTES, NativeUsage
from services.router.providers.anthropic import payloads as anthropic_payloads
from services.router.providers.gemini import payloads as gemini_payloads
from services.router.providers.openai import payloads as openai_payloads
from services.router.providers.openai import responses_payloads
from shared.errors import InvalidRequest
from shared.openai_types import Usage
from shared.usage import token_details


def _fed(data: bytes, *, sse: bool, piece: int = 7) -> NativeUsage:
    tally = NativeUsage(sse=sse)
    for start in range(0, len(data), piece):  # split anywhere, across lines and events
        tally.feed(data[start:start + piece])
    return tally


def test_openai_body() -> None:
    body = orjson.dumps(openai_payloads.chat_completion("gpt-4o-mini", 17))
    usage = _fed(body, sse=False).usage()
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (17, openai_payloads.COMPLETION_TOKENS)


def test_anthropic_stream_message_start_then_delta() -> None:
    events = [{"type": "message_start", "message": {"id": "msg_1", "usage": {
                  "input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5,
                  "cache_creation_input_tokens": 2}}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}},
              {"type": "message_stop"}]
    stream = b"".join(b"event: " + e["type"].encode() + b"\r\ndata: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)
    usage = _fed(stream, sse=True).usage()
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (32, 15)


def test_anthropic_body() -> None:
    use = anthropic_payloads.usage(12, 10, cache_read=3, cache_creation=4)
    body = orjson.dumps(anthropic_payloads.message("claude", [anthropic_payloads.text_block("hi")], "end_turn", use))
    usage = _fed(body, sse=False).usage()
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (19, 10)  # cache reads and writes in


def test_gemini_stream_takes_the_last_counts() -> None:
    chunks = gemini_payloads.text_stream("gemini-2.5-flash", 11)
    stream = b"".join(gemini_payloads.sse(c) for c in chunks)
    usage = _fed(stream, sse=True, piece=13).usage()
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, gemini_payloads.CANDIDATES_TOKENS)


def test_unknown_or_too_large_counts_nothing() -> None:
    assert _fed(b'{"id": "x", "data": []}', sse=False).usage() is None
    assert _fed(b"not json at all", sse=False).usage() is None
    big = b'{"pad": "' + b"x" * WHOLE_BODY_BYTES + b'", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'
    assert _fed(big, sse=False, piece=65536).usage() is None


def test_urls_stay_under_the_base() -> None:
    assert without_version("https://api.openai.com/v1") == "https://api.openai.com"
    assert without_version("https://api.groq.com/openai/v1/") == "https://api.groq.com/openai"
    assert without_version("https://generativelanguage.googleapis.com/v1beta") == "https://generativelanguage.googleapis.com"
    assert without_version("http://127.0.0.1:1/custom") == "http://127.0.0.1:1/custom"
    url = native_url("http://127.0.0.1:9/base", "/v1/models/ft%3Ax", "alt=sse&key=k")
    assert str(url) == "http://127.0.0.1:9/base/v1/models/ft%3Ax?alt=sse"
    for path in ("/../x", "//other/x", "/%2e%2e/x"):
        try:
            native_url("http://127.0.0.1:9/base", path, "")
        except InvalidRequest:
            continue
        raise AssertionError(path)


def _details(usage: Usage | None) -> tuple[int, int, int]:
    assert usage is not None
    found = token_details(usage)
    return found.cached, found.cache_write, found.reasoning


def test_cache_and_reasoning_counts_are_read_where_each_api_puts_them() -> None:
    cached = orjson.dumps(openai_payloads.chat_completion("cache-hit", 7))
    assert _details(_fed(cached, sse=False).usage()) == (openai_payloads.CACHED_TOKENS, 0, 0)
    reasoned = orjson.dumps(openai_payloads.chat_completion("o3-mini", 7))
    assert _details(_fed(reasoned, sse=False).usage()) == (0, 0, openai_payloads.REASONING_TOKENS)
    use = anthropic_payloads.usage(12, 10, cache_read=3, cache_creation=4)
    body = orjson.dumps(anthropic_payloads.message("claude", [anthropic_payloads.text_block("hi")], "end_turn", use))
    assert _details(_fed(body, sse=False).usage()) == (3, 4, 0)
    response = {"object": "response", "usage": responses_payloads.usage(100, 40, cached=64, reasoning=30)}
    assert _details(_fed(orjson.dumps(response), sse=False).usage()) == (64, 0, 30)
    chunks = gemini_payloads.text_stream("gemini-2.5-flash", 11, thinking=True)
    usage = _fed(b"".join(gemini_payloads.sse(c) for c in chunks), sse=True, piece=13).usage()
    assert _details(usage) == (gemini_payloads.CACHED_TOKENS, 0, gemini_payloads.THOUGHTS_TOKENS)
    assert usage is not None
    assert usage.completion_tokens == gemini_payloads.CANDIDATES_TOKENS + gemini_payloads.THOUGHTS_TOKENS
