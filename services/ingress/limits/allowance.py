"""One replica's allowance of one limit: units leased from the shared state, spent locally.

The hot path never waits for the bus: a request takes from the allowance this replica
holds (`covers`, `take`). Only when that runs short does the replica lease more (`lease`),
by compare-and-set on the shared entry: `lease_fraction` of what is left, at least what
the request needs, never more than is left. The units granted to all replicas together
never exceed the limit, so the limit holds exactly as an upper bound; leases shrink as the
limit runs out, and the last units are leased one by one. A new window or period voids
every allowance of the old one (its units were counted there). Unused units go back to
the shared entry after `idle_return_s` without use and at shutdown (`give_back`), so other
replicas can lease them. Settlement gives units back (or takes more: a debt, a negative
allowance, paid by the next lease or the next give-back).
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.ingress.limits.store import LimitStore, Shared
from services.ingress.limits.windows import FOREVER, budget_period, rate_window_open
from shared.tenancy import BudgetDuration

# how many compare-and-set conflicts a lease retries before it gives up (other replicas won)
CONFLICT_RETRIES = 32

# (now, the shared entry's start) -> the window or period now falls in: its start and end
Period = Callable[[float, float], tuple[float, float]]
# (period start) -> units already spent in it elsewhere (a budget's ledger spend), for a new entry
Seed = Callable[[float], Awaitable[int]]


def rate_period(window_s: float) -> Period:
    """Anchored windows: the entry's window while it is open, else one starting now."""
    def period(now: float, start: float) -> tuple[float, float]:
        if rate_window_open(start, window_s, now):
            return start, start + window_s
        return now, now + window_s
    return period


def calendar_period(duration: BudgetDuration | None) -> Period:
    def period(now: float, start: float) -> tuple[float, float]:
        return budget_period(duration, now)
    return period


@dataclass(frozen=True)
class Refusal:
    limit: int
    used: int  # units granted in the window (an upper bound of what was spent)
    retry_after_s: float  # until the window or period ends


class Allowance:
    __slots__ = ("end", "granted", "key", "limit", "local", "lock", "period", "period_name", "start", "used_at")

    def __init__(self, key: str, period: Period, period_name: str | None = None) -> None:
        self.key = key
        self.period = period
        self.period_name = period_name  # a budget's duration: a change of it starts a new count
        self.local = 0  # units this replica holds and has not spent (negative: a debt)
        self.start = -1.0  # the window or period `local` belongs to
        self.end = -1.0
        self.granted = 0  # the shared entry's grant as last seen
        self.limit = 0
        self.lock = asyncio.Lock()
        self.used_at = time.monotonic()

    def valid(self, now: float) -> bool:
        """Whether `local` still counts at `now` (its window may begin a moment ahead: see
        `rate_window_open`)."""
        return now < self.end

    def covers(self, need: int, now: float) -> bool:
        return self.local >= need and self.valid(now)

    def take(self, units: int) -> float:
        """Spend `units` (the caller checked `covers`); the start of the window they count in."""
        self.local -= units
        self.used_at = time.monotonic()
        return self.start

    def settle(self, units: int, start: float) -> None:
        """Give `units` back (negative: take more) if they count in the window still held."""
        if start == self.start and units:
            self.local += units

    def remaining(self) -> int:
        """What this replica can still see: the shared remainder and its own allowance."""
        return max(0, self.limit - self.granted) + max(0, self.local)

    def committed(self) -> int:
        """Units leased by all replicas less what this one still holds: an upper bound of the
        spend (other replicas' unused allowances counted as spent)."""
        return self.granted - self.local

    def _void_if_stale(self, start: float, end: float) -> None:
        if start != self.start:
            self.local = 0  # the old window's units were counted there
            self.start, self.end = start, end

    async def lease(self, store: LimitStore, need: int, limit: int, fraction: float,
                    seed: Seed | None = None) -> Refusal | None:
        """Lease until this allowance covers `need`; a Refusal when the limit cannot.
        `seed`: what a new entry (a period not counted yet) starts from. Raises
        StoreUnavailable when the shared state does not answer."""
        self.limit = limit
        seeded: dict[float, int] = {}
        async with self.lock:
            for _ in range(CONFLICT_RETRIES):
                now = time.time()
                if self.covers(need, now):  # another request leased while this one waited
                    return None
                shared = await store.read(self.key)
                start, end = self.period(now, shared.start)
                if shared.start == start:
                    granted = shared.granted
                elif seed is None:
                    granted = 0
                else:
                    if start not in seeded:
                        seeded[start] = await seed(start)
                    granted = seeded[start]
                self._void_if_stale(start, end)
                want = need - self.local
                left = limit - granted
                if want > left:
                    self.granted = granted
                    return Refusal(limit=limit, used=granted, retry_after_s=end - now if end != FOREVER else FOREVER)
                units = max(want, min(left, math.ceil(left * fraction)))
                revision = await store.write(self.key, Shared(start, granted + units, shared.revision))
                if revision is None:
                    continue  # another replica wrote first: read again
                self.granted = granted + units
                self.local += units
                return None
        return Refusal(limit=limit, used=self.granted, retry_after_s=1.0)

    async def give_back(self, store: LimitStore) -> None:
        """Return the unused allowance (or pay a debt) to the shared entry. The units are
        withdrawn first: a request admitted while the write is under way finds none here and
        leases (after this, under the lock) instead of spending units another replica may
        already have leased again. They come back if the shared entry cannot be written."""
        async with self.lock:
            if not self.local:
                return
            returning, self.local = self.local, 0
            settled = False
            try:
                settled = await self._hand_back(store, returning)
            finally:
                if not settled:
                    self.local += returning  # held again (settlements meanwhile kept)

    async def _hand_back(self, store: LimitStore, units: int) -> bool:
        """Take `units` off the shared entry's grant; True once they are settled (written, or
        counted in a window that is over), False when every compare-and-set lost."""
        for _ in range(CONFLICT_RETRIES):
            if not self.valid(time.time()):
                return True
            shared = await store.read(self.key)
            if shared.start != self.start:
                return True
            granted = max(0, shared.granted - units)
            if await store.write(self.key, Shared(shared.start, granted, shared.revision)) is not None:
                self.granted = granted
                return True
        return False
