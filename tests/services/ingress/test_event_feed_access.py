"""Who may read which organisation's event feed; what a query asks of the consumer."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from services.ingress.event_feed.access import feed_org, may_read_events
from services.ingress.event_feed.frames import event_frame
from services.ingress.event_feed.query import FeedKind, FeedQuery
from shared.errors import PermissionDenied
from shared.events import Principal
from shared.settings import EventFeedSettings
from shared.subjects import SYSTEM_ORG
from shared.tenancy import Role, Scope


def test_master_key_reads_any_org_others_only_their_own() -> None:
    master = Principal(key_id="master", is_admin=True)
    assert feed_org(master, "acme") == "acme" and feed_org(master, None) == "default"
    assert may_read_events(Principal(key_id="k", org_id="x", role=Role.GLOBAL), "acme")
    member = Principal(key_id="k", org_id="acme", scopes=[Scope.EVENTS])
    assert feed_org(member, None) == "acme" and feed_org(member, "acme") == "acme"
    with pytest.raises(PermissionDenied) as refused:
        feed_org(member, "other")
    assert refused.value.code == "org_not_allowed"
    org_admin = Principal(key_id="k", org_id="acme", role=Role.ADMIN)
    assert may_read_events(org_admin, "acme")
    assert not may_read_events(org_admin, "other")  # an org's admin is not every org's


def test_the_gateways_own_events_are_for_the_master_key_and_global_admins_only() -> None:
    assert feed_org(Principal(key_id="master", is_admin=True), SYSTEM_ORG) == SYSTEM_ORG
    assert may_read_events(Principal(key_id="k", org_id="acme", role=Role.GLOBAL), SYSTEM_ORG)
    for other in (Principal(key_id="k", org_id="acme", role=Role.OWNER, scopes=[Scope.EVENTS]),
                  Principal(key_id="k", org_id="acme", is_admin=True),
                  Principal(key_id="k", org_id=SYSTEM_ORG, role=Role.OWNER, scopes=[Scope.EVENTS])):  # even so named
        assert not may_read_events(other, SYSTEM_ORG)
    with pytest.raises(PermissionDenied) as refused:
        feed_org(Principal(key_id="k", org_id="acme", role=Role.OWNER), SYSTEM_ORG)
    assert refused.value.code == "org_not_allowed"


def test_the_events_scope_or_an_org_admin() -> None:
    assert may_read_events(Principal(key_id="k", org_id="acme", scopes=[Scope.EVENTS]), "acme")
    assert may_read_events(Principal(key_id="k", org_id="acme", scopes=[Scope.CHAT], is_admin=True), "acme")
    assert may_read_events(Principal(key_id="k", org_id="acme", role=Role.OWNER, scopes=[Scope.CHAT]), "acme")
    for plain in (Principal(key_id="k", org_id="acme", scopes=[Scope.CHAT]),
                  Principal(key_id="k", org_id="acme"),  # no scopes given: chat and embeddings only
                  Principal(key_id="k", org_id="acme", role=Role.MEMBER)):
        with pytest.raises(PermissionDenied) as refused:
            feed_org(plain, None)
        assert refused.value.code == "scope_required"


def test_where_a_feed_starts_and_what_it_filters() -> None:
    settings = EventFeedSettings(consumer_inactive_s=7)
    live = FeedQuery(FeedKind.USAGE, "acme").consumer_config("c", settings)
    assert (live.deliver_policy, live.filter_subject, live.ack_policy, live.inactive_threshold) == (
        DeliverPolicy.NEW, "jetgate.usage.acme", AckPolicy.NONE, 7)
    resumed = FeedQuery(FeedKind.AUDIT, "acme", after_seq=41).consumer_config("c", settings)
    assert (resumed.deliver_policy, resumed.opt_start_seq, resumed.filter_subject) == (
        DeliverPolicy.BY_START_SEQUENCE, 42, "jetgate.audit.acme.>")
    since = datetime(2026, 12, 1, tzinfo=UTC)
    typed = FeedQuery(FeedKind.AUDIT, "acme", since=since, types=frozenset({"key.revoked", "key.created"}))
    config = typed.consumer_config("c", settings)
    assert (config.deliver_policy, config.opt_start_time) == (DeliverPolicy.BY_START_TIME, since)
    assert config.filter_subjects == ["jetgate.audit.acme.key.created", "jetgate.audit.acme.key.revoked"]
    query = FeedQuery(FeedKind.USAGE, "acme", key_ids=frozenset({"k1"}), models=frozenset({"m"}))
    assert query.keeps({"type": "usage.recorded", "key_id": "k1", "data": {"model": "m"}})
    assert not query.keeps({"type": "usage.recorded", "key_id": "k2", "data": {"model": "m"}})
    assert not query.keeps({"type": "usage.recorded", "key_id": "k1", "data": {"model": "n"}})
    assert not query.keeps({"type": "key.created", "key_id": "k1", "data": {}})


def test_frames_carry_the_sequence_and_never_break_on_newlines() -> None:
    assert event_frame(7, "usage.recorded", b'{"a":1}') == b'id: 7\nevent: usage.recorded\ndata: {"a":1}\n\n'
    assert event_frame(8, "x", b"one\ntwo") == b"id: 8\nevent: x\ndata: one\ndata: two\n\n"


def test_since_is_rfc_3339_with_an_offset() -> None:
    from datetime import timedelta, timezone

    from services.ingress.routes.events import _since
    from shared.errors import InvalidRequest

    assert _since("2026-12-01T10:00:00Z") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    plus_one = datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=1)))
    assert _since("2026-12-01T10:00:00+01:00") == plus_one
    assert _since("2026-12-01T10:00:00 01:00") == plus_one  # `+` unencoded in a query string
    for bad in ("2026-12-01T10:00:00", "yesterday", "2026-13-01T00:00:00Z"):
        with pytest.raises(InvalidRequest):
            _since(bad)
