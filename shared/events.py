"""The event envelope and every event type. Documented in docs/events.md.

One envelope for all events: id (UUIDv7, also the JetStream `Nats-Msg-Id`), type, time,
source, org/team/key ids, request id, schema version, data. Consumers parse with
`parse_event` and send what does not parse to the dead-letter stream.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.ids import uuid7
from shared.tenancy import Level, Role, Scope

SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


class Principal(BaseModel):
    """Who a request is made for: carried from the ingress through every worker.

    `levels` (org, team, user, key with their limits; shared/tenancy.py) are what the
    ingress's admission enforces; they stay in the ingress (not sent on the bus)."""

    key_id: str
    org_id: str = "default"
    team_id: str | None = None
    user_id: str | None = None
    is_admin: bool = False
    role: Role | None = None
    scopes: list[Scope] | None = None  # None: every scope its role allows
    models: list[str] | None = None  # None: every model; else what every level allows
    levels: list[Level] = Field(default_factory=list, exclude=True)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=uuid7)
    time: datetime = Field(default_factory=_now)
    source: str
    schema_version: int = SCHEMA_VERSION
    org_id: str = "default"
    team_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None


class UsageData(BaseModel):
    model: str
    provider: str | None = None
    deployment_model: str | None = None
    endpoint: Literal["chat", "responses", "embeddings", "passthrough", "completions", "moderations", "images",
                      "transcriptions", "speech"] = "chat"
    stream: bool = False
    status: Literal["ok", "error", "cancelled"] = "ok"
    usage_source: Literal["upstream", "estimated", "none"] = "upstream"
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)
    # parts of the counts above, where the upstream reports them (0 where it does not): prompt
    # tokens read from its prompt cache and written to it, completion tokens spent reasoning
    cached_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)
    cost: Decimal = Field(default=Decimal(0), ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=1, ge=0)


class UsageEvent(_Envelope):
    type: Literal["usage.recorded"] = "usage.recorded"
    data: UsageData


class CorrectionData(BaseModel):
    call_id: str = Field(max_length=40)  # the call, and so the id of its `usage.recorded`
    status: Literal["error", "cancelled"]  # what the client saw
    error_code: str | None = Field(default=None, max_length=64)


class UsageCorrection(_Envelope):
    """The status the client saw of a call the ingress ended itself (the bus away, the
    router silent): it wins over the status of the call's `usage.recorded`, whichever
    comes first; the tokens stay the usage event's."""

    type: Literal["usage.corrected"] = "usage.corrected"
    data: CorrectionData


class RequestData(BaseModel):
    method: str = "POST"
    path: str
    model: str | None = None
    stream: bool = False
    status_code: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    reason: str | None = None
    latency_ms: float | None = None


RequestEventType = Literal["request.received", "request.completed", "request.failed", "request.denied"]


class RequestEvent(_Envelope):
    type: RequestEventType
    data: RequestData


class KeyData(BaseModel):
    name: str | None = None
    actor_key_id: str | None = None
    models: list[str] | None = None


class KeyEvent(_Envelope):
    type: Literal["key.created", "key.revoked"]
    data: KeyData


class AdminData(BaseModel):
    """One admin action: who did what to which object, from where; `before` and `after` are
    the object's public record (never a key or its hash)."""

    actor_key_id: str
    action: Literal["created", "updated", "deleted", "revoked", "rotated"]
    object: Literal["org", "team", "user", "key"]
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    address: str | None = None


class AdminEvent(_Envelope):
    type: Literal["admin.action"] = "admin.action"
    data: AdminData



class BudgetWarningData(BaseModel):
    """A level's budget passed its warning share in a period (once per period and level)."""

    level: str  # org, team, user, key
    level_id: str
    max_budget: Decimal
    committed: Decimal  # reserved and spent in the period when it was noticed (an upper bound)
    share: float  # the warning share that was passed
    budget_duration: str | None = None
    period_start: datetime
    period_end: datetime | None = None  # None: the budget never resets


class BudgetWarningEvent(_Envelope):
    type: Literal["budget.warning"] = "budget.warning"
    data: BudgetWarningData


class GuardrailFinding(BaseModel):
    rule: str
    action: Literal["block", "redact"]
    count: int = Field(default=1, ge=1)


class GuardrailData(BaseModel):
    """What the guardrails found in one call: rules and counts, never the text that matched."""

    endpoint: str  # the pipeline endpoint (shared/pipeline.py Endpoint): chat, embeddings, completions, ...
    model: str | None = None
    verdict: Literal["block", "modify"]
    findings: list[GuardrailFinding]


class GuardrailEvent(_Envelope):
    type: Literal["guardrail.finding"] = "guardrail.finding"
    data: GuardrailData


class ProviderHealthData(BaseModel):
    """A deployment (provider and upstream model) of one router replica became unhealthy (after
    `consecutive_failures` retryable failures in a row: it is skipped for `cooldown_s`) or
    healthy again (its first answer). The reason is the error's type, code and status, never
    its message."""

    provider: str
    model: str  # the model name the upstream knows
    deployment: str  # `<provider>/<model>`
    state: Literal["healthy", "unhealthy"]
    consecutive_failures: int = Field(ge=0)  # when it became unhealthy; before the answer when healthy again
    error_type: str | None = None  # the last failure's (unhealthy only)
    error_code: str | None = None
    status: int | None = None  # the HTTP status the failure maps to
    cooldown_s: float | None = None  # unhealthy: how long it is skipped
    route_model: str | None = None  # the gateway model of the call that saw the transition
    instance: str  # the router replica (each keeps its own health)


class ProviderHealthEvent(_Envelope):
    type: Literal["provider.health"] = "provider.health"
    data: ProviderHealthData


class ConfigSummary(BaseModel):
    models: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)  # names only: never their fields
    stages: list[str] = Field(default_factory=list)  # the pipeline stages this config runs


class ConfigLoadedData(BaseModel):
    """A service process loaded its configuration: a digest of what it runs with (the parts of
    jetgate.yaml and of the settings it reads; secrets and credentials in URLs left out) and
    whether it differs from the digest of that service's last `config.loaded`."""

    service: str
    instance: str
    reason: Literal["start", "reload"] = "start"
    digest: str  # sha256, hex
    previous_digest: str | None = None  # None: no earlier config.loaded of this service is known
    changed: bool = False  # previous_digest is known and differs
    summary: ConfigSummary


class ConfigLoadedEvent(_Envelope):
    type: Literal["config.loaded"] = "config.loaded"
    data: ConfigLoadedData


AuditEvent = Annotated[RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent | GuardrailEvent | ProviderHealthEvent
                       | ConfigLoadedEvent, Field(discriminator="type")]
Event = Annotated[UsageEvent | UsageCorrection | RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent
                  | GuardrailEvent | ProviderHealthEvent | ConfigLoadedEvent,
                  Field(discriminator="type")]

_EVENT = TypeAdapter(Event)


def parse_event(raw: bytes) -> (UsageEvent | UsageCorrection | RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent
                                | GuardrailEvent | ProviderHealthEvent | ConfigLoadedEvent):
    """Parse one event; raises pydantic.ValidationError (or ValueError) on bad input."""
    return _EVENT.validate_json(raw)


def envelope_ids(principal: Principal | None, request_id: str | None) -> dict[str, Any]:
    if principal is None:
        return {"request_id": request_id}
    return {"org_id": principal.org_id, "team_id": principal.team_id,
            "key_id": principal.key_id, "user_id": principal.user_id, "request_id": request_id}
