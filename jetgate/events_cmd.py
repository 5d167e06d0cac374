"""`jetgate events tail|creds|schemas`: follow an organisation's usage or audit events (over
the gateway's SSE endpoint, reconnecting with Last-Event-ID), issue a NATS credential that
reads only one organisation's events, (re)generate the event schema files."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from jetgate.home import read_state
from shared.settings import Settings


def _usage_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return f"{data.get('model')} {data.get('status')} {data.get('total_tokens')} tokens cost {data.get('cost')}"


def _request_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return f"{data.get('method')} {data.get('path')} {data.get('model') or '-'} {data.get('status_code') or ''}".rstrip()


def _key_line(event: dict[str, Any]) -> str:
    return f"{event['data'].get('name')} by {event['data'].get('actor_key_id')}"


def _correction_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return f"call {data.get('call_id')} {data.get('status')} {data.get('error_code') or ''}".rstrip()


def _guardrail_line(event: dict[str, Any]) -> str:
    data = event["data"]
    found = ", ".join(f"{f.get('rule')} {f.get('action')} x{f.get('count')}" for f in data.get("findings", []))
    return f"{data.get('model')} {data.get('verdict')}: {found}"


def _admin_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return f"{data.get('object')} {data.get('object_id')} {data.get('action')} by {data.get('actor_key_id')}"


def _budget_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return (f"{data.get('level')} {data.get('level_id')} committed {data.get('committed')} of {data.get('max_budget')} "
            f"(warning at {data.get('share')})")


def _health_line(event: dict[str, Any]) -> str:
    data = event["data"]
    why = f" after {data.get('consecutive_failures')} failures ({data.get('error_code') or data.get('error_type')}" \
          f" {data.get('status')})" if data.get("state") == "unhealthy" else ""
    return f"{data.get('deployment')} {data.get('state')}{why} on {data.get('instance')}"


def _config_line(event: dict[str, Any]) -> str:
    data = event["data"]
    return (f"{data.get('service')} on {data.get('instance')} digest {str(data.get('digest'))[:12]}"
            f"{' (changed)' if data.get('changed') else ''}")


def _other_line(event: dict[str, Any]) -> str:
    return json.dumps(event.get("data"))


LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "usage": _usage_line, "usage.corrected": _correction_line, "request": _request_line, "key": _key_line,
    "guardrail": _guardrail_line, "admin": _admin_line, "budget": _budget_line, "provider.health": _health_line,
    "config": _config_line}


def human(event: dict[str, Any]) -> str:
    event_type = str(event.get("type", ""))
    detail = LINES.get(event_type, LINES.get(event_type.split(".", 1)[0], _other_line))(event)
    return f"{event.get('time')} {event.get('type')} org={event.get('org_id')} key={event.get('key_id')} {detail}"


def _sse(response: httpx.Response) -> Iterator[tuple[int, str]]:
    """(id, data) of each event of an SSE response."""
    seq: int | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and data and seq is not None:
            yield seq, "\n".join(data)
            seq, data = None, []


def tail(url: str, api_key: str, stream: str, params: dict[str, str], *, as_json: bool, count: int | None,
         read_timeout_s: float = 60.0, out: Any = None) -> int:
    """Print events until interrupted (or `count` of them); reconnect after `Last-Event-ID`."""
    out = out or sys.stdout
    last: int | None = None
    shown = 0
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"},
                      timeout=httpx.Timeout(10, read=read_timeout_s)) as client:
        while True:
            headers = {"last-event-id": str(last)} if last is not None else {}
            try:
                with client.stream("GET", f"/events/{stream}", params=params, headers=headers) as response:
                    if response.status_code == 503:  # the bus or this replica is busy: try again
                        print("the event feed is unavailable; retrying", file=sys.stderr)
                        time.sleep(1.0)
                        continue
                    if response.status_code != 200:
                        print(f"error: {response.status_code} {response.read().decode(errors='replace')}", file=sys.stderr)
                        return 1
                    for seq, data in _sse(response):
                        last = seq
                        print(data if as_json else human(json.loads(data)), file=out, flush=True)
                        shown += 1
                        if count is not None and shown >= count:
                            return 0
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                print(f"reconnecting after {type(exc).__name__}", file=sys.stderr)
                time.sleep(1.0)
            params = {k: v for k, v in params.items() if k != "since"}  # resumed by Last-Event-ID from now on


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
    params = {name: value for name, value in (("org_id", args.org), ("since", args.since), ("type", args.type),
                                              ("key_id", args.key), ("model", args.model)) if value}
    try:
        return tail(_gateway_url(args, settings), _api_key(settings), args.stream, params, as_json=args.json,
                    count=args.count)
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
    creds = events_sub.add_parser("creds", help="a NATS user that reads only this organisation's events")
    creds.add_argument("--org", required=True)
    schemas = events_sub.add_parser("schemas", help="write docs/schemas/*.json and docs/asyncapi.json from the models")
    schemas.add_argument("--check", action="store_true", help="fail when a committed file differs from the models")
    schemas.add_argument("--root", default=".", help="the repository root (default .)")
    for parser in (tail_cmd, creds):
        parser.add_argument("--home", type=str, help="home of the running gateway (default ./.jetgate)")
