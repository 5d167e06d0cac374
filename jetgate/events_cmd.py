"""`jetgate events tail|creds|schemas`: follow an organisation's usage or audit events
(jetgate/event_tail.py), issue a NATS credential that reads only one organisation's events
(jetgate/event_creds.py), (re)generate the event schema files (jetgate/event_docs.py). Each
is imported when its command runs. Arguments: jetgate/events_parser.py."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from jetgate.home import read_state
from shared.settings import Settings


def _gateway_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.url:
        return str(args.url)
    state = read_state(settings.home.resolve())
    if state is None:
        raise SystemExit(f"no running gateway in {settings.home}: pass --url")
    return state.url


def _api_key(settings: Settings) -> str:
    key = os.environ.get("JETGATE_API_KEY") or (settings.master_key.get_secret_value() if settings.master_key else None)
    if not key:
        raise SystemExit("set JETGATE_API_KEY (a key with the `events` scope, or an admin key of the org)")
    return key


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from jetgate.event_tail import tail

    params = {name: value for name, value in (("org_id", args.org), ("since", args.since), ("type", args.type),
                                              ("key_id", args.key), ("model", args.model)) if value}
    try:
        return tail(_gateway_url(args, settings), _api_key(settings), args.stream, params, as_json=args.json,
                    count=args.count, connect_timeout_s=args.connect_timeout, retry_wait_s=args.retry_wait)
    except KeyboardInterrupt:
        return 0


def _creds(args: argparse.Namespace, settings: Settings) -> int:
    from jetgate.event_creds import issue, server_entry

    consumers = settings.event_feed.credential_consumers
    home = settings.home.resolve()
    state = read_state(home)
    try:
        if settings.nats_url or state is None or not (home / "nats" / "nats-server.conf").exists():
            credential, entry = server_entry(args.org, consumers)
            print("NATS is not the embedded server of a running `jetgate up`: add this user to the server's "
                  "`authorization { users: [...] }` and reload it (nats-server --signal reload):", file=sys.stderr)
            print(entry, file=sys.stderr)
        else:
            credential = issue(home, args.org, state.nats_url, consumers)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    print(credential.shown())
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from jetgate.event_docs import stale, write

    root = Path(args.root)
    if args.check:
        differ = stale(root)
        for path in differ:
            print(f"differs from the models: {path}", file=sys.stderr)
        return 1 if differ else 0
    for path in write(root):
        print(path)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {"tail": _tail, "creds": _creds, "schemas": _schemas}


def events_command(args: argparse.Namespace, settings: Settings) -> int:
    return COMMANDS[args.events_command](args, settings)
