"""An Anthropic Messages API answer in OpenAI's shapes: the `chat.completion`, its
`finish_reason`, and its usage.

Usage: Anthropic counts the prompt in three parts (`input_tokens` not cached,
`cache_read_input_tokens`, `cache_creation_input_tokens`); OpenAI's `prompt_tokens` is
their sum, and `prompt_tokens_details.cached_tokens` the part read from the cache
(`cache_creation_tokens` beside it: the part written to it, which Anthropic bills higher).
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from services.router.providers.base import count_of, usage_json
from shared.openai_types import Usage

Json = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(usage: Json) -> Json:
    """Anthropic `usage` (from a message, or `message_start` merged with `message_delta`) as OpenAI's."""
    return usage_json(count_of(usage, "input_tokens"), count_of(usage, "output_tokens"),
                      count_of(usage, "cache_read_input_tokens"), count_of(usage, "cache_creation_input_tokens"))


def completion_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) and message_id else "chatcmpl-anthropic"


def tool_call(block: Json) -> Json:
    return {"id": block.get("id"), "type": "function",
            "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}}


def chat_completion(message: Json, model: str) -> tuple[bytes, Usage]:
    """The `chat.completion` for one Anthropic `message`, and its usage."""
    texts: list[str] = []
    calls: list[Json] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(tool_call(block))
        # thinking, redacted_thinking and server-tool blocks have no chat-completions counterpart
    reply: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    usage = openai_usage(message.get("usage") or {})
    answer = {
        "id": completion_id(message.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(message.get("stop_reason"))}],
        "usage": usage,
    }
    return orjson.dumps(answer), Usage.model_validate(usage)
