"""The arguments of `jetgate audit replay|export|verify` and `jetgate usage replay|export`
(run by jetgate/replay/cli.py). Standard library only, for a quick `--help`."""
from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jetgate.admin_flags import HOME_HELP

AGO = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# the stores each stream replays to: jetgate/replay/sinks.py `SINKS`
SINK_NAMES = {"audit": ("jsonl", "postgres", "stdout"), "usage": ("clickhouse", "jsonl", "postgres", "stdout")}


def parse_moment(text: str) -> datetime:
    """An ISO-8601 time or date (UTC unless it names a zone), or a time ago: 90m, 24h, 7d."""
    ago = AGO.match(text.strip())
    if ago:
        return datetime.now(UTC) - timedelta(**{UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time or a duration like 24h: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window(parser: argparse.ArgumentParser, until_required: bool) -> None:
    parser.add_argument("--since", type=parse_moment, required=True,
                        help="stored at or after: ISO-8601 (UTC unless zoned), or ago: 90m, 24h, 7d")
    parser.add_argument("--until", type=parse_moment, required=until_required, help="stored before (default: now)")
    parser.add_argument("--org", help="one organisation (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument("--home", type=str, help=HOME_HELP)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, helps in (("audit", "replay, export and verify the audit log"),
                        ("usage", "replay and export usage events")):
        group = sub.add_parser(name, help=helps)
        commands = group.add_subparsers(dest="stream_command", required=True)
        run = commands.add_parser("replay", help=f"write the {name} stream (or an export) to a store, idempotently")
        _window(run, until_required=False)
        run.add_argument("--to", required=True, choices=sorted(SINK_NAMES[name]))
        run.add_argument("--out", type=Path, help="the file for --to jsonl")
        run.add_argument("--from", dest="from_file", type=Path, help="read an export instead of the stream")
        run.add_argument("--checkpoint", type=Path,
                         help="resume file: written after every batch; found, the replay resumes after it")
        export = commands.add_parser("export", help=f"write a period of the {name} stream to a file (JSONL, or "
                                                    "Parquet when FILE ends in .parquet)")
        _window(export, until_required=True)
        export.add_argument("--out", type=Path, required=True)
        export.add_argument("--checkpoint", type=Path, help="resume file (JSONL exports only)")
        if name == "audit":
            verify = commands.add_parser("verify", help="check the hash chain; exits 1 at the first broken link")
            verify.add_argument("--org", help="one organisation (default: all)")
            verify.add_argument("--home", type=str, help=HOME_HELP)
