"""A key resolved once through its user, team and org: the levels a request passes
(org first, key last, each with its limits) and why the key may be refused.

The ingress caches the result (services/ingress/keycache.py); a change at any level is
broadcast (shared/subjects.py TENANCY_CHANGED) and evicts every cached key beneath it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.tables import api_keys
from shared.events import Principal
from shared.keys import StoredKey, record_of
from shared.tenancy import Level, LevelKind, Limits
from shared.tenants.records import TenantRecord
from shared.tenants.store import TABLES
from shared.tenants.store import record_of as tenant_record_of

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ResolvedKey:
    stored: StoredKey
    levels: list[Level]
    principal: Principal
    deleted: LevelKind | None = None  # a level above the key was deleted: the key is refused
    networks: tuple[Network, ...] | None = field(default=None)

    @property
    def key_id(self) -> str:
        return self.stored.record.id

    def has_level(self, kind: LevelKind, object_id: str) -> bool:
        return any(level.kind is kind and level.id == object_id for level in self.levels)

    def refusal(self, key_hash: str, now: datetime) -> str | None:
        """Why this secret is not valid now (revoked, expired, rotated out, a level deleted), or None."""
        record = self.stored.record
        if record.revoked_at is not None:
            return "revoked"
        if self.deleted is not None:
            return f"{self.deleted.value} deleted"
        if record.expires_at is not None and record.expires_at <= now:
            return "expired"
        if key_hash != self.stored.key_hash:
            grace = self.stored.previous_expires_at
            if key_hash != self.stored.previous_key_hash or grace is None or grace <= now:
                return "rotated"
        return None

    def admits(self, address: str | None) -> bool:
        """The caller's address is in the key's IP allowlist (or it has none)."""
        if self.networks is None:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


async def _tenant(conn: AsyncConnection, kind: LevelKind, object_id: str) -> TenantRecord | None:
    table = TABLES[kind]
    row = (await conn.execute(select(table).where(table.c.id == object_id))).first()
    return tenant_record_of(kind, row) if row else None


async def resolve_key(engine: AsyncEngine, key_hash: str) -> ResolvedKey | None:
    """The key whose current or previous secret hashes to `key_hash`, with its levels."""
    query = (select(api_keys)
             .where((api_keys.c.key_hash == key_hash) | (api_keys.c.previous_key_hash == key_hash)).limit(1))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        stored = StoredKey(record=record_of(row), key_hash=row.key_hash, previous_key_hash=row.previous_key_hash,
                           previous_expires_at=row.previous_expires_at)
        record = stored.record
        user = await _tenant(conn, LevelKind.USER, record.user_id) if record.user_id else None
        team_id = getattr(user, "team_id", None) if user is not None else record.team_id
        team = await _tenant(conn, LevelKind.TEAM, team_id) if team_id else None
        org = await _tenant(conn, LevelKind.ORG, record.org_id)
    levels = [org.level() if org else Level(kind=LevelKind.ORG, id=record.org_id, limits=Limits())]
    found: list[TenantRecord | None] = [org, team, user]
    if team_id:
        levels.append(team.level() if team else Level(kind=LevelKind.TEAM, id=team_id))
    if user is not None:
        levels.append(user.level())
    levels.append(record.level())
    deleted = next((r.object for r in found if r is not None and r.deleted_at is not None), None)
    if record.user_id and user is None:
        deleted = LevelKind.USER
    principal = record.model_copy(update={"team_id": team_id}).principal(levels)
    networks = (tuple(ipaddress.ip_network(cidr, strict=False) for cidr in record.allowed_ips)
                if record.allowed_ips is not None else None)
    return ResolvedKey(stored=stored, levels=levels, principal=principal, deleted=deleted, networks=networks)
