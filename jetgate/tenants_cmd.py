"""`jetgate orgs|teams|users create|list|update|delete`: the admin API's `/admin/orgs`,
`/admin/teams` and `/admin/users` against the database of a running gateway. Bodies are
validated by the API's own models (slug ids, limits); every action is an audit event, and
a change reaches every ingress replica's key cache."""
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from jetgate.admin_link import LIMIT_NAMES, add_limit_flags, admin_event, announce, given, urls
from services.ingress.routes.admin_tenants import (
    CreateOrg,
    CreateTeam,
    CreateUser,
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
    create: type[BaseModel]
    update: type[BaseModel]
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
            changes = spec.update.model_validate(given(args, *spec.fields, *LIMIT_NAMES)).changes()  # type: ignore[attr-defined]
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


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for command, spec in COMMANDS.items():
        noun = spec.kind.value
        parser = sub.add_parser(command, help=f"create, list, update and delete {command}")
        actions = parser.add_subparsers(dest="tenant_command", required=True)
        create = actions.add_parser("create", help=f"create a {noun}; prints its id")
        create.add_argument("--id", required=spec.kind is LevelKind.ORG, help="a slug: [a-z0-9][a-z0-9-]{0,62}")
        create.add_argument("--name", required=True)
        listing = actions.add_parser("list", help=f"list {command}")
        update = actions.add_parser("update", help=f"change a {noun}'s name or limits")
        update.add_argument("object_id")
        update.add_argument("--name")
        delete = actions.add_parser("delete", help=f"delete a {noun} and revoke the keys beneath it")
        delete.add_argument("object_id")
        for each in (create, update):
            add_limit_flags(each)
        if spec.kind is not LevelKind.ORG:
            create.add_argument("--org", dest="org_id", default="default")
            listing.add_argument("--org", help="only this org's")
        if spec.kind is LevelKind.USER:
            for each in (create, update):
                each.add_argument("--team", dest="team_id")
                each.add_argument("--email")
                each.add_argument("--role", choices=["owner", "admin", "member", "viewer"])
            listing.add_argument("--team", help="only this team's")
        for each in (create, listing, update, delete):
            each.add_argument("--home", type=str, help="home of the running gateway (default ./.jetgate)")
