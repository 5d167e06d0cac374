"""A Gemini `GenerateContentResponse` → OpenAI's `chat.completion`, and what both answers share:
finish reasons, usage, tool-call ids.

| Gemini `finishReason`                                        | OpenAI `finish_reason` |
|--------------------------------------------------------------|------------------------|
| STOP (a `functionCall` in the candidate: `tool_calls`)       | stop                   |
| MAX_TOKENS                                                   | length                 |
| SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, ... | content_filter |
| MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, OTHER, LANGUAGE | stop                 |

A prompt refused as a whole (`promptFeedback.blockReason`, no candidates) is an answer
with `finish_reason: content_filter` and no content, not an error.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from shared.openai_types import Usage

Json = dict[str, Any]
SIGNATURE_MARK = "~ts~"  # not in either base64 alphabet

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}


def finish_reason(gemini: Any, called_tools: bool) -> str:
    reason = _FINISH.get(str(gemini), "stop")
    return "tool_calls" if called_tools and reason == "stop" else reason


def completion_id(response: Json) -> str:
    upstream = response.get("responseId")
    return f"chatcmpl-{upstream}" if isinstance(upstream, str) and upstream else "chatcmpl-" + secrets.token_hex(14)


def tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def usage_from(metadata: Any) -> Usage | None:
    """usageMetadata → OpenAI usage; thinking tokens count as completion tokens, as OpenAI's
    reasoning tokens do."""
    if not isinstance(metadata, dict):
        return None
    prompt = int(metadata.get("promptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 prompt_tokens_details={"cached_tokens": int(metadata.get("cachedContentTokenCount") or 0)},
                 completion_tokens_details={"reasoning_tokens": thoughts})


def tool_call(part: Json) -> Json:
    """A `functionCall` part as an OpenAI tool call (arguments as a JSON string). The part's
    `thoughtSignature`, which thinking models want back with the call in the next turn,
    rides in the tool call's id (clients send ids back unchanged)."""
    function_call = part["functionCall"]
    call_id = function_call.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else tool_call_id()
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        call_id = f"{call_id}{SIGNATURE_MARK}{signature}"
    return {"id": call_id, "type": "function",
            "function": {"name": str(function_call.get("name") or ""),
                         "arguments": orjson.dumps(function_call.get("args") or {}).decode()}}


def split_signature(call_id: str) -> tuple[str, str | None]:
    """A tool call id as the client sent it back → (its id, the thought signature it carries)."""
    head, mark, signature = call_id.partition(SIGNATURE_MARK)
    return head, (signature or None) if mark else None


def candidate_parts(candidate: Json) -> list[Json]:
    parts = (candidate.get("content") or {}).get("parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _choice(candidate: Json, position: int) -> Json:
    text: list[str] = []
    calls: list[Json] = []
    for part in candidate_parts(candidate):
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part))
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            text.append(part["text"])
    message: Json = {"role": "assistant", "content": "".join(text) if text else None, "refusal": None,
                     "annotations": []}
    if calls:
        message["tool_calls"] = calls
    return {"index": int(candidate.get("index") or position), "message": message, "logprobs": None,
            "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls))}


def _blocked_choice() -> Json:
    return {"index": 0, "message": {"role": "assistant", "content": None, "refusal": None, "annotations": []},
            "logprobs": None, "finish_reason": "content_filter"}


def chat_completion(response: Json, model: str) -> tuple[Json, Usage | None]:
    candidates = [c for c in response.get("candidates") or () if isinstance(c, dict)]
    choices = [_choice(c, i) for i, c in enumerate(candidates)] or [_blocked_choice()]
    usage = usage_from(response.get("usageMetadata"))
    answer: Json = {"id": completion_id(response), "object": "chat.completion", "created": int(time.time()),
                    "model": response.get("modelVersion") or model, "choices": choices}
    if usage is not None:
        answer["usage"] = usage.model_dump()
    return answer, usage
