"""The accounting service end to end: events on real JetStream in, rows in chDB and
Postgres out, through serve() as the process runs it."""
from __future__ import annotations

import uuid
from decimal import Decimal

from prometheus_client import REGISTRY

from services.accounting.consumer import DLQ_CONSUMER, DLQ_REASON, DLQ_SUBJECT
from shared.bus import publish_event
from shared.events import KeyData, KeyEvent, RequestData, RequestEvent
from shared.subjects import (
    AUDIT_CONSUMER,
    AUDIT_STREAM,
    DLQ_STREAM,
    USAGE_CONSUMER,
    USAGE_STREAM,
    audit_subject,
    dlq_subject,
    usage_subject,
)


async def test_usage_counted_once_everywhere_with_exact_cost(harness, service) -> None:
    key_a, key_b = await harness.add_key(), await harness.add_key()
    events = [harness.usage(key_a, "0.0000015", model="gpt-4o-mini"),
              harness.usage(key_a, "0.1", model="gpt-4o"),
              harness.usage(key_b, "0.2", model="gpt-4o"),
              harness.usage(None, "0.3", model="gpt-4o")]  # a master-key call: no key to charge
    async with service():
        for event in events:
            await harness.publish_usage(event)
        # The same events again under new Nats-Msg-Ids: JetStream keeps them, accounting must not.
        for event in events[:3]:
            last = await harness.publish_usage(event)
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)

        report = await harness.query(org_id=harness.org_id, group_by=["key_id"])
        by_key = {row.group["key_id"]: row for row in report.rows}
        assert report.error is None
        assert by_key[key_a].requests == 2 and by_key[key_a].cost == "0.1000015"
        assert by_key[key_b].requests == 1 and by_key[key_b].cost == "0.2"
        assert by_key[""].requests == 1 and by_key[""].cost == "0.3"
        assert by_key[key_a].prompt_tokens == 20 and by_key[key_a].total_tokens == 30

        total = await harness.query(org_id=harness.org_id, group_by=[])
        assert [(row.requests, Decimal(row.cost)) for row in total.rows] == [(4, Decimal("0.6000015"))]

    assert await harness.ledger() == (4, Decimal("0.6000015"))
    assert await harness.spend(key_a) == Decimal("0.1000015")
    assert await harness.spend(key_b) == Decimal("0.2")


async def test_audit_events_written_once(harness, service) -> None:
    key_id = await harness.add_key()
    received = RequestEvent(type="request.received", source="ingress", org_id=harness.org_id, key_id=key_id,
                            request_id="req-1", data=RequestData(path="/v1/chat/completions", model="gpt-4o"))
    created = KeyEvent(type="key.created", source="ingress", org_id=harness.org_id,
                       data=KeyData(name="ci", actor_key_id="admin", models=["gpt-4o"]))
    async with service():
        await publish_event(harness.js, received)
        await publish_event(harness.js, created)
        last = await harness.publish(audit_subject(harness.org_id, received.type),
                                     received.model_dump_json().encode())
        await harness.consumed(AUDIT_STREAM.name, AUDIT_CONSUMER, last)

    rows = {row.event_id: row for row in await harness.audit_rows()}
    assert set(rows) == {received.id, created.id}
    assert rows[received.id].type == "request.received"
    assert rows[received.id].data["path"] == "/v1/chat/completions"
    assert rows[received.id].request_id == "req-1"
    assert rows[created.id].data == {"name": "ci", "actor_key_id": "admin", "models": ["gpt-4o"]}


def _dead_letters(consumer: str) -> float:
    return REGISTRY.get_sample_value("jetgate_dead_letters_total", {"consumer": consumer}) or 0.0


async def _dlq_messages(harness, subject: str) -> dict[str, str]:
    """Reason per original body, for the dead letters of one original subject."""
    sub = await harness.js.pull_subscribe(dlq_subject(USAGE_CONSUMER), stream=DLQ_STREAM.name)
    found: dict[str, str] = {}
    try:
        while True:
            try:
                msgs = await sub.fetch(100, timeout=1)
            except TimeoutError:
                return found
            for msg in msgs:
                if msg.headers and msg.headers.get(DLQ_SUBJECT) == subject:
                    assert msg.headers[DLQ_CONSUMER] == USAGE_CONSUMER
                    found[msg.data.decode()] = msg.headers[DLQ_REASON]
                await msg.ack()
    finally:
        await sub.unsubscribe()


