"""`jetgate events tail`: an organisation's usage or audit events as they happen, over the
gateway's SSE endpoint (`/events/{stream}`), reconnecting with Last-Event-ID; one line per
event for people, or the event's JSON."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx


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
         read_timeout_s: float = 60.0, connect_timeout_s: float = 10.0, retry_wait_s: float = 1.0,
         out: Any = None) -> int:
    """Print events until interrupted (or `count` of them); reconnect after `Last-Event-ID`,
    `retry_wait_s` after a refused or broken connection."""
    out = out or sys.stdout
    last: int | None = None
    shown = 0
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"},
                      timeout=httpx.Timeout(connect_timeout_s, read=read_timeout_s)) as client:
        while True:
            headers = {"last-event-id": str(last)} if last is not None else {}
            try:
                with client.stream("GET", f"/events/{stream}", params=params, headers=headers) as response:
                    if response.status_code == 503:  # the bus or this replica is busy: try again
                        print("the event feed is unavailable; retrying", file=sys.stderr)
                        time.sleep(retry_wait_s)
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
                time.sleep(retry_wait_s)
            params = {k: v for k, v in params.items() if k != "since"}  # resumed by Last-Event-ID from now on
