"""Event schemas (parse_event), subjects, and error bodies that cross the bus."""
from __future__ import annotations

from decimal import Decimal
from typing import get_args

import pytest
from pydantic import ValidationError

from shared.errors import ErrorBody, ErrorDetail, GatewayError, RateLimited
from shared.events import (
    KeyData,
    KeyEvent,
    Principal,
    RequestData,
    RequestEvent,
    RequestEventType,
    UsageData,
    UsageEvent,
    envelope_ids,
    parse_event,
)
from shared.subjects import audit_subject, dlq_subject, usage_subject

PRINCIPAL = Principal(key_id="key_1", org_id="org-a", team_id="team-b")


def every_event() -> list[UsageEvent | RequestEvent | KeyEvent]:
    ids = envelope_ids(PRINCIPAL, "req-1")
    usage = UsageEvent(source="router", **ids, data=UsageData(
        model="gpt-4o", provider="openai", deployment_model="gpt-4o-2024", stream=True, status="cancelled",
        usage_source="estimated", prompt_tokens=11, completion_tokens=7, total_tokens=18,
        cost=Decimal("0.0000000123456789"), latency_ms=12.5, attempts=2))
    requests = [RequestEvent(type=kind, source="ingress", **ids,
                             data=RequestData(path="/v1/chat/completions", model="gpt-4o", status_code=200))
                for kind in get_args(RequestEventType)]
    keys = [KeyEvent(type=kind, source="ingress", org_id="org-a",
                     data=KeyData(name="ci", actor_key_id="admin", models=["gpt-4o"]))
            for kind in ("key.created", "key.revoked")]
    return [usage, *requests, *keys]


@pytest.mark.parametrize("event", every_event(), ids=lambda e: e.type)
def test_every_event_round_trips(event: UsageEvent | RequestEvent | KeyEvent) -> None:
    parsed = parse_event(event.model_dump_json().encode())
    assert type(parsed) is type(event)
    assert parsed == event
    assert parsed.time.tzinfo is not None


def test_all_event_types_are_covered() -> None:
    assert {e.type for e in every_event()} == {"usage.recorded", "key.created", "key.revoked",
                                                *get_args(RequestEventType)}


def test_usage_cost_survives_json_exactly() -> None:
    usage = every_event()[0]
    raw = usage.model_dump_json().encode()
    assert b'"cost":"' in raw  # a string on the wire, never a float
    parsed = parse_event(raw)
    assert isinstance(parsed, UsageEvent) and parsed.data.cost == Decimal("0.0000000123456789")


def test_envelope_carries_the_principal() -> None:
    event = every_event()[0]
    assert (event.org_id, event.team_id, event.key_id, event.request_id) == ("org-a", "team-b", "key_1", "req-1")
    assert event.schema_version == 1
    assert envelope_ids(None, "req-2") == {"request_id": "req-2"}
    assert every_event()[0].id != every_event()[0].id  # each event gets its own id


@pytest.mark.parametrize("raw", [
    b"",
    b"not json",
    b'{"type": "usage.recorded", "source": "router", "data": {"model": "m"}',  # truncated
    b'{"type": "usage.exploded", "source": "router", "data": {"model": "m"}}',  # unknown type
    b'{"source": "router", "data": {"model": "m"}}',  # no type
    b'{"type": "usage.recorded", "source": "router"}',  # no data
    b'{"type": "usage.recorded", "source": "router", "data": {"model": "m", "status": "weird"}}',
    b'{"type": "usage.recorded", "source": "router", "data": {"model": "m"}, "surprise": 1}',
    b'{"type": "key.created", "source": "x", "data": {"models": "gpt-4o"}}',
    b'[1, 2, 3]',
])
def test_malformed_events_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_minimal_usage_event_gets_defaults() -> None:
    parsed = parse_event(b'{"type": "usage.recorded", "source": "router", "data": {"model": "m"}}')
    assert isinstance(parsed, UsageEvent)
    assert (parsed.org_id, parsed.data.cost, parsed.data.status) == ("default", Decimal(0), "ok")
    assert len(parsed.id) == 36


@pytest.mark.parametrize(("org_id", "token"), [
    ("org-a_1", "org-a_1"),
    ("acme.corp", "acme_corp"),
    ("a*b>c d", "a_b_c_d"),
    ("org.>", "org__"),
    ("tab\tand\nnewline", "tab_and_newline"),
    ("", "_"),
    (None, "_"),
])
def test_subjects_sanitise_org_ids(org_id: str | None, token: str) -> None:
    assert usage_subject(org_id) == f"jetgate.usage.{token}"
    assert audit_subject(org_id, "key.created") == f"jetgate.audit.{token}.key.created"


def test_an_org_id_cannot_reach_another_tenants_subjects() -> None:
    for hostile in ("other", "other.x", "*", ">", "a.b.c"):
        subject = usage_subject("x." + hostile)
        assert subject.count(".") == 2 and not set(subject) & {"*", ">", " "}
    assert dlq_subject("accounting usage") == "jetgate.dlq.accounting_usage"


def test_errors_keep_status_and_wire_fields_across_the_bus() -> None:
    original = RateLimited("slow down", param="model", retry_after="3", retryable=True)
    rebuilt = GatewayError.from_wire(original.to_wire())
    assert (rebuilt.status, rebuilt.type, rebuilt.code, rebuilt.param, rebuilt.message, rebuilt.retry_after,
            rebuilt.retryable) == (429, "rate_limit_exceeded", "rate_limit_exceeded", "model", "slow down", "3", True)
    assert ErrorBody(error=ErrorDetail(message="m", type="t")).model_dump() == {
        "error": {"message": "m", "type": "t", "param": None, "code": None}}