async def test_malformed_events_are_dead_lettered_and_good_ones_written(harness, service) -> None:
    key_id = await harness.add_key()
    subject = usage_subject(harness.org_id)
    wrong_type = RequestEvent(type="request.received", source="ingress", org_id=harness.org_id,
                              data=RequestData(path="/v1/models"))
    too_long_key = harness.usage("k" * 41, "1")
    bad = {
        "not json at all": "invalid event",
        '{"type": "usage.recorded", "source": "x", "data": {}}': "invalid event",
        wrong_type.model_dump_json(): "expected usage.recorded",
        too_long_key.model_dump_json(): "key_id is longer than 40",
        harness.usage(key_id, "1").model_dump_json().replace('"prompt_tokens":10', '"prompt_tokens":-5'):
            "prompt_tokens",
    }
    good = [harness.usage(key_id, "0.25"), harness.usage(key_id, "0.5")]
    before = _dead_letters(USAGE_CONSUMER)
    async with service():
        await harness.publish_usage(good[0])
        for body in bad:
            await harness.publish(subject, body.encode())
        last = await harness.publish_usage(good[1])
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
        report = await harness.query(org_id=harness.org_id, group_by=[])
    assert [(row.requests, row.cost) for row in report.rows] == [(2, "0.75")]
    assert await harness.ledger() == (2, Decimal("0.75"))
    assert await harness.spend(key_id) == Decimal("0.75")

    dead = await _dlq_messages(harness, subject)
    assert set(dead) == set(bad)
    for body, reason in bad.items():
        assert reason in dead[body], (reason, dead[body])
    assert _dead_letters(USAGE_CONSUMER) - before >= len(bad)  # other tests' leftovers may add to it


async def test_restart_continues_without_duplicates(harness, service, settings) -> None:
    key_id = await harness.add_key()
    first = [harness.usage(key_id, "0.01") for _ in range(30)]
    second = [harness.usage(key_id, "0.02") for _ in range(30)]
    async with service():
        for event in first:
            last = await harness.publish_usage(event)
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
    # While the service is down: new events, and replays of old ones.
    for event in second + first[:10]:
        last = await harness.publish_usage(event)
    async with service():  # same chDB path, same durable consumer
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
        report = await harness.query(org_id=harness.org_id, group_by=["key_id"])
    assert [(row.requests, row.cost) for row in report.rows] == [(60, "0.9")]
    assert await harness.ledger() == (60, Decimal("0.9"))
    assert await harness.spend(key_id) == Decimal("0.9")


async def test_usage_query_errors_are_answered(harness, service) -> None:
    async with service():
        reply = await harness.nc.request("jetgate.rpc.accounting.usage", b'{"group_by": ["secret"]}', timeout=5)
        assert b'"rows":[]' in reply.data and b"invalid usage query" in reply.data
        bad_time = await harness.query(org_id=harness.org_id, since="yesterday")
        assert bad_time.rows == [] and "since" in (bad_time.error or "")
        reply = await harness.nc.request("jetgate.rpc.accounting.usage", b"not json", timeout=5)
        assert b"invalid usage query" in reply.data


async def test_one_event_id_from_two_orgs_subjects_is_one_row(harness, service) -> None:
    """Replay through a different subject (or a republish tool) still dedupes on the event id."""
    key_id = await harness.add_key()
    event = harness.usage(key_id, "0.4")
    async with service():
        await harness.publish_usage(event)
        last = await harness.publish(usage_subject("other-" + uuid.uuid4().hex[:6]), event.model_dump_json().encode())
        await harness.consumed(USAGE_STREAM.name, USAGE_CONSUMER, last)
    assert await harness.ledger() == (1, Decimal("0.4"))
    assert await harness.spend(key_id) == Decimal("0.4")
