"""One streamed call seen from the ingress: the frames on its inbox, and its clean-up.

`close()` is idempotent and always runs (from the response, whether or not the stream
ever started): it unsubscribes the inbox and, unless the last frame already came, tells
the routers to stop the upstream call and charge what was made.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.errors import UpstreamTimeout
from shared.protocol import CancelRequest, is_final
from shared.subjects import ROUTER_CANCEL


async def next_frame(frames: asyncio.Queue[Msg], timeout: float) -> Msg:
    try:
        return await asyncio.wait_for(frames.get(), timeout)
    except TimeoutError:
        raise UpstreamTimeout("The router sent nothing in time.") from None


class FrameStream:
    def __init__(self, nc: Client, sub: Subscription, frames: asyncio.Queue[Msg], first: Msg, call_id: str,
                 idle_timeout: float, closing: set[asyncio.Task[None]]) -> None:
        self._nc = nc
        self._sub = sub
        self._frames = frames
        self._first = first
        self._call_id = call_id
        self._idle_timeout = idle_timeout
        self._closing = closing
        self._finished = False
        self._closed = False
        self.started = False

    async def __aiter__(self) -> AsyncIterator[Msg]:
        self.started = True
        msg = self._first
        while True:
            yield msg
            if is_final(msg):
                self._finished = True
                return
            msg = await next_frame(self._frames, self._idle_timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # its own task: the caller may be closing under a cancellation
        task = asyncio.get_running_loop().create_task(self._release(cancel=not self._finished))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _release(self, *, cancel: bool) -> None:
        await self._sub.unsubscribe()
        if cancel:  # the client went away or we gave up: stop the upstream, charge what was made
            await self._nc.publish(ROUTER_CANCEL, CancelRequest(call_id=self._call_id).model_dump_json().encode())
