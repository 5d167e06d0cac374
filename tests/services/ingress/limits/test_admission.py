"""Admission against every level of a principal, settlement, warnings and KV failures, on a
real nats-server (several limiters on their own connections stand for ingress replicas)."""
from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client

from services.ingress.limits.admission import Limiter, Ticket
from services.ingress.limits.headers import BUDGET_WARNING_HEADER
from shared.errors import InsufficientQuota, LimitsUnavailable, RateLimited
from shared.events import BudgetWarningEvent, Principal
from shared.pipeline import Endpoint
from shared.protocol import CallUsage, Route, Target
from shared.settings import LimitsSettings
from shared.tenancy import Level, LevelKind, Limits
from tests.services.ingress.limits.conftest import store_of

# $1 per million tokens in and $2 per million out
ROUTE = Route(model="m", targets=[Target(provider="p", model="m")], input_per_million=Decimal(1),
              output_per_million=Decimal(2))
BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 100}
INPUT_TOKENS = 3 + 10 + 3  # the estimator: framing, 40 characters, reply priming
WORST = (Decimal(INPUT_TOKENS) * 1 + Decimal(100) * 2) / 1_000_000


def principal(**limits: Limits) -> Principal:
    """Levels org → team → user → key, ids of this test's own; limits by kind."""
    suffix = uuid.uuid4().hex[:8]
    levels = [Level(kind=kind, id=f"{kind.value}-{suffix}", limits=limits.get(kind.value, Limits()))
              for kind in LevelKind]
    return Principal(key_id=f"key-{suffix}", org_id=f"org-{suffix}", levels=levels)


async def limiter(client: Client, bucket: str, events: list[BudgetWarningEvent] | None = None,
                  **settings: Any) -> Limiter:
    sink = events if events is not None else []
    return Limiter(await store_of(client, bucket, timeout_s=0.5), LimitsSettings(**settings), sink.append)


async def admit(lim: Limiter, who: Principal, body: dict[str, Any] | None = None) -> Ticket:
    return await lim.admit(who, Endpoint.CHAT, ROUTE, None, lambda: body or BODY)


async def test_the_tightest_level_decides_and_every_level_counts(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[0], bucket)
    who = principal(org=Limits(rpm_limit=3), key=Limits(rpm_limit=5))
    tickets = [await admit(lim, who) for _ in range(3)]
    assert tickets[-1].headers["x-ratelimit-limit-requests"] == "3"
    assert tickets[-1].headers["x-ratelimit-remaining-requests"] == "0"
    assert tickets[-1].headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(RateLimited) as refused:
        await admit(lim, who)
    assert refused.value.status == 429 and refused.value.code == "rate_limit_exceeded"
    assert refused.value.retry_after is not None and 1 <= int(refused.value.retry_after) <= 60
    assert "org" in refused.value.message
    # the refusal names the level that refused (the org's 3), with nothing left
    assert refused.value.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.value.headers["x-ratelimit-reset-requests"].endswith("s")
    # the key's own limit saw the three requests admitted, not the refused one
    key_counter = next(a for key, a in lim._allowances.items() if key.startswith("rpm.key."))
    assert key_counter.granted - key_counter.local == 3


async def test_a_budget_refuses_what_could_cross_it_and_settlement_frees_the_rest(replicas: list[Client],
                                                                                 bucket: str) -> None:
    lim = await limiter(replicas[0], bucket)
    who = principal(team=Limits(max_budget=WORST * 2 + WORST / 2, budget_duration="1d"))
    first, second = await admit(lim, who), await admit(lim, who)
    with pytest.raises(InsufficientQuota) as refused:
        await admit(lim, who)
    assert refused.value.status == 429 and refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"
    # the first call used a tenth of its worst case: the rest comes back, a third call fits
    first.settle(CallUsage(prompt_tokens=INPUT_TOKENS, completion_tokens=10,
                           cost=(Decimal(INPUT_TOKENS) + Decimal(20)) / 1_000_000), 0)
    third = await admit(lim, who)
    # a call whose usage is not known (cut) keeps its whole reservation
    second.settle(None, 0)
    third.settle(None, 0)
    with pytest.raises(InsufficientQuota):
        await admit(lim, who)


async def test_a_budget_reserves_input_at_its_highest_price_and_settles_at_the_cached_one(
        replicas: list[Client], bucket: str) -> None:
    # a cache write costs 2.5× the input price, a read a tenth: the reservation is the write's
    cached_route = ROUTE.model_copy(update={"cached_input_per_million": Decimal("0.1"),
                                            "cache_write_per_million": Decimal("2.5")})
    worst = (Decimal(INPUT_TOKENS) * Decimal("2.5") + Decimal(100) * 2) / 1_000_000
    assert worst > WORST
    lim = await limiter(replicas[0], bucket)
    who = principal(key=Limits(max_budget=Decimal("0.00045")))  # two reservations at the input price would fit

    async def admit_cached() -> Ticket:
        return await lim.admit(who, Endpoint.CHAT, cached_route, None, lambda: BODY)

    first = await admit_cached()
    with pytest.raises(InsufficientQuota) as refused:
        await admit_cached()
    assert f"{worst:.6f}" in refused.value.message
    # the call was all cache hits: it settles at the read price, and the rest comes back
    first.settle(CallUsage(prompt_tokens=INPUT_TOKENS, completion_tokens=10,
                           cost=cached_route.cost(INPUT_TOKENS, 10, cached_tokens=INPUT_TOKENS)), 0)
    (await admit_cached()).settle(None, 0)


