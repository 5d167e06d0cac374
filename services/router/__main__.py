"""`python -m services.router`: run the router worker (settings from the environment unless given)."""
from __future__ import annotations

from services.router.handlers import serve
from shared.service import run_worker
from shared.settings import Settings


def main(settings: Settings | None = None) -> None:
    run_worker("router", serve, settings)


if __name__ == "__main__":
    main()
