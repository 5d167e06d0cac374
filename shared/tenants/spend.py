"""What an org, team, user or key spent in its running budget period, from the spend ledger."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import spend_ledger
from shared.tenancy import BudgetDuration, LevelKind, budget_period

COLUMN = {LevelKind.ORG: spend_ledger.c.org_id, LevelKind.TEAM: spend_ledger.c.team_id,
          LevelKind.USER: spend_ledger.c.user_id, LevelKind.KEY: spend_ledger.c.key_id}


async def spend_in_period(engine: AsyncEngine, kind: LevelKind, objects: dict[str, BudgetDuration | None],
                          now: datetime | None = None) -> dict[str, Decimal]:
    """Each object's spend since its period began (object id: its budget_duration); one
    query per distinct period."""
    now = now or datetime.now(UTC)
    by_start: dict[datetime | None, list[str]] = defaultdict(list)
    for object_id, duration in objects.items():
        by_start[budget_period(duration, now)].append(object_id)
    spent = dict.fromkeys(objects, Decimal(0))
    column = COLUMN[kind]
    async with engine.connect() as conn:
        for start, ids in by_start.items():
            query = select(column, func.sum(spend_ledger.c.cost)).where(column.in_(ids)).group_by(column)
            if start is not None:
                query = query.where(spend_ledger.c.time >= start)
            for object_id, total in await conn.execute(query):
                spent[object_id] = Decimal(total)
    return spent
