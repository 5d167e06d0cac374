"""How a pipeline stage serves its calls: one subscription per endpoint it is on (in its
stage's queue group, so replicas share the load), every call decoded the same way, counted,
and answered whatever happens.

A stage's handler gets the decoded `Call` and answers it: it forwards it to the next stage
(`shared.protocol.forward`) or replies to the caller's inbox. A `GatewayError` it raises
becomes the caller's error frame; any other failure becomes a 500 error frame and a log
line. A message that is not a call (a readiness probe sends `{}`) is answered with an
error frame too, so a caller never waits for a timeout.

While a stage holds a call, the call carries a `Lease` (shared/protocol.py): one ticker
per stage process sends every held call a heartbeat frame each `heartbeat_s`, so the
caller notices within seconds when the process holding its call dies.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.errors import GatewayError
from shared.metrics import STAGE_CALLS, STAGE_IN_FLIGHT
from shared.pipeline import Endpoint, Stage, queue_group, served_by, stage_subject
from shared.protocol import Call, Lease, send_error

log = logging.getLogger(__name__)

Handler = Callable[[Msg, Call], Awaitable[None]]


class StageServer:
    def __init__(self, nc: Client, stage: Stage, handlers: Mapping[Endpoint, Handler], *, concurrent: bool,
                 heartbeat_s: float = 0.5) -> None:
        """`concurrent`: each call runs in its own task (calls that wait on I/O); otherwise
        calls run one after another on the subscription (short CPU-only checks)."""
        missing = set(served_by(stage)) - set(handlers)
        if missing:
            raise ValueError(f"stage {stage} has no handler for {sorted(missing)}")
        self._nc = nc
        self._stage = stage
        self._handlers = handlers
        self._concurrent = concurrent
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = STAGE_IN_FLIGHT.labels(stage.value)
        self._heartbeat_s = heartbeat_s
        self._leases: set[Lease] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()

    async def start(self) -> None:
        for endpoint in served_by(self._stage):
            callback = self._callback(endpoint, self._handlers[endpoint])
            self._subs.append(await self._nc.subscribe(stage_subject(self._stage, endpoint),
                                                       queue=queue_group(self._stage), cb=callback))
        await self._nc.flush()  # the server knows the subscriptions before anyone is told we serve
        self._ticker = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self, timeout: float) -> None:
        """No new calls reach this replica; calls under way get `timeout` to finish."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.drain()  # type: ignore[no-untyped-call]
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        if self._ticker is not None:
            self._ticker.cancel()

    @property
    def held(self) -> int:
        """Calls this replica holds now."""
        return len(self._leases)

    async def _beat(self) -> None:
        """Every held call hears from its stage at least every `heartbeat_s` (a call answered
        within that never gets a heartbeat from here)."""
        every = self._heartbeat_s
        while True:
            await asyncio.sleep(every / 2)
            due = time.monotonic() - every
            for lease in [lease for lease in self._leases if lease.last <= due]:
                try:
                    await lease.beat()
                except Exception as exc:  # the bus is away: callers notice the silence
                    log.warning("%s: heartbeat not sent: %s", self._stage, type(exc).__name__)
                    break

    def _callback(self, endpoint: Endpoint, handler: Handler) -> Callable[[Msg], Awaitable[None]]:
        async def serve(msg: Msg, lease: Lease) -> None:
            self._in_flight.inc()
            try:
                await self._answer(endpoint, handler, msg, lease)
            finally:
                self._in_flight.dec()
                self._leases.discard(lease)

        def take(msg: Msg) -> Lease | None:
            if not msg.reply:
                return None
            lease = Lease(self._nc, msg.reply)
            self._leases.add(lease)  # held from the moment it is taken
            return lease

        async def in_turn(msg: Msg, lease: Lease) -> None:
            async with self._turn:  # FIFO: calls run one after another, in arrival order
                await serve(msg, lease)

        async def spawn(msg: Msg) -> None:
            # taken (and heartbeating) on arrival, also while it waits for its turn: a call
            # queued behind others is held, not silent
            lease = take(msg)
            if lease is None:
                return
            task = asyncio.get_running_loop().create_task(
                serve(msg, lease) if self._concurrent else in_turn(msg, lease))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return spawn

    async def _answer(self, endpoint: Endpoint, handler: Handler, msg: Msg, lease: Lease) -> None:
        outcome = "ok"
        try:
            call = Call.decode(msg.data)
            call.lease = lease
            await handler(msg, call)
        except GatewayError as error:
            outcome = error.code or "error"
            await self._reply_error(msg, error)
        except Exception as exc:
            outcome = "internal_error"
            log.exception("%s: a call failed: %s", self._stage, type(exc).__name__)
            await self._reply_error(msg, GatewayError(f"The {self._stage} stage failed while handling this call.",
                                                      code=f"{self._stage}_error"))
        STAGE_CALLS.labels(self._stage.value, endpoint.value, outcome).inc()

    async def _reply_error(self, msg: Msg, error: GatewayError) -> None:
        assert msg.reply
        try:
            await send_error(self._nc, msg.reply, error)
        except Exception as exc:  # the bus is gone: the caller's own timeout answers it
            log.warning("%s: could not send an error frame: %s", self._stage, type(exc).__name__)
