"""Admission: a request against every limit on its path (org → team → user → key), and its
settlement when the call ends.

Each level may set `rpm_limit` (1 unit a request), `tpm_limit` (the estimated input tokens
at admission, settled with the real prompt and completion tokens) and `max_budget` (the
request's worst-case cost reserved in units of 1e-10 USD: estimated input tokens plus
`max_tokens`, or the model's output limit, at the model's prices, every input token at
the highest of its input prices, as if none were read from a cache; settled with the real
cost, cache reads at their discount). A request is admitted only if every limit covers it; then it takes from all of them
at once (no await between the check and the take, so nothing is taken when one refuses).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any

from services.ingress.limits.allowance import Allowance, Refusal, Seed, calendar_period, rate_period
from services.ingress.limits.headers import BUDGET_WARNING_HEADER, rate_headers, refusal_headers, retry_after
from services.ingress.limits.store import LimitStore, StoreUnavailable, key_token
from services.ingress.limits.windows import FOREVER
from shared.errors import InsufficientQuota, LimitsUnavailable, RateLimited
from shared.events import BudgetWarningData, BudgetWarningEvent, Principal
from shared.pipeline import Endpoint
from shared.protocol import CallUsage, Route
from shared.settings import LimitsSettings
from shared.tenancy import Level
from shared.usage import estimated_usage

log = logging.getLogger(__name__)

UNITS_PER_USD = Decimal(10) ** 10  # budget units: Limits.max_budget has 10 decimal places
# admission rounds: lease what is short, then check and take all at once
ROUNDS = 8

Warn = Callable[[BudgetWarningEvent], None]
# a level's spend recorded since a period began (the spend ledger), USD: what a budget's new
# KV entry starts from (a budget set on a level that has spent already, a lost KV)
Spent = Callable[[Level, float], Awaitable[Decimal]]


class Metric(StrEnum):
    REQUESTS = "rpm"
    TOKENS = "tpm"
    BUDGET = "budget"


# plain names for the hot path (an enum member read through its class is a descriptor call)
REQUESTS, TOKENS, BUDGET = Metric.REQUESTS, Metric.TOKENS, Metric.BUDGET


def usd_units(amount: Decimal, rounding: str = ROUND_CEILING) -> int:
    return int((amount * UNITS_PER_USD).to_integral_value(rounding=rounding))


@functools.lru_cache(maxsize=4096)
def _budget_units(max_budget: Decimal) -> int:
    return usd_units(max_budget, ROUND_FLOOR)


@dataclass
class Need:
    metric: Metric
    level: Level
    allowance: Allowance
    units: int
    limit: int


@dataclass
class Taken:
    metric: Metric
    allowance: Allowance
    units: int
    start: float


@dataclass
class Ticket:
    """What one admitted request took; `settle` gives back what the call did not use (once)."""

    taken: list[Taken] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 0
    route: Route | None = None
    settled: bool = False

    def settle(self, usage: CallUsage | None, completion_estimate: int = 0) -> None:
        """`usage`: what the call used, as its final frame said; None when that is not known
        (cut, lost): tokens count the estimate, budgets keep the whole reservation."""
        if self.settled:
            return
        self.settled = True
        cost_units = usd_units(usage.cost) if usage is not None else None
        for item in self.taken:
            if item.metric is TOKENS:
                used = (usage.prompt_tokens + usage.completion_tokens if usage is not None
                        else self.input_tokens + completion_estimate)
                item.allowance.settle(item.units - used, item.start)
            elif item.metric is BUDGET and cost_units is not None:
                item.allowance.settle(item.units - cost_units, item.start)


NO_LIMITS = Ticket(settled=True)


def _output_bound(body: dict[str, Any], model_limit: int | None, default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return model_limit or default


class Limiter:
    def __init__(self, store: LimitStore, settings: LimitsSettings, warn: Warn, spent: Spent | None = None) -> None:
        self._store = store
        self._spent = spent
        self._settings = settings
        self._warn = warn
        self._allowances: dict[str, Allowance] = {}
        self._by_level: dict[tuple[Metric, str, str], Allowance] = {}
        self._level_of: dict[str, tuple[Metric, str, str]] = {}
        self._warned: set[tuple[str, float]] = set()
        self._down_until = 0.0  # monotonic: the KV failed, ask it again after this
        self._tasks: set[asyncio.Task[None]] = set()

    # the hot path --------------------------------------------------------------------

    def _allowance(self, metric: Metric, level: Level) -> Allowance:
        found = self._by_level.get((metric, level.kind, level.id))
        if found is not None and (metric is not BUDGET or found.period_name == level.limits.budget_duration):
            return found
        key = f"{metric.value}.{level.kind.value}.{key_token(level.id)}"
        allowance = self._allowances.get(key)
        if allowance is None or found is not None:  # new, or the budget's duration changed: a new count
            if metric is BUDGET:
                duration = level.limits.budget_duration
                allowance = Allowance(key, calendar_period(duration), duration)
            else:
                allowance = Allowance(key, rate_period(self._settings.window_s))
            self._allowances[key] = allowance
        self._by_level[(metric, level.kind, level.id)] = allowance
        self._level_of[key] = (metric, level.kind, level.id)
        return allowance

    def _needs(self, principal: Principal, endpoint: Endpoint, route: Route, model_output_limit: int | None,
               body: Callable[[], dict[str, Any]]) -> tuple[list[Need], int]:
        needs: list[Need] = []
        parsed: dict[str, Any] | None = None
        input_tokens = 0
        budget_units = 0
        for level in principal.levels:
            limits = level.limits
            if limits.rpm_limit is not None:
                needs.append(Need(REQUESTS, level, self._allowance(REQUESTS, level), 1, limits.rpm_limit))
            if limits.tpm_limit is None and limits.max_budget is None:
                continue
            if parsed is None:  # the body is read for estimates only when a level needs them
                parsed = body()
                input_tokens = estimated_usage(endpoint, parsed).prompt_tokens
                output = 0 if endpoint is Endpoint.EMBEDDINGS else _output_bound(
                    parsed, model_output_limit, self._settings.default_max_output_tokens)
                budget_units = max(1, usd_units(route.worst_cost(input_tokens, output)))
            if limits.tpm_limit is not None:
                needs.append(Need(TOKENS, level, self._allowance(TOKENS, level), max(1, input_tokens),
                                  limits.tpm_limit))
            if limits.max_budget is not None:
                needs.append(Need(BUDGET, level, self._allowance(BUDGET, level), budget_units,
                                  _budget_units(limits.max_budget)))
        return needs, input_tokens

    async def admit(self, principal: Principal, endpoint: Endpoint, route: Route, model_output_limit: int | None,
                    body: Callable[[], dict[str, Any]]) -> Ticket:
        """Raises RateLimited (429 `rate_limit_exceeded`), InsufficientQuota (429
        `insufficient_quota`) or LimitsUnavailable (503, a check set to fail closed)."""
        if not principal.levels:
            return NO_LIMITS
        needs, input_tokens = self._needs(principal, endpoint, route, model_output_limit, body)
        if not needs:
            return NO_LIMITS
        waived: set[int] = set()  # needs admitted without counting: their KV is away, failing open
        for _ in range(ROUNDS):
            now = time.time()
            short = [i for i, need in enumerate(needs) if i not in waived and not need.allowance.covers(need.units, now)]
            if not short:
                return self._take(principal, needs, waived, input_tokens, route, now)
            await self._lease(needs, short, waived)
        raise RateLimited("The gateway is busy admitting requests for this key; try again.", retry_after="1")

    def _take(self, principal: Principal, needs: list[Need], waived: set[int], input_tokens: int, route: Route,
              now: float) -> Ticket:
        ticket = Ticket(input_tokens=input_tokens, route=route)
        taken = ticket.taken
        requests: list[Allowance] = []
        tokens: list[Allowance] = []
        warnings: list[str] = []
        share = self._settings.warn_share
        for i, need in enumerate(needs):
            if i in waived:
                continue
            allowance = need.allowance
            metric = need.metric
            taken.append(Taken(metric, allowance, need.units, allowance.take(need.units)))
            if metric is REQUESTS:
                requests.append(allowance)
            elif metric is TOKENS:
                tokens.append(allowance)
            elif need.limit and allowance.committed() >= share * need.limit:
                warnings.append(f"{need.level.kind.value}:{need.level.id}")
                self._warn_once(principal, need)
        headers = ticket.headers
        if requests:
            headers.update(rate_headers("requests", requests, now))
        if tokens:
            headers.update(rate_headers("tokens", tokens, now))
        if warnings:
            headers[BUDGET_WARNING_HEADER] = ", ".join(warnings)
        return ticket

    # leases (the bus) ----------------------------------------------------------------

    async def _lease(self, needs: list[Need], short: list[int], waived: set[int]) -> None:
        if time.monotonic() < self._down_until:
            results: list[Refusal | BaseException | None] = [StoreUnavailable("recently failed")] * len(short)
        else:
            fraction = self._settings.lease_fraction
            results = list(await asyncio.gather(
                *(needs[i].allowance.lease(self._store, needs[i].units, needs[i].limit, fraction, self._seed(needs[i]))
                  for i in short),
                return_exceptions=True))
        for i, result in zip(short, results, strict=True):
            need = needs[i]
            if isinstance(result, StoreUnavailable):
                if time.monotonic() >= self._down_until:  # once per failure, not per request
                    log.warning("limits: the NATS KV failed (%s); for %.1f s rate limits fail %s, budgets %s",
                                result, self._settings.kv_retry_s, self._settings.rate_limits_on_kv_failure,
                                self._settings.budgets_on_kv_failure)
                self._down_until = time.monotonic() + self._settings.kv_retry_s
                if self._fails_open(need.metric):
                    waived.add(i)
                    continue
                raise LimitsUnavailable("The gateway cannot check this key's limits right now.", retry_after="1")
            if isinstance(result, BaseException):
                raise result
            if isinstance(result, Refusal):
                raise _refused(need, result)

    def _seed(self, need: Need) -> Seed | None:
        spent = self._spent
        if need.metric is not BUDGET or spent is None:
            return None
        level = need.level

        async def seed(start: float) -> int:
            try:
                return usd_units(await spent(level, start))
            except Exception as exc:  # Postgres away: the count starts from the KV alone
                log.warning("limits: spend of %s %s unknown (%s); its budget counts from 0",
                            level.kind.value, level.id, type(exc).__name__)
                return 0
        return seed

    def _fails_open(self, metric: Metric) -> bool:
        setting = (self._settings.budgets_on_kv_failure if metric is Metric.BUDGET
                   else self._settings.rate_limits_on_kv_failure)
        return setting == "open"

    # budget warnings -------------------------------------------------------------------

    def _warn_once(self, principal: Principal, need: Need) -> None:
        allowance = need.allowance
        marker = (allowance.key, allowance.start)
        if marker in self._warned:
            return
        self._warned.add(marker)
        self._spawn(self._publish_warning(principal, need, allowance.start, allowance.end, allowance.committed()))

    async def _publish_warning(self, principal: Principal, need: Need, start: float, end: float,
                               committed: int) -> None:
        level = need.level
        key = f"warn.{level.kind.value}.{key_token(level.id)}.{int(start)}"
        try:
            won = await self._store.create_once(key)
        except StoreUnavailable:
            self._warned.discard((need.allowance.key, start))  # try again with a later request
            return
        if not won:
            return
        self._warn(BudgetWarningEvent(
            source="ingress", org_id=principal.org_id, team_id=principal.team_id, key_id=principal.key_id,
            data=BudgetWarningData(
                level=level.kind.value, level_id=level.id, max_budget=level.limits.max_budget or Decimal(0),
                committed=Decimal(committed) / UNITS_PER_USD, share=self._settings.warn_share,
                budget_duration=level.limits.budget_duration,
                period_start=datetime.fromtimestamp(start, UTC),
                period_end=None if end == FOREVER else datetime.fromtimestamp(end, UTC))))

    # giving back -------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def give_back_idle(self, idle_s: float | None = None) -> None:
        """Return every allowance unused for `idle_s` (all of them with 0)."""
        idle = self._settings.idle_return_s if idle_s is None else idle_s
        cutoff = time.monotonic() - idle
        now = time.time()
        for key, allowance in list(self._allowances.items()):
            if allowance.local and allowance.used_at <= cutoff:
                try:
                    await allowance.give_back(self._store)
                except StoreUnavailable:
                    return  # kept, and tried again next time
            elif not allowance.local and not allowance.valid(now) and not allowance.lock.locked():
                self._forget(key, allowance)  # nothing held, its window over: no memory per idle key

    def _forget(self, key: str, allowance: Allowance) -> None:
        del self._allowances[key]
        self._by_level.pop(self._level_of.pop(key), None)

    async def run(self, stop: asyncio.Event) -> None:
        """Give idle allowances back every `idle_return_s` until `stop`, then all of them."""
        every = max(0.05, self._settings.idle_return_s / 2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            await self.give_back_idle()
        await self.give_back_idle(0)
        for task in list(self._tasks):
            await task


def _refused(need: Need, refusal: Refusal) -> RateLimited | InsufficientQuota:
    level = f"{need.level.kind.value} {need.level.id}"
    wait = retry_after(refusal.retry_after_s)
    if need.metric is Metric.BUDGET:
        spent = Decimal(refusal.used) / UNITS_PER_USD
        return InsufficientQuota(
            f"You exceeded your current quota: the budget of {level} (${need.level.limits.max_budget}) "
            f"has ${max(Decimal(0), Decimal(refusal.limit) / UNITS_PER_USD - spent):.6f} left, and this request "
            f"may cost up to ${Decimal(need.units) / UNITS_PER_USD:.6f}.", retry_after=wait)
    requests = need.metric is Metric.REQUESTS
    unit = "requests per min (RPM)" if requests else "tokens per min (TPM)"
    return RateLimited(
        f"Rate limit reached for {level} on {unit}: Limit {refusal.limit}, Used {refusal.used}, "
        f"Requested {need.units}. Please try again in {wait}s.", retry_after=wait,
        headers=refusal_headers("requests" if requests else "tokens", refusal.limit, refusal.used,
                                refusal.retry_after_s))

