"""`jetgate keys create|list|update|rotate|revoke|delete`: against the database of a running
gateway (the admin API's `/admin/keys`, for the operator of the machine). Bodies are
validated by the API's own models (shared/admin_bodies.py); every action is an audit event
and reaches every ingress replica. Arguments: jetgate/keys_parser.py."""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from pydantic import ValidationError

from jetgate.admin_link import admin_event, announce, given, urls
from shared.admin_bodies import LIMIT_NAMES, CreateKey, UpdateKey
from shared.db.engine import make_engine
from shared.keys import create_key, list_keys, revoke_key, rotate_key, update_key
from shared.settings import Settings
from shared.tenancy import LevelKind, Limits
from shared.tenants.store import check_parents

KEY_FIELDS = ("name", "org_id", "team_id", "user_id", "role", "scopes", "allowed_ips", "expires_at", *LIMIT_NAMES)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    database_url, nats_url = urls(settings)
    engine = make_engine(database_url, pool_size=1, postgres=settings.postgres)
    try:
        command = args.keys_command
        if command == "create":
            body = CreateKey.model_validate({"org_id": "default", **given(args, *KEY_FIELDS), "is_admin": args.admin})
            async with engine.connect() as conn:
                team_id = await check_parents(conn, body.org_id or "default", body.team_id, body.user_id)
            new = await create_key(engine, name=body.name, org_id=body.org_id or "default", team_id=team_id,
                                   user_id=body.user_id, role=body.role, scopes=body.scopes,
                                   allowed_ips=body.allowed_ips, expires_at=body.expires_at, is_admin=body.is_admin,
                                   limits=Limits.model_validate(body.model_dump(include=set(LIMIT_NAMES))))
            record = new.record
            await announce(settings, nats_url, record.event("key.created", source="cli", actor_key_id="cli"),
                           admin_event("created", LevelKind.KEY, record.id, record.org_id,
                                       after=record.model_dump(mode="json")))
            print(new.key)
            print(f"id: {record.id} (the key is shown only once)", file=sys.stderr)
        elif command == "list":
            for listed in await list_keys(engine, args.org):
                state = "revoked" if listed.revoked_at else "active"
                allowed = ",".join(listed.models) if listed.models else "*"
                print(f"{listed.id}\t{listed.prefix}…\t{listed.name}\t{listed.org_id}\t{allowed}\t{state}")
        elif command == "update":
            changes = UpdateKey.model_validate(given(args, *KEY_FIELDS)).changes()
            result = await update_key(engine, args.key_id, changes)
            if result is None:
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
            before, after = result
            await announce(settings, nats_url, admin_event("updated", LevelKind.KEY, after.id, after.org_id,
                                                           before.model_dump(mode="json"), after.model_dump(mode="json")),
                           changed=(LevelKind.KEY, after.id))
            print(f"updated {after.id}")
        elif command == "rotate":
            grace = args.grace if args.grace is not None else settings.ingress.key_rotation_grace_s
            rotated = await rotate_key(engine, args.key_id, timedelta(seconds=grace))
            if rotated is None:
                print(f"no active key with id {args.key_id}", file=sys.stderr)
                return 1
            await announce(settings, nats_url, admin_event("rotated", LevelKind.KEY, args.key_id,
                                                           rotated.record.org_id,
                                                           after=rotated.record.model_dump(mode="json")),
                           changed=(LevelKind.KEY, args.key_id))
            print(rotated.key)
            print(f"id: {args.key_id}; the old secret works for {grace:g}s more", file=sys.stderr)
        else:  # revoke, delete
            revoked = await revoke_key(engine, args.key_id)
            if revoked is None:
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
            await announce(settings, nats_url, revoked.event("key.revoked", source="cli", actor_key_id="cli"),
                           admin_event("revoked", LevelKind.KEY, revoked.id, revoked.org_id,
                                       after=revoked.model_dump(mode="json")), revoked=(revoked.id,))
            print(f"revoked {revoked.id}")
        return 0
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        print(f"invalid {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
