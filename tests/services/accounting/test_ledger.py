"""Postgres writes called directly: idempotent on the event id, spend moved exactly once."""
from __future__ import annotations

from decimal import Decimal

from services.accounting.ledger import misfit, record_audit, record_spend
from shared.db.tables import spend_ledger
from shared.events import KeyData, KeyEvent, RequestData, RequestEvent


async def test_spend_is_added_once_per_event(harness) -> None:
    key_a, key_b = await harness.add_key(), await harness.add_key()
    first = [harness.usage(key_a, "0.1"), harness.usage(key_a, "0.0000000001"), harness.usage(key_b, "2")]
    assert await record_spend(harness.engine, first + first[:1]) == 3  # a duplicate in the same batch
    assert await record_spend(harness.engine, first) == 0               # a redelivered batch
    later = [harness.usage(key_b, "0.5"), first[2], harness.usage(None, "9"), harness.usage("key_unknown", "1")]
    assert await record_spend(harness.engine, later) == 3
    assert await harness.spend(key_a) == Decimal("0.1000000001")
    assert await harness.spend(key_b) == Decimal("2.5")
    assert await harness.ledger() == (6, Decimal("12.6000000001"))
    assert await record_spend(harness.engine, []) == 0


async def test_audit_rows_are_idempotent(harness) -> None:
    events = [RequestEvent(type="request.denied", source="ingress", org_id=harness.org_id,
                           data=RequestData(path="/v1/chat/completions", status_code=429, reason="rate limit")),
              KeyEvent(type="key.revoked", source="ingress", org_id=harness.org_id, key_id="key_x",
                       data=KeyData(actor_key_id="admin"))]
    await record_audit(harness.engine, events)
    await record_audit(harness.engine, events + events)
    rows = await harness.audit_rows()
    assert sorted(row.event_id for row in rows) == sorted(event.id for event in events)
    denied = next(row for row in rows if row.type == "request.denied")
    assert denied.data["status_code"] == 429 and denied.data["reason"] == "rate limit"


def test_misfit_reads_limits_from_the_columns() -> None:
    row = {"event_id": "e", "org_id": "o", "model": "m", "prompt_tokens": 1, "completion_tokens": 1,
           "cost": Decimal(1), "status": "ok", "time": "t"}
    assert misfit(spend_ledger, row) is None
    assert misfit(spend_ledger, {**row, "key_id": "k" * 41}) == "key_id is longer than 40 characters"
    assert misfit(spend_ledger, {**row, "cost": Decimal("1e10")}) == "cost is out of range"
    assert misfit(spend_ledger, {**row, "prompt_tokens": 2**31}) == "prompt_tokens is out of range"
    assert misfit(spend_ledger, {**row, "model": None}) == "model is required"
