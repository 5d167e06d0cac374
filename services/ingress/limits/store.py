"""The shared state of every limit, in one NATS KV bucket, changed only by compare-and-set.

One entry per limit and level, `<metric>.<level kind>.<level id>` (`rpm.key.k1`,
`budget.org.acme`), value `<window start> <units granted>`: the start of the window or
period it counts (unix seconds) and how many units every replica together has leased in it
(requests, tokens, or budget units of 1e-10 USD). A replica writes it only with the
revision it read (`update(..., last=revision)`), so two replicas never both lease the same
units. Budget warnings take one more key each, `warn.<kind>.<id>.<period start>`, created
once: the one replica whose create wins publishes the event.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.subjects import LIMITS_BUCKET

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,128}")
T = TypeVar("T")


class StoreUnavailable(Exception):
    """The KV did not answer in time or refused (the bus is down, JetStream is away)."""


@dataclass(frozen=True)
class Shared:
    start: float  # the window or period this entry counts
    granted: int  # units leased by all replicas in it
    revision: int  # 0: the key does not exist yet

    def encode(self) -> bytes:
        return f"{self.start!r} {self.granted}".encode()


ABSENT = Shared(start=-1.0, granted=0, revision=0)


def key_token(value: str) -> str:
    """An id as one KV key token: as it is when plain, else hex (dots would split it)."""
    return value if _PLAIN.fullmatch(value) else "x" + value.encode().hex()


def _decode(data: bytes, revision: int) -> Shared:
    start, _, granted = data.decode().partition(" ")
    return Shared(start=float(start), granted=int(granted), revision=revision)


async def open_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The limits bucket, created if it does not exist (one value per key kept)."""
    config = KeyValueConfig(bucket=LIMITS_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # exists with another configuration: use it as it is
        return await js.key_value(LIMITS_BUCKET)


class LimitStore:
    def __init__(self, kv: KeyValue, timeout_s: float) -> None:
        self._kv = kv
        self._timeout = timeout_s

    async def _bounded(self, operation: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(operation, self._timeout)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            raise
        except (TimeoutError, NatsError) as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    async def read(self, key: str) -> Shared:
        try:
            entry = await self._bounded(self._kv.get(key))
        except KeyNotFoundError:
            return ABSENT
        if entry.value is None:
            return ABSENT
        try:
            return _decode(entry.value, entry.revision or 0)
        except ValueError:  # unreadable: counted as a fresh entry, written over with its revision
            return Shared(start=-1.0, granted=0, revision=entry.revision or 0)

    async def write(self, key: str, value: Shared) -> int | None:
        """Compare-and-set: the new revision, or None when someone wrote since `value.revision`."""
        try:
            return await self._bounded(self._kv.update(key, value.encode(), last=value.revision))
        except KeyWrongLastSequenceError:
            return None

    async def create_once(self, key: str) -> bool:
        """Whether this call created `key` (False: it existed)."""
        try:
            await self._bounded(self._kv.create(key, b"1"))
        except KeyWrongLastSequenceError:
            return False
        return True
