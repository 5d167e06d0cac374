"""Every event type the gateway publishes, with its model, stream, subject and publishers:
the one table the subscribers' feed, the JSON Schema files (docs/schemas/) and the AsyncAPI
document (docs/asyncapi.json) are made from. An event type is listed here only when
something publishes it."""
from __future__ import annotations

import builtins
from dataclasses import dataclass

from pydantic import BaseModel

from shared.events import (
    SCHEMA_VERSION,
    AdminEvent,
    BudgetWarningEvent,
    ConfigLoadedEvent,
    GuardrailEvent,
    KeyEvent,
    ProviderHealthEvent,
    RequestEvent,
    UsageCorrection,
    UsageEvent,
)
from shared.subjects import AUDIT_STREAM, SYSTEM_ORG, USAGE_STREAM, StreamSpec


@dataclass(frozen=True)
class EventKind:
    type: str
    model: builtins.type[BaseModel]
    stream: StreamSpec
    publishers: tuple[str, ...]  # the services (or CLI) that publish it
    description: str
    system: bool = False  # an event of the gateway itself: of no organisation, under SYSTEM_ORG

    @property
    def subject(self) -> str:
        """The subject, with `{org_id}` for the organisation token."""
        if self.stream is USAGE_STREAM:
            return "jetgate.usage.{org_id}"
        return f"jetgate.audit.{SYSTEM_ORG if self.system else '{org_id}'}.{self.type}"

    @property
    def version(self) -> int:
        return SCHEMA_VERSION


CATALOG: tuple[EventKind, ...] = (
    EventKind("usage.recorded", UsageEvent, USAGE_STREAM, ("router", "ingress"),
              "One per request that reached the router: tokens, cost, latency, outcome."),
    EventKind("usage.corrected", UsageCorrection, USAGE_STREAM, ("ingress",),
              "The status the client saw of a call the ingress ended itself; it wins over its usage.recorded status."),
    EventKind("request.received", RequestEvent, AUDIT_STREAM, ("ingress",),
              "An authenticated request was accepted (model known and allowed)."),
    EventKind("request.completed", RequestEvent, AUDIT_STREAM, ("ingress",),
              "A request was answered (`status_code`)."),
    EventKind("request.failed", RequestEvent, AUDIT_STREAM, ("ingress",),
              "A request failed or was refused after authentication (error type, code, reason)."),
    EventKind("request.denied", RequestEvent, AUDIT_STREAM, ("ingress",),
              "A guardrail blocked a request, or the key may not use the model."),
    EventKind("key.created", KeyEvent, AUDIT_STREAM, ("ingress", "cli"),
              "An admin created an API key."),
    EventKind("key.revoked", KeyEvent, AUDIT_STREAM, ("ingress", "cli"),
              "An admin revoked an API key."),
    EventKind("admin.action", AdminEvent, AUDIT_STREAM, ("ingress", "cli"),
              "An action of the admin API or CLI on an org, team, user or key: who, what, before and after."),
    EventKind("budget.warning", BudgetWarningEvent, AUDIT_STREAM, ("ingress",),
              "A level's budget passed its warning share in a budget period (once per period and level)."),
    EventKind("guardrail.finding", GuardrailEvent, AUDIT_STREAM, ("guardrails",),
              "Guardrail rules matched a call (a block, or redactions): rules and counts, never the text."),
    EventKind("provider.health", ProviderHealthEvent, AUDIT_STREAM, ("router",),
              "A deployment became unhealthy in one router replica (skipped for a cooldown) or healthy again.",
              system=True),
    EventKind("config.loaded", ConfigLoadedEvent, AUDIT_STREAM, ("ingress", "guardrails", "router", "accounting"),
              "A service process started with its configuration: digest (secrets left out), summary, changed.",
              system=True),
)

BY_TYPE: dict[str, EventKind] = {kind.type: kind for kind in CATALOG}


def types_of(stream: StreamSpec) -> tuple[str, ...]:
    return tuple(kind.type for kind in CATALOG if kind.stream is stream)
