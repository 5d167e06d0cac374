"""Usage events as the router publishes them: one per call that reached it (shared/usage.py)."""
from __future__ import annotations

from decimal import Decimal

from services.router.registry import Target
from shared.events import UsageEvent
from shared.openai_types import Usage
from shared.protocol import CallEnvelope
from shared.usage import Status, UsageSource
from shared.usage import usage_event as call_usage_event

__all__ = ["Status", "UsageSource", "usage_event"]


def usage_event(envelope: CallEnvelope, *, target: Target | None, usage: Usage | None, usage_source: UsageSource,
                status: Status, latency_ms: float, attempts: int, units: Decimal = Decimal(0)) -> UsageEvent:
    return call_usage_event(
        envelope, source="router", provider=target.provider.name if target else None,
        deployment_model=target.model if target else None, usage=usage, usage_source=usage_source,
        status=status, latency_ms=latency_ms, attempts=attempts, units=units)
