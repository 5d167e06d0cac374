"""Pass-through calls (`/p/{provider}/...`) in the router: the client's request to the
provider's native API, the provider's credentials injected, the answer relayed untouched.

The URL is the provider's native root (`Provider.native_access`) and the client's path
and query, checked again here (services/router/native_url.py); redirects are never
followed. Headers out: the client's FORWARDED_REQUEST_HEADERS (shared/native.py), the
provider's defaults where the client sent none, then its credentials, which always win;
nothing else of the client's (its JetGate key never leaves the ingress's hands). The
answer goes back as `chunk` frames of the upstream's bytes as they come (an SSE stream
is relayed event for event, a whole body in the pieces it arrives in); the first frame
carries the upstream's status (`Jetgate-Status`) and the headers the client gets
(`Jetgate-Headers`, JSON), then `end`. One usage event per call: the usage the answer
reported where its format is known (services/router/native_usage.py), priced by the
route (the gateway model the ingress mapped the body's model to; else 0).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from nats.aio.client import Client

from services.router.http_client import UpstreamHttp
from services.router.native_url import native_url
from services.router.native_usage import NativeUsage
from services.router.registry import Target
from services.router.relay import CallCancel
from services.router.usage import Status, usage_event
from shared.errors import GatewayError, InvalidRequest
from shared.events import UsageEvent
from shared.native import FORWARDED_REQUEST_HEADERS, forwarded_response_headers
from shared.openai_types import Usage
from shared.protocol import (
    FRAME_HEADER,
    NATIVE_HEADERS_HEADER,
    STATUS_HEADER,
    Call,
    Frame,
    send_chunk,
    send_end,
    send_error,
)
from shared.redact import redact_content
from shared.usage import call_usage

Emit = Callable[[UsageEvent], None]


async def _send_head(nc: Client, inbox: str, status: int, headers: dict[str, str]) -> None:
    await nc.publish(inbox, b"", headers={FRAME_HEADER: Frame.CHUNK.value, STATUS_HEADER: str(status),
                                          NATIVE_HEADERS_HEADER: redact_content(orjson.dumps(headers)).decode()})


async def serve_passthrough(nc: Client, inbox: str, call: Call, target: Target, http: UpstreamHttp,
                            cancel: CallCancel, emit: Emit) -> None:
    envelope = call.envelope
    native = envelope.native
    if native is None:
        raise InvalidRequest("A pass-through call without its request.", code="invalid_call")
    access = await target.provider.native_access()  # 400 for a provider type that takes none
    url = native_url(access.base_url, native.path, native.query)
    client = {k: v for k, v in native.headers.items() if k in FORWARDED_REQUEST_HEADERS}
    headers = {**access.defaults, **client, **access.credentials, "accept-encoding": "identity"}
    started = time.perf_counter()
    status: Status = "ok"
    tally: NativeUsage | None = None
    reached = False

    def event_of(status: Status) -> UsageEvent:
        usage: Usage | None = tally.usage() if tally is not None else None
        sse = tally is not None and tally.sse
        return usage_event(envelope.model_copy(update={"stream": sse}), target=target, usage=usage,
                           usage_source="upstream" if usage else "none", status=status,
                           latency_ms=(time.perf_counter() - started) * 1000, attempts=1 if reached else 0)

    def charge(status: Status) -> None:
        emit(event_of(status))

    try:
        if call.lease is not None:
            await call.lease.reaching(0)
        reached = True
        async with http.open(target.provider.name, native.method, url, call.body or None, headers,
                             access.timeouts) as response:
            sse = response.headers.get("content-type", "").startswith("text/event-stream")
            tally = NativeUsage(sse=sse)
            await _send_head(nc, inbox, response.status, forwarded_response_headers(dict(response.headers)))
            try:
                async for data in response.chunks():
                    tally.feed(data)
                    await send_chunk(nc, inbox, data)
            except GatewayError as error:  # the upstream broke off mid-answer: the client's body ends short
                status = "error"
                await send_error(nc, inbox, error)
            else:
                if response.status >= 400:
                    status = "error"
                done = event_of(status)
                await send_end(nc, inbox, call_usage(done))  # the ingress settles the call's limits with it
                emit(done)
                return
    except asyncio.CancelledError:
        if not cancel.ours():
            raise
        charge("cancelled")
        return
    except GatewayError:
        charge("error")
        raise  # before the head: the caller's error frame
    charge(status)
