"""Async engine construction. Engines are built by each service at start, never on import.

Every connection and statement is bounded (`PostgresSettings`): asyncpg's connect timeout
and command timeout on the client (a frozen server: SIGSTOP, a dead link), and the
server's `statement_timeout` (a slow query on a live server). A pool that has no free
connection fails after `pool_timeout_s` instead of queueing requests without end.
"""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import PostgresSettings


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and select the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, pool_size: int = 5, postgres: PostgresSettings | None = None) -> AsyncEngine:
    postgres = postgres or PostgresSettings()
    connect_args = {
        "timeout": postgres.connect_timeout_s,
        "command_timeout": postgres.statement_timeout_s,
        "server_settings": {"statement_timeout": str(int(postgres.statement_timeout_s * 1000))},
    }
    return create_async_engine(async_url(url), pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, pool_recycle=1800, pool_timeout=postgres.pool_timeout_s,
                               connect_args=connect_args)
