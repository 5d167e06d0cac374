"""Postgres writes: the spend ledger (with each key's running spend) and the audit log.

Both are idempotent on the event id: `INSERT ... ON CONFLICT (event_id) DO NOTHING`, and
a key's spend grows only by the cost of ledger rows this very transaction inserted, so
redelivery and replay never count twice.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Integer, Numeric, Select, String, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys, audit_log, spend_ledger
from shared.events import AdminEvent, AuditEvent, BudgetWarningEvent, GuardrailEvent, KeyEvent, RequestEvent, UsageEvent

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


def audit_row(event: AuditEvent) -> dict[str, Any]:
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
def _limits(table: Table) -> tuple[tuple[str, bool, int | None, int | Decimal | None], ...]:
    limits: list[tuple[str, bool, int | None, int | Decimal | None]] = []
    for column in table.columns:
        kind = column.type
        limit = _Limit(column.name, required=not column.nullable and column.server_default is None)
        if isinstance(kind, String) and kind.length:
            limit = replace(limit, max_length=kind.length)
        elif isinstance(kind, Integer):
            limit = replace(limit, max_abs=INT4_MAX + 1)
        elif isinstance(kind, Numeric) and kind.precision and kind.scale is not None:
            limit = replace(limit, max_abs=Decimal(10) ** (kind.precision - kind.scale))
        limits.append((limit.name, limit.required, limit.max_length, limit.max_abs))  # plain tuples: read per event
    return tuple(limits)


def misfit(table: Table, row: Mapping[str, Any]) -> str | None:
    """Why `row` cannot be stored in `table` (read from the column types), or None."""
    for name, required, max_length, max_abs in _limits(table):
        value = row.get(name)
        if value is None:
            if required:
                return f"{name} is required"
        elif max_length is not None and (len(value) if type(value) is str else len(str(value))) > max_length:
            return f"{name} is longer than {max_length} characters"
        elif max_abs is not None and isinstance(value, (int, Decimal)) and abs(value) >= max_abs:  # type: ignore[operator]
            return f"{name} is out of range"
    return None


def unique(events: Iterable[E]) -> list[E]:
    """One event per id, sorted by id (a fixed lock order across replicas)."""
    return sorted({event.id: event for event in events}.values(), key=lambda event: event.id)


@cache
def _insert_ledger_rows() -> Select[str | None, Decimal, int]:
    """One statement, one parameter per column (an array of the batch's values, unnested in
    step): the batch costs one bind, not one per value (SQLAlchemy's insertmanyvalues). It
    answers what it inserted per key (cost, rows), not a row per event."""
    columns = list(spend_ledger.columns)
    rows = select(*(func.unnest(bindparam(column.name, type_=ARRAY(column.type))).label(column.name)
                    for column in columns))
    inserted = (insert(spend_ledger).from_select([column.name for column in columns], rows)
                .on_conflict_do_nothing(index_elements=[spend_ledger.c.event_id])
                .returning(spend_ledger.c.key_id, spend_ledger.c.cost)).cte("inserted")
    return (select(inserted.c.key_id, func.sum(inserted.c.cost), func.count())
            .group_by(inserted.c.key_id).order_by(inserted.c.key_id))


async def record_spend(engine: AsyncEngine, events: Sequence[UsageEvent]) -> int:
    """Insert ledger rows and add the newly inserted costs to each key. Returns rows inserted."""
    rows = [ledger_row(event) for event in unique(events)]
    if not rows:
        return 0
    columns = {column.name: [row[column.name] for row in rows] for column in spend_ledger.columns}
    add_spend = (update(api_keys).where(api_keys.c.id == bindparam("b_key_id"))
                 .values(spend=api_keys.c.spend + bindparam("b_amount", type_=api_keys.c.spend.type)))
    async with engine.begin() as conn:
        per_key = (await conn.execute(_insert_ledger_rows(), columns)).all()
        spent = [{"b_key_id": key_id, "b_amount": cost} for key_id, cost, _ in per_key if key_id is not None]
        if spent:  # in key order: replicas lock the same keys in the same order
            await conn.execute(add_spend, spent)
    return sum(count for _, _, count in per_key)


async def record_audit(engine: AsyncEngine,
                       events: Sequence[RequestEvent | KeyEvent | AdminEvent | BudgetWarningEvent | GuardrailEvent]) -> None:
    rows = [audit_row(event) for event in unique(events)]
    if not rows:
        return
    statement = insert(audit_log).on_conflict_do_nothing(index_elements=[audit_log.c.event_id])
    async with engine.begin() as conn:
        await conn.execute(statement, rows)
