"""ClickHouse (chDB) store and the usage query, called directly."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.usage_query import answer, build_sql, money, usage_report
from shared.protocol import UsageQuery, UsageReport


@pytest.fixture
async def store(chdb_dsn: str) -> AsyncIterator[ClickHouseStore]:
    opened = await ClickHouseStore.open(chdb_dsn)
    yield opened
    await opened.close()


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


async def test_duplicates_collapse_and_groups_add_up(store, harness) -> None:
    events = [harness.usage("k1", "0.1", model="a", time=at(1)), harness.usage("k1", "0.2", model="b", time=at(1)),
              harness.usage("k2", "0.3", model="a", time=at(2)), harness.usage("k2", "0.000000000001", model="a",
                                                                                time=at(2, 23))]
    await store.insert_usage(events)
    await store.insert_usage(events[:2])  # redelivered
    report = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=["day", "model"]))
    assert [(row.group, row.requests, row.cost) for row in report.rows] == [
        ({"day": "2025-03-01", "model": "a"}, 1, "0.1"),
        ({"day": "2025-03-01", "model": "b"}, 1, "0.2"),
        ({"day": "2025-03-02", "model": "a"}, 2, "0.300000000001"),
    ]
    assert report.rows[0].prompt_tokens == 10 and report.rows[0].completion_tokens == 5
    assert report.rows[0].total_tokens == 15

    # since is inclusive, until exclusive; zones are honoured, naive times are UTC.
    window = UsageQuery(org_id=harness.org_id, group_by=[],
                        since="2025-03-01T13:00:00+01:00", until="2025-03-02T23:00Z")
    assert [(row.requests, row.cost) for row in (await usage_report(store, window)).rows] == [(3, "0.6")]
    window = UsageQuery(org_id=harness.org_id, group_by=[], since="2025-03-01T12:00:00.001", until="2025-03-03")
    assert [(row.requests, row.cost) for row in (await usage_report(store, window)).rows] == [(2, "0.300000000001")]
    by_key = await usage_report(store, UsageQuery(org_id=harness.org_id, key_id="k2", model="a", group_by=["key_id"]))
    assert [(row.group, row.requests) for row in by_key.rows] == [({"key_id": "k2"}, 2)]


async def test_user_values_are_parameters_never_sql(store, harness) -> None:
    await store.insert_usage([harness.usage("k1", "1")])
    hostile = "x' OR 1=1 --"
    sql, _, params = build_sql(UsageQuery(org_id=hostile, model=hostile, group_by=["org_id"]))
    assert hostile not in sql and params["org_id"] == hostile
    assert (await usage_report(store, UsageQuery(org_id=hostile, group_by=["org_id"]))).rows == []
    assert (await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=[]))).rows[0].requests == 1


async def test_answer_always_replies(store) -> None:
    bad_group = UsageReport.model_validate_json(await answer(store, b'{"group_by": ["cost; DROP"]}', 10**6))
    assert bad_group.rows == [] and bad_group.error and bad_group.error.startswith("invalid usage query")
    bad_time = UsageReport.model_validate_json(await answer(store, json.dumps({"until": "soon"}).encode(), 10**6))
    assert bad_time.error == "until is not an ISO-8601 time: 'soon'"
    empty = UsageReport.model_validate_json(await answer(store, b"{}", 10**6))
    assert empty == UsageReport(rows=[])
    tiny = UsageReport.model_validate_json(await answer(store, b"{}", 10))
    assert tiny.error == "result too large: narrow the query"


async def test_rows_survive_reopening_the_same_path(chdb_dsn: str, harness) -> None:
    first = await ClickHouseStore.open(chdb_dsn)
    await first.insert_usage([harness.usage("k", "0.5")])
    await first.close()
    again = await ClickHouseStore.open(chdb_dsn)  # DDL is idempotent; data is still there
    try:
        report = await usage_report(again, UsageQuery(org_id=harness.org_id, group_by=[]))
    finally:
        await again.close()
    assert [(row.requests, row.cost) for row in report.rows] == [(1, "0.5")]


def test_money_strings() -> None:
    assert money("0.300000000000") == "0.3"
    assert money("100.000000000000") == "100"
    assert money("0.000000000000") == "0"
    assert money("0.000000000001") == "0.000000000001"
