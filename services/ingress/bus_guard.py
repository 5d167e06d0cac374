"""The ingress while its NATS connection is down: 503 at once, never a hang.

A request that arrives while the connection is down is refused before anything is
recorded (`require`, called by admission). A call already under way when the connection
drops keeps waiting for `bus_outage_wait_s`: nats-py resends what it buffered and the
subscriptions once it is back, so a nats-server restarted by the supervisor still delivers
the answer (and the usage the router records matches what the client saw). If the bus is
still away then, those calls end with 503 `bus_unavailable` instead of sitting out the
worker timeout; `cut` is told first, so the call's records can say what the client saw (a
router may still finish it once the bus is back: shared/usage.py, `usage.corrected`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from nats.aio.client import Client
from nats.errors import Error as NatsError

from shared.errors import BusUnavailable, GatewayError
from shared.subjects import BUS_PROBE

log = logging.getLogger(__name__)


class BusWatch:
    def __init__(self, outage_wait_s: float, probe_timeout_s: float) -> None:
        self._wait = outage_wait_s
        self._probe_s = probe_timeout_s
        self._nc: Client | None = None
        self._calls: set[asyncio.Task[object]] = set()
        self._cut: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._up_since = 0.0  # monotonic: when the link last came back
        self._down_at = 0.0  # wall clock: when it last went away

    def watch(self, nc: Client) -> None:
        self._nc = nc

    @property
    def up(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def require(self) -> None:
        """Refuse a new request at once while the bus is away."""
        if not self.up:
            raise BusUnavailable("The message bus is unreachable; try again shortly.", retry_after="1")

    async def disconnected(self) -> None:
        self._down_at = time.time()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._cut_calls)

    async def explains_silence(self, seconds: float) -> bool:
        """Whether our own link explains a worker's silence of `seconds`: it is down, or came
        back less than that ago (the workers' links come back on their own schedule, their
        heartbeats with them), so the silence says nothing of the worker.

        A link that looks up is asked first (`bus_probe_timeout_s`): a server that just died
        takes the workers' heartbeats with it a moment before this connection reads its end,
        and that silence is the bus's too; by the time the probe is answered or refused, the
        end has been read. A server that is stalled, its connections open (SIGSTOP, a dead
        link), answers nothing and ends nothing: the silence stays the worker's, so the call
        ends in seconds as a lost worker's does, not at its deadline."""
        if self._link_explains(seconds):
            return True
        await self._probe()
        return self._link_explains(seconds)

    async def _probe(self) -> None:
        """A request nobody listens to: "no responders" comes from nats-server itself. (Not
        `flush(timeout=)`: nats-py leaves a timed-out PING's future queued, and the next PONG
        then stops its read loop.)"""
        assert self._nc is not None
        with contextlib.suppress(NatsError, TimeoutError):  # no responders (alive), or no answer
            await self._nc.request(BUS_PROBE, b"", timeout=self._probe_s)

    def went_away_since(self, wall_time: float) -> bool:
        """Whether the link dropped after `wall_time`: a call under way then may have lost
        frames in the outage (a reply sent before the ingress's subscriptions were back)."""
        return self._down_at >= wall_time

    def _link_explains(self, seconds: float) -> bool:
        return not self.up or time.monotonic() - self._up_since < seconds

    async def reconnected(self) -> None:
        self._up_since = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut_calls(self) -> None:
        self._timer = None
        if self.up:
            return
        if self._calls:
            log.warning("NATS away for %.1fs: ending %d calls under way with 503", self._wait, len(self._calls))
        for task in self._calls:
            self._cut.add(task)
            task.cancel()

    @contextmanager
    def call(self, cut: Callable[[GatewayError], None] | None = None) -> Iterator[None]:
        """Around a call into the pipeline: a bus outage past the wait ends it with 503,
        after `cut` (when given) was told of that error."""
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task not in self._cut:
                raise
            task.uncancel()
            error = BusUnavailable("The message bus went away during the call; try again shortly.",
                                   retry_after="1")
            if cut is not None:
                cut(error)
            raise error from None
        finally:
            self._calls.discard(task)
            self._cut.discard(task)
