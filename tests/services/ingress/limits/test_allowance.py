"""Leases by compare-and-set: many takers on several replicas never get more than the limit."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from nats.aio.client import Client

from services.ingress.limits.allowance import Allowance, Refusal, calendar_period, rate_period
from services.ingress.limits.store import LimitStore
from tests.services.ingress.limits.conftest import store_of


async def _taker(allowance: Allowance, store: LimitStore, limit: int, need: int, taken: list[int]) -> None:
    """Takes `need` units as admission does: from the allowance, leasing when short."""
    while True:
        if allowance.covers(need, time.time()):
            allowance.take(need)
            taken.append(need)
            return
        refusal = await allowance.lease(store, need, limit, 0.1)
        # a refusal for what is left is final; one for losing every compare-and-set race
        # (the limit had room) is asked again, as admission's rounds do
        if isinstance(refusal, Refusal) and refusal.used + need - allowance.local > refusal.limit:
            return


async def test_many_takers_on_four_replicas_never_exceed_the_limit(replicas: list[Client], bucket: str) -> None:
    stores = [await store_of(client, bucket) for client in replicas]
    # two allowances per replica, as two ingress processes on one connection would hold
    allowances = [(Allowance("rpm.key.k", rate_period(60.0)), store) for store in stores for _ in range(2)]
    taken: list[int] = []
    await asyncio.gather(*(_taker(a, s, 100, 1, taken) for a, s in allowances for _ in range(60)))
    assert sum(taken) == 100  # every unit was used: all 480 takers kept asking
    shared = await stores[0].read("rpm.key.k")
    assert shared.granted == 100
    assert sum(a.local for a, _ in allowances) == 0


async def test_uneven_needs_and_a_shrinking_lease(replicas: list[Client], bucket: str) -> None:
    stores = [await store_of(client, bucket) for client in replicas]
    allowances = [Allowance("tpm.org.o", rate_period(60.0)) for _ in stores]
    taken: list[int] = []
    await asyncio.gather(*(_taker(a, s, 1000, need, taken)
                           for a, s in zip(allowances, stores, strict=True) for need in (7, 13, 29) * 20))
    shared = await stores[0].read("tpm.org.o")
    assert shared.granted <= 1000 and sum(taken) <= 1000
    # what is granted and not held unused was taken
    assert shared.granted - sum(a.local for a in allowances) == sum(taken)
    # what is left unused: less than the largest need at each replica and in the shared entry
    assert sum(taken) > 1000 - 5 * 29


async def test_unused_allowance_goes_back_and_another_replica_leases_it(replicas: list[Client],
                                                                      bucket: str) -> None:
    first, second = await store_of(replicas[0], bucket), await store_of(replicas[1], bucket)
    a, b = Allowance("budget.key.k", calendar_period("1d")), Allowance("budget.key.k", calendar_period("1d"))
    assert await a.lease(first, 10, 100, 0.5) is None
    assert a.local == 50  # half of what was left
    a.take(10)
    refusal = await b.lease(second, 60, 100, 0.5)
    assert isinstance(refusal, Refusal) and refusal.used == 50
    await a.give_back(first)
    assert a.local == 0 and (await first.read("budget.key.k")).granted == 10
    assert await b.lease(second, 60, 100, 0.5) is None


async def test_a_new_window_voids_the_old_allowance(replicas: list[Client], bucket: str) -> None:
    store = await store_of(replicas[0], bucket)
    allowance = Allowance("rpm.team.t", rate_period(0.3))
    assert await allowance.lease(store, 1, 3, 1.0) is None
    allowance.take(3)
    refusal = await allowance.lease(store, 1, 3, 1.0)
    assert isinstance(refusal, Refusal) and 0 < refusal.retry_after_s <= 0.3
    first_start = allowance.start
    await asyncio.sleep(0.35)
    assert not allowance.covers(1, time.time())
    assert await allowance.lease(store, 1, 3, 1.0) is None
    assert allowance.start > first_start and allowance.local == 3
    shared = await store.read("rpm.team.t")
    assert shared.start == allowance.start and shared.granted == 3


async def test_a_settled_debt_is_paid_to_the_shared_entry(replicas: list[Client], bucket: str) -> None:
    store = await store_of(replicas[0], bucket)
    allowance = Allowance("tpm.key.k", rate_period(60.0))
    assert await allowance.lease(store, 10, 100, 0.1) is None
    start = allowance.take(10)
    allowance.settle(-5, start)  # the call used 15 tokens, 10 were estimated
    assert allowance.local == -5
    await allowance.give_back(store)
    assert (await store.read("tpm.key.k")).granted == 15


async def test_units_given_back_are_not_also_taken_while_the_give_back_is_under_way(replicas: list[Client],
                                                                                   bucket: str) -> None:
    """A give-back spans two KV round trips; a request admitted meanwhile must not spend the
    units being returned (they would be spent here and leased again by another replica)."""
    store, other = await store_of(replicas[0], bucket), await store_of(replicas[1], bucket)
    a, b = Allowance("rpm.key.g", rate_period(60.0)), Allowance("rpm.key.g", rate_period(60.0))
    assert await a.lease(store, 1, 10, 1.0) is None
    assert a.local == 10
    giving_back = asyncio.ensure_future(a.give_back(store))
    await asyncio.sleep(0)  # the give-back is waiting on its read
    taken = [a.take(1) for _ in range(5) if a.covers(1, time.time())]
    await giving_back
    assert await b.lease(other, 1, 10, 1.0) is None  # another replica leases all that is left
    assert len(taken) + a.local + b.local <= 10  # spent here, held here, held there: within the limit
    assert (await store.read("rpm.key.g")).granted == len(taken) + a.local + b.local


async def test_a_replica_whose_clock_reads_before_the_windows_start_counts_in_it(
        replicas: list[Client], bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load a replica reads the clock, then the entry another replica started a moment
    later: it must add to that window's count, not start a new one over it (which forgot
    every unit granted: 1,097 tokens taken against a limit of 1,000 in one CI run)."""
    store, other = await store_of(replicas[0], bucket), await store_of(replicas[1], bucket)
    a, b = Allowance("tpm.key.w", rate_period(60.0)), Allowance("tpm.key.w", rate_period(60.0))
    assert await a.lease(store, 10, 100, 0.1) is None
    started = (await store.read("tpm.key.w")).start
    behind = SimpleNamespace(time=lambda: started - 0.5, monotonic=time.monotonic)  # b's clock only
    monkeypatch.setattr("services.ingress.limits.allowance.time", behind)
    assert await b.lease(other, 10, 100, 0.1) is None
    assert b.covers(10, started - 0.5)
    shared = await store.read("tpm.key.w")
    assert shared.start == started and shared.granted == a.local + b.local
