"""The Responses API on the OpenAI wire, as the router reads it: its usage, and each
typed stream event as the chunk that carries it on (its JSON as the upstream sent it).

| Responses API usage                          | the gateway's usage                          |
|----------------------------------------------|----------------------------------------------|
| `input_tokens` (cached ones included)        | `prompt_tokens`                              |
| `output_tokens` (reasoning ones included)    | `completion_tokens`                          |
| `input_tokens_details.cached_tokens`         | `prompt_tokens_details.cached_tokens`        |
| `output_tokens_details.reasoning_tokens`     | `completion_tokens_details.reasoning_tokens` |

A stream's usage is in its last event (`response.completed`, `response.incomplete` or
`response.failed`: `response.usage`). The text it relays (for a count when it carries none)
is that of its `output_text`, `refusal` and `function_call_arguments` deltas. An `error`
event ends the stream as the gateway's error (the client gets an `error` event).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from services.router.providers.base import Chunk, count_of
from services.router.providers.openai.errors import error_mid_stream
from shared.errors import UpstreamError
from shared.openai_types import Usage

FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta",
                         "response.function_call_arguments.delta"})


def _details(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def responses_usage(value: dict[str, Any]) -> Usage:
    """A usage object counted in `input_tokens` / `output_tokens` (the Responses API's; also
    images' and transcriptions') as the gateway's; its other fields stay (a transcription's
    `seconds`)."""
    prompt, completion = count_of(value, "input_tokens"), count_of(value, "output_tokens")
    return Usage.model_validate({
        **value, "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": count_of(value, "total_tokens") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count_of(_details(value.get("input_tokens_details")),
                                                            "cached_tokens")},
        "completion_tokens_details": {"reasoning_tokens": count_of(_details(value.get("output_tokens_details")),
                                                                   "reasoning_tokens")}})


def event_chunk(provider: str, data: str, headers: Mapping[str, str] | None = None) -> Chunk:
    """One stream event of the upstream as the chunk the router relays; raises the gateway's
    error for an `error` event or one that is not JSON."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"provider {provider} sent a stream event that is not JSON") from None
    if not isinstance(event, dict):
        raise UpstreamError(f"provider {provider} sent a stream event that is not an object")
    kind = event.get("type")
    if kind == "error":
        raise error_mid_stream(provider, event.get("error") if isinstance(event.get("error"), dict) else event)
    usage = None
    if kind in FINAL_EVENTS and isinstance(event.get("response"), dict) \
            and isinstance(event["response"].get("usage"), dict):
        usage = responses_usage(event["response"]["usage"])
    delta = event.get("delta") if kind in TEXT_DELTAS else None
    return Chunk(data.encode(), usage, delta if isinstance(delta, str) else "", headers=headers)
