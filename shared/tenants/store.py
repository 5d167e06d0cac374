"""Orgs, teams and users in Postgres: create, get, list, update, delete.

One set of functions over the three tables (the kind picks the table and the record).
Every read takes the org the caller may see (`org=None`: every org); an object of
another org, or a deleted one, is not found. Deleting an object marks it deleted and
revokes every key beneath it (a deleted level also refuses its keys on resolution).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.tables import api_keys, orgs, teams, users
from shared.errors import Conflict, InvalidRequest
from shared.tenancy import LevelKind, Role
from shared.tenants.records import RECORDS, TenantRecord

TABLES: dict[LevelKind, Table] = {LevelKind.ORG: orgs, LevelKind.TEAM: teams, LevelKind.USER: users}
# the keys beneath an object: the api_keys column naming it
KEY_COLUMN = {LevelKind.ORG: "org_id", LevelKind.TEAM: "team_id", LevelKind.USER: "user_id"}


def record_of(kind: LevelKind, row: Any) -> TenantRecord:
    cls = RECORDS[kind]
    return cls.model_validate({name: getattr(row, name) for name in cls.model_fields if name != "object"})  # type: ignore[return-value]


def _column_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value.value if isinstance(value, Role) else value for name, value in values.items()}


def _unprocessable(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, status=422, param=param, code="invalid_value")


async def _live(conn: AsyncConnection, kind: LevelKind, object_id: str, org: str | None = None) -> TenantRecord | None:
    table = TABLES[kind]
    row = (await conn.execute(select(table).where(table.c.id == object_id, table.c.deleted_at.is_(None)))).first()
    if row is None:
        return None
    record = record_of(kind, row)
    return record if org is None or record.owner_org == org else None


async def check_parents(conn: AsyncConnection, org_id: str, team_id: str | None = None,
                        user_id: str | None = None) -> str | None:
    """The org exists; the team and the user, if named, are of it. Returns the team the
    object is of: a user's key is of the user's team."""
    if await _live(conn, LevelKind.ORG, org_id) is None:
        raise _unprocessable(f"No org with id {org_id}.", "org_id")
    if team_id is not None and await _live(conn, LevelKind.TEAM, team_id, org_id) is None:
        raise _unprocessable(f"No team with id {team_id} in org {org_id}.", "team_id")
    if user_id is None:
        return team_id
    user = await _live(conn, LevelKind.USER, user_id, org_id)
    if user is None:
        raise _unprocessable(f"No user with id {user_id} in org {org_id}.", "user_id")
    user_team = getattr(user, "team_id", None)
    if team_id is not None and user_team != team_id:
        raise _unprocessable(f"User {user_id} is not of team {team_id}.", "team_id")
    return user_team


async def create(engine: AsyncEngine, kind: LevelKind, values: dict[str, Any]) -> TenantRecord:
    table = TABLES[kind]
    async with engine.begin() as conn:
        if kind is not LevelKind.ORG:
            await check_parents(conn, values["org_id"], values.get("team_id"))
        try:
            row = (await conn.execute(table.insert().values(**_column_values(values)).returning(table))).one()
        except IntegrityError:
            raise Conflict(f"A {kind.value} with id {values['id']} exists already.", param="id") from None
    return record_of(kind, row)


async def get(engine: AsyncEngine, kind: LevelKind, object_id: str, org: str | None = None) -> TenantRecord | None:
    async with engine.connect() as conn:
        return await _live(conn, kind, object_id, org)


async def list_objects(engine: AsyncEngine, kind: LevelKind, org: str | None, filters: dict[str, Any], *,
                       after: str | None, limit: int) -> list[TenantRecord]:
    """One page, ordered by id, after the id `after`; `filters` are column: value (None: any)."""
    table = TABLES[kind]
    query = select(table).where(table.c.deleted_at.is_(None)).order_by(table.c.id).limit(limit)
    if org is not None:
        query = query.where((table.c.id if kind is LevelKind.ORG else table.c.org_id) == org)
    for name, value in filters.items():
        if value is not None:
            query = query.where(table.c[name] == _column_values({name: value})[name])
    if after:
        query = query.where(table.c.id > after)
    async with engine.connect() as conn:
        return [record_of(kind, row) for row in await conn.execute(query)]


async def update_object(engine: AsyncEngine, kind: LevelKind, object_id: str, org: str | None,
                        changes: dict[str, Any]) -> tuple[TenantRecord, TenantRecord] | None:
    """(before, after), or None: not found for this caller."""
    table = TABLES[kind]
    async with engine.begin() as conn:
        before = await _live(conn, kind, object_id, org)
        if before is None:
            return None
        if "team_id" in changes and changes["team_id"] is not None:
            await check_parents(conn, before.owner_org, changes["team_id"])
        if not changes:
            return before, before
        row = (await conn.execute(update(table).where(table.c.id == object_id)
                                  .values(**_column_values(changes)).returning(table))).one()
    return before, record_of(kind, row)


async def delete_object(engine: AsyncEngine, kind: LevelKind, object_id: str,
                        org: str | None) -> tuple[TenantRecord, list[str]] | None:
    """Mark it deleted and revoke the keys beneath it: (the object before, the revoked key ids)."""
    table = TABLES[kind]
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        before = await _live(conn, kind, object_id, org)
        if before is None:
            return None
        await conn.execute(update(table).where(table.c.id == object_id).values(deleted_at=now))
        beneath = api_keys.c[KEY_COLUMN[kind]] == object_id
        if kind is LevelKind.TEAM:  # the keys of the team's users too
            beneath = beneath | api_keys.c.user_id.in_(select(users.c.id).where(users.c.team_id == object_id))
        revoked = (await conn.execute(update(api_keys).where(beneath, api_keys.c.revoked_at.is_(None))
                                      .values(revoked_at=now).returning(api_keys.c.id))).scalars().all()
    return before, list(revoked)
