"""The frames of the ingress's calls: one inbox per call, under one subscription, and a
streamed call as the SSE relay reads it.

`Inboxes` holds one wildcard subscription for the whole process (no SUB/UNSUB per call);
each call opens an inbox under it and reads its frames from a queue. `None` on that queue
means the client went away.

A `FrameStream` hands out the content frames (`chunk`, then `end` or `error`) and reads
heartbeats itself: silence past `heartbeat_timeout_s` means the router holding the stream
is gone, and the stream ends with a 503 there and then, charged for what was relayed.
`close()` is idempotent and always runs (from the response, whether or not the stream ever
started): it closes the inbox and, unless the last frame already came, tells the routers
to stop the upstream call and charge what was made.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.control import CancelRequest
from shared.errors import GatewayError, UpstreamTimeout
from shared.protocol import CallUsage, Frame, frame_of, is_final, upstream_of, usage_of
from shared.subjects import ROUTER_CANCEL
from shared.tokens import estimate_text_tokens
from shared.usage import relayed_text

Frames = asyncio.Queue[Msg | None]  # None: the client went away


class Inboxes:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._queues: dict[str, Frames] = {}
        self._numbers = itertools.count()
        self._sub: Subscription | None = None
        self._subscribing = asyncio.Lock()

    async def open(self) -> tuple[str, Frames]:
        if self._sub is None:
            async with self._subscribing:  # calls arriving together subscribe once
                if self._sub is None:
                    # no pending limits: a large reply's parts must never be dropped as a slow consumer
                    self._sub = await self._nc.subscribe(self._prefix + ".*", cb=self._on_frame,
                                                         pending_msgs_limit=0, pending_bytes_limit=0)
        inbox = f"{self._prefix}.{next(self._numbers)}"
        frames: Frames = asyncio.Queue()
        self._queues[inbox] = frames
        return inbox, frames

    def close(self, inbox: str) -> None:
        self._queues.pop(inbox, None)

    async def _on_frame(self, msg: Msg) -> None:
        frames = self._queues.get(msg.subject)
        if frames is not None:
            frames.put_nowait(msg)

    def __len__(self) -> int:
        return len(self._queues)


async def next_frame(frames: Frames, timeout: float) -> Msg | None:
    """The next frame; raises TimeoutError after `timeout` of silence. A frame already
    queued is taken at once; else `asyncio.timeout`, not `wait_for`: no task per wait, and
    Python 3.11's `wait_for` can drop a cancel that lands as the frame comes."""
    if not frames.empty():
        return frames.get_nowait()
    async with asyncio.timeout(timeout):
        return await frames.get()


def publish_cancel(nc: Client, call_id: str, closing: set[asyncio.Task[None]]) -> None:
    """Tell every router to stop this call (its own task: the caller may be under a cancellation)."""
    async def send() -> None:
        await nc.publish(ROUTER_CANCEL, CancelRequest(call_id=call_id).model_dump_json().encode())

    task = asyncio.get_running_loop().create_task(send())
    closing.add(task)
    task.add_done_callback(closing.discard)


# the router is gone: charges the call (the target it went to, the chunks relayed), gives the client's error
Lost = Callable[[int | None, list[bytes]], GatewayError]
# the stream ended: its usage as the `end` frame said (None: not known), completion tokens relayed
Settle = Callable[[CallUsage | None, int], None]


def once(settle: Settle | None) -> Settle | None:
    """`settle`, called at most once: the first way a call ends is how it settles."""
    if settle is None:
        return None
    done = False

    def first(usage: CallUsage | None, relayed: int) -> None:
        nonlocal done
        if not done:
            done = True
            settle(usage, relayed)
    return first


class FrameStream:
    def __init__(self, nc: Client, inboxes: Inboxes, inbox: str, frames: Frames, first: Msg, call_id: str,
                 upstream: int | None, *,
                 idle_timeout: float, heartbeat_timeout: float, lost: Lost, closing: set[asyncio.Task[None]],
                 settle: Settle | None = None, timed_out: Callable[[GatewayError], None] | None = None) -> None:
        self._nc = nc
        self._inboxes = inboxes
        self._inbox = inbox
        self._frames = frames
        self._first = first
        self._call_id = call_id
        self._idle_timeout = idle_timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._lost = lost
        self._timed_out = timed_out  # records the status the client saw (shared/usage.py usage_correction)
        self._closing = closing
        self._settle = once(settle)
        self._relayed: list[bytes] = []  # chunk data, read again only if the router is lost
        self._upstream = upstream  # the route target the call went to
        self._finished = False
        self._closed = False
        self.started = False

    @property
    def first(self) -> Msg:
        """The stream's first content frame (a pass-through answer's head rides on it)."""
        return self._first

    async def __aiter__(self) -> AsyncIterator[Msg]:
        self.started = True
        msg = self._first
        while True:
            if frame_of(msg) == Frame.CHUNK.value:
                self._relayed.append(msg.data)
            if is_final(msg):
                self._finished = True
                if self._settle is not None and frame_of(msg) == Frame.END.value:
                    usage = usage_of(msg)
                    self._settle(usage, 0 if usage is not None else self._relayed_tokens())
            yield msg
            if self._finished:
                return
            msg = await self._next_content()

    async def _next_content(self) -> Msg:
        """The next chunk, `end` or `error`; heartbeats only prove the router is alive."""
        idle_until = time.monotonic() + self._idle_timeout
        while True:
            left = idle_until - time.monotonic()
            if left <= 0:
                raise self._idle()
            try:
                msg = await next_frame(self._frames, min(left, self._heartbeat_timeout))
            except TimeoutError:
                if time.monotonic() >= idle_until:
                    raise self._idle() from None
                raise self._lost(self._upstream, self._relayed) from None
            if msg is None:
                continue
            if frame_of(msg) != Frame.HEARTBEAT.value:
                return msg
            self._upstream = upstream_of(msg, self._upstream)

    def _idle(self) -> GatewayError:
        """The stream went silent past its idle timeout: the client's 504, and its record."""
        error = UpstreamTimeout("The router sent nothing in time.")
        if self._timed_out is not None:
            self._timed_out(error)
        return error

    def _relayed_tokens(self) -> int:
        return estimate_text_tokens(relayed_text(self._relayed)[0]) if self._relayed else 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._settle is not None:  # a no-op when the end frame settled it
            self._settle(None, self._relayed_tokens())
        self._inboxes.close(self._inbox)
        if not self._finished:  # the client went away or we gave up: stop the upstream, charge what was made
            publish_cancel(self._nc, self._call_id, self._closing)
