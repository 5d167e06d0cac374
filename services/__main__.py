"""`python -m services SERVICE`: start one service by name, as `jetgate up`, the tests and
the bench do. It is `python -m services.SERVICE` with one thing more: a service that never
calls HTTP through aiohttp (every one but the router) starts without it (shared/service.py,
`without_aiohttp`), which it can only do before the service's modules are imported."""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from shared.service import without_aiohttp
from shared.settings import Settings, load_settings

USES_AIOHTTP = frozenset({"router"})  # its upstream client (services/router/http_client.py)


def load(service: str, settings: Settings) -> Callable[[Settings], None]:
    """The service's `main`, imported after what it does not use is ruled out."""
    if service not in USES_AIOHTTP:
        without_aiohttp(settings.nats_url)
    entry: Callable[[Settings], None] = importlib.import_module(f"services.{service}.__main__").main
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    # the services are the packages here with a __main__ of their own
    parser.add_argument("service", choices=[entry.parent.name for entry in sorted(Path(__file__).parent.glob("*/__main__.py"))])
    service = parser.parse_args(argv).service
    settings = load_settings()
    load(service, settings)(settings)


if __name__ == "__main__":
    main()
