"""Verified keys, cached in the ingress; revocations arrive over NATS.

A key found in Postgres is kept for `key_cache_ttl_s`. Every lookup is bounded by
`key_store_timeout_s` (shared/db/outage.py). When Postgres is unreachable or stalled, a key
seen before keeps working for up to `key_stale_s` past its TTL (stale-while-error;
revocations still arrive over NATS and evict it), and an unknown key gets 503
`key_store_unavailable`, never 401: a database hiccup must not turn every key into a 401.
After a failure the store is left alone for `key_store_retry_s`, so requests in an outage
are answered at once instead of each waiting for the timeout; then one lookup tries again.

What is cached is the key resolved through its user, team and org (shared/tenants/resolve.py):
the principal with its levels and the models every level allows. A change at any level
arrives over NATS (`invalidate`) and evicts every key beneath it; a lookup in flight while a
change arrives is used once, not cached. Expiry, rotation and the IP allowlist are checked on
every request against the cached record, so they hold while Postgres is away too.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.outage import bounded
from shared.errors import AuthenticationFailed, KeyStoreUnavailable, PermissionDenied
from shared.events import Principal
from shared.keys import KEY_PREFIX, hash_key
from shared.settings import IngressSettings
from shared.tenancy import LevelKind, Role
from shared.tenants.resolve import ResolvedKey, resolve_key

log = logging.getLogger(__name__)

# what a key the gateway made looks like (`jg-` and URL-safe base64): anything else is
# refused without asking the store
WELL_FORMED = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{8,200}")

REFUSALS = {  # why a secret is refused -> (message, code); all 401
    "revoked": ("This API key has been revoked.", "invalid_api_key"),
    "expired": ("This API key has expired.", "expired_api_key"),
    "rotated": ("This API key has been rotated; use its new secret.", "invalid_api_key"),
}


@dataclass
class _Entry:
    record: ResolvedKey | None  # None: no such key (cached briefly)
    expires: float


class KeyCache:
    def __init__(self, engine: AsyncEngine, settings: IngressSettings, *, master_key: str | None) -> None:
        self._engine = engine
        self._timeout = settings.key_store_timeout_s
        self._ttl = settings.key_cache_ttl_s
        self._negative_ttl = settings.key_negative_ttl_s
        self._stale = settings.key_stale_s
        self._retry = settings.key_store_retry_s
        self._store_down_until = 0.0  # monotonic time before which the store is not asked again
        self._max_entries = settings.key_cache_entries
        self._master_hash = hash_key(master_key) if master_key else None
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # LRU order
        self._inflight: dict[str, asyncio.Future[ResolvedKey | None]] = {}
        # key ids revoked lately: a lookup that was in flight when the revocation arrived
        # must not put the key back for a whole TTL
        self._revoked: dict[str, float] = {}
        self._generation = 0  # counts invalidations: a lookup that saw one is not cached

    async def authenticate(self, raw_key: str, address: str | None = None) -> Principal:
        """The principal of a presented key, checked against the caller's `address`."""
        key_hash = hash_key(raw_key)
        if self._master_hash and hmac.compare_digest(key_hash, self._master_hash):
            return Principal(key_id="master", is_admin=True, role=Role.GLOBAL)  # every org, every scope
        if not WELL_FORMED.fullmatch(raw_key):
            raise AuthenticationFailed("Incorrect API key provided: it is not a JetGate key (`jg-...`).")
        resolved = await self._lookup(key_hash)
        if resolved is None or self._recently_revoked(resolved.key_id):
            raise AuthenticationFailed("Incorrect API key provided.")
        why = resolved.refusal(key_hash, datetime.now(UTC))
        if why is not None:
            message, code = REFUSALS.get(why, (f"This API key is no longer valid: its {why}.", "invalid_api_key"))
            raise AuthenticationFailed(message, code=code)
        if not resolved.admits(address):
            raise PermissionDenied("This API key may not be used from this address.", code="ip_not_allowed")
        return resolved.principal

    async def _lookup(self, key_hash: str) -> ResolvedKey | None:
        entry = self._entries.get(key_hash)
        if entry is not None and entry.expires > time.monotonic():
            self._entries.move_to_end(key_hash)
            return entry.record
        pending = self._inflight.get(key_hash)
        if pending is not None:  # one query per key, however many requests wait for it
            return await asyncio.shield(pending)
        future: asyncio.Future[ResolvedKey | None] = asyncio.get_running_loop().create_future()
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

    async def _fetch(self, key_hash: str, stale: _Entry | None) -> ResolvedKey | None:
        now = time.monotonic()
        if now < self._store_down_until:
            return self._stale_or_fail(stale, now, "the key store failed moments ago")
        generation = self._generation
        try:
            record = await bounded(resolve_key(self._engine, key_hash), self._timeout)
        except KeyStoreUnavailable as exc:
            if not self.store_down:
                log.warning("key store unreachable (%s); cached keys are served for up to %.0fs past their TTL",
                            type(exc.__cause__).__name__, self._stale)
            self._store_down_until = time.monotonic() + self._retry
            return self._stale_or_fail(stale, time.monotonic(), type(exc.__cause__).__name__)
        if generation != self._generation:  # something changed while we asked: use it once, keep nothing
            return record
        self._entries[key_hash] = _Entry(record, time.monotonic() + (self._ttl if record else self._negative_ttl))
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max_entries:  # least recently used first
            self._entries.popitem(last=False)
        return record

    def _stale_or_fail(self, stale: _Entry | None, now: float, why: str) -> ResolvedKey:
        """A key seen before, within `key_stale_s` of its expiry; else 503 (never 401)."""
        if stale is not None and stale.record is not None and now - stale.expires <= self._stale:
            log.debug("key store unreachable (%s); serving cached key %s", why, stale.record.key_id)
            return stale.record
        raise KeyStoreUnavailable("The key store is unreachable; try again shortly.")

    @property
    def store_down(self) -> bool:
        """The last lookup found the store unreachable (and the retry pause has not passed)."""
        return time.monotonic() < self._store_down_until

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
        self.invalidate(LevelKind.KEY, key_id)

    def invalidate(self, kind: LevelKind, object_id: str) -> None:
        """An org, team, user or key changed (limits, models, role, deletion): every cached
        key beneath it is asked for again, and lookups under way are not cached."""
        self._generation += 1
        for key_hash in [h for h, e in self._entries.items()
                         if e.record is not None and e.record.has_level(kind, object_id)]:
            del self._entries[key_hash]
