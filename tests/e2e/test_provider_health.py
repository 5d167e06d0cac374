"""Deployment health and config events against the whole gateway: a router with health on
(2 failures in a row, 1.5 s cooldown) in front of a fake OpenAI told to fail; what
`provider.health` and `config.loaded` say, who sees them on the feed, the gauge, the audit log."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import orjson
import pytest

from jetgate.embedded.ports import free_port
from shared.bus import connect
from shared.subjects import AUDIT_STREAM, SYSTEM_ORG, audit_subject
from tests.e2e.conftest import ECHO_KEY, UPSTREAM_KEY, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.e2e.metrics import sample
from tests.e2e.sse_events import events_until_idle, read_events
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hello"}]
COOLDOWN_S = 1.5


def system_events(gateway: Gateway, event_type: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every stored `_system` event of a type: its raw bytes as published and its JSON."""
    async def run() -> list[tuple[bytes, dict[str, Any]]]:
        nc = await connect(gateway.env["JETGATE_NATS_URL"], "tests-health")
        try:
            sub = await nc.jetstream().subscribe(audit_subject(SYSTEM_ORG, event_type), stream=AUDIT_STREAM.name,
                                                 ordered_consumer=True)
            found: list[tuple[bytes, dict[str, Any]]] = []
            try:
                while True:
                    msg = await sub.next_msg(timeout=0.5)
                    found.append((msg.data, orjson.loads(msg.data)))
                    if msg.metadata.num_pending == 0:
                        break
            except TimeoutError:
                pass
            await sub.unsubscribe()
            return found
        finally:
            await nc.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def feed_url(gateway: Gateway) -> str:
    return gateway.extra_ingress(JETGATE_EVENT_FEED__HEARTBEAT_S="0.3")


@pytest.fixture(scope="module")
def router(gateway: Gateway) -> Iterator[str]:
    """The router with deployment health on; its /metrics URL."""
    port = free_port()
    with gateway.replaced("router", JETGATE_ROUTER__UNHEALTHY_AFTER_FAILURES="2",
                          JETGATE_ROUTER__COOLDOWN_S=str(COOLDOWN_S), JETGATE_ROUTER__METRICS_PORT=str(port)):
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: _get(url) is not None)
        yield url


def _get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None


def gauge(metrics_url: str, model: str) -> float | None:
    return sample(_get(metrics_url) or "", "jetgate_deployment_healthy", model=model, provider="fake")


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.master_key, max_retries=0, timeout=30)


def health_of(gateway: Gateway, model: str, since: float) -> list[dict[str, Any]]:
    return [event for _, event in system_events(gateway, "provider.health")
            if event["data"]["model"] == model and datetime.fromisoformat(event["time"]).timestamp() >= since]


def test_a_failing_deployment_cools_down_and_recovers(gateway: Gateway, router: str, fake_openai: FakeOpenAI,
                                                      feed_url: str) -> None:
    start = time.time()
    since = datetime.now(UTC).isoformat()
    sdk = client(gateway)
    assert gauge(router, "health-a") == 1.0  # every deployment of the config starts healthy
    fake_openai.fail("health-a", 503)
    try:
        for _ in range(2):  # answered by the next deployment, health-a failing each time
            answer = sdk.chat.completions.create(model="health-failover", messages=MESSAGES)  # type: ignore[arg-type]
            assert answer.model == "gpt-4o-mini"
        assert fake_openai.requests_for("health-a") == 2
        unhealthy = wait_for(lambda: health_of(gateway, "health-a", start))
        assert len(unhealthy) == 1
        data = unhealthy[0]["data"]
        assert unhealthy[0]["org_id"] == SYSTEM_ORG and unhealthy[0]["source"] == "router"
        assert (data["provider"], data["deployment"], data["state"], data["consecutive_failures"]) == (
            "fake", "fake/health-a", "unhealthy", 2)
        # the reason: the failure as the gateway maps it (an upstream 503 is its 502), never its message
        assert (data["status"], data["error_type"], data["error_code"], data["cooldown_s"], data["route_model"]) == (
            502, "api_error", "upstream_error", COOLDOWN_S, "health-failover")
        assert data["instance"] and "message" not in data
        assert gauge(router, "health-a") == 0.0
        # cooling down: the next call goes straight to the next deployment
        sdk.chat.completions.create(model="health-failover", messages=MESSAGES)  # type: ignore[arg-type]
        assert fake_openai.requests_for("health-a") == 2
    finally:
        fake_openai.recover("health-a")

    def recovered() -> bool:  # after the cooldown it is tried again, and answers
        sdk.chat.completions.create(model="health-failover", messages=MESSAGES)  # type: ignore[arg-type]
        return fake_openai.requests_for("health-a") == 3

    wait_for(recovered, timeout=COOLDOWN_S + 20)
    events = wait_for(lambda: (found := health_of(gateway, "health-a", start)) and len(found) == 2 and found)
    assert [(e["data"]["state"], e["data"]["consecutive_failures"]) for e in events] == [
        ("unhealthy", 2), ("healthy", 2)]
    assert events[1]["data"]["status"] is None and events[1]["data"]["cooldown_s"] is None
    assert gauge(router, "health-a") == 1.0
    # both on the master key's feed of the gateway's own events
    with httpx.stream("GET", f"{feed_url}/events/audit", params={"org_id": SYSTEM_ORG, "type": "provider.health",
                                                                  "since": since},
                      headers={"authorization": f"Bearer {gateway.master_key}"}, timeout=30) as feed:
        assert feed.status_code == 200
        shown = [frame.body for frame in read_events(feed, 2)]
    assert [(e["data"]["model"], e["data"]["state"]) for e in shown] == [("health-a", "unhealthy"),
                                                                          ("health-a", "healthy")]
    # and in the audit log, in the `_system` organisation's chain
    wait_for(lambda: len(pg_rows(gateway, "SELECT 1 FROM audit_log WHERE org_id = $1 AND type = $2 "
                                          "AND data->>'model' = $3", SYSTEM_ORG, "provider.health", "health-a")) == 2)


