"""Usage events: one per call that reached the router, whatever its outcome."""
from __future__ import annotations

from typing import Literal

from services.router.registry import Target
from shared.events import UsageData, UsageEvent, envelope_ids
from shared.openai_types import Usage
from shared.protocol import CallEnvelope

Status = Literal["ok", "error", "cancelled"]
UsageSource = Literal["upstream", "estimated", "none"]


def usage_event(envelope: CallEnvelope, *, target: Target | None, usage: Usage | None, usage_source: UsageSource,
                status: Status, latency_ms: float, attempts: int) -> UsageEvent:
    usage = usage or Usage()
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    total = usage.total_tokens or prompt + completion
    return UsageEvent(
        source="router", **envelope_ids(envelope.principal, envelope.request_id),
        data=UsageData(
            model=envelope.route.model,
            provider=target.provider.name if target else None,
            deployment_model=target.model if target else None,
            endpoint=envelope.endpoint.value, stream=envelope.stream, status=status, usage_source=usage_source,
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=total,
            cost=envelope.route.cost(prompt, completion),
            latency_ms=round(latency_ms, 3), attempts=attempts,
        ),
    )
