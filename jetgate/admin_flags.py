"""The flags the admin commands (`jetgate orgs|teams|users|keys`) share, named as the admin
API's fields (`--rpm-limit` is `rpm_limit`). Argument parsing only: `jetgate --help` builds
every parser, so nothing here imports more than the standard library."""
from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

HOME_HELP = "home of the running gateway (default ./.jetgate)"


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """The limits every level takes (shared/admin_bodies.py `LimitFields`)."""
    parser.add_argument("--models", type=comma_list, help="comma-separated models allowed (default: all)")
    parser.add_argument("--rpm-limit", type=int)
    parser.add_argument("--tpm-limit", type=int)
    parser.add_argument("--max-budget", type=_decimal, help="USD")
    parser.add_argument("--budget-duration", choices=["1h", "1d", "7d", "30d", "1mo"])


def add_home_flag(*parsers: argparse.ArgumentParser) -> None:
    for parser in parsers:
        parser.add_argument("--home", type=str, help=HOME_HELP)
