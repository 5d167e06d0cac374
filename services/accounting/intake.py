"""What each consumer accepts. A parser returns the event, ready to store, or raises
ValueError with the reason, and the message is dead-lettered with that reason.

Checks are read from the stores' column types, so a value that one store would refuse
never reaches either: both stores always hold the same events.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from services.accounting.corrections import correction_row
from services.accounting.ledger import audit_row, ledger_row, misfit
from shared.db.tables import MONEY, audit_log, spend_ledger, usage_corrections
from shared.events import (
    AuditEvent,
    UsageCorrection,
    UsageEvent,
    parse_event,
)

# ClickHouse columns narrower than their Postgres counterparts (see clickhouse_migrations.py).
UINT16_MAX = 2**16 - 1

MONEY_QUANTUM = Decimal(1).scaleb(-(MONEY.scale or 0))
MONEY_LIMIT = Decimal(10) ** ((MONEY.precision or 38) - (MONEY.scale or 0))


def parse_usage(raw: bytes) -> UsageEvent | UsageCorrection:
    event = parse_event(raw)
    if isinstance(event, UsageCorrection):
        reason = misfit(usage_corrections, correction_row(event))
        if reason:
            raise ValueError(reason)
        return event
    if not isinstance(event, UsageEvent):
        raise ValueError(f"expected usage.recorded or usage.corrected on the usage stream, got {event.type}")
    data = event.data  # negative counts and costs are refused by the event model itself
    if data.attempts > UINT16_MAX:
        raise ValueError("attempts is out of range")
    if abs(data.cost) >= MONEY_LIMIT:
        raise ValueError("cost is out of range")
    # Both stores keep the ledger's scale, rounded as Postgres rounds: sums agree exactly.
    cost = data.cost.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)
    if cost != data.cost:
        event = event.model_copy(update={"data": data.model_copy(update={"cost": cost})})
    reason = misfit(spend_ledger, ledger_row(event))
    if reason:
        raise ValueError(reason)
    return event


def parse_audit(raw: bytes) -> AuditEvent:
    event = parse_event(raw)
    if isinstance(event, UsageEvent | UsageCorrection):
        raise ValueError(f"expected a request or key event on the audit stream, got {event.type}")
    reason = misfit(audit_log, audit_row(event))
    if reason:
        raise ValueError(reason)
    return event
