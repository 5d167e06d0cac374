"""Calls from the ingress into the pipeline and to accounting, over NATS.

A call goes to the subject of its first stage with an inbox of its own as reply subject;
the answer (a `reply` frame, after `part` frames when it is large; an `error` frame; or a
stream of frames) comes back on it from whichever stage ends the call, and heartbeats come
while a stage holds it (shared/protocol.py). Silence past `heartbeat_timeout_s` means the
worker holding the call is gone:
- the call had not gone to an upstream (no heartbeat said so): nothing was done, so it is
  sent again, as a call nobody took is (a worker restarting), until `no_responders_wait_s`
  from the first such silence (afresh after a worker that beat), then 503: its takers are stalled;
- it had: 503 `worker_lost` at once, and the ingress charges the call itself (estimated;
  its usage event has the call's id as event id, so a late one from the router counts once),
  and publishes `usage.corrected` with the client's status, which wins over the router's.
Silence while the ingress's own bus connection is down, or within a heartbeat timeout of its
coming back (the workers' connections come back on their own schedule), says nothing of
the worker: the call waits for the bus (its answer comes when it is back) until the bus guard cuts it
(`bus_outage_wait_s`, 503 `bus_unavailable`), and it is not sent again meanwhile. A link that
looks up is asked first (the bus guard's probe). A call whose worker falls silent after the
link dropped during it is first asked for again (the router that answered it kept the reply:
services/router/kept_replies.py), whether or not a heartbeat told of an upstream: the outage
may have lost that heartbeat with the reply, and a call sent again would reach the upstream
twice. Still silent, it is sent again when no heartbeat came, else it gets 503
`bus_unavailable` rather than `worker_lost`: its answer may be what the outage lost. A client
that goes away cancels the call at the routers (they charge what it cost). A call the bus
guard cuts (`cut`) is cancelled at the routers too, once the bus is back, and gets its
`usage.corrected`: a router that finished it meanwhile charges its tokens (the upstream's),
with the status the client saw.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from services.ingress.bus_guard import BusWatch
from services.ingress.frames import Frames, FrameStream, Inboxes, Settle, next_frame, once, publish_cancel
from shared.control import ReplyAgain
from shared.errors import BusUnavailable, ClientClosed, GatewayError, PayloadTooLarge, ServiceUnavailable, UpstreamTimeout
from shared.events import UsageCorrection, UsageEvent
from shared.protocol import (
    Call,
    CallUsage,
    Frame,
    client_headers,
    error_of,
    frame_of,
    joined,
    no_responders,
    status_of,
    upstream_of,
    usage_of,
)
from shared.settings import IngressSettings
from shared.subjects import ACCOUNTING_USAGE_QUERY, ROUTER_RESEND
from shared.usage import estimated_usage, relayed_text, usage_correction, usage_event
from shared.usage_report import UsageQuery, UsageReport

Emit = Callable[[UsageEvent | UsageCorrection], None]
ClientGone = Callable[[], Awaitable[Any]]  # returns once the client has gone away
NOTHING_USED = CallUsage()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # the upstream's that the client gets


class _Resend(Exception):
    """Nobody holds the call and nothing reached an upstream: it may be sent again.
    `silent`: the worker that took it went silent (else nobody took it); `heard`: it sent a
    heartbeat before it did (it was alive, holding the call)."""

    def __init__(self, *, silent: bool, heard: bool = False) -> None:
        super().__init__()
        self.silent = silent
        self.heard = heard


class _NoResponders:
    """The resends of a call while no worker of a kind is subscribed (one restarting, a
    deploy rolling): a call nobody took is safe to send again. Gives up with 503 after
    `wait_s`. (A class, not an async generator: the hot path returns from inside the loop,
    and every generator left unfinished cost a task and a loop wake-up to finalize it.)"""

    __slots__ = ("_deadline", "_delay", "_worker")

    def __init__(self, worker: str, wait_s: float) -> None:
        self._worker = worker
        self._deadline = time.monotonic() + wait_s
        self._delay = 0.05

    async def wait(self) -> None:
        """Before the next attempt: a pause (0.05 s, doubling to 0.5 s), or 503 once the
        wait is over."""
        if time.monotonic() + self._delay > self._deadline:
            raise ServiceUnavailable(f"No {self._worker} worker is available.", retry_after="1")
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, 0.5)


def _raise_if_error(msg: Msg) -> None:
    error = error_of(msg)
    if error is not None:
        raise error


def _bus_refused(exc: NatsError) -> GatewayError:
    if isinstance(exc, MaxPayloadError):
        return PayloadTooLarge("The request is larger than the gateway's bus allows.")
    return ServiceUnavailable(f"The message bus refused the call ({type(exc).__name__}).")


async def _tell_when_gone(client_gone: ClientGone, frames: Frames) -> None:
    await client_gone()
    frames.put_nowait(None)


class PipelineClient:
    def __init__(self, nc: Client, settings: IngressSettings, emit: Emit | None = None,
                 bus: BusWatch | None = None) -> None:
        self._nc = nc
        self._settings = settings
        self._emit = emit
        self._bus = bus
        self._inboxes = Inboxes(nc)
        self._closing: set[asyncio.Task[None]] = set()

    async def _request(self, subject: str, data: bytes, worker: str, timeout: float) -> Msg:
        resends = _NoResponders(worker, self._settings.no_responders_wait_s)
        while True:
            try:
                return await self._nc.request(subject, data, timeout=timeout)
            except NoRespondersError:
                pass  # nobody took it: safe to send again once a worker is back
            except NatsTimeout:
                raise UpstreamTimeout(f"The {worker} worker did not answer in time.") from None
            except NatsError as exc:  # connection closed, reconnecting, buffer full, payload too large
                raise _bus_refused(exc) from None
            await resends.wait()

    async def usage(self, query: UsageQuery) -> UsageReport:
        msg = await self._request(ACCOUNTING_USAGE_QUERY, query.model_dump_json().encode(), "accounting",
                                  self._settings.usage_query_timeout_s)
        return UsageReport.model_validate_json(msg.data)

    async def call(self, call: Call, client_gone: ClientGone | None = None, settle: Settle | None = None) -> Reply:
        """A whole answer. `client_gone`, when given, returns once the client has left: the
        call is then cancelled at the routers and ends in `ClientClosed`. `settle` is called
        once when the call ended, however it ended."""
        settle = once(settle)
        inbox, frames = await self._inboxes.open()
        watch = asyncio.get_running_loop().create_task(_tell_when_gone(client_gone, frames)) if client_gone else None
        try:
            with self._guarded(call):
                msg, parts, _ = await self._exchange(call, inbox, frames, settle)
        except BaseException:
            if settle is not None:
                settle(None, 0)  # a no-op when the error frame settled it
            raise
        finally:
            self._inboxes.close(inbox)
            if watch is not None:
                watch.cancel()
        return Reply(status_of(msg), joined(parts, msg.data), client_headers(msg))

    async def open_stream(self, call: Call, settle: Settle | None = None) -> FrameStream:
        """Start a streamed call; returns once the first content frame is in (errors raise here).
        `settle` is called once when the stream ended, however it ended."""
        settle = once(settle)
        inbox, frames = await self._inboxes.open()
        try:
            with self._guarded(call):
                first, _, upstream = await self._exchange(call, inbox, frames, settle)
        except BaseException:
            self._inboxes.close(inbox)
            if settle is not None:
                settle(None, 0)
            raise
        settings = self._settings
        went_to = 0 if upstream is None else upstream  # a chunk came: some upstream answered
        return FrameStream(self._nc, self._inboxes, inbox, frames, first, call.envelope.call_id, went_to,
                           idle_timeout=call.envelope.route.stream_idle_timeout_s or settings.stream_idle_timeout_s,
                           heartbeat_timeout=settings.heartbeat_timeout_s,
                           lost=lambda upstream, relayed: self._lost(call, upstream, relayed), closing=self._closing,
                           settle=settle, timed_out=lambda error: self._correct(call, error))

    async def _exchange(self, call: Call, inbox: str, frames: Frames,
                        settle: Settle | None = None) -> tuple[Msg, list[bytes], int | None]:
        """Send the call (again while nobody took it) until its first content frame: a whole
        reply (with its parts), a first chunk, `end` or `error` (raised). A final frame
        settles the call: with the usage it carries, an error with nothing used."""
        worker = call.envelope.stages[0].value
        data, subject = call.encode(), call.subject()
        deadline = time.monotonic() + call.envelope.seconds_left()  # the model's timeout, decided at admission
        unheard_until: float | None = None  # sent again to workers that took it and never beat, until this
        while True:  # a silence without an upstream starts a new wait for a worker
            resends = _NoResponders(worker, self._settings.no_responders_wait_s)
            while True:
                try:
                    await self._nc.publish(subject, data, reply=inbox)
                except NatsError as exc:
                    raise _bus_refused(exc) from None
                try:
                    msg, parts, upstream = await self._answer(call, frames, deadline)
                except _Resend as resend:
                    if resend.silent:
                        unheard_until = self._unheard_until(call, unheard_until, resend.heard)
                        break
                    await resends.wait()
                    continue
                if settle is not None and frame_of(msg) != Frame.CHUNK.value:
                    settle(NOTHING_USED if frame_of(msg) == Frame.ERROR.value else usage_of(msg), 0)
                _raise_if_error(msg)
                return msg, parts, upstream

    def _unheard_until(self, call: Call, until: float | None, heard: bool) -> float:
        """A call taken and dropped without a word is sent again for `no_responders_wait_s`
        from the first such silence (a worker that beat before it went silent starts it
        afresh); past it the workers that take it are stalled (SIGSTOP, a frozen
        nats-server) and the client gets 503 in seconds, not at the call's deadline. The
        call is then cut like one the bus guard ends: cancelled at the routers, and recorded
        with the status the client saw, should a thawed bus deliver it after all."""
        now = time.monotonic()
        if until is None or heard:
            return now + self._settings.no_responders_wait_s
        if now > until:
            error = ServiceUnavailable(f"No {call.envelope.stages[0]} worker answered the call.", retry_after="1")
            self.cut(call, error)  # a thawed bus may still deliver it
            raise error
        return until

    async def _answer(self, call: Call, frames: Frames, deadline: float) -> tuple[Msg, list[bytes], int | None]:
        parts: list[bytes] = []
        upstream: int | None = None
        heard = False
        asked_again = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                publish_cancel(self._nc, call.envelope.call_id, self._closing)
                timeout = UpstreamTimeout(f"The {call.envelope.stages[0]} worker did not answer in time.")
                self._correct(call, timeout)  # the routers charge it `cancelled`; the client saw 504
                raise timeout
            try:
                msg = await next_frame(frames, min(left, self._settings.heartbeat_timeout_s))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    continue  # answered above
                if await self._link_explains(self._settings.heartbeat_timeout_s):
                    continue  # our own link, not the worker: the answer comes when it is back, or the guard cuts
                if not asked_again and self._outage_during(call):
                    # the outage may have lost the reply, and with it the beat that told of an
                    # upstream: sent again now, the call could reach an upstream twice
                    asked_again = True
                    await self._ask_again(call)
                    continue
                if upstream is None:
                    raise _Resend(silent=True, heard=heard) from None
                raise self._lost(call, upstream, []) from None
            if msg is None:
                publish_cancel(self._nc, call.envelope.call_id, self._closing)
                raise ClientClosed("The client closed the connection.")
            frame = frame_of(msg)
            if frame == Frame.HEARTBEAT.value:
                heard = True
                upstream = upstream_of(msg, upstream)
            elif frame == Frame.PART.value:
                parts.append(msg.data)
            elif no_responders(msg):
                raise _Resend(silent=False)
            else:
                return msg, parts, upstream

    def _outage_during(self, call: Call) -> bool:
        return self._bus is not None and self._bus.went_away_since(self._began(call))

    def _began(self, call: Call) -> float:
        """When the call was admitted (wall clock), from its deadline."""
        envelope = call.envelope
        return envelope.deadline - (envelope.route.timeout_s or self._settings.worker_timeout_s)

    async def _ask_again(self, call: Call) -> None:
        """Ask the routers for the call's whole reply once more (the one that kept it answers
        on the call's inbox: services/router/kept_replies.py); a heartbeat timeout to come."""
        with contextlib.suppress(NatsError):  # not sent: the silence that follows ends the call as lost
            await self._nc.publish(ROUTER_RESEND, ReplyAgain(call_id=call.envelope.call_id).model_dump_json().encode())

    async def _link_explains(self, silence_s: float) -> bool:
        return self._bus is not None and await self._bus.explains_silence(silence_s)

    def _guarded(self, call: Call) -> AbstractContextManager[None]:
        """A bus outage past its wait ends the call with 503 (`cut`), when a guard is given."""
        if self._bus is None:
            return contextlib.nullcontext()
        return self._bus.call(lambda error: self.cut(call, error))

    def cut(self, call: Call, error: GatewayError) -> None:
        """The ingress ended the call itself (the bus away past its wait): stop it at the
        routers once the bus is back, and record the status the client saw."""
        publish_cancel(self._nc, call.envelope.call_id, self._closing)
        self._correct(call, error)

    def _correct(self, call: Call, error: GatewayError) -> None:
        if self._emit is not None:
            self._emit(usage_correction(call.envelope, status="error", error_code=error.code))

    def _lost(self, call: Call, upstream: int | None, relayed: list[bytes]) -> GatewayError:
        """The worker holding a call that reached an upstream went silent: charge what is
        known (the prompt, the chunks relayed), and the client's error."""
        envelope = call.envelope
        began = self._began(call)
        if self._emit is not None and upstream is not None:
            try:
                body = orjson.loads(call.body)
            except orjson.JSONDecodeError:
                body = {}
            text, usage = relayed_text(relayed)
            targets = envelope.route.targets
            target = targets[upstream] if upstream < len(targets) else None
            self._emit(usage_event(
                envelope, source="ingress", provider=target.provider if target else None,
                deployment_model=target.model if target else None,
                usage=usage or estimated_usage(envelope.endpoint, body if isinstance(body, dict) else {}, text),
                usage_source="upstream" if usage else "estimated", status="error",
                latency_ms=max(0.0, time.time() - began) * 1000, attempts=upstream + 1))
        error: GatewayError = ServiceUnavailable("The worker handling this call stopped answering.",
                                                 code="worker_lost", retry_after="1")
        if self._outage_during(call):  # its answer may be what the outage lost
            error = BusUnavailable("The message bus went away during the call; try again shortly.", retry_after="1")
        if upstream is not None:  # a router only silent (the bus away) may still finish it: ours wins
            self._correct(call, error)
        return error
