"""Apply Alembic migrations to head (idempotent; safe from several processes at once)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db.engine import async_url


def upgrade(database_url: str) -> None:
    """Run in a thread without an event loop (Alembic's env starts its own)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    command.upgrade(config, "head")