async def test_tpm_counts_the_estimate_and_settles_with_real_usage(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[0], bucket)
    limit = INPUT_TOKENS * 3 + 5
    who = principal(user=Limits(tpm_limit=limit))
    tickets = [await admit(lim, who) for _ in range(3)]
    assert tickets[0].headers["x-ratelimit-limit-tokens"] == str(limit)
    assert tickets[2].headers["x-ratelimit-remaining-tokens"] == "5"
    with pytest.raises(RateLimited):
        await admit(lim, who)  # 16 estimated, 5 left
    tickets[0].settle(CallUsage(prompt_tokens=2, completion_tokens=1), 0)  # 3 used of 16 estimated
    tickets[0].settle(CallUsage(), 0)  # settles once
    ticket = await admit(lim, who)  # the 13 given back and 3 of the 5 left hold the next estimate
    assert ticket.headers["x-ratelimit-remaining-tokens"] == "2"
    # a stream that used more than estimated: the difference is counted too
    ticket.settle(CallUsage(prompt_tokens=INPUT_TOKENS, completion_tokens=4), 0)
    counter = next(a for key, a in lim._allowances.items() if key.startswith("tpm.user."))
    # two calls unsettled (their estimates), one that used 3, one that used its estimate and 4 more
    assert counter.granted - counter.local == 2 * INPUT_TOKENS + 3 + INPUT_TOKENS + 4


async def test_budget_warning_once_per_period_and_level_across_replicas(replicas: list[Client],
                                                                        bucket: str) -> None:
    events: list[BudgetWarningEvent] = []
    limiters = [await limiter(client, bucket, events, lease_fraction=0.05) for client in replicas]
    who = principal(org=Limits(max_budget=WORST * 20, budget_duration="1mo"))
    tickets = await asyncio.gather(*(admit(limiters[i % 4], who) for i in range(16)))
    warned = [t for t in tickets if BUDGET_WARNING_HEADER in t.headers]
    assert tickets[0].headers.get(BUDGET_WARNING_HEADER) is None  # 1 of 20: far below 80 %
    assert warned and warned[-1].headers[BUDGET_WARNING_HEADER] == f"org:{who.levels[0].id}"
    for lim in limiters:  # the publishes run in their own tasks
        for task in list(lim._tasks):
            await task
    assert len(events) == 1
    event = events[0]
    assert event.type == "budget.warning" and event.org_id == who.org_id
    assert event.data.level == "org" and event.data.level_id == who.levels[0].id
    assert event.data.committed >= Decimal("0.8") * WORST * 20 and event.data.budget_duration == "1mo"
    assert event.data.period_start.day == 1 and event.data.period_end is not None


async def test_kv_unreachable_rate_limits_fail_open_budgets_closed(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[1], bucket)
    rate_only = principal(key=Limits(rpm_limit=2))
    budget = principal(key=Limits(max_budget=Decimal(1)))
    held = principal(key=Limits(rpm_limit=1000))
    await admit(lim, held)  # an allowance leased while the KV answers
    await replicas[1].close()  # this replica's bus is gone
    for _ in range(3):  # over the limit of 2, but nothing can count it: open
        assert (await admit(lim, rate_only)).taken == []
    with pytest.raises(LimitsUnavailable) as closed:
        await admit(lim, budget)
    assert closed.value.status == 503 and closed.value.code == "limits_unavailable"
    ticket = await admit(lim, held)  # decided from the allowance it holds: still counted
    assert ticket.taken and ticket.headers["x-ratelimit-limit-requests"] == "1000"


async def test_kv_unreachable_as_set_the_other_way(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[2], bucket, rate_limits_on_kv_failure="closed", budgets_on_kv_failure="open")
    await replicas[2].close()
    with pytest.raises(LimitsUnavailable):
        await admit(lim, principal(key=Limits(rpm_limit=2)))
    assert (await admit(lim, principal(key=Limits(max_budget=Decimal(1))))).taken == []


async def test_no_limits_no_bus(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[3], bucket)
    await replicas[3].close()
    ticket = await admit(lim, principal())
    assert ticket.taken == [] and ticket.headers == {}
    ticket = await admit(lim, Principal(key_id="k"))
    assert ticket.headers == {}


async def test_idle_allowances_go_back_and_spent_windows_are_forgotten(replicas: list[Client], bucket: str) -> None:
    first = await limiter(replicas[0], bucket, window_s=0.5)
    second = await limiter(replicas[1], bucket, window_s=0.5)
    who = principal(key=Limits(rpm_limit=20))
    await admit(first, who)  # leases 2 (a tenth of 20), uses 1
    await first.give_back_idle(0)
    (allowance,) = first._allowances.values()
    assert allowance.local == 0 and allowance.granted == 1
    for _ in range(19):
        await admit(second, who)  # the unit given back is the 20th
    with pytest.raises(RateLimited):
        await admit(second, who)
    await asyncio.sleep(0.55)  # the window is over: nothing held is worth keeping
    await first.give_back_idle(0)
    assert first._allowances == {} and first._by_level == {}


async def test_a_changed_budget_duration_counts_in_its_own_periods(replicas: list[Client], bucket: str) -> None:
    lim = await limiter(replicas[0], bucket)
    who = principal(key=Limits(max_budget=WORST * 2))  # never resets
    await admit(lim, who)
    await admit(lim, who)
    with pytest.raises(InsufficientQuota):
        await admit(lim, who)
    key_level = who.levels[-1]
    monthly = who.model_copy(update={"levels": [*who.levels[:-1], key_level.model_copy(
        update={"limits": Limits(max_budget=WORST * 2, budget_duration="1mo")})]})
    ticket = await admit(lim, monthly)  # this month's period: nothing spent in it yet
    assert ticket.taken and ticket.taken[0].start > 0
