"""The usage query answered over NATS (`ACCOUNTING_USAGE_QUERY`): UsageQuery → UsageReport.

Aggregates come from ClickHouse with FINAL (so duplicates count once): per group and in
total, requests, tokens (with their cached, cache-write and reasoning parts), cost, errors and
their rate, latency p50/p95/p99. A rollup answers what it can (services/accounting/usage_plan.py:
then the percentiles are approximate), the raw rows the rest. Grouping columns come from a fixed
whitelist and every user value is a bound parameter; nothing a caller
sends is spliced into SQL. `since` is inclusive, `until` exclusive; a time without a zone
is UTC. Any failure is answered with `UsageReport(rows=[], error=...)`, never silence.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from services.accounting.clickhouse_store import TABLE, ClickHouseStore
from services.accounting.rollup_builder import RollupState, rollup_states
from services.accounting.rollups import FINAL_SETTINGS, MEASURES, QUANTILES, TOKEN_DETAILS
from services.accounting.usage_plan import FILTER_COLUMNS, GROUP_COLUMNS, Plan, choose, needs_rollup_state
from shared.usage_report import UsageQuery, UsageReport, UsageRow

log = logging.getLogger(__name__)

GROUPS: dict[str, str] = {
    **GROUP_COLUMNS,
    "hour": "formatDateTime(toStartOfHour({time}), '%Y-%m-%dT%H:00:00Z')",
    "day": "toString(toDate({time}))",
}
FILTERS = FILTER_COLUMNS
MAX_ROWS = 10_000
# exact, linearly interpolated between the two nearest latencies (as numpy's default)
PERCENTILES = "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms)"
TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens", *TOKEN_DETAILS)
AGGREGATES = ("count() AS requests", *(f"sum({column})" for column in TOKENS),
              "toString(sum(cost))", "countIf(status = 'error')", PERCENTILES)
# over a rollup's rows and the raw rows' partial aggregates (same order as AGGREGATES);
# PARTIAL in the order of a rollup's MEASURES, as UNION ALL matches columns by position
MERGED = ("sum(requests)", *(f"sum({column})" for column in TOKENS),
          "toString(sum(cost))", "sum(errors)", f"{QUANTILES.replace('(', 'Merge(', 1)}(latency)")
PARTIAL = ("count() AS requests", "countIf(status = 'error') AS errors",
           *(f"sum({column}) AS {column}" for column in TOKENS), "sum(cost) AS cost",
           f"{QUANTILES.replace('(', 'State(', 1)}(latency_ms) AS latency")
SETTINGS = FINAL_SETTINGS


def parse_time(name: str, value: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 time or date."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def window(query: UsageQuery) -> tuple[int | None, int | None]:
    return (parse_time("since", query.since) if query.since else None,
            parse_time("until", query.until) if query.until else None)


def _filters(query: UsageQuery, params: dict[str, Any]) -> list[str]:
    where = []
    for name in FILTERS:
        value = getattr(query, name)
        if value is not None:
            where.append(f"{name} = {{{name}:String}}")
            params[name] = value
    return where


def _between(column: str, since_ms: int | None, until_ms: int | None, params: dict[str, Any], tag: str) -> list[str]:
    """`since <= column < until` as bound parameters named after `tag`."""
    where = []
    if since_ms is not None:
        where.append(f"{column} >= fromUnixTimestamp64Milli({{{tag}_since:Int64}}, 'UTC')")
        params[f"{tag}_since"] = since_ms
    if until_ms is not None:
        where.append(f"{column} < fromUnixTimestamp64Milli({{{tag}_until:Int64}}, 'UTC')")
        params[f"{tag}_until"] = until_ms
    return where


def _grouped(groups: list[str], keys: list[str], aggregates: list[str], source: str, where: list[str],
             totals: bool = True) -> str:
    names = [f"g_{name}" for name in groups]
    sql = f"SELECT {', '.join(keys + aggregates)}"
    if groups:
        sql += f", grouping({', '.join(names)}) != 0 AS is_total" if totals else ", 0 AS is_total"
    sql += f" FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
    if groups and totals:
        sql += f" GROUP BY GROUPING SETS (({', '.join(names)}), ()) ORDER BY is_total, {', '.join(names)}"
    elif groups:
        sql += f" GROUP BY {', '.join(names)} ORDER BY {', '.join(names)}"
    return sql + f" LIMIT {MAX_ROWS + 2}" + SETTINGS


def _keys(groups: list[str], time_column: str) -> list[str]:
    return [f"{GROUPS[name].format(time=time_column)} AS g_{name}" for name in groups]


def build_sql(query: UsageQuery) -> tuple[str, list[str], dict[str, Any]]:
    """Over the raw rows alone: SQL, the group names in select order, and the bound parameters.

    Grouped, the totals come from the same scan (`GROUPING SETS` with the empty set; its
    row is last and flagged by `grouping()`); ungrouped, the one row is the totals."""
    groups: list[str] = list(dict.fromkeys(query.group_by))
    params: dict[str, Any] = {}
    since_ms, until_ms = window(query)
    where = _filters(query, params) + _between("time", since_ms, until_ms, params, "t")
    return _grouped(groups, _keys(groups, "time"), list(AGGREGATES), f"{TABLE} FINAL", where), groups, params


def build_rollup_sql(query: UsageQuery, plan: Plan) -> tuple[str, list[str], dict[str, Any]]:
    """Through `plan.rollup` for its clean buckets, the raw rows (aggregated to the same
    partial states) for the rest, merged; same columns as build_sql, without the totals row
    (merging every sketch again for it cost more than asking the smallest rollup: usage_report)."""
    assert plan.rollup is not None
    groups: list[str] = list(dict.fromkeys(query.group_by))
    params: dict[str, Any] = {}
    filters = _filters(query, params)
    rolled = filters + _between("bucket", plan.since_ms, plan.until_ms, params, "r")
    for n, (start, end) in enumerate(plan.dirty):
        rolled.append(f"NOT ({' AND '.join(_between('bucket', start, end, params, f'd{n}'))})")
    parts = [f"SELECT {', '.join([*_keys(groups, 'bucket'), *MEASURES])} FROM {plan.rollup.table} FINAL"
             + (" WHERE " + " AND ".join(rolled) if rolled else "")]
    if plan.raw:
        spans = " OR ".join(f"({' AND '.join(_between('time', start, end, params, f'w{n}'))})"
                            for n, (start, end) in enumerate(plan.raw))
        raw = f"SELECT {', '.join([*_keys(groups, 'time'), *PARTIAL])} FROM {TABLE} FINAL WHERE "
        raw += " AND ".join([*filters, f"({spans})"])
        if groups:
            raw += f" GROUP BY {', '.join(f'g_{name}' for name in groups)}"
        parts.append(raw)
    keys = [f"g_{name}" for name in groups]
    return _grouped(groups, keys, list(MERGED), f"({' UNION ALL '.join(parts)})", [], totals=False), groups, params


def money(text: str) -> str:
    """A decimal string without exponent or trailing zeros: '0.003000' -> '0.003'."""
    value = Decimal(text).normalize()
    return format(value, "f") if value else "0"


def _row(group: dict[str, str], values: tuple[Any, ...]) -> UsageRow:
    requests, prompt, completion, total, cached, cache_write, reasoning, cost, errors, (p50, p95, p99) = values
    return UsageRow(group=group, requests=requests, prompt_tokens=prompt, completion_tokens=completion,
                    total_tokens=total, cached_tokens=cached, cache_write_tokens=cache_write,
                    reasoning_tokens=reasoning, cost=money(cost), errors=errors, error_rate=errors / requests,
                    latency_p50_ms=p50, latency_p95_ms=p95, latency_p99_ms=p99)


def to_report(groups: list[str], records: list[tuple[Any, ...]]) -> UsageReport:
    rows: list[UsageRow] = []
    totals: UsageRow | None = None
    width = len(AGGREGATES)
    for record in records:
        values = record[len(groups):len(groups) + width]
        if values[0] == 0:  # an aggregate over nothing
            continue
        if not groups or record[-1]:
            totals = _row({}, values)
            continue
        rows.append(_row({name: str(value) for name, value in zip(groups, record, strict=False)}, values))
    if not groups and totals is not None:
        rows = [totals]
    return UsageReport(rows=rows, totals=totals)


async def usage_report(store: ClickHouseStore, query: UsageQuery,
                       states: Mapping[str, RollupState] | None = None) -> UsageReport:
    since_ms, until_ms = window(query)
    plan = Plan()
    if needs_rollup_state(query):
        states = await rollup_states(store) if states is None else states
        plan = choose(query, since_ms, until_ms, states)
    sql, groups, params = build_sql(query) if plan.rollup is None else build_rollup_sql(query, plan)
    records = await store.query(sql, params)
    if len(records) > MAX_ROWS + 1:
        return UsageReport(rows=[], error=f"more than {MAX_ROWS} rows: narrow the query")
    report = to_report(groups, records)
    if plan.rollup is not None and groups and report.rows:  # the totals: the same filters, no groups
        report.totals = (await usage_report(store, query.model_copy(update={"group_by": []}), states)).totals
    return report


async def answer(store: ClickHouseStore, raw: bytes, max_payload: int) -> bytes:
    """The reply body for one request; never raises."""
    try:
        report = await usage_report(store, UsageQuery.model_validate_json(raw))
    except ValidationError as exc:
        report = UsageReport(rows=[], error=f"invalid usage query: {exc.error_count()} error(s): "
                                            + "; ".join(e["msg"] for e in exc.errors()))
    except ValueError as exc:
        report = UsageReport(rows=[], error=str(exc))
    except Exception as exc:  # the caller gets an answer whatever happens
        log.exception("usage query failed")
        report = UsageReport(rows=[], error=f"usage query failed: {type(exc).__name__}")
    body = report.model_dump_json().encode()
    if len(body) > max_payload:
        body = UsageReport(rows=[], error="result too large: narrow the query").model_dump_json().encode()
    return body
