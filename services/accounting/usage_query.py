"""The usage query answered over NATS (`ACCOUNTING_USAGE_QUERY`): UsageQuery → UsageReport.

Aggregates come from ClickHouse with FINAL (so duplicates count once): per group and in
total, requests, tokens, cost, errors and their rate, latency p50/p95/p99. Grouping columns
come from a fixed whitelist and every user value is a bound parameter; nothing a caller
sends is spliced into SQL. `since` is inclusive, `until` exclusive; a time without a zone
is UTC. Any failure is answered with `UsageReport(rows=[], error=...)`, never silence.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from services.accounting.clickhouse_store import TABLE, ClickHouseStore
from shared.protocol import UsageQuery, UsageReport, UsageRow

log = logging.getLogger(__name__)

GROUPS: dict[str, str] = {
    "org": "org_id",
    "team": "team_id",
    "user": "user_id",
    "key": "key_id",
    "model": "model",
    "provider": "provider",
    "hour": "formatDateTime(toStartOfHour(time), '%Y-%m-%dT%H:00:00Z')",
    "day": "toString(toDate(time))",
    "status": "status",
    "org_id": "org_id",
    "key_id": "key_id",
}
FILTERS = ("org_id", "team_id", "user_id", "key_id", "model", "provider", "status")
MAX_ROWS = 10_000
# exact, linearly interpolated between the two nearest latencies (as numpy's default)
PERCENTILES = "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms)"
AGGREGATES = ("count() AS requests", "sum(prompt_tokens)", "sum(completion_tokens)", "sum(total_tokens)",
              "toString(sum(cost))", "countIf(status = 'error')", PERCENTILES)
# every event has one time, so its duplicates share a partition: FINAL need not merge across them
SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"


def parse_time(name: str, value: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 time or date."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def build_sql(query: UsageQuery) -> tuple[str, list[str], dict[str, Any]]:
    """SQL, the group names in select order, and the bound parameters.

    Grouped, the totals come from the same scan (`GROUPING SETS` with the empty set; its
    row is last and flagged by `grouping()`); ungrouped, the one row is the totals."""
    groups: list[str] = list(dict.fromkeys(query.group_by))
    keys = [f"g_{name}" for name in groups]
    select = [f"{GROUPS[name]} AS g_{name}" for name in groups] + list(AGGREGATES)
    if groups:
        select.append(f"grouping({', '.join(keys)}) != 0 AS is_total")
    where: list[str] = []
    params: dict[str, Any] = {}
    for name in FILTERS:
        value = getattr(query, name)
        if value is not None:
            where.append(f"{name} = {{{name}:String}}")
            params[name] = value
    if query.since:
        where.append("time >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')")
        params["since_ms"] = parse_time("since", query.since)
    if query.until:
        where.append("time < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')")
        params["until_ms"] = parse_time("until", query.until)
    sql = f"SELECT {', '.join(select)} FROM {TABLE} FINAL"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if groups:
        sql += f" GROUP BY GROUPING SETS (({', '.join(keys)}), ()) ORDER BY is_total, {', '.join(keys)}"
    sql += f" LIMIT {MAX_ROWS + 2}" + SETTINGS
    return sql, groups, params


def money(text: str) -> str:
    """A decimal string without exponent or trailing zeros: '0.003000' -> '0.003'."""
    value = Decimal(text).normalize()
    return format(value, "f") if value else "0"


def _row(group: dict[str, str], values: tuple[Any, ...]) -> UsageRow:
    requests, prompt, completion, total, cost, errors, (p50, p95, p99) = values
    return UsageRow(group=group, requests=requests, prompt_tokens=prompt, completion_tokens=completion,
                    total_tokens=total, cost=money(cost), errors=errors, error_rate=errors / requests,
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


async def usage_report(store: ClickHouseStore, query: UsageQuery) -> UsageReport:
    sql, groups, params = build_sql(query)
    records = await store.query(sql, params)
    if len(records) > MAX_ROWS + 1:
        return UsageReport(rows=[], error=f"more than {MAX_ROWS} rows: narrow the query")
    return to_report(groups, records)


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
