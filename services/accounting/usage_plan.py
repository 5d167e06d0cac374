"""Which table answers a usage query: a rollup for its clean buckets, the raw rows for the rest.

A rollup covers a query when it holds every group and filter the query names (`hour` needs
an hourly rollup; `status`, as a group or filter, only the raw rows have). Within the
query's time window, the rollup answers the buckets that lie whole inside the window and
are clean (services/accounting/rollups.py); the raw rows answer the window's unaligned
edges and the dirty buckets (not yet closed, or written since their last rebuild). Of the
covering rollups, the one leaving the least time to the raw rows wins; on a tie, the
smaller (ROLLUPS is ordered smallest first). No covering rollup, or nothing it could answer:
the raw rows answer alone, with exact percentiles.

Counts, tokens, cost and errors are sums, so they are the same either way; percentiles
through a rollup are merged t-digest sketches, approximate (docs/benchmarks.md: how close).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from services.accounting.rollup_builder import RollupState
from services.accounting.rollups import ROLLUPS, Rollup, intervals_of
from shared.usage_report import UsageQuery

# group name → raw column (hour, day: from the time; status: raw rows only)
GROUP_COLUMNS = {"org": "org_id", "org_id": "org_id", "team": "team_id", "user": "user_id", "key": "key_id",
                 "key_id": "key_id", "model": "model", "provider": "provider", "status": "status"}
FILTER_COLUMNS = ("org_id", "team_id", "user_id", "key_id", "model", "provider", "status")

Interval = tuple[int, int]  # [start, end), epoch milliseconds


@dataclass(frozen=True)
class Plan:
    rollup: Rollup | None = None
    # the rollup's buckets: from, to (epoch ms, None: unbounded), minus `dirty`
    since_ms: int | None = None
    until_ms: int | None = None
    dirty: list[Interval] = field(default_factory=list)
    # what the raw rows answer beside the rollup
    raw: list[Interval] = field(default_factory=list)


def covers(rollup: Rollup, query: UsageQuery) -> bool:
    for name in query.group_by:
        if name == "hour":
            if rollup.grain != "hour":
                return False
        elif name != "day" and GROUP_COLUMNS[name] not in rollup.dims:
            return False
    return all(getattr(query, column) is None or column in rollup.dims for column in FILTER_COLUMNS)


def _floor(value: int, step: int) -> int:
    return value - value % step


def plan_for(rollup: Rollup, since_ms: int | None, until_ms: int | None,
             dirty_starts: Collection[int], clean_starts: Collection[int]) -> tuple[Plan, int] | None:
    """The plan through this rollup and the milliseconds it leaves to the raw rows; None if
    no clean bucket of the rollup lies whole in the window (then the raw rows answer alone,
    exactly)."""
    step = rollup.seconds * 1000
    start = None if since_ms is None else -_floor(-since_ms, step)  # first whole bucket
    end = None if until_ms is None else _floor(until_ms, step)
    if start is not None and end is not None and start >= end:
        return None
    dirty = [(s * 1000, e * 1000) for s, e in intervals_of(dirty_starts, rollup.seconds)
             if (start is None or s * 1000 >= start) and (end is None or e * 1000 <= end)]
    raw = list(dirty)
    if since_ms is not None and start is not None and since_ms < start:
        raw.insert(0, (since_ms, start))
    if until_ms is not None and end is not None and end < until_ms:
        raw.append((end, until_ms))
    if not any((start is None or s * 1000 >= start) and (end is None or (s + rollup.seconds) * 1000 <= end)
               for s in clean_starts):
        return None
    left = sum(e - s for s, e in raw)
    return Plan(rollup, start, end, dirty, raw), left


def choose(query: UsageQuery, since_ms: int | None, until_ms: int | None,
           states: Mapping[str, RollupState]) -> Plan:
    best: tuple[int, int, Plan] | None = None
    for rank, rollup in enumerate(ROLLUPS):
        if not covers(rollup, query):
            continue
        state = states.get(rollup.name, RollupState())
        found = plan_for(rollup, since_ms, until_ms, state.dirty, state.clean)
        if found is not None and (best is None or (found[1], rank) < best[:2]):
            best = (found[1], rank, found[0])
    return best[2] if best else Plan()


def needs_rollup_state(query: UsageQuery) -> bool:
    """Whether any rollup could answer: if not, the dirty buckets need not be read."""
    return any(covers(rollup, query) for rollup in ROLLUPS)
