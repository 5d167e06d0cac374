"""The stream translator on event sequences the wire tests' fake does not send: thinking
blocks before the answer, several tool_use blocks, events out of order, unknown events."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.router.providers.anthropic import payloads as p
from services.router.providers.anthropic.stream import StreamTranslator
from shared.errors import GatewayError


def _feed(events: list[p.Event]) -> tuple[StreamTranslator, list[dict[str, Any]]]:
    translator = StreamTranslator("claude", "claude-x")
    out = [orjson.loads(chunk.raw) for _, data in events for chunk in translator.feed(data)]
    return translator, out


def _block(index: int, block: dict[str, Any]) -> p.Event:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> p.Event:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def test_thinking_is_skipped_and_tool_calls_are_numbered_in_order() -> None:
    events = [
        p.message_start("claude-x", p.usage(12, 0)),
        _block(0, {"type": "thinking", "thinking": ""}),
        _delta(0, {"type": "thinking_delta", "thinking": "Let me think."}),
        _delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
        _block(1, p.tool_use_block("first", {}, "toolu_A")),
        _block(2, p.tool_use_block("second", {}, "toolu_B")),
        _delta(2, {"type": "input_json_delta", "partial_json": '{"b": 2}'}),
        _delta(1, {"type": "input_json_delta", "partial_json": '{"a": 1}'}),
        p.message_delta("tool_use", {"output_tokens": 30}),
        ("event_from_the_future", {"type": "event_from_the_future"}),
        p.MESSAGE_STOP,
    ]
    translator, chunks = _feed(events)
    assert translator.done
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [(c["index"], c.get("id")) for c in calls] == [(0, "toolu_A"), (1, "toolu_B"), (1, None), (0, None)]
    assert calls[2]["function"]["arguments"] == '{"b": 2}' and calls[3]["function"]["arguments"] == '{"a": 1}'
    assert not any("Let me think." in orjson.dumps(c).decode() for c in chunks)
    assert chunks[-1]["usage"]["prompt_tokens"] == 12 and chunks[-1]["usage"]["completion_tokens"] == 30


def test_a_text_block_that_starts_with_text_keeps_it() -> None:
    _, chunks = _feed([p.message_start("claude-x", p.usage(1, 0)), _block(0, {"type": "text", "text": "Hi"})])
    assert chunks[-1]["choices"][0]["delta"] == {"content": "Hi"}


def test_ping_before_message_start_is_fine_anything_else_is_an_error() -> None:
    translator = StreamTranslator("claude", "claude-x")
    assert translator.feed(p.PING[1]) == []
    with pytest.raises(GatewayError) as caught:
        translator.feed(_delta(0, {"type": "text_delta", "text": "x"})[1])
    assert caught.value.status == 502 and "before message_start" in caught.value.message


@pytest.mark.parametrize(("kind", "status", "retryable"), [
    ("overloaded_error", 503, True), ("rate_limit_error", 429, True), ("api_error", 502, True),
    ("invalid_request_error", 400, False), ("authentication_error", 502, True),
])
def test_error_events_map_by_their_type(kind: str, status: int, retryable: bool) -> None:
    translator = StreamTranslator("claude", "claude-x")
    with pytest.raises(GatewayError) as caught:
        translator.feed(p.error_body(kind, "something happened"))
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
