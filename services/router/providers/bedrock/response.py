"""A Converse answer in OpenAI's shapes: the `chat.completion`, its `finish_reason`, its usage.

Usage: Bedrock counts the prompt in three parts (`inputTokens` not cached,
`cacheReadInputTokens`, `cacheWriteInputTokens`); OpenAI's `prompt_tokens` is their sum,
`prompt_tokens_details.cached_tokens` the part read from the cache (`cache_creation_tokens`
beside it: the part written to it, billed higher).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from services.router.providers.base import count_of, usage_json
from shared.openai_types import Usage

Json = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(usage: Json) -> Json:
    return usage_json(count_of(usage, "inputTokens"), count_of(usage, "outputTokens"),
                      count_of(usage, "cacheReadInputTokens"), count_of(usage, "cacheWriteInputTokens"))


def completion_id(request_id: str | None) -> str:
    """Converse answers carry no id; the AWS request id (`x-amzn-requestid`) names the call."""
    return f"chatcmpl-{request_id or uuid.uuid4().hex}"


def tool_call(block: Json) -> Json:
    return {"id": block.get("toolUseId"), "type": "function",
            "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}}


def chat_completion(answer: Json, model: str, request_id: str | None) -> tuple[bytes, Usage]:
    message = (answer.get("output") or {}).get("message") or {}
    texts: list[str] = []
    calls: list[Json] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(tool_call(block["toolUse"]))
        # reasoningContent and citations have no chat-completions counterpart
    reply: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    usage = openai_usage(answer.get("usage") or {})
    body = {
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(answer.get("stopReason"))}],
        "usage": usage,
    }
    return orjson.dumps(body), Usage.model_validate(usage)
