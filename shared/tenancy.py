"""Tenants, roles and limits: the contract between who a key is (identity, resolved once per
key in the ingress) and what it may do (policy, enforced at admission).

Org → Team → User → Key. Every level carries `Limits` (the names LiteLLM users know); a
request passes every level on its path, which the ingress resolves once per key into
`Principal.levels`, org first and key last. Roles grant permissions, always within their own
org; the `global` role (and the master key) see every org.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _slug(value: str) -> str:
    """Org (and team, user) ids: also a NATS subject token as they are, so `a.b`, `a b`
    and `a_b` cannot become the same subject."""
    if not SLUG.fullmatch(value):
        raise ValueError("must be a slug: lowercase letters, digits and dashes, starting with a letter or digit, "
                         "at most 63 characters")
    return value


Slug = Annotated[str, AfterValidator(_slug)]

BudgetDuration = Literal["1h", "1d", "7d", "30d", "1mo"]


class Limits(BaseModel):
    """What one level (org, team, user or key) allows. None: no limit at this level."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] | None = None  # allowlist; None: every model the levels above allow
    rpm_limit: int | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0)
    max_budget: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=10)
    budget_duration: BudgetDuration | None = None  # None: the budget never resets

    @property
    def empty(self) -> bool:
        return (self.models is None and self.rpm_limit is None and self.tpm_limit is None
                and self.max_budget is None)


class LevelKind(StrEnum):
    ORG = "org"
    TEAM = "team"
    USER = "user"
    KEY = "key"


class Level(BaseModel):
    """One level on a request's path and its limits."""

    kind: LevelKind
    id: str
    limits: Limits = Field(default_factory=Limits)


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    GLOBAL = "global"  # an admin of every org (as the master key)


class Scope(StrEnum):
    """What a key may call: `/v1/chat/completions` (and /v1/messages, /v1/responses) need
    `chat`, `/v1/embeddings` needs `embeddings`, `/events/*` needs `events`, `/admin/*`
    needs `admin` (and a role whose permissions allow the action)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    EVENTS = "events"
    ADMIN = "admin"


class Permission(StrEnum):
    ORGS_WRITE = "orgs:write"
    TEAMS_WRITE = "teams:write"
    USERS_WRITE = "users:write"
    KEYS_WRITE = "keys:write"
    READ = "objects:read"  # orgs, teams, users, keys of the caller's org
    USAGE_READ = "usage:read"
    AUDIT_READ = "audit:read"


_READS = frozenset({Permission.READ, Permission.USAGE_READ, Permission.AUDIT_READ})
_ORG_ADMIN = _READS | {Permission.TEAMS_WRITE, Permission.USERS_WRITE, Permission.KEYS_WRITE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.GLOBAL: frozenset(Permission),
    Role.OWNER: _ORG_ADMIN | {Permission.ORGS_WRITE},  # its own org only
    Role.ADMIN: _ORG_ADMIN,
    Role.MEMBER: frozenset({Permission.USAGE_READ}),
    Role.VIEWER: frozenset({Permission.READ, Permission.USAGE_READ}),
}

DEFAULT_SCOPES: tuple[Scope, ...] = (Scope.CHAT, Scope.EMBEDDINGS)

_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_SPANS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def budget_period(duration: BudgetDuration | None, now: datetime) -> datetime | None:
    """When the running budget period began (UTC); None: the budget never resets (all time).

    Periods are aligned, the same for every object and replica: `1h` the hour, `1d` the day,
    `7d` the week (from Monday), `30d` 30-day spans from 1970-01-05, `1mo` the calendar month."""
    if duration is None:
        return None
    now = now.astimezone(UTC)
    if duration == "1mo":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = _SPANS[duration]
    if duration == "1h":
        return now.replace(minute=0, second=0, microsecond=0)
    if duration == "1d":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return _EPOCH_MONDAY + span * ((now - _EPOCH_MONDAY) // span)


def effective_scopes(role: Role | None, scopes: list[Scope] | None) -> frozenset[Scope]:
    """A key's scopes: those it was given, else the defaults (and `admin` when it has a role)."""
    if scopes is not None:
        return frozenset(scopes)
    return frozenset(DEFAULT_SCOPES) | ({Scope.ADMIN} if role is not None else frozenset())


def allowed_models(levels: list[Level]) -> list[str] | None:
    """What every level allows: the intersection of their allowlists (None: every model)."""
    allowed: list[str] | None = None
    for level in levels:
        if level.limits.models is None:
            continue
        allowed = list(level.limits.models) if allowed is None else [m for m in allowed if m in level.limits.models]
    return allowed
