"""`jetgate audit replay|export|verify` and `jetgate usage replay|export`.

Server URLs come from the settings (`JETGATE_NATS_URL`, `JETGATE_DATABASE_URL`,
`JETGATE_CLICKHOUSE_URL`), else from the running `jetgate up` of `--home` (as its admin
bus user).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jetgate.credentials import bus_as, read_credentials
from jetgate.home import read_state
from jetgate.replay.run import ReplayJob, replay
from jetgate.replay.sinks import SINKS
from jetgate.replay.source import KINDS, Selection
from services.accounting.audit_chain import verify_chain
from shared.bus import connect, jetstream
from shared.bus_users import ADMIN
from shared.db.engine import make_engine
from shared.settings import Settings

AGO = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


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


def with_servers(settings: Settings) -> Settings:
    """Server URLs not set: those of the running `jetgate up` of `--home`, as its admin user."""
    home = settings.home.resolve()
    state = read_state(home)
    if state is None:
        return settings
    update: dict[str, object] = {
        name: getattr(settings, name) or getattr(state, name) for name in ("nats_url", "database_url", "clickhouse_url")}
    if not settings.nats_url:
        update["bus"] = bus_as(settings.bus, read_credentials(home), ADMIN)
    return settings.model_copy(update=update)


def _selection(args: argparse.Namespace) -> Selection:
    kind = KINDS[args.command]
    return Selection(kind, kind.subject(args.org), since=args.since, until=args.until)


async def _replay(args: argparse.Namespace, settings: Settings) -> int:
    to = "jsonl" if args.stream_command == "export" else args.to
    job = ReplayJob(_selection(args), to, out=args.out, from_file=getattr(args, "from_file", None),
                    checkpoint=getattr(args, "checkpoint", None), progress=not args.no_progress)
    nc = None
    if job.from_file is None:
        nc = await connect(settings.require("nats_url"), "jetgate-replay", settings.bus)
    try:
        result = await replay(job, settings, jetstream(nc, settings.bus) if nc else None)
    finally:
        if nc is not None:
            await nc.close()
    resumed = f" (resumed after stream sequence {result.resumed_after})" if result.resumed_after is not None else ""
    print(f"{args.command} {args.stream_command}: {result.read:,} events to {to}{resumed}, {result.skipped:,} skipped "
          f"(not valid events; accounting dead-letters them), last stream sequence {result.last_seq}, "
          f"{result.read / result.seconds if result.seconds else 0:,.0f} events/s", file=sys.stderr)
    return 0


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.require("database_url"), pool_size=1, postgres=settings.postgres)
    try:
        report = await verify_chain(engine, args.org)
    finally:
        await engine.dispose()
    legacy = f"; {report.unchained:,} rows from before the chain are not covered" if report.unchained else ""
    if report.broken is not None:
        link = report.broken
        print(f"audit chain BROKEN in org {link.org_id} at stream sequence {link.stream_seq} "
              f"(event {link.event_id}): {link.reason}", file=sys.stderr)
        return 1
    print(f"audit chain intact: {report.rows:,} rows in {report.orgs:,} orgs{legacy}")
    return 0


def command(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_servers(settings)
    if args.stream_command == "verify":
        return asyncio.run(_verify(args, settings))
    if args.stream_command == "replay" and args.to == "jsonl" and args.out is None:
        raise SystemExit("--to jsonl needs --out FILE")
    try:
        return asyncio.run(_replay(args, settings))
    except KeyboardInterrupt:
        again = ("run the same command again to resume after its checkpoint" if getattr(args, "checkpoint", None)
                 else "run it again (a database keeps what is written and skips it; a file is written anew), "
                      "or give --checkpoint FILE to be able to resume")
        print(f"\ninterrupted; {again}", file=sys.stderr)
        return 130


def _window(parser: argparse.ArgumentParser, until_required: bool) -> None:
    parser.add_argument("--since", type=parse_moment, required=True,
                        help="stored at or after: ISO-8601 (UTC unless zoned), or ago: 90m, 24h, 7d")
    parser.add_argument("--until", type=parse_moment, required=until_required, help="stored before (default: now)")
    parser.add_argument("--org", help="one organisation (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument("--home", type=str, help="home of the running gateway (default ./.jetgate)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, helps in (("audit", "replay, export and verify the audit log"),
                        ("usage", "replay and export usage events")):
        group = sub.add_parser(name, help=helps)
        commands = group.add_subparsers(dest="stream_command", required=True)
        run = commands.add_parser("replay", help=f"write the {name} stream (or an export) to a store, idempotently")
        _window(run, until_required=False)
        run.add_argument("--to", required=True, choices=sorted(SINKS[name]))
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
            verify.add_argument("--home", type=str, help="home of the running gateway (default ./.jetgate)")
