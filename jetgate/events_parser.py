"""The arguments of `jetgate events tail|creds|schemas` (run by jetgate/events_cmd.py).
Standard library only, for a quick `--help`."""
from __future__ import annotations

import argparse

from jetgate.admin_flags import add_home_flag


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    events = sub.add_parser("events", help="follow usage and audit events, issue NATS credentials, event schemas")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail_cmd = events_sub.add_parser("tail", help="print an organisation's events as they happen (JETGATE_API_KEY)")
    tail_cmd.add_argument("stream", choices=("usage", "audit"))
    tail_cmd.add_argument("--org", help="organisation (default: the key's own; another: the master key)")
    tail_cmd.add_argument("--since", help="start at this RFC 3339 time (default: now)")
    tail_cmd.add_argument("--json", action="store_true", help="one event JSON per line")
    tail_cmd.add_argument("--type", help="comma-separated event types")
    tail_cmd.add_argument("--key", help="comma-separated key ids")
    tail_cmd.add_argument("--model", help="comma-separated models")
    tail_cmd.add_argument("--count", type=int, help="stop after this many events")
    tail_cmd.add_argument("--url", help="the gateway (default: the running `jetgate up` of --home)")
    tail_cmd.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach the gateway (10)")
    tail_cmd.add_argument("--retry-wait", type=float, default=1.0,
                          help="seconds between reconnects when the feed is away or unavailable (1)")
    creds = events_sub.add_parser("creds", help="a NATS user that reads only this organisation's events")
    creds.add_argument("--org", required=True)
    schemas = events_sub.add_parser("schemas", help="write docs/schemas/*.json and docs/asyncapi.json from the models")
    schemas.add_argument("--check", action="store_true", help="fail when a committed file differs from the models")
    schemas.add_argument("--root", default=".", help="the repository root (default .)")
    add_home_flag(tail_cmd, creds)
