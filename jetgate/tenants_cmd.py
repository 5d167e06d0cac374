"""`jetgate orgs|teams|users create|list|update|delete`: the admin API's `/admin/orgs`,
`/admin/teams` and `/admin/users` against the database of a running gateway. Bodies are
validated by the API's own models (shared/admin_bodies.py: slug ids, limits); every action
is an audit event, and a change reaches every ingress replica's key cache. Arguments:
jetgate/tenants_parser.py."""
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from pydantic import ValidationError

from jetgate.admin_link import admin_event, announce, given, urls
from shared.admin_bodies import (
    LIMIT_NAMES,
    CreateOrg,
    CreateTeam,
    CreateUser,
    LimitFields,
    UpdateOrg,
    UpdateTeam,
    UpdateUser,
)
from shared.db.engine import make_engine
from shared.errors import GatewayError
from shared.settings import Settings
from shared.tenancy import LevelKind
from shared.tenants import store


@dataclass(frozen=True)
class KindCommands:
    kind: LevelKind
    create: type[LimitFields]
    update: type[LimitFields]
    fields: tuple[str, ...]  # what create and update take besides the limits


COMMANDS = {
    "orgs": KindCommands(LevelKind.ORG, CreateOrg, UpdateOrg, ("id", "name")),
    "teams": KindCommands(LevelKind.TEAM, CreateTeam, UpdateTeam, ("id", "org_id", "name")),
    "users": KindCommands(LevelKind.USER, CreateUser, UpdateUser, ("id", "org_id", "team_id", "name", "email", "role")),
}


async def _run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    spec = COMMANDS[command]
    kind = spec.kind
    database_url, nats_url = urls(settings)
    engine = make_engine(database_url, pool_size=1, postgres=settings.postgres)
    try:
        action = args.tenant_command
        if action == "create":
            values = given(args, *spec.fields, *LIMIT_NAMES)
            if kind is not LevelKind.ORG:
                values.setdefault("org_id", "default")
            body = spec.create.model_validate(values)
            record = await store.create(engine, kind, body.model_dump())
            await announce(settings, nats_url, admin_event("created", kind, record.id, record.owner_org,
                                                           after=record.public()))
            print(record.id)
        elif action == "list":
            filters = {"team_id": args.team} if kind is LevelKind.USER else {}
            org = args.org if kind is not LevelKind.ORG else None
            for listed in await store.list_objects(engine, kind, org, filters, after=None, limit=10_000):
                limits = listed.limits.model_dump(exclude_none=True)
                owner = "" if kind is LevelKind.ORG else f"\t{listed.owner_org}"
                print(f"{listed.id}\t{listed.name}{owner}\t{limits or '-'}")
        elif action == "update":
            changes = spec.update.model_validate(given(args, *spec.fields, *LIMIT_NAMES)).changes()
            result = await store.update_object(engine, kind, args.object_id, None, changes)
            if result is None:
                print(f"no {kind.value} with id {args.object_id}", file=sys.stderr)
                return 1
            before, after = result
            await announce(settings, nats_url, admin_event("updated", kind, after.id, after.owner_org,
                                                           before.public(), after.public()),
                           changed=(kind, after.id))
            print(f"updated {after.id}")
        else:
            deleted = await store.delete_object(engine, kind, args.object_id, None)
            if deleted is None:
                print(f"no {kind.value} with id {args.object_id}", file=sys.stderr)
                return 1
            before, revoked = deleted
            await announce(settings, nats_url, admin_event("deleted", kind, before.id, before.owner_org,
                                                           before=before.public()),
                           revoked=tuple(revoked), changed=(kind, before.id))
            print(f"deleted {before.id}" + (f"; revoked {len(revoked)} keys" if revoked else ""))
        return 0
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        print(f"invalid {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"{exc.param or 'error'}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def tenants_command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args.command, args, settings))
