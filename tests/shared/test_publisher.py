"""Durable event publishing on the session's real JetStream: subjects per organisation,
and de-duplication by event id (Nats-Msg-Id)."""
from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from jetgate import supervisor as sup
from jetgate.embedded.children import nats_child
from jetgate.embedded.nats import EmbeddedNats
from jetgate.supervisor import Supervisor
from shared.bus import connect, ensure_streams
from shared.events import KeyData, KeyEvent, RequestData, RequestEvent, UsageData, UsageEvent, parse_event
from shared.publisher import EventPublisher
from shared.settings import BusSettings, EventSettings
from shared.subjects import STREAMS, USAGE_STREAM, audit_subject, usage_subject


def usage(org_id: str, cost: str = "0.25") -> UsageEvent:
    return UsageEvent(source="test", org_id=org_id, key_id="key_1", request_id=uuid.uuid4().hex,
                      data=UsageData(model="gpt-4o", prompt_tokens=3, completion_tokens=4, total_tokens=7,
                                     cost=Decimal(cost)))


async def stored(nc: Client, subject: str) -> list[Msg]:
    """Every message JetStream holds on a subject, read with an ordered consumer."""
    sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
    found: list[Msg] = []
    try:
        while True:
            try:
                found.append(await sub.next_msg(timeout=0.75))
            except nats.errors.TimeoutError:
                return found
    finally:
        await sub.unsubscribe()


def published_ok(event_type: str) -> float:
    return REGISTRY.get_sample_value("jetgate_events_published_total", {"type": event_type, "outcome": "ok"}) or 0.0


async def test_ensure_streams_is_idempotent(nc: Client) -> None:
    js = nc.jetstream()
    await ensure_streams(js)  # a second time: updates, never fails
    for spec in STREAMS:
        info = await js.stream_info(spec.name)
        assert info.config.subjects == list(spec.subjects)
        assert info.config.duplicate_window == spec.duplicate_window_s


async def test_publish_lands_on_the_org_subject(nc: Client, org_id: str) -> None:
    event = usage(org_id, "0.0000015")
    before = published_ok("usage.recorded")
    await EventPublisher(nc.jetstream()).publish(event)
    (msg,) = await stored(nc, usage_subject(org_id))
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event.id
    assert msg.metadata.stream == USAGE_STREAM.name
    assert parse_event(msg.data) == event
    assert published_ok("usage.recorded") == before + 1


async def test_publishing_the_same_event_twice_stores_it_once(nc: Client, org_id: str) -> None:
    publisher = EventPublisher(nc.jetstream())
    event, other = usage(org_id), usage(org_id)
    await publisher.publish(event)
    await publisher.publish(event)  # a retry after a lost PubAck
    await publisher.publish(other)
    msgs = await stored(nc, usage_subject(org_id))
    assert [parse_event(m.data).id for m in msgs] == [event.id, other.id]


async def test_emit_publishes_in_the_background_and_flush_waits(nc: Client, org_id: str) -> None:
    publisher = EventPublisher(nc.jetstream())
    events = [usage(org_id, str(i)) for i in range(20)]
    for event in events:
        publisher.emit(event)
    assert publisher.pending > 0  # emit returned before publishing
    await publisher.flush()
    assert publisher.pending == 0
    msgs = await stored(nc, usage_subject(org_id))
    assert {parse_event(m.data).id for m in msgs} == {e.id for e in events}
    costs = {parse_event(m.data).data.cost for m in msgs}  # type: ignore[union-attr]
    assert sum(costs, Decimal(0)) == Decimal(sum(range(20)))


async def test_audit_events_go_to_the_audit_subject_by_type(nc: Client, org_id: str) -> None:
    publisher = EventPublisher(nc.jetstream())
    request = RequestEvent(type="request.denied", source="ingress", org_id=org_id,
                           data=RequestData(path="/v1/chat/completions", status_code=403, reason="model"))
    key = KeyEvent(type="key.revoked", source="ingress", org_id=org_id, data=KeyData(name="old"))
    await publisher.publish(request)
    await publisher.publish(key)
    (denied,) = await stored(nc, audit_subject(org_id, "request.denied"))
    (revoked,) = await stored(nc, audit_subject(org_id, "key.revoked"))
    assert parse_event(denied.data) == request and parse_event(revoked.data) == key
    assert await stored(nc, usage_subject(org_id)) == []


async def test_publisher_reports_saturation_while_events_are_pending(nc: Client) -> None:
    """Pending events count against a bound (the ingress refuses work past it)."""
    publisher = EventPublisher(nc.jetstream(), EventSettings(max_pending=2))
    assert not publisher.saturated
    for _ in range(3):
        publisher.emit(UsageEvent(source="test", org_id="org-sat", data=UsageData(model="m")))
    assert publisher.saturated  # three in flight, none acknowledged yet
    await publisher.flush()
    assert not publisher.saturated and publisher.pending == 0


