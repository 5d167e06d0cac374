"""The embedded Postgres started with a password (as `jetgate up` starts it) admits no one
without it."""
from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from jetgate.embedded.postgres import EmbeddedPostgres


async def test_a_password_is_required(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg" / "data", password="s3cret/with:odd@chars").start()
    try:
        conn = await asyncpg.connect(server.url, timeout=5)  # the URL carries it, quoted
        try:
            assert await conn.fetchval("SELECT current_database()") == "jetgate"
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/jetgate", timeout=5)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres:guessed@127.0.0.1:{server.port}/jetgate", timeout=5)
    finally:
        server.stop()