def test_a_route_whose_every_deployment_is_cooling_is_still_tried(gateway: Gateway, router: str,
                                                                  fake_openai: FakeOpenAI) -> None:
    start = time.time()
    sdk = client(gateway)
    fake_openai.fail("health-b", 503)
    try:
        for attempt in range(1, 4):
            with pytest.raises(openai.APIStatusError) as failed:
                sdk.chat.completions.create(model="health-single", messages=MESSAGES)  # type: ignore[arg-type]
            assert failed.value.status_code in (502, 503)
            assert fake_openai.requests_for("health-b") == attempt  # the third too, though it is cooling
        events = wait_for(lambda: health_of(gateway, "health-b", start))
        assert [e["data"]["state"] for e in events] == ["unhealthy"]  # a failure while unhealthy says nothing new
        assert gauge(router, "health-b") == 0.0
    finally:
        fake_openai.recover("health-b")
    sdk.chat.completions.create(model="health-single", messages=MESSAGES)  # type: ignore[arg-type]
    wait_for(lambda: [e["data"]["state"] for e in health_of(gateway, "health-b", start)] == ["unhealthy", "healthy"])


def test_an_org_key_never_sees_the_gateways_own_events(gateway: Gateway, router: str, feed_url: str) -> None:
    since = datetime(2020, 1, 1, tzinfo=UTC).isoformat()
    key, _ = gateway.create_key("health-owner", org_id="health-org", role="owner")
    auth = {"authorization": f"Bearer {key}"}
    refused = httpx.get(f"{feed_url}/events/audit", params={"org_id": SYSTEM_ORG}, headers=auth, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "org_not_allowed"
    # its own feed, from long ago, filtered on the system types: nothing, then a heartbeat
    with httpx.stream("GET", f"{feed_url}/events/audit", params={"type": "provider.health,config.loaded",
                                                                  "since": since},
                      headers=auth, timeout=30) as feed:
        assert feed.status_code == 200
        assert events_until_idle(feed, 0) == []
    assert system_events(gateway, "provider.health") and system_events(gateway, "config.loaded")  # they exist


def test_every_service_says_what_config_it_started_with_and_no_secret(gateway: Gateway, router: str) -> None:
    loaded = system_events(gateway, "config.loaded")
    services = {event["data"]["service"] for _, event in loaded}
    assert services >= {"ingress", "guardrails", "router", "accounting"}
    secrets = [UPSTREAM_KEY, ECHO_KEY, gateway.master_key]
    for raw, event in loaded:
        assert not any(secret.encode() in raw for secret in secrets), event["data"]["service"]
        assert event["org_id"] == SYSTEM_ORG and len(event["data"]["digest"]) == 64
    ingress = next(event for _, event in loaded if event["data"]["service"] == "ingress")
    summary = ingress["data"]["summary"]
    assert "health-failover" in summary["models"] and "fake" in summary["providers"]
    assert summary["stages"] == ["guardrails", "router"]
    # the router started again with other settings: a changed config, its previous digest the one before
    routers = [event["data"] for _, event in loaded if event["data"]["service"] == "router"]
    assert routers[-1]["changed"] is True and routers[-1]["previous_digest"] == routers[-2]["digest"]
    assert routers[-1]["digest"] != routers[-2]["digest"]
