"""A durable JetStream pull consumer, read with pull requests on a core subscription.

nats-py's `fetch` spends a task and a timeout per message. Here one subscription on an
inbox of our own takes every delivery in a callback, and pull requests
(`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>` with `{"batch": n, "expires": ns}`) are
published with a reply subject each (`<inbox>.<n>`), so each request's end is known and
what it may still bring is counted (deliveries carry their stream subject, so they are
counted against the oldest request: the server serves a client's requests in order):

- a request ends when `batch` messages came for it, or with a status message: 408 (it
  expired), 409 (leadership change, too many waiting requests, consumer deleted, ...), 404
  (nothing stored), 503 (no responders: no such consumer);
- a request the server never ended (lost in a reconnect) is forgotten `expires` past its
  expiry; 100 (idle heartbeat) is only a sign of life;
- a message that comes for a request already forgotten is still kept: every delivery is
  settled by the consumer, none is dropped here.

At most `window` messages are asked for and not yet taken, so what is delivered and not
yet settled stays bounded. Any number of processes pull from the same durable: the server
spreads the stored messages over all their requests, each message to one of them.

A durable that has gone (409 "Consumer Deleted", or no responders) is created again,
from just after the ack floor last read from the server when one was read (everything at
or below it is acked), else from the start of the stream: writes are idempotent on the
event id, so what is delivered again is not counted twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

ENDS_REQUEST = {"404", "408", "409"}
GONE = {"Consumer Deleted"}


@dataclass
class _Request:
    left: int            # messages the server may still send for it
    forget_at: float     # monotonic: past this with no end seen, it is taken as lost


class DurablePull:
    def __init__(self, js: JetStreamContext, stream: str, config: ConsumerConfig, *,
                 batch: int, window: int, expires_s: float) -> None:
        assert config.durable_name, "a durable consumer"
        self._js = js
        self._nc = js._nc
        self._stream = stream
        self._config = config
        self._durable: str = config.durable_name
        self._next_subject = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{self._durable}"
        self._batch = batch
        self._window = window
        self._expires_s = expires_s
        self._inbox = ""
        self._sub: Subscription | None = None
        self._requests: dict[str, _Request] = {}
        self._count = 0
        self._buffer: list[Msg] = []
        self._received = 0           # deliveries so far (a fill loop sees whether more came)
        self._wake_at = 0            # buffered count the waiter wants
        self._waiter: asyncio.Future[None] | None = None
        self._asking = True
        self._settling = False       # stopping: woken when the last request ends
        self._gone = False
        self._ack_floor: int | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def received(self) -> int:
        return self._received

    @property
    def outstanding(self) -> int:
        """Pull requests not yet ended."""
        return len(self._requests)

    async def open(self) -> None:
        await self._ensure_consumer()
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_msg)

    async def _ensure_consumer(self) -> None:
        try:
            info = await self._js.consumer_info(self._stream, self._durable)
        except NotFoundError:
            info = None
        if info is not None:
            await self._apply_settings(info)
            return
        config = self._config
        if self._ack_floor is not None:  # everything at or below the floor is acked: start after it
            config = replace(config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._ack_floor + 1)
        try:
            await self._js.add_consumer(self._stream, config)
        except BadRequestError:  # another replica may have created it meanwhile
            await self._js.consumer_info(self._stream, self._durable)
        log.info("%s: durable consumer created on %s", self._durable, self._stream)

    async def _apply_settings(self, info: ConsumerInfo) -> None:
        """A durable made by an earlier start keeps its config: the settings that can change
        (`ack_wait_s`, the pending bound) are applied to it, the rest left as they are."""
        now, wanted = info.config, self._config
        same_wait = abs((now.ack_wait or 0) - (wanted.ack_wait or 0)) < 1e-3  # nats-py truncates it to whole ns
        if same_wait and now.max_ack_pending == wanted.max_ack_pending:
            return
        try:
            await self._js.add_consumer(self._stream, replace(now, ack_wait=wanted.ack_wait,
                                                              max_ack_pending=wanted.max_ack_pending))
        except BadRequestError as exc:  # a server that cannot edit it: the old values stay
            log.warning("%s: durable consumer settings not updated: %s", self._durable, exc)
            return
        log.info("%s: durable consumer updated (ack_wait %.1f s, max_ack_pending %s)", self._durable,
                 wanted.ack_wait or 0, wanted.max_ack_pending)

    async def consumer_info(self) -> ConsumerInfo:
        info: ConsumerInfo = await self._js.consumer_info(self._stream, self._durable)
        if info.ack_floor is not None and info.ack_floor.stream_seq is not None:
            self._ack_floor = int(info.ack_floor.stream_seq)
        return info

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:  # a delivery ($JS.ACK... reply); status messages have none
            self._buffer.append(msg)
            self._received += 1
            # A delivery carries its stream subject, not the request's: the server serves our
            # requests in the order they were sent, so it is the oldest one's.
            if self._requests:
                name = next(iter(self._requests))
                oldest = self._requests[name]
                oldest.left -= 1
                if oldest.left <= 0:
                    del self._requests[name]
            self._wake_if_due()
            return
        status = (msg.headers or {}).get("Status", "")
        if status == "100":  # idle heartbeat: the request is alive
            return
        description = (msg.headers or {}).get("Description", "")
        self._requests.pop(msg.subject[len(self._inbox) + 1:], None)  # a status comes to the request's own inbox
        if status == "503" or (status == "409" and description in GONE):
            log.warning("%s: the durable consumer is gone (%s %s); it is created again", self._durable,
                        status, description)
            self._gone = True
        elif status not in ENDS_REQUEST:
            log.warning("%s: pull request ended: %s %s", self._durable, status, description)
        elif status == "409":
            log.info("%s: pull request ended: %s %s", self._durable, status, description)
        self._wake_if_due()

    def _wake_if_due(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (
                len(self._buffer) >= self._wake_at or (self._settling and not self._requests)):
            waiter.set_result(None)

    async def top_up(self) -> None:
        """Ask for more while less than `window` is asked for and buffered; recreate a gone durable."""
        if self._gone:
            self._gone = False
            self._requests.clear()
            await self._ensure_consumer()
        now = time.monotonic()
        for name, request in list(self._requests.items()):
            if request.forget_at < now:
                del self._requests[name]
        if not self._asking:
            return
        room = self._window - len(self._buffer) - sum(r.left for r in self._requests.values())
        while room >= self._batch or (room > 0 and not self._requests):
            count = min(room, self._batch)
            self._count += 1
            name = str(self._count)
            self._requests[name] = _Request(count, now + 2 * self._expires_s + 0.5)
            body = json.dumps({"batch": count, "expires": int(self._expires_s * 1e9)}).encode()
            await self._nc.publish(self._next_subject, body, reply=f"{self._inbox}.{name}")
            room -= count

    async def wait_for(self, count: int, timeout: float) -> None:
        """Until `count` messages are buffered, every request has ended, or `timeout`."""
        if len(self._buffer) >= count or timeout <= 0:
            return
        self._wake_at = count
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._waiter, timeout)
        finally:
            self._waiter = None

    def take(self, count: int) -> list[Msg]:
        msgs, self._buffer = self._buffer[:count], self._buffer[count:]
        return msgs

    def stop_asking(self) -> None:
        self._asking = False

    async def settle_requests(self) -> None:
        """Wait until no request of ours can bring more messages (each ends within its expiry)."""
        while self._requests:
            await self.top_up()  # forgets requests lost past their expiry
            if not self._requests:
                return
            self._settling = True
            try:
                await self.wait_for(1 << 62, self._expires_s)
            finally:
                self._settling = False

    async def flush(self, timeout_s: int = 5) -> None:
        """Until the server has every ack sent so far (it applies them a moment later)."""
        try:
            await self._nc.flush(timeout=timeout_s)
        except Exception as exc:  # disconnected: what is unacked comes back after ack_wait
            log.warning("%s: flush of acks failed: %s", self._durable, type(exc).__name__)

    async def close(self) -> None:
        """Unsubscribe. Anything the server sends after this comes back after ack_wait."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("%s: unsubscribe: %s", self._durable, type(exc).__name__)
