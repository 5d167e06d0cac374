"""Postgres writes: the spend ledger (with each key's running spend) and the audit log.

Both are idempotent on the event id: `INSERT ... ON CONFLICT (event_id) DO NOTHING`, and
a key's spend grows only by the cost of ledger rows this very transaction inserted, so
redelivery and replay never count twice.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Integer, Numeric, String, Table, bindparam, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys, audit_log, spend_ledger
from shared.events import AdminEvent, BudgetWarningEvent, GuardrailEvent, KeyEvent, RequestEvent, UsageEvent

E = TypeVar("E", bound=UsageEvent | RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent | GuardrailEvent)

INT4_MAX = 2**31 - 1


def ledger_row(event: UsageEvent) -> dict[str, Any]:
    data = event.data
    return {
        "event_id": event.id, "request_id": event.request_id, "org_id": event.org_id,
        "team_id": event.team_id, "key_id": event.key_id, "user_id": event.user_id, "model": data.model,
        "provider": data.provider, "prompt_tokens": data.prompt_tokens,
        "completion_tokens": data.completion_tokens, "cached_tokens": data.cached_tokens,
        "cache_write_tokens": data.cache_write_tokens, "reasoning_tokens": data.reasoning_tokens,
        "cost": data.cost, "status": data.status,
        "time": event.time,
    }


def audit_row(event: RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent | GuardrailEvent) -> dict[str, Any]:
    return {
        "event_id": event.id, "type": event.type, "time": event.time, "source": event.source,
        "org_id": event.org_id, "team_id": event.team_id, "key_id": event.key_id,
        "request_id": event.request_id, "data": event.data.model_dump(mode="json"),
    }


@dataclass(frozen=True)
class _Limit:
    name: str
    required: bool
    max_length: int | None = None
    max_abs: int | Decimal | None = None  # exclusive


@cache
def _limits(table: Table) -> tuple[_Limit, ...]:
    limits = []
    for column in table.columns:
        kind = column.type
        limit = _Limit(column.name, required=not column.nullable and column.server_default is None)
        if isinstance(kind, String) and kind.length:
            limit = replace(limit, max_length=kind.length)
        elif isinstance(kind, Integer):
            limit = replace(limit, max_abs=INT4_MAX + 1)
        elif isinstance(kind, Numeric) and kind.precision and kind.scale is not None:
            limit = replace(limit, max_abs=Decimal(10) ** (kind.precision - kind.scale))
        limits.append(limit)
    return tuple(limits)


def misfit(table: Table, row: Mapping[str, Any]) -> str | None:
    """Why `row` cannot be stored in `table` (read from the column types), or None."""
    for limit in _limits(table):
        value = row.get(limit.name)
        if value is None:
            if limit.required:
                return f"{limit.name} is required"
        elif limit.max_length is not None and len(str(value)) > limit.max_length:
            return f"{limit.name} is longer than {limit.max_length} characters"
        elif limit.max_abs is not None and isinstance(value, int | Decimal) and abs(value) >= limit.max_abs:  # type: ignore[operator]
            return f"{limit.name} is out of range"
    return None


def unique(events: Iterable[E]) -> list[E]:
    """One event per id, sorted by id (a fixed lock order across replicas)."""
    return sorted({event.id: event for event in events}.values(), key=lambda event: event.id)


async def record_spend(engine: AsyncEngine, events: Sequence[UsageEvent]) -> int:
    """Insert ledger rows and add the newly inserted costs to each key. Returns rows inserted."""
    rows = [ledger_row(event) for event in unique(events)]
    if not rows:
        return 0
    insert_rows = (insert(spend_ledger)
                   .on_conflict_do_nothing(index_elements=[spend_ledger.c.event_id])
                   .returning(spend_ledger.c.key_id, spend_ledger.c.cost))
    add_spend = (update(api_keys).where(api_keys.c.id == bindparam("b_key_id"))
                 .values(spend=api_keys.c.spend + bindparam("b_amount", type_=api_keys.c.spend.type)))
    async with engine.begin() as conn:
        inserted = (await conn.execute(insert_rows, rows)).all()
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for key_id, cost in inserted:
            if key_id is not None:
                totals[key_id] += cost
        if totals:
            await conn.execute(add_spend, [{"b_key_id": key_id, "b_amount": amount}
                                           for key_id, amount in sorted(totals.items())])
    return len(inserted)


async def record_audit(engine: AsyncEngine,
                       events: Sequence[RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent | GuardrailEvent]) -> None:
    rows = [audit_row(event) for event in unique(events)]
    if not rows:
        return
    statement = insert(audit_log).on_conflict_do_nothing(index_elements=[audit_log.c.event_id])
    async with engine.begin() as conn:
        await conn.execute(statement, rows)