def published(event_type: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("jetgate_events_published_total", {"type": event_type, "outcome": outcome}) or 0.0


async def test_events_published_while_nats_is_away_are_delivered_not_called_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, org_id: str) -> None:
    """nats-py holds what is published during an outage and sends it on reconnect: those
    events must arrive once, and never be counted as lost (the attempts are few and short
    here, so counting outage attempts would have given up on every one)."""
    monkeypatch.setattr(sup, "FIRST_BACKOFF_S", 0.05)
    server = EmbeddedNats(tmp_path / "nats")
    supervisor = Supervisor()
    child = supervisor.add(nats_child(server))
    try:
        server.wait_ready()
        nc = await connect(server.url, "publisher-outage", BusSettings(reconnect_wait_s=0.05))
        try:
            await ensure_streams(nc.jetstream())
            publisher = EventPublisher(nc.jetstream(), EventSettings(ack_timeout_s=0.1, attempts=2,
                                                                     retry_delay_s=0.01, max_retry_delay_s=0.05))
            lost_before = published("usage.recorded", "lost")
            child.kill()
            while nc.is_connected:
                await asyncio.sleep(0.01)
            events = [usage(org_id) for _ in range(20)]
            for event in events:
                publisher.emit(event)
            await asyncio.sleep(0.5)  # several ack timeouts pass while the server is down
            assert publisher.pending == len(events)  # still trying, none given up
            while not child.alive():
                supervisor.check()
                await asyncio.sleep(0.02)
            server.wait_ready()
            await publisher.flush()
            assert publisher.pending == 0
            assert published("usage.recorded", "lost") == lost_before
            ids = [msg.headers["Nats-Msg-Id"] for msg in await stored(nc, usage_subject(org_id)) if msg.headers]
            assert sorted(ids) == sorted(event.id for event in events)  # each exactly once
        finally:
            await nc.close()
    finally:
        supervisor.stop_all(timeout=10)


async def test_an_event_is_lost_only_after_its_attempts_on_a_live_connection(
        nc: Client, org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connected, but no stream stores the subject: JetStream never acknowledges it."""
    monkeypatch.setattr("shared.publisher.event_subject", lambda _event: f"jetgate.nowhere.{org_id}")
    publisher = EventPublisher(nc.jetstream(), EventSettings(ack_timeout_s=0.05, attempts=3, retry_delay_s=0.01))
    lost_before = published("usage.recorded", "lost")
    await publisher.publish(usage(org_id))
    assert published("usage.recorded", "lost") == lost_before + 1
async def test_no_known_secret_or_credential_reaches_the_stream(nc: Client, org_id: str) -> None:
    import secrets

    from shared.secrets import KNOWN_SECRETS

    key = "provider-key-" + secrets.token_urlsafe(16)
    KNOWN_SECRETS.add(key)
    event = RequestEvent(type="request.failed", source="ingress", org_id=org_id, request_id=uuid.uuid4().hex,
                         data=RequestData(path="/v1/chat/completions", status_code=400,
                                          reason=f"upstream said {key}; dsn postgresql://u:pw-unknown1@db/x"))
    await EventPublisher(nc.jetstream()).publish(event)
    (msg,) = await stored(nc, audit_subject(org_id, "request.failed"))
    assert key.encode() not in msg.data and b"pw-unknown1" not in msg.data
    stored_event = parse_event(msg.data)
    assert stored_event.id == event.id and isinstance(stored_event, RequestEvent)
    assert stored_event.data.reason == "upstream said ***; dsn postgresql://u:***@db/x"


async def test_an_emitted_event_never_acknowledged_is_lost_after_its_attempts_in_all(
        nc: Client, org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain's own publish counts as the first attempt: `attempts` publishes in all, then
    lost once, and nothing is left pending."""
    sent: list[str] = []
    publish_async = nc.jetstream().publish_async

    async def counted(js: object, subject: str, *args: object, **kwargs: object) -> object:
        sent.append(subject)
        return await publish_async(subject, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("shared.publisher.event_subject", lambda _event: f"jetgate.nowhere.{org_id}")
    monkeypatch.setattr("nats.js.client.JetStreamContext.publish_async", counted)
    publisher = EventPublisher(nc.jetstream(), EventSettings(ack_timeout_s=0.05, attempts=3, retry_delay_s=0.01))
    lost_before = published("usage.recorded", "lost")
    publisher.emit(usage(org_id))
    assert publisher.pending == 1
    await publisher.flush()
    assert publisher.pending == 0
    assert published("usage.recorded", "lost") == lost_before + 1
    assert len(sent) == 3


async def test_emitted_events_are_stored_in_the_order_emitted(nc: Client, org_id: str) -> None:
    publisher = EventPublisher(nc.jetstream())
    events = [usage(org_id) for _ in range(50)]
    for event in events:
        publisher.emit(event)
    await publisher.flush()
    stored_ids = [msg.headers["Nats-Msg-Id"] for msg in await stored(nc, usage_subject(org_id)) if msg.headers]
    assert stored_ids == [event.id for event in events]
