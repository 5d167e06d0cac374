"""`jetgate audit replay|export|verify` and `jetgate usage replay|export` (arguments:
jetgate/replay/parser.py).

Server URLs come from the settings (`JETGATE_NATS_URL`, `JETGATE_DATABASE_URL`,
`JETGATE_CLICKHOUSE_URL`), else from the running `jetgate up` of `--home` (as its admin
bus user).
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from jetgate.home import joined
from jetgate.replay.run import ReplayJob, replay
from jetgate.replay.source import KINDS, Selection
from services.accounting.audit_chain import verify_chain
from shared.bus import connect, jetstream
from shared.bus_users import ADMIN
from shared.db.engine import make_engine
from shared.settings import Settings


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
    settings = joined(settings, ADMIN)
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
