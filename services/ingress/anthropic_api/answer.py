"""A `chat.completion` (as the pipeline answers) as an Anthropic `message` object.

`finish_reason` becomes `stop_reason`: `stop` → `end_turn` (or `stop_sequence` when the
upstream names the matched sequence in the choice's `stop_reason`, as vLLM does), `length` →
`max_tokens`, `tool_calls` → `tool_use`, `content_filter` → `refusal`. Usage: OpenAI's
`prompt_tokens` includes cached tokens; Anthropic's `input_tokens` does not, so the cached
part (`prompt_tokens_details.cached_tokens`, and `cache_creation_tokens` as the `anthropic`
provider type reports it) is taken out into `cache_read_input_tokens` and
`cache_creation_input_tokens`.
"""
from __future__ import annotations

from typing import Any

import orjson

from shared.errors import UpstreamError
from shared.ids import uuid7

Json = dict[str, Any]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def message_id(completion_id: Any) -> str:
    """`msg_…` from the upstream's id (the `anthropic` provider type's `chatcmpl-msg_…` gives back its own)."""
    if not isinstance(completion_id, str) or not completion_id:
        return "msg_" + uuid7().replace("-", "")
    rest = completion_id.removeprefix("chatcmpl-")
    return rest if rest.startswith("msg_") else "msg_" + rest


def as_object(value: Any) -> Json:
    """`value` when it is a JSON object, else an empty one (upstreams leave fields out or null)."""
    return value if isinstance(value, dict) else {}


def _count(usage: Json, name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def anthropic_usage(usage: Json) -> Json:
    details = as_object(usage.get("prompt_tokens_details"))
    read, created = _count(details, "cached_tokens"), _count(details, "cache_creation_tokens")
    return {"input_tokens": max(_count(usage, "prompt_tokens") - read - created, 0),
            "cache_creation_input_tokens": created, "cache_read_input_tokens": read,
            "output_tokens": _count(usage, "completion_tokens")}


def stop_of(finish_reason: Any, matched: Any, stop_sequences: list[str] | None) -> tuple[str, str | None]:
    """(`stop_reason`, `stop_sequence`) for a choice's `finish_reason`."""
    if finish_reason == "stop" and isinstance(matched, str) and matched in (stop_sequences or ()):
        return "stop_sequence", matched
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn", None


def tool_input(arguments: Any, name: Any, *, cut: bool = False) -> Json:
    """A tool call's arguments as the `tool_use` input; arguments cut off by `max_tokens` give
    `{}` (as Anthropic's own cut-off tool calls), any other that is not a JSON object is an error."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        if cut:
            return {}
        raise UpstreamError(f"The model called the tool {name!r} with arguments that are not a JSON object.")
    return parsed


def message_of(completion: Json, model: str, stop_sequences: list[str] | None) -> Json:
    """The Anthropic `message` for one `chat.completion`."""
    choices = completion.get("choices")
    choice = as_object(choices[0]) if isinstance(choices, list) and choices else {}
    reply = as_object(choice.get("message"))
    content: list[Json] = []
    cut = choice.get("finish_reason") == "length"
    text = reply.get("content") or reply.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        function = as_object(as_object(call).get("function"))
        if not function:
            continue
        content.append({"type": "tool_use", "id": call.get("id") or "toolu_" + uuid7().replace("-", ""),
                        "name": function.get("name"),
                        "input": tool_input(function.get("arguments"), function.get("name"), cut=cut)})
    stop_reason, stop_sequence = stop_of(choice.get("finish_reason"), choice.get("stop_reason"), stop_sequences)
    return {"id": message_id(completion.get("id")), "type": "message", "role": "assistant", "content": content,
            "model": completion.get("model") or model, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": anthropic_usage(as_object(completion.get("usage")))}
