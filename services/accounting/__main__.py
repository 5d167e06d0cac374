"""`python -m services.accounting`: run the accounting worker."""
from __future__ import annotations

from services.accounting.handlers import serve
from shared.service import run_worker


def main() -> None:
    run_worker("accounting", serve)


if __name__ == "__main__":
    main()
