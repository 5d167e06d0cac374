"""`jetgate events creds`: a per-organisation NATS user, added to a running nats-server by a
config reload, reads that organisation's events and nothing else, and publishes nothing
(a real nats-server with the gateway's users)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from jetgate.credentials import ensure_credentials
from jetgate.embedded.nats import EmbeddedNats
from jetgate.event_creds import EventCredential, issue
from jetgate.home import HomeState, write_state
from shared.bus import connect, ensure_streams, event_subject, publish_event
from shared.bus_users import USERS
from shared.events import RequestData, RequestEvent, UsageData, UsageEvent
from shared.settings import BusSettings
from shared.subjects import AUDIT_STREAM, USAGE_CONSUMER, USAGE_STREAM

ORG_A, ORG_B = "org-a", "org-b"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Path, EmbeddedNats, Client]]:
    home = tmp_path / "home"
    credentials = ensure_credentials(home)
    embedded = EmbeddedNats(home / "nats", users={user: credentials.nats_password(user) for user in USERS}).start()
    admin = await connect(embedded.url, "tests-admin", BusSettings(user="admin", password=credentials.nats["admin"]))
    try:
        js = admin.jetstream()
        await ensure_streams(js)
        await js.add_consumer(USAGE_STREAM.name, ConsumerConfig(durable_name=USAGE_CONSUMER, ack_policy=AckPolicy.EXPLICIT))
        yield home, embedded, admin
    finally:
        await admin.close()
        embedded.stop()


def events(org: str) -> list[UsageEvent | RequestEvent]:
    return [UsageEvent(source="router", org_id=org, key_id=f"key_{org}", data=UsageData(model="m")),
            RequestEvent(type="request.completed", source="ingress", org_id=org, data=RequestData(path="/v1/x"))]


async def as_reader(credential: EventCredential, errors: list[str]) -> Client:
    """Connect as the reader, once the server has read its new config."""
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    deadline = time.monotonic() + 10
    while True:
        try:
            return await nats.connect(credential.url, user=credential.user, password=credential.password.get_secret_value(),
                                      inbox_prefix=credential.inbox_prefix, error_cb=on_error, connect_timeout=2,
                                      max_reconnect_attempts=0, allow_reconnect=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _config(name: str, filter_subject: str) -> ConsumerConfig:
    return ConsumerConfig(name=name, filter_subject=filter_subject, ack_policy=AckPolicy.NONE,
                          deliver_policy=DeliverPolicy.ALL, inactive_threshold=5)


async def _read(nc: Client, stream: str, name: str, filter_subject: str) -> list[dict[str, Any]]:
    js = nc.jetstream(timeout=2)
    await js.add_consumer(stream, _config(name, filter_subject))
    sub = await js.pull_subscribe_bind(name, stream)
    return [json.loads(msg.data) for msg in await sub.fetch(10, timeout=1)]


async def test_a_reader_reads_only_its_orgs_events_and_publishes_nothing(
        server: tuple[Path, EmbeddedNats, Client]) -> None:
    home, embedded, admin = server
    js = admin.jetstream()
    for event in events(ORG_A) + events(ORG_B):
        await publish_event(js, event)
    a = issue(home, ORG_A, embedded.url, consumers=2)
    issue(home, ORG_B, embedded.url, consumers=2)  # a second reload keeps the first
    errors: list[str] = []
    reader = await as_reader(a, errors)
    try:
        names = a.consumer_names
        usage = await _read(reader, USAGE_STREAM.name, names[0], a.stream_filters[USAGE_STREAM.name])
        audit = await _read(reader, AUDIT_STREAM.name, names[1], a.stream_filters[AUDIT_STREAM.name])
        assert [(e["type"], e["org_id"]) for e in usage] == [("usage.recorded", ORG_A)]
        assert [(e["type"], e["org_id"]) for e in audit] == [("request.completed", ORG_A)]

        live = await reader.subscribe(a.live_subjects[0])
        refused = await reader.subscribe(f"jetgate.usage.{ORG_B}")  # the server refuses it
        await reader.flush()
        await publish_event(js, events(ORG_B)[0])
        await publish_event(js, events(ORG_A)[0])
        assert json.loads((await live.next_msg(timeout=2)).data)["org_id"] == ORG_A
        with pytest.raises(nats.errors.TimeoutError):
            await refused.next_msg(timeout=0.5)

        rjs = reader.jetstream(timeout=1)
        for stream, name, filter_subject in (
                (USAGE_STREAM.name, names[0], f"jetgate.usage.{ORG_B}"),  # another org's subject
                (USAGE_STREAM.name, "other-feed-1", f"jetgate.usage.{ORG_A}"),  # a name not its own
                (USAGE_STREAM.name, USAGE_CONSUMER, f"jetgate.usage.{ORG_A}"),  # the gateway's consumer
                (AUDIT_STREAM.name, names[0], "jetgate.audit.>")):
            with pytest.raises(nats.errors.TimeoutError):
                await rjs.add_consumer(stream, _config(name, filter_subject))
        # its own subject, with another org's filter in the body: the server refuses it
        for config in ({"name": names[0], "filter_subject": f"jetgate.usage.{ORG_B}"},
                       {"name": names[0], "filter_subjects": [f"jetgate.usage.{ORG_B}"]}):
            answer = await reader.request(f"$JS.API.CONSUMER.CREATE.{USAGE_STREAM.name}.{names[0]}.jetgate.usage.{ORG_A}",
                                          json.dumps({"stream_name": USAGE_STREAM.name, "config": config}).encode(),
                                          timeout=2)
            assert "error" in json.loads(answer.data), answer.data
        with pytest.raises(nats.errors.TimeoutError):  # the gateway's durable: not to be pulled from
            await reader.request(f"$JS.API.CONSUMER.MSG.NEXT.{USAGE_STREAM.name}.{USAGE_CONSUMER}", b'{"batch": 1}',
                                 timeout=0.5)

        before = (await js.stream_info(USAGE_STREAM.name)).state.messages
        forged = events(ORG_A)[0]
        await reader.publish(event_subject(forged), forged.model_dump_json().encode())
        await reader.publish("jetgate.audit.org-a.key.created", b"{}")
        await reader.flush()
        await asyncio.sleep(0.3)
        assert (await js.stream_info(USAGE_STREAM.name)).state.messages == before
        assert any("permissions violation for publish to \"jetgate.usage.org-a\"" in e.lower() for e in errors), errors
        assert any("permissions violation for subscription to \"jetgate.usage.org-b\"" in e.lower() for e in errors), errors
    finally:
        await reader.close()


async def test_issuing_again_replaces_the_password(server: tuple[Path, EmbeddedNats, Client]) -> None:
    home, embedded, _ = server
    first = issue(home, ORG_A, embedded.url, consumers=1)
    reader = await as_reader(first, [])
    await reader.close()
    second = issue(home, ORG_A, embedded.url, consumers=1)
    assert second.password.get_secret_value() != first.password.get_secret_value()
    await (await as_reader(second, [])).close()
    deadline = time.monotonic() + 10
    while True:  # the old password stops working once the server has reloaded
        try:
            old = await nats.connect(first.url, user=first.user, password=first.password.get_secret_value(),
                                     connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
        except Exception:
            break
        await old.close()
        assert time.monotonic() < deadline, "the old password still works"
        await asyncio.sleep(0.1)
    with pytest.raises(ValueError):
        issue(home, "Not A Slug", embedded.url, consumers=1)


async def test_the_cli_issues_into_the_running_gateway_or_prints_the_entry(
        server: tuple[Path, EmbeddedNats, Client], tmp_path: Path) -> None:
    home, embedded, _ = server
    write_state(home, HomeState(pid=os.getpid(), nats_url=embedded.url, database_url="", clickhouse_url="", url=""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETGATE_")}
    issued = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "jetgate.cli", "events", "creds", "--org", "org-c", "--home", str(home)],
        env=env, capture_output=True, text=True, timeout=60)
    assert issued.returncode == 0, issued.stderr
    shown = json.loads(issued.stdout)
    assert (shown["user"], shown["inbox_prefix"], shown["url"]) == ("events-org-c", "_JETGATE_EVENTS.org-c", embedded.url)
    credential = EventCredential.model_validate(shown)
    await (await as_reader(credential, [])).close()  # the running server took it
    elsewhere = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "jetgate.cli", "events", "creds", "--org", "org-c",
                         "--home", str(tmp_path / "nothing-here")], env=env, capture_output=True, text=True, timeout=60)
    assert elsewhere.returncode == 0, elsewhere.stderr
    entry = json.loads(elsewhere.stderr.splitlines()[-1])
    assert entry["user"] == "events-org-c" and entry["password"] == json.loads(elsewhere.stdout)["password"]
    assert "jetgate.usage.org-c" in entry["permissions"]["subscribe"]["allow"]
