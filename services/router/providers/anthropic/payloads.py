"""Anthropic Messages API payloads, shaped after the API reference and the official SDK's
types: the `message` object, the stream's event sequence (`message_start`,
`content_block_start` / `content_block_delta` / `content_block_stop`, `ping`,
`message_delta`, `message_stop`, `error`) and the error bodies. Plain functions returning
JSON-ready dicts; the fake upstream (tests/fakes/anthropic_upstream.py) answers with them.

Token counts are deterministic so tests can compute expected usage: input tokens are the
whitespace-separated words of the request's text (system, text blocks, tool results),
output tokens are one per reply piece (`COMPLETION_TOKENS`), or `max_tokens` when that cuts
the reply short. A tool call names the first offered tool (or the one `tool_choice` names),
with input filled from its schema ("Paris" for strings, the first value of an enum).
"""
from __future__ import annotations

import json
import secrets
import string
from typing import Any

REPLY_PIECES = ["Hello", "!", " This", " is", " the", " fake", " Anthropic", " upstream", " answering", "."]
REPLY_TEXT = "".join(REPLY_PIECES)
COMPLETION_TOKENS = len(REPLY_PIECES)  # 10
TOOL_PREAMBLE = "I'll call the tool."
CACHE_READ_TOKENS = 1800  # what the `cache-hit` model reports
CACHE_CREATION_TOKENS = 200
CONTEXT_WINDOW = 200_000

Json = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits
_SAMPLE_VALUES: dict[str, Any] = {"string": "Paris", "number": 1.5, "integer": 1, "boolean": True,
                                  "array": [], "object": {}}


def _base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def message_id() -> str:
    return "msg_01" + _base62(22)


def tool_use_id() -> str:
    return "toolu_01" + _base62(22)


def request_id() -> str:
    return "req_011C" + _base62(20)


# -- what a request asks for ------------------------------------------------------------
def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return _content_text(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(_block_text(b) for b in content)
    return _block_text(content)


def count_input_tokens(body: Json) -> int:
    words = len(_content_text(body.get("system")).split())
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            words += len(_content_text(message.get("content")).split())
    return words


def chosen_tool(body: Json) -> tuple[str, Json] | None:
    """(tool name, input) when the request offers tools and does not forbid them."""
    tools, choice = body.get("tools"), body.get("tool_choice") or {"type": "auto"}
    if not isinstance(tools, list) or not tools or choice.get("type") == "none":
        return None
    wanted = choice.get("name") if choice.get("type") == "tool" else None
    for tool in tools:
        if isinstance(tool, dict) and (wanted is None or tool.get("name") == wanted):
            return str(tool.get("name")), _sample_input(tool.get("input_schema") or {})
    return None


def _sample_input(schema: Json) -> Json:
    """Input that fits a JSON schema's required (or else all) properties."""
    properties: Json = schema.get("properties") or {}
    values: Json = {}
    for name in schema.get("required") or list(properties):
        prop = properties.get(name) or {}
        values[name] = prop["enum"][0] if prop.get("enum") else _SAMPLE_VALUES.get(prop.get("type", ""), "example")
    return values


def reply_pieces(body: Json) -> tuple[list[str], str, str | None]:
    """The reply's pieces as the request's `max_tokens` and `stop_sequences` leave them,
    with the stop reason and the stop sequence met (one output token per piece)."""
    text = ""
    pieces: list[str] = []
    for piece in REPLY_PIECES:
        if len(pieces) == body.get("max_tokens"):
            return pieces, "max_tokens", None
        for stop in body.get("stop_sequences") or ():
            if stop and stop in text + piece:
                kept = piece[:max(0, (text + piece).index(stop) - len(text))]
                return [*pieces, kept] if kept else pieces, "stop_sequence", stop
        pieces.append(piece)
        text += piece
    return pieces, "end_turn", None


# -- answers ----------------------------------------------------------------------------
def usage(input_tokens: int, output_tokens: int, cache_read: int = 0, cache_creation: int = 0) -> Json:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def text_block(text: str) -> Json:
    return {"type": "text", "text": text}


def tool_use_block(name: str, tool_input: Json, block_id: str | None = None) -> Json:
    return {"type": "tool_use", "id": block_id or tool_use_id(), "name": name, "input": tool_input}


def message(model: str, content: list[Json], stop_reason: str | None, use: Json,
            stop_sequence: str | None = None, mid: str | None = None) -> Json:
    return {
        "id": mid or message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": use,
    }


# -- streams: (event type, data) pairs ----------------------------------------------------
Event = tuple[str, Json]


def message_start(model: str, use: Json) -> Event:
    start_usage = {**use, "output_tokens": 1}  # the stream's first count; message_delta has the total
    return "message_start", {"type": "message_start", "message": message(model, [], None, start_usage)}


def _text_block_events(index: int, pieces: list[str]) -> list[Event]:
    events: list[Event] = [("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": {"type": "text", "text": ""}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _tool_block_events(index: int, name: str, tool_input: Json) -> list[Event]:
    arguments = json.dumps(tool_input)
    step = max(1, len(arguments) // 3)
    events: list[Event] = [
        ("content_block_start", {"type": "content_block_start", "index": index,
                                 "content_block": {"type": "tool_use", "id": tool_use_id(), "name": name, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": index,
                                 "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": {"type": "input_json_delta", "partial_json": arguments[i:i + step]}})
               for i in range(0, len(arguments), step)]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def message_delta(stop_reason: str, use: Json, stop_sequence: str | None = None) -> Event:
    return "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                             "usage": use}


MESSAGE_STOP: Event = ("message_stop", {"type": "message_stop"})
PING: Event = ("ping", {"type": "ping"})


def text_stream(model: str, pieces: list[str], use: Json, stop_reason: str, stop_sequence: str | None) -> list[Event]:
    """As the API streams a text reply: its `message_delta` carries only `output_tokens`."""
    return [message_start(model, use), PING, *_text_block_events(0, pieces),
            message_delta(stop_reason, {"output_tokens": use["output_tokens"]}, stop_sequence), MESSAGE_STOP]


def tool_stream(model: str, name: str, tool_input: Json, use: Json) -> list[Event]:
    """A text block, then a tool_use block whose input comes as `input_json_delta` fragments;
    its `message_delta` carries the cumulative counts, input included."""
    cumulative = {k: use[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                      "output_tokens")}
    return [message_start(model, use), *_text_block_events(0, [TOOL_PREAMBLE]), PING,
            *_tool_block_events(1, name, tool_input), message_delta("tool_use", cumulative), MESSAGE_STOP]


def sse(event: str, data: Json) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# -- errors -----------------------------------------------------------------------------
def error_body(type_: str, message_text: str) -> Json:
    return {"type": "error", "error": {"type": type_, "message": message_text}, "request_id": request_id()}


def invalid_request(message_text: str) -> Json:
    return error_body("invalid_request_error", message_text)


def invalid_api_key() -> Json:
    return error_body("authentication_error", "invalid x-api-key")


def permission_denied() -> Json:
    return error_body("permission_error", "Your API key does not have permission to use the specified resource.")


def model_not_found(model: str) -> Json:
    return error_body("not_found_error", f"model: {model}")


def rate_limited() -> Json:
    return error_body("rate_limit_error", "This request would exceed the rate limit for your organization of 50 "
                      "input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.")


def api_error() -> Json:
    return error_body("api_error", "Internal server error")


def overloaded() -> Json:
    return error_body("overloaded_error", "Overloaded")


def prompt_too_long(tokens: int) -> Json:
    return invalid_request(f"prompt is too long: {tokens} tokens > {CONTEXT_WINDOW} maximum")
