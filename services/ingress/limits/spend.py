"""Where a budget's count starts: the level's spend in the spend ledger since its period
began (shared/tenants/spend.py, the same sum the admin API shows). Asked only when a
budget's KV entry is new for a period (the budget was just set, its duration changed, the
KV was lost): once per level and period for the whole cluster, never on the hot path."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingress.limits.admission import Spent
from shared.tenancy import Level
from shared.tenants.spend import spend_in_period


def ledger_spend(engine: AsyncEngine, timeout_s: float) -> Spent:
    async def spent(level: Level, start: float) -> Decimal:
        within = datetime.fromtimestamp(max(start, 0.0), UTC)
        totals = await asyncio.wait_for(
            spend_in_period(engine, level.kind, {level.id: level.limits.budget_duration}, now=within), timeout_s)
        return totals.get(level.id, Decimal(0))
    return spent
