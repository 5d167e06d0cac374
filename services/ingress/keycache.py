"""Verified keys, cached in the ingress; revocations arrive over NATS.

A key found in Postgres is kept for `ttl` seconds. When Postgres cannot be reached, a
key seen before keeps working (stale entries are served) and an unknown key gets 503,
never 401: a database hiccup must not turn every key into a 401.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import AuthenticationFailed, ServiceUnavailable
from shared.events import Principal
from shared.keys import KeyRecord, find_key, hash_key
from shared.settings import IngressSettings

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    record: KeyRecord | None  # None: no such key (cached briefly)
    expires: float


class KeyCache:
    def __init__(self, engine: AsyncEngine, settings: IngressSettings, *, master_key: str | None) -> None:
        self._engine = engine
        self._ttl = settings.key_cache_ttl_s
        self._negative_ttl = settings.key_negative_ttl_s
        self._max_entries = settings.key_cache_entries
        self._master_hash = hash_key(master_key) if master_key else None
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # LRU order
        self._inflight: dict[str, asyncio.Future[KeyRecord | None]] = {}
        # key ids revoked lately: a lookup that was in flight when the revocation arrived
        # must not put the key back for a whole TTL
        self._revoked: dict[str, float] = {}

    async def authenticate(self, raw_key: str) -> Principal:
        key_hash = hash_key(raw_key)
        if self._master_hash and hmac.compare_digest(key_hash, self._master_hash):
            return Principal(key_id="master", is_admin=True)
        record = await self._lookup(key_hash)
        if record is None or record.revoked_at is not None or self._recently_revoked(record.id):
            raise AuthenticationFailed("Incorrect API key provided.")
        return record.principal()

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        entry = self._entries.get(key_hash)
        if entry is not None and entry.expires > time.monotonic():
            self._entries.move_to_end(key_hash)
            return entry.record
        pending = self._inflight.get(key_hash)
        if pending is not None:  # one query per key, however many requests wait for it
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            record = await self._fetch(key_hash, entry)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no warning when nobody else was waiting
            raise
        else:
            future.set_result(record)
            return record
        finally:
            del self._inflight[key_hash]

    async def _fetch(self, key_hash: str, stale: _Entry | None) -> KeyRecord | None:
        try:
            record = await find_key(self._engine, key_hash)
        except Exception as exc:
            if stale is not None and stale.record is not None:
                log.warning("key store unreachable (%s); serving cached key %s", type(exc).__name__, stale.record.id)
                return stale.record
            raise ServiceUnavailable("The key store is unreachable; try again shortly.") from None
        self._entries[key_hash] = _Entry(record, time.monotonic() + (self._ttl if record else self._negative_ttl))
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max_entries:  # least recently used first
            self._entries.popitem(last=False)
        return record

    def _recently_revoked(self, key_id: str) -> bool:
        until = self._revoked.get(key_id)
        if until is None:
            return False
        if until < time.monotonic():
            del self._revoked[key_id]
            return False
        return True

    def revoke(self, key_id: str) -> None:
        now = time.monotonic()
        self._revoked = {k: t for k, t in self._revoked.items() if t > now}
        self._revoked[key_id] = now + self._ttl + self._negative_ttl
        for key_hash in [h for h, e in self._entries.items() if e.record is not None and e.record.id == key_id]:
            del self._entries[key_hash]
