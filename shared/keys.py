"""API keys: made once, stored only as SHA-256 hashes, looked up by hash.

A key belongs to an org, and to a team (a service key) or a user; it carries its own
limits (shared/tenancy.py `Limits`), a role for the admin API, scopes, an expiry and an IP
allowlist. Rotation gives the same key id a new secret; the previous one stays valid until
`previous_expires_at`.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys
from shared.events import KeyData, KeyEvent, Principal
from shared.ids import uuid7
from shared.tenancy import Level, LevelKind, Limits, Role, Scope, allowed_models

KEY_PREFIX = "jg-"
LIMIT_FIELDS = tuple(Limits.model_fields)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


class KeyRecord(Limits):
    """A key as the admin API shows it: never the key, never its hash."""

    object: LevelKind = LevelKind.KEY
    id: str
    name: str
    prefix: str
    org_id: str
    team_id: str | None = None
    user_id: str | None = None
    role: Role | None = None
    scopes: list[Scope] | None = None
    allowed_ips: list[str] | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        """Sees every org (the `global` role)."""
        return self.role is Role.GLOBAL

    @property
    def limits(self) -> Limits:
        return Limits.model_validate({name: getattr(self, name) for name in LIMIT_FIELDS})

    def level(self) -> Level:
        return Level(kind=LevelKind.KEY, id=self.id, limits=self.limits)

    def principal(self, levels: list[Level] | None = None) -> Principal:
        """Who a request with this key is made for; `levels` as resolved (org first, key last)."""
        levels = levels if levels is not None else [self.level()]
        return Principal(key_id=self.id, org_id=self.org_id, team_id=self.team_id, user_id=self.user_id,
                         is_admin=self.is_admin, role=self.role, scopes=self.scopes,
                         models=allowed_models(levels), levels=levels)

    def event(self, type_: Literal["key.created", "key.revoked"], *, source: str, actor_key_id: str) -> KeyEvent:
        """The audit event for something done to this key (never the key itself)."""
        return KeyEvent(type=type_, source=source, org_id=self.org_id, team_id=self.team_id, key_id=self.id,
                        user_id=self.user_id, data=KeyData(name=self.name, actor_key_id=actor_key_id,
                                                           models=self.models))


class StoredKey(BaseModel):
    """A key row as the key cache needs it: the record and how the presented secret matched."""

    record: KeyRecord
    key_hash: str
    previous_key_hash: str | None = None
    previous_expires_at: datetime | None = None


class NewKey(BaseModel):
    key: str  # shown once
    record: KeyRecord


async def create_key(engine: AsyncEngine, *, name: str, models: list[str] | None = None,
                     org_id: str = "default", team_id: str | None = None, user_id: str | None = None,
                     role: Role | None = None, scopes: list[Scope] | None = None,
                     allowed_ips: list[str] | None = None, expires_at: datetime | None = None,
                     limits: Limits | None = None, is_admin: bool = False) -> NewKey:
    """`is_admin`: the `global` role (kept for callers from before roles)."""
    raw = new_secret()
    values: dict[str, Any] = (limits or Limits()).model_dump()
    if models is not None:
        values["models"] = models
    values["models"] = values["models"] or None
    record = KeyRecord(id="key_" + uuid7().replace("-", "")[:24], name=name, prefix=raw[:10], org_id=org_id,
                       team_id=team_id, user_id=user_id, role=Role.GLOBAL if is_admin else role, scopes=scopes,
                       allowed_ips=allowed_ips, expires_at=expires_at, created_at=datetime.now(UTC), **values)
    async with engine.begin() as conn:
        await conn.execute(api_keys.insert().values(key_hash=hash_key(raw), **_row(record)))
    return NewKey(key=raw, record=record)


def _row(record: KeyRecord) -> dict[str, Any]:
    row = record.model_dump(exclude={"object", "last_used_at", "revoked_at", "rotated_at"})
    row["role"] = record.role.value if record.role else None
    row["scopes"] = [scope.value for scope in record.scopes] if record.scopes is not None else None
    return row


def record_of(row: Any) -> KeyRecord:
    return KeyRecord.model_validate({name: getattr(row, name) for name in KeyRecord.model_fields if name != "object"})


async def find_key(engine: AsyncEngine, key_hash: str) -> KeyRecord | None:
    stored = await find_stored_key(engine, key_hash)
    return stored.record if stored else None


async def find_stored_key(engine: AsyncEngine, key_hash: str) -> StoredKey | None:
    """The key whose current (or previous, rotated-out) secret has this hash."""
    query = select(api_keys).where(or_(api_keys.c.key_hash == key_hash, api_keys.c.previous_key_hash == key_hash))
    async with engine.connect() as conn:
        row = (await conn.execute(query.limit(1))).first()
    if row is None:
        return None
    return StoredKey(record=record_of(row), key_hash=row.key_hash, previous_key_hash=row.previous_key_hash,
                     previous_expires_at=row.previous_expires_at)


async def list_keys(engine: AsyncEngine, org_id: str | None = None, *, team_id: str | None = None,
                    user_id: str | None = None, after: str | None = None, limit: int | None = None) -> list[KeyRecord]:
    """In creation order; `after`: the keys made after the key with that id (a page's last)."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    for column, value in ((api_keys.c.org_id, org_id), (api_keys.c.team_id, team_id), (api_keys.c.user_id, user_id)):
        if value:
            query = query.where(column == value)
    if after:
        cursor = select(api_keys.c.created_at, api_keys.c.id).where(api_keys.c.id == after).subquery()
        query = query.where(tuple_(api_keys.c.created_at, api_keys.c.id)
                            > select(cursor.c.created_at, cursor.c.id).scalar_subquery())
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        return [record_of(row) for row in await conn.execute(query)]


async def get_key(engine: AsyncEngine, key_id: str) -> KeyRecord | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return record_of(row) if row else None


async def update_key(engine: AsyncEngine, key_id: str, changes: dict[str, Any]) -> tuple[KeyRecord, KeyRecord] | None:
    """Apply `changes` (column: value); returns (before, after), or None: no such key."""
    values = dict(changes)
    if "role" in values and values["role"] is not None:
        values["role"] = Role(values["role"]).value
    if values.get("scopes") is not None:
        values["scopes"] = [Scope(scope).value for scope in values["scopes"]]
    async with engine.begin() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id).with_for_update())).first()
        if row is None:
            return None
        before = record_of(row)
        if not values:
            return before, before
        after = (await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values)
                                    .returning(api_keys))).one()
    return before, record_of(after)


async def rotate_key(engine: AsyncEngine, key_id: str, grace: timedelta) -> NewKey | None:
    """A new secret for the same key; the one it replaces is valid for `grace` more."""
    raw = new_secret()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        row = (await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(previous_key_hash=api_keys.c.key_hash, previous_expires_at=now + grace,
                    key_hash=hash_key(raw), prefix=raw[:10], rotated_at=now)
            .returning(api_keys))).first()
    return NewKey(key=raw, record=record_of(row)) if row else None


async def revoke_key(engine: AsyncEngine, key_id: str) -> KeyRecord | None:
    async with engine.begin() as conn:
        row = (await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id)
            .values(revoked_at=datetime.now(UTC)).returning(api_keys))).first()
    return record_of(row) if row else None


async def key_hash_of(engine: AsyncEngine, key_id: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(api_keys.c.key_hash).where(api_keys.c.id == key_id))).scalar()
