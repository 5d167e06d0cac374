"""The usage query between the ingress's `GET /admin/usage` and accounting, over NATS
request-reply (`jetgate.rpc.accounting.usage`): the filters and groups asked, the rows
answered (services/accounting/usage_query.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# org_id and key_id: the first names of org and key, still accepted
UsageGroup = Literal["org", "team", "user", "key", "model", "provider", "hour", "day", "status", "org_id", "key_id"]
USAGE_GROUPS: tuple[str, ...] = UsageGroup.__args__  # type: ignore[attr-defined]


def _default_groups() -> list[UsageGroup]:
    return ["model", "key_id"]


class UsageQuery(BaseModel):
    group_by: list[UsageGroup] = Field(default_factory=_default_groups)
    org_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    provider: str | None = None
    status: Literal["ok", "error", "cancelled"] | None = None
    since: str | None = None  # ISO-8601
    until: str | None = None


class UsageRow(BaseModel):
    group: dict[str, str]
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # parts of prompt_tokens read from / written to a prompt cache, and of completion_tokens
    # spent reasoning, as the upstream reported them (0 where it reported none)
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: str  # decimal as string: never a float
    errors: int = 0  # requests with status error
    error_rate: float = 0.0  # errors / requests
    # router latency of the requests: exact percentiles, linearly interpolated, from the raw rows;
    # approximate (t-digest, within 2 % of rank) where a rollup answers (docs/architecture.md)
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_p99_ms: float = 0.0


class UsageReport(BaseModel):
    rows: list[UsageRow]
    totals: UsageRow | None = None  # over every request the filters select (group empty)
    error: str | None = None
