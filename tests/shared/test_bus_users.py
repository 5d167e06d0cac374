"""The closed bus, on a real nats-server started as `jetgate up` starts it: nobody gets in
without credentials, and each service user may publish only where it must (a forged call
on the router's subject from anyone but the ingress and guardrails never arrives)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from jetgate.credentials import Credentials, bus_as, ensure_credentials
from jetgate.embedded.nats import EmbeddedNats
from shared.bus import connect
from shared.bus_users import ADMIN, USERS
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.settings import BusSettings
from shared.subjects import KEYS_REVOKED, usage_subject

ROUTER_CHAT = stage_subject(Stage.ROUTER, Endpoint.CHAT)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def credentials(home: Path) -> Credentials:
    return ensure_credentials(home)


@pytest.fixture
def closed_server(home: Path, credentials: Credentials) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(home / "nats", users={user: credentials.nats_password(user) for user in USERS}).start()
    yield server
    server.stop()


async def as_user(server: EmbeddedNats, credentials: Credentials, user: str,
                  errors: list[Exception] | None = None) -> Client:
    bus = bus_as(BusSettings(), credentials, user)
    assert bus.password is not None
    seen = errors if errors is not None else []

    async def on_error(exc: Exception) -> None:
        seen.append(exc)

    return await nats.connect(server.url, user=user, password=bus.password.get_secret_value(), error_cb=on_error,
                              allow_reconnect=False)


@pytest.fixture
async def admin(closed_server: EmbeddedNats, credentials: Credentials) -> AsyncIterator[Client]:
    nc = await as_user(closed_server, credentials, ADMIN)
    yield nc
    await nc.close()


async def received(nc: Client, subject: str) -> list[Msg]:
    got: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        got.append(msg)

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    return got


async def test_a_connection_without_credentials_is_refused(closed_server: EmbeddedNats) -> None:
    with pytest.raises(nats.errors.Error):
        await nats.connect(closed_server.url, allow_reconnect=False, connect_timeout=2)
    with pytest.raises(nats.errors.Error):
        await nats.connect(closed_server.url, user="router", password="guessed", allow_reconnect=False,
                           connect_timeout=2)


async def test_the_gateway_connect_uses_the_service_user(closed_server: EmbeddedNats, credentials: Credentials) -> None:
    nc = await connect(closed_server.url, "router-test", bus_as(BusSettings(), credentials, "router"))
    try:
        assert nc.is_connected
    finally:
        await nc.close()


async def test_only_the_ingress_and_guardrails_reach_the_router(
        closed_server: EmbeddedNats, credentials: Credentials, admin: Client) -> None:
    calls = await received(admin, ROUTER_CHAT)
    for user in ("ingress", "guardrails"):  # the ingress places calls, guardrails forwards what it checked
        nc = await as_user(closed_server, credentials, user)
        await nc.publish(ROUTER_CHAT, user.encode())
        await nc.flush()
        await nc.close()
    for user in ("router", "accounting"):  # a forged call from any other service never arrives
        errors: list[Exception] = []
        nc = await as_user(closed_server, credentials, user, errors)
        await nc.publish(ROUTER_CHAT, b"forged " + user.encode())
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.01)
        await nc.close()
        assert any("permissions violation" in str(error).lower() for error in errors), errors
    await admin.flush()
    await asyncio.sleep(0.1)
    assert sorted(msg.data for msg in calls) == [b"guardrails", b"ingress"]


async def test_usage_is_recorded_by_the_router_and_ingress_only_and_revocations_come_from_the_ingress(
        closed_server: EmbeddedNats, credentials: Credentials, admin: Client) -> None:
    usage = await received(admin, usage_subject("acme"))
    revocations = await received(admin, KEYS_REVOKED)
    for user in USERS:
        nc = await as_user(closed_server, credentials, user)
        await nc.publish(usage_subject("acme"), user.encode())
        await nc.publish(KEYS_REVOKED, user.encode())
        await nc.flush()
        await nc.close()
    await asyncio.sleep(0.1)
    assert sorted(msg.data for msg in usage) == [b"admin", b"ingress", b"router"]  # ingress: calls of dead workers
    assert sorted(msg.data for msg in revocations) == [b"admin", b"ingress"]


def test_credentials_are_made_once_and_readable_by_the_owner_only(home: Path, credentials: Credentials) -> None:
    path = home / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600
    again = ensure_credentials(home)
    assert {u: again.nats_password(u) for u in USERS} == {u: credentials.nats_password(u) for u in USERS}
    assert len({credentials.nats_password(u) for u in USERS}) == len(USERS)  # one password per user
