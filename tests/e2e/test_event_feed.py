"""The subscribers' event feed (`GET /events/usage`, `GET /events/audit`) against the whole
gateway: resuming with Last-Event-ID (no gap, no duplicate), `?since=`, organisations kept
apart, filters, and a subscriber that never reads slowing nobody."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import openai
import pytest
from nats.js.api import StreamInfo

from shared.bus import connect, publish_event
from shared.events import RequestData, RequestEvent, UsageData, UsageEvent
from shared.subjects import USAGE_STREAM
from tests.e2e.gateway import Gateway, wait_for
from tests.e2e.metrics import sample
from tests.e2e.sse_events import events_until_idle, read_events

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def feed_url(gateway: Gateway) -> str:
    """An ingress replica with short feed waits: heartbeats every 0.3 s, a subscriber that
    takes nothing for 2 s is dropped."""
    return gateway.extra_ingress(JETGATE_EVENT_FEED__HEARTBEAT_S="0.3", JETGATE_EVENT_FEED__SEND_TIMEOUT_S="2",
                                 JETGATE_EVENT_FEED__BATCH="50")


def new_org() -> str:
    return "org-" + uuid.uuid4().hex[:10]


def usage(org: str, key_id: str = "key_a", model: str = "gpt-4o-mini", pad: int = 0) -> UsageEvent:
    return UsageEvent(source="router", org_id=org, key_id=key_id,
                      data=UsageData(model=model, provider="fake" + "x" * pad, prompt_tokens=1, total_tokens=1))


def publish(gateway: Gateway, events: list[UsageEvent] | list[RequestEvent]) -> None:
    async def run() -> None:
        nc = await connect(gateway.env["JETGATE_NATS_URL"], "tests-feed")
        try:
            js = nc.jetstream()
            for event in events:
                await publish_event(js, event)
        finally:
            await nc.close()

    asyncio.run(run())


def stream_info(gateway: Gateway) -> StreamInfo:
    async def run() -> StreamInfo:
        nc = await connect(gateway.env["JETGATE_NATS_URL"], "tests-feed")
        try:
            return await nc.jetstream().stream_info(USAGE_STREAM.name)
        finally:
            await nc.close()

    return asyncio.run(run())


def feed_consumers(gateway: Gateway, org: str) -> list[str]:
    async def run() -> list[str]:
        nc = await connect(gateway.env["JETGATE_NATS_URL"], "tests-feed")
        try:
            found = await nc.jetstream().consumers_info(USAGE_STREAM.name)
            return [c.name for c in found if c.config.filter_subject == f"jetgate.usage.{org}"]
        finally:
            await nc.close()

    return asyncio.run(run())


@pytest.fixture
def master(gateway: Gateway, feed_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=feed_url, headers={"authorization": f"Bearer {gateway.master_key}"},
                      timeout=httpx.Timeout(10, read=10)) as client:
        yield client


def opened(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    return response


def test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(gateway: Gateway, master: httpx.Client) -> None:
    org = new_org()
    burst = [usage(org) for _ in range(120)]
    with master.stream("GET", "/events/usage", params={"org_id": org}) as response:
        opened(response)
        publish(gateway, burst[:80])
        first = read_events(response, 30)  # disconnected mid-burst: 50 sent and not read, or not yet sent
    publish(gateway, burst[80:])  # more while nobody listens
    last = first[-1].id
    with master.stream("GET", "/events/usage", params={"org_id": org}, headers={"last-event-id": str(last)}) as response:
        rest = events_until_idle(opened(response), len(burst) - len(first))
    # the id is the stream's: another ingress replica resumes from it just the same
    with master.stream("GET", gateway.url + "/events/usage", params={"org_id": org},
                       headers={"last-event-id": str(rest[9].id)}) as response:
        assert [f.id for f in read_events(opened(response), 20)] == [f.id for f in rest[10:30]]
    seen = first + rest
    assert [f.body["id"] for f in seen] == [e.id for e in burst]  # in order, none missing, none twice
    ids = [f.id for f in seen]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(ids))
    assert {f.event for f in seen} == {"usage.recorded"}


def feed_metric(feed_url: str, name: str) -> float:
    """A usage-feed metric of the feed's replica (0 before its first subscriber)."""
    return sample(httpx.get(feed_url + "/metrics", timeout=10).text, name, stream="usage") or 0.0


