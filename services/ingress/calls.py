"""Calls from the ingress into the pipeline and to accounting, over NATS request-reply.

A call goes to the subject of its first stage with a fresh inbox as reply subject; the
answer (a `reply` frame, an `error` frame, or a stream of frames) comes back on it from
whichever stage ends the call (shared/protocol.py).
"""
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

from services.ingress.frames import FrameStream, next_frame
from shared.errors import ServiceUnavailable, UpstreamTimeout
from shared.protocol import Call, UsageQuery, UsageReport, error_of, no_responders, status_of
from shared.settings import IngressSettings
from shared.subjects import ACCOUNTING_USAGE_QUERY


@dataclass
class Reply:
    status: int
    body: bytes


async def _while_no_responders(worker: str, wait_s: float) -> AsyncIterator[int]:
    """Attempts while no worker of a kind is subscribed (one restarting, a deploy rolling):
    a call nobody took is safe to resend. Gives up with 503 after `wait_s`."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() + delay > deadline:
            raise ServiceUnavailable(f"No {worker} worker is available.", retry_after="1")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _raise_if_error(msg: Msg) -> None:
    error = error_of(msg)
    if error is not None:
        raise error


class PipelineClient:
    def __init__(self, nc: Client, settings: IngressSettings) -> None:
        self._nc = nc
        self._settings = settings
        self._closing: set[asyncio.Task[None]] = set()

    async def _request(self, subject: str, data: bytes, worker: str, timeout: float) -> Msg:
        async for _ in _while_no_responders(worker, self._settings.no_responders_wait_s):
            try:
                return await self._nc.request(subject, data, timeout=timeout)
            except NoRespondersError:
                continue  # nobody took it: safe to send again once a worker is back
            except NatsTimeout:
                raise UpstreamTimeout(f"The {worker} worker did not answer in time.") from None
            except NatsError as exc:  # connection closed, reconnecting, buffer full, payload too large
                raise ServiceUnavailable(f"The message bus refused the call ({type(exc).__name__}).") from None
        raise AssertionError("unreachable")

    async def call(self, call: Call) -> Reply:
        msg = await self._request(call.subject(), call.encode(), call.envelope.stages[0].value,
                                  self._settings.worker_timeout_s)
        _raise_if_error(msg)
        return Reply(status_of(msg), msg.data)

    async def usage(self, query: UsageQuery) -> UsageReport:
        msg = await self._request(ACCOUNTING_USAGE_QUERY, query.model_dump_json().encode(), "accounting",
                                  self._settings.usage_query_timeout_s)
        return UsageReport.model_validate_json(msg.data)

    async def open_stream(self, call: Call) -> FrameStream:
        """Start a streamed call; returns once the first frame is in (errors raise here)."""
        frames: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_frame(msg: Msg) -> None:
            frames.put_nowait(msg)

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=on_frame)
        data = call.encode()
        subject = call.subject()
        try:
            async for _ in _while_no_responders(call.envelope.stages[0].value, self._settings.no_responders_wait_s):
                await self._nc.publish(subject, data, reply=inbox)
                first = await next_frame(frames, self._settings.worker_timeout_s)
                if not no_responders(first):
                    break
            _raise_if_error(first)
        except NatsError as exc:
            await sub.unsubscribe()
            raise ServiceUnavailable(f"The message bus refused the call ({type(exc).__name__}).") from None
        except BaseException:
            await sub.unsubscribe()
            raise
        return FrameStream(self._nc, sub, frames, first, call.envelope.call_id,
                           self._settings.stream_idle_timeout_s, self._closing)
