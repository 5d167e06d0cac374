"""`jetgate keys create|list|revoke`: against the database of a running gateway."""
from __future__ import annotations

import argparse
import asyncio
import sys

from jetgate.credentials import bus_as, read_credentials
from jetgate.home import read_state
from shared.bus import connect, publish_event
from shared.bus_users import ADMIN
from shared.db.engine import make_engine
from shared.events import KeyEvent
from shared.keys import create_key, list_keys, revoke_key
from shared.protocol import KeyRevoked
from shared.settings import BusSettings, Settings
from shared.subjects import KEYS_REVOKED


def _urls(settings: Settings) -> tuple[str, str | None]:
    state = read_state(settings.home.resolve())
    database_url = settings.database_url or (state.database_url if state else None)
    nats_url = settings.nats_url or (state.nats_url if state else None)
    if not database_url:
        raise SystemExit(f"no running gateway in {settings.home} (start `jetgate up`) and JETGATE_DATABASE_URL is not set")
    return database_url, nats_url


def _bus(settings: Settings) -> BusSettings:
    """The admin user of the home's embedded nats-server, unless NATS is given."""
    if settings.nats_url:
        return settings.bus
    return bus_as(settings.bus, read_credentials(settings.home.resolve()), ADMIN)


async def _announce(nats_url: str | None, event: KeyEvent, revoked: str | None = None,
                    bus: BusSettings | None = None) -> None:
    """Tell the bus: the audit stream, and every ingress replica for a revocation."""
    if not nats_url:
        print("warning: NATS unknown; no audit event sent", file=sys.stderr)
        return
    nc = await connect(nats_url, "jetgate-cli", bus)
    try:
        await publish_event(nc.jetstream(), event)
        if revoked:
            await nc.publish(KEYS_REVOKED, KeyRevoked(key_id=revoked).model_dump_json().encode())
        await nc.flush()
    finally:
        await nc.close()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    database_url, nats_url = _urls(settings)
    engine = make_engine(database_url, pool_size=1)
    try:
        if args.keys_command == "create":
            models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
            new = await create_key(engine, name=args.name, models=models, org_id=args.org,
                                   team_id=args.team, is_admin=args.admin)
            await _announce(nats_url, new.record.event("key.created", source="cli", actor_key_id="cli"),
                            bus=_bus(settings))
            print(new.key)
            print(f"id: {new.record.id} (the key is shown only once)", file=sys.stderr)
        elif args.keys_command == "list":
            for listed in await list_keys(engine):
                state = "revoked" if listed.revoked_at else "active"
                allowed = ",".join(listed.models) if listed.models else "*"
                print(f"{listed.id}\t{listed.prefix}…\t{listed.name}\t{listed.org_id}\t{allowed}\t{state}")
        else:
            revoked = await revoke_key(engine, args.key_id)
            if revoked is None:
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
            await _announce(nats_url, revoked.event("key.revoked", source="cli", actor_key_id="cli"), revoked=revoked.id,
                            bus=_bus(settings))
            print(f"revoked {revoked.id}")
        return 0
    finally:
        await engine.dispose()


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument("--models", help="comma-separated models this key may use (default: all)")
    create.add_argument("--org", default="default")
    create.add_argument("--team")
    create.add_argument("--admin", action="store_true", help="an admin key (admin API)")
    keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key; every ingress refuses it within a second")
    revoke.add_argument("key_id")
    for parser in (create, keys_sub.choices["list"], revoke):
        parser.add_argument("--home", type=str, help="home of the running gateway (default ./.jetgate)")