def test_subscribers_that_leave_mid_backlog_leave_nothing_behind(gateway: Gateway, master: httpx.Client,
                                                                 feed_url: str) -> None:
    """Each leaves while its stream writes a backlog as fast as it pulls it: the moment a
    cancellation was lost (Python 3.11's `wait_for`), a stream kept pulling for nobody, its
    consumer and its subscriber slot held forever."""
    org = new_org()
    publish(gateway, [usage(org) for _ in range(2_000)])
    before = feed_metric(feed_url, "jetgate_event_subscribers")
    for _ in range(6):
        with master.stream("GET", "/events/usage", params={"org_id": org, "since": "2000-01-01T00:00:00Z"}) as response:
            assert len(read_events(opened(response), 5)) == 5
    wait_for(lambda: feed_consumers(gateway, org) == [], timeout=10)
    wait_for(lambda: feed_metric(feed_url, "jetgate_event_subscribers") == before, timeout=10)


def test_since_starts_at_a_time(gateway: Gateway, master: httpx.Client) -> None:
    org = new_org()
    before = [usage(org) for _ in range(5)]
    publish(gateway, before)
    time.sleep(0.3)
    since = datetime.now(UTC)
    time.sleep(0.3)
    after = [usage(org) for _ in range(4)]
    publish(gateway, after)
    with master.stream("GET", "/events/usage", params={"org_id": org, "since": since.isoformat()}) as response:
        got = events_until_idle(opened(response), len(after))
    assert [f.body["id"] for f in got] == [e.id for e in after]
    with master.stream("GET", "/events/usage", params={"org_id": org, "since": "2000-01-01T00:00:00Z"}) as response:
        assert len(events_until_idle(opened(response), len(before) + len(after))) == len(before) + len(after)
    for bad in ("yesterday", "2026-12-01T10:00:00"):  # not RFC 3339: no offset
        response = master.get("/events/usage", params={"org_id": org, "since": bad})
        assert response.status_code == 400 and response.json()["error"]["param"] == "since"


def test_an_org_sees_only_its_own_events(gateway: Gateway, feed_url: str) -> None:
    org_a, org_b = new_org(), new_org()
    key_a, key_a_id = gateway.create_key("feed-a", org_id=org_a, scopes=["chat", "events"])
    key_b, _ = gateway.create_key("feed-b", org_id=org_b, scopes=["chat", "events"])
    chat_only, _ = gateway.create_key("feed-chat-only", org_id=org_a)
    with httpx.Client(base_url=feed_url, headers={"authorization": f"Bearer {chat_only}"}, timeout=10) as plain:
        refused = plain.get("/events/usage")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "scope_required"
    with httpx.Client(base_url=feed_url, headers={"authorization": f"Bearer {key_a}"}, timeout=10) as as_a:
        refused = as_a.get("/events/usage", params={"org_id": org_b})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "org_not_allowed"
        with as_a.stream("GET", "/events/audit") as audit, as_a.stream("GET", "/events/usage") as used:
            opened(audit), opened(used)
            for key in (key_b, key_a, key_b):
                openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES)
            audit_events = events_until_idle(audit, 2)
            usage_events = events_until_idle(used, 1)
    assert [(f.event, f.body["key_id"]) for f in audit_events] == [
        ("request.received", key_a_id), ("request.completed", key_a_id)]
    assert [(f.body["org_id"], f.body["key_id"]) for f in usage_events] == [(org_a, key_a_id)]
    assert usage_events[0].body["data"]["model"] == "gpt-4o-mini"


def test_filters_by_type_key_and_model(gateway: Gateway, master: httpx.Client) -> None:
    org = new_org()
    events = [usage(org, key_id=key, model=model) for key in ("key_a", "key_b") for model in ("m1", "m2", "m3")]
    audit = [RequestEvent(type=t, source="ingress", org_id=org, key_id="key_a", data=RequestData(path="/v1/x", model="m1"))
             for t in ("request.received", "request.completed", "request.failed")]
    with master.stream("GET", "/events/usage", params={"org_id": org, "key_id": "key_b", "model": "m1,m3"}) as by_both, \
            master.stream("GET", "/events/usage", params=[("org_id", org), ("model", "m2"), ("model", "m3")]) as by_model, \
            master.stream("GET", "/events/audit", params={"org_id": org, "type": "request.failed,request.received"}) as typed:
        opened(by_both), opened(by_model), opened(typed)
        publish(gateway, events)
        publish(gateway, audit)
        both = events_until_idle(by_both, 2)
        models = events_until_idle(by_model, 4)
        types = events_until_idle(typed, 2)
    assert [(f.body["key_id"], f.body["data"]["model"]) for f in both] == [("key_b", "m1"), ("key_b", "m3")]
    assert [(f.body["key_id"], f.body["data"]["model"]) for f in models] == [
        ("key_a", "m2"), ("key_a", "m3"), ("key_b", "m2"), ("key_b", "m3")]
    assert [f.event for f in types] == ["request.received", "request.failed"]
    unknown = master.get("/events/audit", params={"org_id": org, "type": "usage.recorded"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "type"


def test_guardrail_findings_reach_the_audit_feed(gateway: Gateway, feed_url: str) -> None:
    org = new_org()
    key, key_id = gateway.create_key("feed-guardrails", org_id=org, scopes=["chat", "events"])
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    with httpx.Client(base_url=feed_url, headers={"authorization": f"Bearer {key}"}, timeout=10) as http, \
            http.stream("GET", "/events/audit", params={"type": "guardrail.finding"}) as response:
        opened(response)
        client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "user", "content": "mail bob@example.com or ann@example.org"}])
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # clean: no finding
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "top secret"}])
        found = events_until_idle(response, 2)
    assert [(f.body["key_id"], f.body["source"], f.body["data"]["verdict"], f.body["data"]["findings"]) for f in found] == [
        (key_id, "guardrails", "modify", [{"rule": "pii.email", "action": "redact", "count": 2}]),
        (key_id, "guardrails", "block", [{"rule": "no-top-secret", "action": "block", "count": 1}])]
    assert "bob@example.com" not in str([f.data for f in found])  # rules and counts, never the text


