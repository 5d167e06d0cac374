"""Usage events of calls: one per call that reached the pipeline's last stage, whatever its
outcome, built the same way by the router (which knows what the upstream said) and by the
ingress (when the router holding a call went silent: it charges what it relayed).

A call's usage event takes the call's id as its event id (and so as its `Nats-Msg-Id`):
JetStream drops the second publish of the same id and every accounting write is
idempotent on it, so a late event from a router that was presumed dead and the ingress's
own for the same call count once.

A call the ingress ended itself with an error while the router may still finish it (the
bus away past its wait, the router silent) also gets a `usage.corrected`: the status the
client saw, under an id of its own made from the call's (so it is never dropped as a
duplicate of the usage event, and a second publish of it is). Accounting gives the call's
one row that status, whichever of the two it stores first (services/accounting/corrections.py).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from shared.events import CorrectionData, UsageCorrection, UsageData, UsageEvent, envelope_ids
from shared.openai_types import Usage
from shared.pipeline import Endpoint
from shared.protocol import CallEnvelope, CallUsage
from shared.tokens import (
    estimate_input_tokens,
    estimate_prompt_tokens,
    estimate_responses_tokens,
    estimate_text_tokens,
)

Status = Literal["ok", "error", "cancelled"]
UsageSource = Literal["upstream", "estimated", "none"]

_CORRECTIONS = uuid.UUID("6a1c2f0e-7d3b-5e4a-9c81-0b2d4f6e8a13")  # the namespace of correction ids


def correction_id(call_id: str) -> str:
    """The id of a call's `usage.corrected`: the same for every publish of it, never the call's."""
    return str(uuid.uuid5(_CORRECTIONS, call_id))


def usage_correction(envelope: CallEnvelope, *, status: Literal["error", "cancelled"],
                     error_code: str | None) -> UsageCorrection:
    return UsageCorrection(
        id=correction_id(envelope.call_id), source="ingress",
        **envelope_ids(envelope.principal, envelope.request_id),
        data=CorrectionData(call_id=envelope.call_id, status=status, error_code=error_code))


@dataclass(frozen=True, slots=True)
class TokenDetails:
    """The parts of a usage's counts the upstream reported: prompt tokens read from and
    written to its cache, completion tokens spent reasoning. Each is within its total."""

    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0


def _detail(usage: Usage, group: str, name: str) -> int:
    details = (usage.model_extra or {}).get(group)
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_details(usage: Usage) -> TokenDetails:
    """Read from OpenAI's usage object as every adapter makes it: `prompt_tokens_details`
    (`cached_tokens`, and `cache_creation_tokens` from Anthropic and Bedrock) and
    `completion_tokens_details.reasoning_tokens`; absent or odd values are 0."""
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    cached = min(_detail(usage, "prompt_tokens_details", "cached_tokens"), prompt)
    written = min(_detail(usage, "prompt_tokens_details", "cache_creation_tokens"), prompt - cached)
    reasoning = min(_detail(usage, "completion_tokens_details", "reasoning_tokens"), completion)
    return TokenDetails(cached, written, reasoning)


def usage_event(envelope: CallEnvelope, *, source: str, provider: str | None, deployment_model: str | None,
                usage: Usage | None, usage_source: UsageSource, status: Status, latency_ms: float,
                attempts: int, units: Decimal = Decimal(0)) -> UsageEvent:
    """`units`: what the model's mode counts beyond tokens (images, characters, seconds),
    priced with the route's `per_unit`; an answered call also costs `per_request`. Prompt
    tokens read from or written to a cache cost the route's cache prices."""
    usage = usage or Usage()
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    total = usage.total_tokens or prompt + completion
    details = token_details(usage)
    route = envelope.route
    extra = route.per_request + route.per_unit * units if status == "ok" else Decimal(0)
    return UsageEvent(
        id=envelope.call_id, source=source, **envelope_ids(envelope.principal, envelope.request_id),
        data=UsageData(
            model=envelope.route.model, provider=provider, deployment_model=deployment_model,
            endpoint=envelope.endpoint.value, stream=envelope.stream, status=status, usage_source=usage_source,
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=total,
            cached_tokens=details.cached, cache_write_tokens=details.cache_write,
            reasoning_tokens=details.reasoning,
            cost=route.cost(prompt, completion, details.cached, details.cache_write) + extra,
            latency_ms=round(latency_ms, 3), attempts=attempts,
        ),
    )


def call_usage(event: UsageEvent) -> CallUsage:
    """What a usage event says, as the final frame carries it to the ingress."""
    data = event.data
    return CallUsage(prompt_tokens=data.prompt_tokens, completion_tokens=data.completion_tokens, cost=data.cost)


def estimated_usage(endpoint: Endpoint, body: dict[str, Any], completion_text: str = "") -> Usage:
    """Tokens counted from the request (and the text relayed so far) when no upstream said."""
    if endpoint in (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS, Endpoint.SPEECH):
        prompt = estimate_input_tokens(body.get("input"))
    elif endpoint is Endpoint.COMPLETIONS:
        prompt = estimate_input_tokens(body.get("prompt"))
    elif endpoint is Endpoint.RESPONSES:
        prompt = estimate_responses_tokens(body.get("instructions"), body.get("input"))
    else:
        prompt = estimate_prompt_tokens(body.get("messages") or [])
    completion = estimate_text_tokens(completion_text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _chunk_text(chunk: dict[str, Any]) -> str:
    pieces: list[str] = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        if isinstance(delta.get("content"), str):
            pieces.append(delta["content"])
        for call in delta.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                pieces.append(function["arguments"])
    return "".join(pieces)


def relayed_text(chunks: list[bytes]) -> tuple[str, Usage | None]:
    """What a stream's relayed `chat.completion.chunk`s said: their text (content and tool
    arguments), and the usage one of them carried, if any."""
    text: list[str] = []
    usage: Usage | None = None
    for raw in chunks:
        try:
            chunk = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(chunk, dict):
            continue
        text.append(_chunk_text(chunk))
        if isinstance(chunk.get("usage"), dict):
            usage = Usage.model_validate(chunk["usage"])
    return "".join(text), usage
