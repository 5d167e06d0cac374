"""Usage events: one per request that reached the router, whatever its outcome."""
from __future__ import annotations

from typing import Literal

from services.router.registry import RoutedModel, Target
from shared.events import Principal, UsageData, UsageEvent, envelope_ids
from shared.openai_types import Usage


def usage_event(*, request_id: str, principal: Principal, routed: RoutedModel, target: Target | None,
                usage: Usage | None, usage_source: Literal["upstream", "estimated", "none"],
                status: Literal["ok", "error", "cancelled"], endpoint: Literal["chat", "embeddings"],
                stream: bool, latency_ms: float, attempts: int) -> UsageEvent:
    usage = usage or Usage()
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    total = usage.total_tokens or prompt + completion
    return UsageEvent(
        source="router", **envelope_ids(principal, request_id),
        data=UsageData(
            model=routed.config.name,
            provider=target.provider.name if target else None,
            deployment_model=target.model if target else None,
            endpoint=endpoint, stream=stream, status=status, usage_source=usage_source,
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=total,
            cost=routed.config.pricing.cost(prompt, completion),
            latency_ms=round(latency_ms, 3), attempts=attempts,
        ),
    )
