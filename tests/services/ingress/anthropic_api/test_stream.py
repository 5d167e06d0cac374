"""OpenAI chunk streams (as the fake OpenAI sends them) as Anthropic stream events."""
from __future__ import annotations

import json
from typing import Any

from services.ingress.anthropic_api.stream import StreamTranslator
from services.router.providers.openai import payloads as p


def _events(raw: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for event in b"".join(raw).decode().split("\n\n"):
        if event:
            name, data = event.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            parsed = json.loads(data[6:])
            assert parsed["type"] == name[7:]
            out.append((name[7:], parsed))
    return out


def _translate(chunks: list[dict[str, Any]], stop_sequences: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    translator = StreamTranslator("my-model", 42, stop_sequences)
    raw = [event for chunk in chunks for event in translator.feed(chunk)]
    return _events(raw + translator.finish())


def test_text_stream_with_usage() -> None:
    cid, created, chunks = p.content_stream("gpt-4o-mini", p.REPLY_PIECES, with_usage=True)
    chunks.append(p.usage_chunk(cid, created, "gpt-4o-mini", p.usage(30, p.COMPLETION_TOKENS)))
    events = _translate(chunks)
    names = [name for name, _ in events]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["content"] == [] and start["usage"]["input_tokens"] == 42
    assert start["model"] == "gpt-4o-mini"
    assert events[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == p.REPLY_TEXT
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == p.COMPLETION_TOKENS
    assert delta["usage"]["input_tokens"] == 30  # the upstream's count, not the estimate


def test_tool_call_stream() -> None:
    _, _, chunks = p.tool_call_stream("gpt-4o-mini", "get_weather", '{"city": "Paris"}', with_usage=False)
    events = _translate(chunks)
    starts = [d for n, d in events if n == "content_block_start"]
    (start,) = starts
    call_id = next(c["choices"][0]["delta"]["tool_calls"][0]["id"] for c in chunks
                   if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    assert start["content_block"] == {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}
    fragments = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert all(f["type"] == "input_json_delta" for f in fragments)
    assert json.loads("".join(f["partial_json"] for f in fragments)) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_text_then_two_tool_calls_are_three_blocks_in_order() -> None:
    def call(index: int, **function: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"index": index, "function": function}
        if "name" in function:
            entry.update(id=f"call_{index}", type="function")
        return {"tool_calls": [entry]}

    events = _translate([_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Checking."}),
                         _chunk(call(0, name="a", arguments="")), _chunk(call(0, arguments='{"x":1}')),
                         _chunk(call(1, name="b", arguments='{"y":')), _chunk(call(1, arguments="2}")),
                         _chunk({}, "tool_calls")])
    flow = [(n, d.get("index")) for n, d in events if n.startswith("content_block")]
    assert flow == [("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
                    ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1),
                    ("content_block_start", 2), ("content_block_delta", 2), ("content_block_delta", 2),
                    ("content_block_stop", 2)]
    blocks = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "tool_use"]
    assert [(b["id"], b["name"]) for b in blocks[1:]] == [("call_0", "a"), ("call_1", "b")]


def test_without_upstream_usage_output_is_estimated_and_stop_sequence_named() -> None:
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "abcdefgh"})]
    last = _chunk({}, "stop")
    last["choices"][0]["stop_reason"] = "END"
    delta = _translate([*chunks, last], ["END"])[-2][1]
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert delta["usage"] == {"input_tokens": 42, "output_tokens": 2}  # 8 characters, ~4 a token


def test_an_empty_stream_is_still_a_whole_message() -> None:
    names = [n for n, _ in _translate([])]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]
