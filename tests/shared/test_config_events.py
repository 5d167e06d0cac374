"""`config.loaded`: a digest that leaves every secret out, and `previous_digest`/`changed` from
the digest bucket, on a real nats-server (also closed, as `jetgate up` runs it: each service
user may do exactly this)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from pydantic import SecretStr

from jetgate.credentials import bus_as, ensure_credentials
from jetgate.embedded.nats import EmbeddedNats
from shared.bus import connect, ensure_streams, jetstream
from shared.bus_users import SERVICE_PERMISSIONS, USERS
from shared.config import GatewayConfig
from shared.config_events import VIEWS, announce_config, config_digest, open_config_bucket, public
from shared.events import ConfigLoadedEvent, Event, parse_event
from shared.publisher import EventPublisher
from shared.settings import BusSettings, IngressSettings, RouterSettings, Settings
from shared.subjects import AUDIT_STREAM, SYSTEM_ORG, audit_subject

PASSWORD = "pg-password-0123456789"
MASTER = "jg-master-0123456789abcdef"
CONFIG = GatewayConfig.model_validate({
    "providers": [{"name": "openai", "type": "openai", "api_key": "env:OPENAI_API_KEY",
                   "base_url": "https://proxyuser:proxy-pass-0123456789@proxy.example/v1"},
                  {"name": "local", "type": "mock"}],
    "models": [{"name": "gpt-4o", "deployments": [{"provider": "openai", "model": "gpt-4o"}]}],
})


def settings(**update: object) -> Settings:
    base = Settings(master_key=SecretStr(MASTER), database_url=f"postgresql://jetgate:{PASSWORD}@db:5432/jetgate",
                    bus=BusSettings(user="ingress", password=SecretStr("bus-password-0123456789")))
    return base.model_copy(update=update)


def test_the_digest_leaves_secrets_out() -> None:
    for service, view in VIEWS.items():
        shown = orjson.dumps(public(view(CONFIG, settings()))).decode()
        for secret in (PASSWORD, MASTER, "bus-password-0123456789", "proxy-pass-0123456789"):
            assert secret not in shown, (service, secret)
    ingress = VIEWS["ingress"]
    digest = config_digest(ingress(CONFIG, settings()))
    rotated = settings(master_key=SecretStr("jg-master-rotated-000000000"),
                       database_url="postgresql://jetgate:another-password-0000@db:5432/jetgate")
    assert config_digest(ingress(CONFIG, rotated)) == digest  # secrets are not part of it
    assert config_digest(ingress(CONFIG, settings(ingress=IngressSettings(port=9000)))) != digest
    fewer = CONFIG.model_copy(update={"models": []})
    assert config_digest(ingress(fewer, settings())) != digest
    # the router reads no ingress settings: an ingress change is none of its own
    router = VIEWS["router"]
    assert config_digest(router(CONFIG, settings(ingress=IngressSettings(port=9000)))) == config_digest(
        router(CONFIG, settings()))
    assert config_digest(router(CONFIG, settings(router=RouterSettings(cooldown_s=5)))) != config_digest(
        router(CONFIG, settings()))


async def _last_loaded(nc: Client) -> ConfigLoadedEvent:
    msg = await nc.jetstream().get_last_msg(AUDIT_STREAM.name, audit_subject(SYSTEM_ORG, "config.loaded"))
    event = parse_event(msg.data)
    assert isinstance(event, ConfigLoadedEvent)
    return event


async def test_previous_digest_and_changed(nc: Client) -> None:
    js = nc.jetstream()
    kv = await open_config_bucket(js)
    await kv.delete("router")
    publisher = EventPublisher(js)
    first = await announce_config(js, publisher.emit, "router", CONFIG, settings())
    await publisher.flush()
    assert (first.data.previous_digest, first.data.changed) == (None, False)
    assert first.org_id == SYSTEM_ORG and first.source == "router" and first.data.reason == "start"
    assert (first.data.summary.models, first.data.summary.providers, first.data.summary.stages) == (
        ["gpt-4o"], ["openai", "local"], ["guardrails", "router"])
    stored = await _last_loaded(nc)
    assert stored.id == first.id and stored.data.digest == first.data.digest
    again = await announce_config(js, publisher.emit, "router", CONFIG, settings())
    assert (again.data.previous_digest, again.data.changed) == (first.data.digest, False)
    changed = await announce_config(js, publisher.emit, "router", CONFIG, settings(router=RouterSettings(cooldown_s=5)))
    assert (changed.data.previous_digest, changed.data.changed) == (first.data.digest, True)
    assert changed.data.digest != first.data.digest
    assert (await kv.get("router")).value == changed.data.digest.encode()
    await publisher.flush()
    assert (await _last_loaded(nc)).id == changed.id


async def test_an_unreachable_bucket_still_publishes_without_previous(nats_url: str) -> None:
    emitted: list[Event] = []
    gone = await connect(nats_url, "gone")
    await gone.close()
    event = await announce_config(gone.jetstream(), emitted.append, "accounting", None,
                                  settings(events=Settings().events.model_copy(update={"config_timeout_s": 0.2})))
    assert emitted == [event] and event.data.previous_digest is None and not event.data.changed
    assert event.data.summary.models == []


@pytest.fixture
def closed(tmp_path: Path) -> Iterator[tuple[EmbeddedNats, Path]]:
    home = tmp_path / "home"
    credentials = ensure_credentials(home)
    server = EmbeddedNats(home / "nats", users={user: credentials.nats_password(user) for user in USERS}).start()
    yield server, home
    server.stop()


@pytest.mark.parametrize("service", sorted(SERVICE_PERMISSIONS))
async def test_each_service_user_may_announce_its_config(closed: tuple[EmbeddedNats, Path], service: str) -> None:
    server, home = closed
    credentials = ensure_credentials(home)
    admin = await connect(server.url, "admin", bus_as(BusSettings(), credentials, "admin"))
    nc = await connect(server.url, service, bus_as(BusSettings(), credentials, service))
    try:
        await ensure_streams(admin.jetstream())
        js = jetstream(nc)
        publisher = EventPublisher(js, Settings().events.model_copy(update={"attempts": 2, "ack_timeout_s": 1}))
        first = await announce_config(js, publisher.emit, service, CONFIG, Settings())
        await publisher.flush()
        second = await announce_config(js, publisher.emit, service, CONFIG, Settings())
        await publisher.flush()
        assert second.data.previous_digest == first.data.digest  # the bucket was made, written and read
        assert (await _last_loaded(admin)).id == second.id  # the event was stored
        with pytest.raises(KeyNotFoundError):  # and nobody wrote another service's key
            await (await admin.jetstream().key_value("JETGATE_CONFIG")).get("someone-else")
    finally:
        await nc.close()
        await admin.close()
