"""Postgres unreachable, stalled or refusing: one bound on any database call, and one
error for it.

The engine's own timeouts (shared/db/engine.py) bound each connect and statement; `bounded`
puts one deadline over a whole operation (pool wait, connect, pre-ping, statements,
commit), so a stalled server never holds a request longer than the settings say, and turns
every way the store can fail into `KeyStoreUnavailable` (503 `key_store_unavailable`).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy import exc as sa_errors

from shared.errors import KeyStoreUnavailable
from shared.settings import PostgresSettings

T = TypeVar("T")

# how the store fails when it is away: refused or reset connections, timeouts, the driver's
# and SQLAlchemy's wrappers of both (a query the server refused is none of these)
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, sa_errors.OperationalError, sa_errors.InterfaceError, sa_errors.TimeoutError,
    sa_errors.DisconnectionError,
)


def operation_timeout(postgres: PostgresSettings) -> float:
    """The longest one operation may take: a pool wait, a connect, a ping and a statement."""
    return postgres.pool_timeout_s + postgres.connect_timeout_s + 2 * postgres.statement_timeout_s


def is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, UNREACHABLE):
        return True
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError | asyncpg.exceptions.InterfaceError)


async def bounded(operation: Awaitable[T], postgres: PostgresSettings, what: str = "The key store") -> T:
    """Run one database operation within `operation_timeout`; an outage becomes a 503."""
    try:
        async with asyncio.timeout(operation_timeout(postgres)):
            return await operation
    except Exception as exc:
        if is_unreachable(exc):
            raise KeyStoreUnavailable(f"{what} is unreachable; try again shortly.") from exc
        raise
