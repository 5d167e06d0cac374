"""`python -m services.guardrails`: run the guardrails worker."""
from __future__ import annotations

from services.guardrails.handlers import serve
from shared.service import run_worker


def main() -> None:
    run_worker("guardrails", serve)


if __name__ == "__main__":
    main()
