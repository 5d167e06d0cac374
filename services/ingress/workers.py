"""Calls from the ingress to the workers over NATS request-reply."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel

from services.ingress.frames import FrameStream, frame_of, next_frame
from shared.errors import ServiceUnavailable, UpstreamTimeout, error_from_body
from shared.messages import (
    ChatRouteRequest,
    Frame,
    RouteError,
    UsageQuery,
    UsageReport,
)
from shared.subjects import (
    ACCOUNTING_USAGE_QUERY,
    STATUS_HEADER,
)

NO_RESPONDERS_WAIT_S = 5.0


@dataclass
class RawReply:
    status: int
    body: bytes


def _raise_if_error(msg: Msg) -> None:
    if frame_of(msg) == Frame.ERROR.value:
        failure = RouteError.model_validate_json(msg.data)
        raise error_from_body(failure.status, failure.body, failure.headers)


def _no_responders(msg: Msg) -> bool:
    return bool(msg.headers) and msg.headers.get("Status") == "503" and not msg.data


async def _while_no_responders(worker: str) -> AsyncIterator[int]:
    """Attempts while no worker of a kind is subscribed (one restarting, a deploy rolling):
    a call nobody took is safe to resend. Gives up with 503 after NO_RESPONDERS_WAIT_S."""
    deadline = time.monotonic() + NO_RESPONDERS_WAIT_S
    delay = 0.05
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() + delay > deadline:
            raise ServiceUnavailable(f"No {worker} worker is available.")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


class WorkerClient:
    def __init__(self, nc: Client, *, timeout: float, idle_timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._closing: set[asyncio.Task[None]] = set()

    async def _request(self, subject: str, payload: BaseModel, worker: str, timeout: float | None = None) -> Msg:
        data = payload.model_dump_json(exclude_unset=True).encode()
        async for _ in _while_no_responders(worker):
            try:
                return await self._nc.request(subject, data, timeout=timeout or self._timeout)
            except NoRespondersError:
                continue  # nobody took it: safe to send again once a worker is back
            except NatsTimeout:
                raise UpstreamTimeout(f"The {worker} worker did not answer in time.") from None
            except NatsError as exc:  # connection closed, reconnecting, buffer full, payload too large
                raise ServiceUnavailable(f"The message bus refused the call ({type(exc).__name__}).") from None
        raise AssertionError("unreachable")

    async def call(self, subject: str, request: BaseModel) -> RawReply:
        msg = await self._request(subject, request, "pipeline")
        _raise_if_error(msg)
        status = int(msg.headers.get(STATUS_HEADER, "200")) if msg.headers else 200
        return RawReply(status, msg.data)

    async def usage(self, query: UsageQuery) -> UsageReport:
        msg = await self._request(ACCOUNTING_USAGE_QUERY, query, "accounting", timeout=30.0)
        return UsageReport.model_validate_json(msg.data)

    async def open_stream(self, subject: str, request: ChatRouteRequest) -> FrameStream:
        """Start a streamed call; returns once the first frame is in (errors raise here)."""
        frames: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_frame(msg: Msg) -> None:
            frames.put_nowait(msg)

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=on_frame)
        data = request.model_dump_json(exclude_unset=True).encode()
        try:
            async for _ in _while_no_responders("pipeline"):
                await self._nc.publish(subject, data, reply=inbox)
                first = await next_frame(frames, self._timeout)
                if not _no_responders(first):
                    break
            _raise_if_error(first)
        except BaseException:
            await sub.unsubscribe()
            raise
        return FrameStream(self._nc, sub, frames, first, request.call_id or request.request_id,
                           self._idle_timeout, self._closing)
