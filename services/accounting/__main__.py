"""`python -m services.accounting`: run the accounting worker (settings from the environment unless given)."""
from __future__ import annotations

from services.accounting.handlers import serve
from shared.service import run_worker
from shared.settings import Settings


def main(settings: Settings | None = None) -> None:
    run_worker("accounting", serve, settings)


if __name__ == "__main__":
    main()
