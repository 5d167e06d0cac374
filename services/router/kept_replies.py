"""Whole replies kept around a bus outage, so the ingress can ask for one again.

Core NATS delivers a message to whoever is subscribed when the server routes it. A reply
the router publishes while its link is down (nats-py buffers it and sends it on reconnect),
just before it notices a dead server, or just after both are back but before the
ingress's inbox is subscribed on the new server, can be lost, though the upstream answered
and the call is charged. The ingress asks for it again (`ReplyAgain` on
`jetgate.ctl.router.resend`, broadcast) when a call that reached an upstream falls silent
after an outage; the router that kept the reply sends it once more.

In steady state only the replies of the last `window_s` are held. An outage holds those,
and every reply until `window_s` after the link is back, for `keep_s` more. At most
`max_bytes` of bodies are held, the oldest dropped first, so memory stays bounded whatever
the load or the length of the outage.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.protocol import CallUsage


@dataclass(frozen=True, slots=True)
class KeptReply:
    inbox: str
    body: bytes
    usage: CallUsage | None
    client: Mapping[str, str] | None
    sent_at: float  # monotonic


class KeptReplies:
    def __init__(self, window_s: float, keep_s: float, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._keep = keep_s
        self._max_bytes = max_bytes
        self._clock = clock
        self._replies: OrderedDict[str, KeptReply] = OrderedDict()
        self._bytes = 0
        self._down = False
        self._hold_until = 0.0  # monotonic: nothing expires by age before this

    def __len__(self) -> int:
        return len(self._replies)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def keep(self, call_id: str, inbox: str, body: bytes, usage: CallUsage | None,
             client: Mapping[str, str] | None) -> None:
        now = self._clock()
        self._drop(call_id)
        self._replies[call_id] = KeptReply(inbox, body, usage, client, now)
        self._bytes += len(body)
        self._prune(now)

    def take(self, call_id: str) -> KeptReply | None:
        """The reply kept for this call (and forget it: it is asked for once)."""
        self._prune(self._clock())
        return self._drop(call_id)

    async def disconnected(self) -> None:
        self._down = True

    async def reconnected(self) -> None:
        self._down = False
        self._hold_until = self._clock() + self._window + self._keep

    def _drop(self, call_id: str) -> KeptReply | None:
        reply = self._replies.pop(call_id, None)
        if reply is not None:
            self._bytes -= len(reply.body)
        return reply

    def _prune(self, now: float) -> None:
        aging = not self._down and now >= self._hold_until
        while self._replies:
            call_id, oldest = next(iter(self._replies.items()))
            if self._bytes <= self._max_bytes and not (aging and now - oldest.sent_at > self._window):
                return
            self._drop(call_id)
