"""API keys: made once, stored only as SHA-256 hashes, looked up by hash."""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys
from shared.events import KeyData, KeyEvent, Principal
from shared.ids import uuid7

KEY_PREFIX = "jg-"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class KeyRecord(BaseModel):
    id: str
    name: str
    prefix: str
    org_id: str
    team_id: str | None
    models: list[str] | None
    is_admin: bool
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def principal(self) -> Principal:
        return Principal(key_id=self.id, org_id=self.org_id, team_id=self.team_id,
                         is_admin=self.is_admin, models=self.models)

    def event(self, type_: Literal["key.created", "key.revoked"], *, source: str, actor_key_id: str) -> KeyEvent:
        """The audit event for something done to this key (never the key itself)."""
        return KeyEvent(type=type_, source=source, org_id=self.org_id, team_id=self.team_id, key_id=self.id,
                        data=KeyData(name=self.name, actor_key_id=actor_key_id, models=self.models))


class NewKey(BaseModel):
    key: str  # shown once
    record: KeyRecord


async def create_key(engine: AsyncEngine, *, name: str, models: list[str] | None = None,
                     org_id: str = "default", team_id: str | None = None, is_admin: bool = False) -> NewKey:
    raw = KEY_PREFIX + secrets.token_urlsafe(30)
    record = KeyRecord(id="key_" + uuid7().replace("-", "")[:24], name=name, prefix=raw[:10], org_id=org_id,
                       team_id=team_id, models=models or None, is_admin=is_admin,
                       created_at=datetime.now(UTC))
    async with engine.begin() as conn:
        await conn.execute(api_keys.insert().values(
            id=record.id, key_hash=hash_key(raw), prefix=record.prefix, name=name, org_id=org_id,
            team_id=team_id, models=record.models, is_admin=is_admin, created_at=record.created_at))
    return NewKey(key=raw, record=record)


def _record(row) -> KeyRecord:  # type: ignore[no-untyped-def]
    return KeyRecord(id=row.id, name=row.name, prefix=row.prefix, org_id=row.org_id, team_id=row.team_id,
                     models=row.models, is_admin=row.is_admin, created_at=row.created_at,
                     revoked_at=row.revoked_at)


async def find_key(engine: AsyncEngine, key_hash: str) -> KeyRecord | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    return _record(row) if row else None


async def list_keys(engine: AsyncEngine, org_id: str | None = None) -> list[KeyRecord]:
    query = select(api_keys).order_by(api_keys.c.created_at)
    if org_id:
        query = query.where(api_keys.c.org_id == org_id)
    async with engine.connect() as conn:
        return [_record(row) for row in await conn.execute(query)]


async def revoke_key(engine: AsyncEngine, key_id: str) -> KeyRecord | None:
    async with engine.begin() as conn:
        row = (await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id)
            .values(revoked_at=datetime.now(UTC)).returning(api_keys))).first()
    return _record(row) if row else None


async def key_hash_of(engine: AsyncEngine, key_id: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(api_keys.c.key_hash).where(api_keys.c.id == key_id))).scalar()
