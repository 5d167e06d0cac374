"""The usage query answered over NATS (`ACCOUNTING_USAGE_QUERY`): UsageQuery → UsageReport.

Aggregates come from ClickHouse with FINAL (so duplicates count once). Grouping columns
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
    "model": "model",
    "key_id": "key_id",
    "org_id": "org_id",
    "provider": "provider",
    "day": "toString(toDate(time))",
    "status": "status",
}
FILTERS = ("org_id", "key_id", "model")
MAX_ROWS = 10_000


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
    """SQL, the group names in select order, and the bound parameters."""
    groups: list[str] = list(dict.fromkeys(query.group_by))
    select = [f"{GROUPS[name]} AS g_{name}" for name in groups]
    select += ["count() AS requests", "sum(prompt_tokens)", "sum(completion_tokens)",
               "sum(total_tokens)", "toString(sum(cost))"]
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
        keys = ", ".join(f"g_{name}" for name in groups)
        sql += f" GROUP BY {keys} ORDER BY {keys}"
    sql += f" LIMIT {MAX_ROWS + 1}"
    return sql, groups, params


def money(text: str) -> str:
    """A decimal string without exponent or trailing zeros: '0.003000' -> '0.003'."""
    value = Decimal(text).normalize()
    return format(value, "f") if value else "0"


def to_rows(groups: list[str], records: list[tuple[Any, ...]]) -> list[UsageRow]:
    rows = []
    for record in records:
        group = {name: str(value) for name, value in zip(groups, record, strict=False)}
        requests, prompt, completion, total, cost = record[len(groups):]
        if requests == 0:  # an ungrouped aggregate over nothing
            continue
        rows.append(UsageRow(group=group, requests=requests, prompt_tokens=prompt,
                             completion_tokens=completion, total_tokens=total, cost=money(cost)))
    return rows


async def usage_report(store: ClickHouseStore, query: UsageQuery) -> UsageReport:
    sql, groups, params = build_sql(query)
    records = await store.query(sql, params)
    if len(records) > MAX_ROWS:
        return UsageReport(rows=[], error=f"more than {MAX_ROWS} rows: narrow the query")
    return UsageReport(rows=to_rows(groups, records))


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
