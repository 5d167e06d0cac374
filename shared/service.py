"""How a worker process runs: logging, uvloop, and a clean stop on SIGINT/SIGTERM.

A worker is an async function `serve(settings, stop)` that sets itself up, waits for
`stop`, then drains its subscriptions and flushes what it holds before returning.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from shared.settings import Settings, load_settings

Serve = Callable[[Settings, asyncio.Event], Awaitable[None]]


class _RedactingFormatter(logging.Formatter):
    """Never let a bearer token or key through, whatever a library logs."""

    def format(self, record: logging.LogRecord) -> str:
        from shared.redact import redact_secrets

        return redact_secrets(super().format(record))


def setup_logging(level: str, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in ("httpx", "httpcore", "alembic", "aiohttp.access"):  # one line per request is no log
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


def install_event_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_worker(name: str, serve: Serve, settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    setup_logging(settings.log_level, name)
    install_event_loop()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
