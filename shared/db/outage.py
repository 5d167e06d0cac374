"""Postgres unreachable, stalled or refusing: one bound on any database call, and one
error for it.

The engine's own timeouts (shared/db/engine.py) bound each connect and statement; `bounded`
puts one deadline over a whole operation (pool wait, connect, pre-ping, statements,
commit): `INGRESS__KEY_STORE_TIMEOUT_S` for a key lookup, an admin call or `/ready`,
`ACCOUNTING__WRITE_TIMEOUT_S` for a batch write. So a stalled server never holds a request
longer than its setting, and every way the store can fail becomes `KeyStoreUnavailable`
(503 `key_store_unavailable`; accounting naks the batch).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy import exc as sa_errors

from shared.errors import KeyStoreUnavailable

T = TypeVar("T")

# how the store fails when it is away: refused or reset connections, timeouts, the driver's
# and SQLAlchemy's wrappers of both (a query the server refused is none of these)
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, sa_errors.OperationalError, sa_errors.InterfaceError, sa_errors.TimeoutError,
    sa_errors.DisconnectionError,
)


def is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, UNREACHABLE):
        return True
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError | asyncpg.exceptions.InterfaceError)


async def bounded(operation: Awaitable[T], timeout_s: float, what: str = "The key store") -> T:
    """Run one database operation within `timeout_s`; an outage becomes a 503."""
    try:
        async with asyncio.timeout(timeout_s):
            return await operation
    except Exception as exc:
        if is_unreachable(exc):
            raise KeyStoreUnavailable(f"{what} is unreachable; try again shortly.") from exc
        raise
