"""What the consumers accept, and the reasons they give for what they refuse."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.accounting.intake import parse_audit, parse_usage
from shared.events import (
    KeyData,
    KeyEvent,
    RequestData,
    RequestEvent,
    UsageData,
    UsageEvent,
)


def usage(**data: object) -> UsageEvent:
    return UsageEvent(source="test", org_id="o", key_id="k", data=UsageData(**{"model": "m", **data}))


def test_cost_is_rounded_to_the_ledger_scale_half_up() -> None:
    event = parse_usage(usage(cost=Decimal("0.00000000005")).model_dump_json().encode())
    assert event.data.cost == Decimal("0.0000000001")
    assert parse_usage(usage(cost=Decimal("1.25")).model_dump_json().encode()).data.cost == Decimal("1.25")


def negative_tokens() -> UsageEvent:
    """An event as a faulty or hostile publisher might send it (our models refuse to build one)."""
    data = UsageData.model_construct(**{**UsageData(model="m").model_dump(), "completion_tokens": -1})
    return UsageEvent(source="test", org_id="o", key_id="k", data=data)


@pytest.mark.parametrize(("event", "reason"), [
    (usage(cost=Decimal("1e10")), "cost is out of range"),
    (negative_tokens(), "completion_tokens"),
    (usage(prompt_tokens=2**31), "prompt_tokens is out of range"),
    (usage(attempts=70_000), "attempts is out of range"),
    (usage(model="m" * 201), "model is longer than 200"),
    (RequestEvent(type="request.failed", source="ingress", data=RequestData(path="/")), "expected usage.recorded"),
])
def test_usage_refusals_name_the_reason(event: UsageEvent | RequestEvent, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_usage(event.model_dump_json().encode())


def test_usage_rejects_what_is_not_an_event() -> None:
    with pytest.raises(ValueError):
        parse_usage(b'{"type": "usage.recorded"}')
    with pytest.raises(ValueError):
        parse_usage(b"\xff\xfe")


def test_audit_accepts_request_and_key_events_only() -> None:
    key = KeyEvent(type="key.revoked", source="ingress", key_id="k", data=KeyData())
    assert parse_audit(key.model_dump_json().encode()) == key
    with pytest.raises(ValueError, match="expected a request or key event"):
        parse_audit(usage().model_dump_json().encode())
    long_source = RequestEvent(type="request.received", source="s" * 41, data=RequestData(path="/"))
    with pytest.raises(ValueError, match="source is longer than 40"):
        parse_audit(long_source.model_dump_json().encode())
