"""One-time set-up steps of `jetgate up`: JetStream topology and the first admin key (the
`global` role: it sees every org, as the master key does)."""
from __future__ import annotations

from sqlalchemy import select

from shared.bus import connect, ensure_streams
from shared.db.engine import make_engine
from shared.db.tables import api_keys
from shared.keys import create_key
from shared.settings import BusSettings, StreamLimits
from shared.tenancy import Role


async def prepare_bus(nats_url: str, replicas: int = 1, bus: BusSettings | None = None,
                      limits: dict[str, StreamLimits] | None = None) -> None:
    nc = await connect(nats_url, "jetgate-launcher", bus)
    try:
        await ensure_streams(nc.jetstream(), replicas, limits)
    finally:
        await nc.close()


async def bootstrap_admin_key(database_url: str) -> str | None:
    """Make an admin key when none exists yet; it is returned (and shown) only that once."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            exists = (await conn.execute(
                select(api_keys.c.id).where(api_keys.c.role == Role.GLOBAL.value, api_keys.c.revoked_at.is_(None))
                .limit(1))).first()
        if exists:
            return None
        new = await create_key(engine, name="bootstrap-admin", role=Role.GLOBAL)
        return new.key
    finally:
        await engine.dispose()