def _stalled_subscriber(feed_url: str, master_key: str, org: str) -> socket.socket:
    """A client that asks for the feed and then never reads a byte (a small receive buffer,
    so the gateway's writes back up soon)."""
    host, port = feed_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /events/usage?org_id={org} HTTP/1.1\r\nhost: {host}\r\n"
                 f"authorization: Bearer {master_key}\r\n\r\n".encode())
    return sock


def test_a_subscriber_that_never_reads_slows_nobody(gateway: Gateway, master: httpx.Client, feed_url: str) -> None:
    org = new_org()
    key, key_id = gateway.create_key("feed-stall", org_id=org)
    stalled = _stalled_subscriber(feed_url, gateway.master_key, org)
    try:
        wait_for(lambda: len(feed_consumers(gateway, org)) == 1, timeout=10)  # its consumer is there
        burst = [usage(org, pad=16_000) for _ in range(600)]  # ~10 MB: more than the socket buffers hold (4 MB)
        with master.stream("GET", "/events/usage", params={"org_id": org}) as response:
            opened(response)
            publish(gateway, burst)  # every publish acknowledged while the stalled one sits
            # the gateway's own traffic goes on: a call through the main ingress, its usage event published
            openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES)
            got = events_until_idle(response, len(burst) + 1)
        assert [f.body["id"] for f in got[:len(burst)]] == [e.id for e in burst]
        assert got[-1].body["key_id"] == key_id and len(got) == len(burst) + 1
        # the stalled subscriber took nothing for send_timeout_s: dropped, then its consumer deleted
        # (generous waits, as the suite's load slows both; a passing run waits ~2 s)
        wait_for(lambda: feed_metric(feed_url, "jetgate_event_feed_dropped_total") == 1.0, timeout=30)
        wait_for(lambda: feed_consumers(gateway, org) == [], timeout=30)
        assert stream_info(gateway).state.messages >= len(burst)  # nothing lost for anyone else
    finally:
        stalled.close()


def test_keys_without_the_events_scope_or_of_another_org_are_refused(gateway: Gateway, feed_url: str) -> None:
    with httpx.Client(base_url=feed_url, timeout=10) as anonymous:
        assert anonymous.get("/events/audit").status_code == 401
    with httpx.Client(base_url=feed_url, headers={"authorization": f"Bearer {gateway.master_key}"}, timeout=10) as master:
        response = master.get("/events/usage", headers={"last-event-id": "not-a-number"})
        assert response.status_code == 400 and response.json()["error"]["param"] == "Last-Event-ID"


def test_cli_tail_prints_the_orgs_events(gateway: Gateway, feed_url: str) -> None:
    org = new_org()
    since = datetime.now(UTC).isoformat()
    burst = [usage(org, model=f"m{i}") for i in range(3)]
    publish(gateway, burst)
    env = {**os.environ, "JETGATE_API_KEY": gateway.master_key}
    base = [sys.executable, "-m", "jetgate.cli", "events", "tail", "usage", "--org", org, "--since", since,
            "--url", feed_url]
    as_json = subprocess.run([*base, "--json", "--count", "3"], env=env, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == [e.id for e in burst]
    readable = subprocess.run([*base, "--model", "m2", "--count", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert readable.returncode == 0, readable.stderr
    assert f"usage.recorded org={org} key=key_a m2 ok 1 tokens" in readable.stdout
