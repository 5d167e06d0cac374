"""`python -m services.guardrails`: run the guardrails worker (settings from the environment unless given)."""
from __future__ import annotations

from services.guardrails.handlers import serve
from shared.service import run_worker
from shared.settings import Settings


def main(settings: Settings | None = None) -> None:
    run_worker("guardrails", serve, settings)


if __name__ == "__main__":
    main()
