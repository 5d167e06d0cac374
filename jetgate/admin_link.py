"""What the admin commands (`jetgate orgs|teams|users|keys`) share: the running gateway's
Postgres and NATS, and telling the bus what they did — the audit event, and to every
ingress replica the change its cached keys depend on."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from jetgate.credentials import bus_as, read_credentials
from jetgate.home import read_state
from shared.bus import connect, publish_event
from shared.bus_users import ADMIN
from shared.control import KeyRevoked, TenancyChanged
from shared.events import AdminEvent, KeyEvent
from shared.settings import BusSettings, Settings
from shared.subjects import KEYS_REVOKED, TENANCY_CHANGED
from shared.tenancy import LevelKind

ACTOR = "cli"


def urls(settings: Settings) -> tuple[str, str | None]:
    state = read_state(settings.home.resolve())
    database_url = settings.database_url or (state.database_url if state else None)
    nats_url = settings.nats_url or (state.nats_url if state else None)
    if not database_url:
        raise SystemExit(f"no running gateway in {settings.home} (start `jetgate up`) and JETGATE_DATABASE_URL is not set")
    return database_url, nats_url


def bus_settings(settings: Settings) -> BusSettings:
    """The admin user of the home's embedded nats-server, unless NATS is given."""
    if settings.nats_url:
        return settings.bus
    return bus_as(settings.bus, read_credentials(settings.home.resolve()), ADMIN)


async def announce(settings: Settings, nats_url: str | None, *events: KeyEvent | AdminEvent,
                   revoked: tuple[str, ...] = (), changed: tuple[LevelKind, str] | None = None) -> None:
    """The audit events, then revocations and a change for every ingress replica."""
    if not nats_url:
        print("warning: NATS unknown; no audit event sent and running gateways not told", file=sys.stderr)
        return
    nc = await connect(nats_url, "jetgate-cli", bus_settings(settings))
    try:
        for event in events:
            await publish_event(nc.jetstream(), event)
        for key_id in revoked:
            await nc.publish(KEYS_REVOKED, KeyRevoked(key_id=key_id).model_dump_json().encode())
        if changed is not None:
            kind, object_id = changed
            await nc.publish(TENANCY_CHANGED, TenancyChanged(kind=kind, id=object_id).model_dump_json().encode())
        await nc.flush()
    finally:
        await nc.close()


def admin_event(action: str, kind: LevelKind, object_id: str, org_id: str, before: dict[str, Any] | None = None,
                after: dict[str, Any] | None = None) -> AdminEvent:
    return AdminEvent.model_validate({
        "source": "cli", "org_id": org_id,
        "data": {"actor_key_id": ACTOR, "action": action, "object": kind.value, "object_id": object_id,
                 "before": before, "after": after}})


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags given on the command line, as the API's field names."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}

